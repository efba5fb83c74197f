"""Activation clustering (Chen et al., 2018): OPT-IN, off by default.

Note: the method may be covered by US patent 11,188,789; dataward ships it disabled. It runs only when
named (``--detectors activation_clustering`` or ``detect(..., detectors=[...])``), ideally on model
activations passed with ``--embeddings``.

Per class: reduce the class's representations to 10 dimensions (PCA), split them in two with k-means
(k=2), and flag the smaller cluster when it is a minority (at most ``max_fraction``, 35 %) and the split
is clear (silhouette >= ``min_silhouette``, 0.4: natural splits of clean sklearn digits classes reach
0.35; and at least 3 records).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from dataward.detect._features import dense_view
from dataward.detect.interface import Detector, DetectorResult, Finding, Modality, Representation
from dataward.detect.registry import register


@register
class ActivationClustering(Detector):
    name: ClassVar[str] = "activation_clustering"
    modalities: ClassVar[frozenset[Modality]] = frozenset(
        {Modality.TABULAR, Modality.TEXT, Modality.IMAGE, Modality.EMBEDDING}
    )
    default_enabled: ClassVar[bool] = False

    def __init__(self, dims: int = 10, max_fraction: float = 0.35, min_silhouette: float = 0.4) -> None:
        self.dims = int(dims)
        self.max_fraction = float(max_fraction)
        self.min_silhouette = float(min_silhouette)

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA
        from sklearn.metrics import silhouette_score

        t0 = time.perf_counter()
        assert rep.labels is not None
        n = rep.n_records
        x = dense_view(rep, seed)
        y = rep.labels
        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        per_class: dict[str, float] = {}
        for c, name in enumerate(rep.label_names):
            idx = np.flatnonzero(y == c)
            if idx.size < 10:
                continue
            z = x[idx]
            if np.allclose(z, z[0]):
                continue
            dims = max(1, min(self.dims, idx.size - 1, z.shape[1]))
            z = PCA(n_components=dims, random_state=seed).fit_transform(z)
            km = KMeans(n_clusters=2, n_init=4, random_state=seed).fit(z)
            labels = km.labels_
            if len(set(labels.tolist())) < 2:
                continue
            sil = float(silhouette_score(z, labels, sample_size=min(2000, idx.size), random_state=seed))
            per_class[name] = round(sil, 3)
            small = int(np.argmin(np.bincount(labels, minlength=2)))
            members = idx[labels == small]
            frac = members.size / idx.size
            ok = members.size >= 3 and frac <= self.max_fraction and sil >= self.min_silhouette
            scores[members] = (0.5 + 0.5 * sil) if ok else 0.49 * max(0.0, sil) / self.min_silhouette * 0.5
            if ok:
                flagged[members] = True
                for i in members:
                    reasons[int(i)] = (f"in a separate minority cluster of class {name!r} (silhouette {sil:.2f})",)
                findings.append(
                    Finding.scored(
                        check=self.name,
                        kind="trigger",
                        summary=f"class {name!r}: {members.size} of {idx.size} records form a separate cluster "
                        f"(activation clustering, silhouette {sil:.2f})",
                        records=tuple(int(i) for i in members),
                        evidence={"label": name, "silhouette": round(sil, 3), "fraction": round(frac, 4)},
                        score=0.65,
                    )
                )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={"dims": self.dims, "max_fraction": self.max_fraction, "silhouette": per_class},
            seconds=time.perf_counter() - t0,
        )
