"""Near-duplicates: copies with conflicting labels, and floods of near-identical records.

Two records are near-duplicates when their distance in the dense representation is below ``eps`` times
the median nearest-neighbour distance (exact duplicates for texts compare normalised text). Connected
groups of near-duplicates are clusters. Findings:

- a cluster whose members carry different labels: the minority-label members are flagged (with a tie,
  all but the first label's members);
- when more than 20 % of all records sit in clusters, the features do not tell records apart: one
  finding says so and nothing is flagged;
- a cluster of at least ``flood`` records (default max(4, 1 % of the data)): a flood; all members but the
  first are flagged. Smaller natural duplicate clusters are reported as findings without flags.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import ClassVar

import numpy as np

from dataward.detect._features import neighbours
from dataward.detect.interface import Detector, DetectorResult, Finding, IntArray, Modality, Representation
from dataward.detect.registry import register


def _components(n: int, pairs: list[tuple[int, int]]) -> list[IntArray]:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [np.array(g, dtype=np.int64) for g in groups.values() if len(g) > 1]


_SPACE = re.compile(r"\s+")


@register
class NearDuplicates(Detector):
    name: ClassVar[str] = "near_duplicates"
    modalities: ClassVar[frozenset[Modality]] = frozenset(
        {Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING, Modality.INSTRUCTION}
    )
    needs_labels: ClassVar[bool] = False

    def __init__(self, eps: float = 0.05, k: int = 10, flood: int | None = None) -> None:
        self.eps = float(eps)
        self.k = int(k)
        self.flood = flood

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        n = rep.n_records
        pairs: list[tuple[int, int]] = []
        texts = rep.texts
        if rep.modality is Modality.INSTRUCTION and rep.prompts is not None and rep.responses is not None:
            texts = tuple(p + "\x00" + r for p, r in zip(rep.prompts, rep.responses, strict=True))
        if texts is not None:
            seen: dict[str, int] = {}
            for i, t in enumerate(texts):
                key = _SPACE.sub(" ", t.strip().lower())
                if not key:
                    continue
                if key in seen:
                    pairs.append((seen[key], i))
                else:
                    seen[key] = i
        if n > 2 and texts is None:
            dist, idx = neighbours(rep, self.k, seed)
            nonzero = dist[:, 0][dist[:, 0] > 0]
            base = float(np.median(nonzero)) if nonzero.size else 0.0
            tol = self.eps * base if base > 0 else 1e-9
            close = dist <= tol
            for i, j in zip(*np.nonzero(close), strict=True):
                pairs.append((int(i), int(idx[i, j])))
        clusters = _components(n, pairs)
        flood = self.flood if self.flood is not None else max(4, int(np.ceil(0.01 * n)))
        flagged = np.zeros(n, dtype=bool)
        scores = np.zeros(n)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        labels = rep.labels
        names = rep.label_names
        in_clusters = sum(int(m.size) for m in clusters)
        if in_clusters > 0.2 * n:
            # most records share their features with others: the features do not identify records (few
            # categorical columns, say), so copies with different labels are expected, not suspicious
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="duplicate_cluster",
                    summary=f"{in_clusters} of {n} records have identical features to another record; "
                    "duplicates are not flagged (the features do not tell records apart)",
                    records=tuple(sorted(int(i) for m in clusters for i in m))[:1000],
                    evidence={"clusters": len(clusters)},
                    score=0.2,
                )
            )
            clusters = []
        for members in sorted(clusters, key=lambda m: (-m.size, int(m[0]))):
            first = int(members[0])
            if labels is not None and len(set(labels[members].tolist())) > 1:
                counts = Counter(labels[members].tolist())
                keep_label = max(counts, key=lambda c: (counts[c], -c))
                bad = members[labels[members] != keep_label]
                flagged[bad] = True
                scores[bad] = np.maximum(scores[bad], 0.8)
                for i in bad:
                    reasons[int(i)] = (
                        f"near-duplicate of record {first} but labelled {names[labels[i]]!r}, "
                        f"not {names[keep_label]!r}",
                    )
                findings.append(
                    Finding.scored(
                        check=self.name,
                        kind="duplicate_cluster",
                        summary=(
                            f"{members.size} near-identical records carry conflicting labels "
                            f"({', '.join(f'{names[c]!r}: {v}' for c, v in counts.most_common())})"
                        ),
                        records=tuple(int(i) for i in members),
                        evidence={"labels": {names[c]: v for c, v in counts.items()}, "first": first},
                        score=0.6,
                    )
                )
            if members.size >= flood:
                rest = members[1:]
                flagged[rest] = True
                scores[rest] = np.maximum(scores[rest], 0.75)
                for i in rest:
                    reasons[int(i)] = (*reasons.get(int(i), ()), f"one of {members.size} near-copies of record {first}")
                findings.append(
                    Finding.scored(
                        check=self.name,
                        kind="duplicate_cluster",
                        summary=f"flood: {members.size} near-copies of record {first}",
                        records=tuple(int(i) for i in members),
                        evidence={"first": first, "size": int(members.size)},
                        score=0.65,
                    )
                )
            elif members.size >= 3:
                scores[members[1:]] = np.maximum(scores[members[1:]], 0.3)
                findings.append(
                    Finding.scored(
                        check=self.name,
                        kind="duplicate_cluster",
                        summary=f"{members.size} near-identical records (first: {first}); not flagged",
                        records=tuple(int(i) for i in members),
                        evidence={"first": first, "size": int(members.size)},
                        score=0.15,
                    )
                )
        return DetectorResult(
            detector=self.name,
            scores=scores,
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={"eps": self.eps, "flood": flood, "clusters": len(clusters)},
            seconds=time.perf_counter() - t0,
        )
