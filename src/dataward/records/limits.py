"""Explicit limits on what a reader accepts, so memory is bounded by the limits and not by the file.

Every limit has a default sized for real data sets and an environment variable that raises it; a refusal
is a :class:`LimitError` naming the limit, the file and the record, and the variable to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from dataward.errors import InputError


class LimitError(InputError):
    """An input exceeds one of the records layer's documented limits."""

    default_advice = "Raise the limit named above if the input is legitimate."


#: environment variable of each limit (see docs/records.md)
ENV = {
    "max_record_bytes": "DATAWARD_MAX_RECORD_BYTES",
    "max_depth": "DATAWARD_MAX_DEPTH",
    "max_columns": "DATAWARD_MAX_COLUMNS",
    "max_image_pixels": "DATAWARD_MAX_IMAGE_PIXELS",
    "max_npy_header_bytes": "DATAWARD_MAX_NPY_HEADER_BYTES",
    "max_npy_bytes": "DATAWARD_MAX_NPY_BYTES",
}


@dataclass(frozen=True)
class Limits:
    """What one record, row or file may hold. Defaults are generous for real data; hostile input stops here."""

    #: one line, CSV record or cell: 64 MiB (a 50 MiB quoted CSV field is accepted; a 200 MiB line is not)
    max_record_bytes: int = 64 << 20
    #: JSON nesting depth of one record (real records nest a handful of levels; Python's parser stops near 1000)
    max_depth: int = 256
    #: columns of a table
    max_columns: int = 10_000
    #: pixels of one decoded image (PIL's decompression-bomb threshold is 89 M)
    max_image_pixels: int = 89_478_485
    #: bytes of a .npy header (numpy itself allows 10,000 bytes since 1.24)
    max_npy_header_bytes: int = 10_000
    #: bytes of the array data a .npy header may declare (the file must also hold them)
    max_npy_bytes: int = 4 << 30

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, raised or lowered by the ``DATAWARD_MAX_*`` environment variables."""
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = os.environ.get(ENV[f.name])
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw.strip())
            except ValueError:
                raise InputError(
                    f"{ENV[f.name]}={raw!r} is not an integer", advice=f"Set {ENV[f.name]} to a positive integer."
                ) from None
            if value <= 0:
                raise InputError(f"{ENV[f.name]}={value} must be positive", advice=f"Unset {ENV[f.name]} or raise it.")
            values[f.name] = value
        return cls(**values)

    def refuse(self, name: str, where: str, what: str) -> LimitError:
        """The error for exceeding limit ``name`` at ``where`` (file and record), saying how to raise it."""
        value = getattr(self, name)
        return LimitError(
            f"{where}: {what} exceeds the limit {name}={value:,}",
            advice=f"If the input is legitimate, raise it: export {ENV[name]}={value * 4}.",
        )


def current() -> Limits:
    """The limits in force for this process (environment read on each call: cheap, and tests can change it)."""
    return Limits.from_env()
