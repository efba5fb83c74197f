"""(being written)"""


class Feed:  # placeholder
    indicators: list = []


class Indicator:  # placeholder
    pass
