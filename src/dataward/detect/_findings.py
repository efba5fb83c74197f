"""Finding construction shared by detectors: label-issue groups and a trigger's carriers.

Kept out of the detector modules so that two detectors that report the same kind of finding build it
the same way (summary wording aside).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataward.detect.interface import BoolArray, FloatArray, IntArray
from dataward.model.finding import Finding


def label_issue_findings(
    check: str,
    flagged: BoolArray,
    given: IntArray,
    other: IntArray,
    names: Sequence[str],
    *,
    summary: str,
    other_key: str,
    score: float,
    extra: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """One ``label_issue`` finding per (given label, other label) pair of the flagged records, largest first.

    ``summary`` is a template with ``{n}``, ``{given}`` and ``{other}``; the evidence names the given label,
    the other one under ``other_key``, then ``extra``.
    """
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(flagged):
        pairs.setdefault((int(given[i]), int(other[i])), []).append(int(i))
    return [
        Finding.scored(
            check=check,
            kind="label_issue",
            summary=summary.format(n=len(recs), given=names[a], other=names[b]),
            records=tuple(recs),
            evidence={"given": names[a], other_key: names[b], **(extra or {})},
            score=score,
        )
        for (a, b), recs in sorted(pairs.items(), key=lambda kv: -len(kv[1]))
    ]


def mark_carriers(
    scores: FloatArray,
    flagged: BoolArray,
    pvalues: FloatArray,
    on_target: IntArray,
    off_target: IntArray,
    *,
    strength: float,
    p_value: float,
) -> None:
    """Score a trigger's carriers in place: those with the trigger's label are flagged at 0.5 + strength / 2
    with the trigger's p-value; those with another label are raised to 0.3 (suspicious, not flagged)."""
    scores[on_target] = np.maximum(scores[on_target], 0.5 + 0.5 * strength)
    scores[off_target] = np.maximum(scores[off_target], 0.3)
    flagged[on_target] = True
    pvalues[on_target] = np.minimum(pvalues[on_target], p_value)
