"""The one severity scale (info < low < medium < high < critical), its rank and its 0..1 scores.

Screening findings carry a :class:`Severity`; detectors order their findings by a 0..1 score, which
:meth:`Severity.of_score` maps onto the scale and :attr:`Severity.score` maps back (a representative
score per level); the calibrated mapping from evidence (p-value, share of the batch) is
:func:`dataward.core.evidence.severity_of_evidence` (docs/adr/0021-calibrated-alarms.md). Pure.
"""

from __future__ import annotations

import enum

from dataward.errors import InputError

__all__ = ["SEVERITIES", "Severity"]


class Severity(enum.StrEnum):
    """A finding's severity. A ``StrEnum``: members compare equal to their lower-case names."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (info) to 4 (critical)."""
        return _ORDER.index(self)

    @property
    def score(self) -> float:
        """A representative 0..1 detector score for this level (the inverse of :meth:`of_score`)."""
        return _SCORE[self]

    @classmethod
    def of_score(cls, score: float) -> Severity:
        """Map a 0..1 detector score onto the scale (>= 0.9 critical, 0.7 high, 0.4 medium, 0.2 low)."""
        for level, floor in _FLOORS:
            if score >= floor:
                return level
        return cls.INFO

    @classmethod
    def coerce(cls, value: str) -> Severity:
        """``value`` as a Severity, case-insensitively; raises ``ValueError`` naming the levels if unknown."""
        try:
            return cls(str(value).lower())
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r} (one of: {known})") from None

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``text`` as a Severity (user input: a policy, a feed, ``--fail-on``); unknown raises InputError."""
        try:
            return cls(str(text).lower())
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise InputError(f"unknown severity {text!r}", advice=f"Use one of: {known}.") from None

    @classmethod
    def rank_of(cls, value: str) -> int:
        """The rank of ``value``; an unknown level ranks as ``info`` (0), below every real finding."""
        try:
            return cls(str(value).lower()).rank
        except ValueError:
            return 0


_ORDER = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
_SCORE = {Severity.INFO: 0.1, Severity.LOW: 0.3, Severity.MEDIUM: 0.55, Severity.HIGH: 0.8, Severity.CRITICAL: 0.95}
_FLOORS = ((Severity.CRITICAL, 0.9), (Severity.HIGH, 0.7), (Severity.MEDIUM, 0.4), (Severity.LOW, 0.2))
#: the level names, lowest first
SEVERITIES: tuple[str, ...] = tuple(s.value for s in _ORDER)
