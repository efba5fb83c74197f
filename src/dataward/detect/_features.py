"""Shared numeric views of a representation for detectors (dense low-dimensional space, k-NN graph).

Results are cached per representation object (weakly), so detectors of one ``detect`` run share them.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from scipy import sparse

from dataward.detect.interface import FloatArray, IntArray, Representation

_DENSE_MAX_DIM = 256
_REDUCED_DIM = 64
_cache: weakref.WeakKeyDictionary[Representation, dict[str, Any]] = weakref.WeakKeyDictionary()


def _slot(rep: Representation) -> dict[str, Any]:
    slot = _cache.get(rep)
    if slot is None:
        slot = {}
        _cache[rep] = slot
    return slot


def standardise(x: FloatArray) -> FloatArray:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    out: FloatArray = (x - mean) / std
    return out


def model_features(rep: Representation) -> Any:
    """What a classifier should be trained on: user embeddings when given, else the main features."""
    if rep.embeddings is not None:
        key = "model_features"
        slot = _slot(rep)
        if key not in slot:
            slot[key] = standardise(rep.embeddings)
        return slot[key]
    return rep.features


def dense_view(rep: Representation, seed: int = 0) -> FloatArray:
    """A dense space for distances: embeddings, or the features reduced to at most 64 dimensions.

    Sparse text features go through truncated SVD and are L2-normalised (cosine geometry); dense features
    wider than 256 columns go through PCA. Images keep their pixel scale (standardising pixels inflates the
    noise of near-constant border pixels).
    """
    slot = _slot(rep)
    key = f"dense:{seed}"
    if key in slot:
        cached: FloatArray = slot[key]
        return cached
    x = model_features(rep)
    n = rep.n_records
    if sparse.issparse(x):
        from sklearn.decomposition import TruncatedSVD

        k = min(_REDUCED_DIM, x.shape[1] - 1, n - 1)
        if k < 2:
            out = np.asarray(x.todense(), dtype=np.float64)
        else:
            out = TruncatedSVD(n_components=k, random_state=seed).fit_transform(x)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out = out / norms
    else:
        out = np.asarray(x, dtype=np.float64)
        if out.shape[1] > _DENSE_MAX_DIM:
            from sklearn.decomposition import PCA

            k = min(_REDUCED_DIM, n - 1, out.shape[1])
            out = PCA(n_components=k, random_state=seed).fit_transform(out)
    slot[key] = out
    return out


def neighbours(rep: Representation, k: int, seed: int = 0) -> tuple[FloatArray, IntArray]:
    """The ``k`` nearest other records of every record in :func:`dense_view` (distances, indices)."""
    slot = _slot(rep)
    key = f"knn:{seed}"
    have = slot.get(key)
    if have is not None and have[1].shape[1] >= k:
        return have[0][:, :k], have[1][:, :k]
    from sklearn.neighbors import NearestNeighbors

    x = dense_view(rep, seed)
    n = x.shape[0]
    kk = min(k, n - 1)
    nn = NearestNeighbors(n_neighbors=kk + 1).fit(x)
    dist, idx = nn.kneighbors(x)
    # drop each record itself (it may not come first when it has exact duplicates)
    out_d = np.empty((n, kk))
    out_i = np.empty((n, kk), dtype=np.int64)
    for i in range(n):
        keep = idx[i] != i
        row_i = idx[i][keep][:kk]
        row_d = dist[i][keep][:kk]
        out_i[i] = row_i
        out_d[i] = row_d
    slot[key] = (out_d, out_i)
    return out_d, out_i
