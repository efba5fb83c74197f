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
_SVD_MAX_COLUMNS = 20_000
_SVD_FIT_ROWS = 20_000
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

    Sparse text features (their 20,000 most frequent columns) go through truncated SVD and are
    L2-normalised (cosine geometry); dense features
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

        if x.shape[1] > _SVD_MAX_COLUMNS:
            # the most frequent n-grams carry the geometry; the long tail only slows the SVD down
            df = np.asarray((x != 0).sum(axis=0)).ravel()
            x = x[:, np.sort(np.argsort(-df, kind="stable")[:_SVD_MAX_COLUMNS])]
        k = min(_REDUCED_DIM, x.shape[1] - 1, n - 1)
        if k < 2:
            out = np.asarray(x.todense(), dtype=np.float64)
        else:
            svd = TruncatedSVD(n_components=k, n_iter=3, random_state=seed)
            if n > _SVD_FIT_ROWS:
                # the directions of 20,000 sampled rows are those of the whole set (to sampling error); fitting
                # on all 100k texts cost most of spectral_signatures' 49 s
                rows = np.sort(np.random.default_rng(seed).choice(n, _SVD_FIT_ROWS, replace=False))
                out = svd.fit(x[rows]).transform(x)
            else:
                out = svd.fit_transform(x)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out = np.asarray(out, dtype=np.float64)
        out /= norms  # in place: at 1M texts a copy is another 0.5 GiB
    else:
        out = np.asarray(x, dtype=np.float64)
        if out.shape[1] > _DENSE_MAX_DIM:
            from sklearn.decomposition import PCA

            k = min(_REDUCED_DIM, n - 1, out.shape[1])
            out = PCA(n_components=k, random_state=seed).fit_transform(out)
    slot[key] = out
    return out


_EXACT_MAX = 20_000
_REFERENCE = 5_000


def knn_search(
    query: FloatArray, ref: FloatArray, k: int, *, query_ids: IntArray | None = None, ref_ids: IntArray | None = None
) -> tuple[FloatArray, IntArray]:
    """The ``k`` nearest rows of ``ref`` for each row of ``query`` (Euclidean), skipping a row's own id.

    Chunked brute force with one matrix product per chunk (float32 for the products); returns distances
    and positions into ``ref`` sorted by distance.
    """
    q32 = np.ascontiguousarray(query, dtype=np.float32)
    r32 = np.ascontiguousarray(ref, dtype=np.float32)
    r_sq = (r32 * r32).sum(axis=1)
    q_sq = (q32 * q32).sum(axis=1)
    m = r32.shape[0]
    want = min(k + (1 if query_ids is not None else 0), m)
    out_d = np.empty((q32.shape[0], k))
    out_i = np.empty((q32.shape[0], k), dtype=np.int64)
    own_pos = None
    if query_ids is not None and ref_ids is not None:
        # position of each query's own id in ref (ref_ids sorted), or -1
        pos = np.searchsorted(ref_ids, query_ids)
        pos = np.minimum(pos, m - 1)
        own_pos = np.where(ref_ids[pos] == query_ids, pos, -1)
    chunk = max(1, min(2048, 4_000_000 // max(1, m)))
    for start in range(0, q32.shape[0], chunk):
        stop = min(start + chunk, q32.shape[0])
        # |q|^2 is constant per row: leave it out of the ranking and add it to the selected ones only
        d2 = q32[start:stop] @ r32.T
        d2 *= -2.0
        d2 += r_sq[None, :]
        if own_pos is not None:
            rows = np.flatnonzero(own_pos[start:stop] >= 0)
            d2[rows, own_pos[start:stop][rows]] = np.inf
        part = np.argpartition(d2, want - 1, axis=1)[:, :want]
        pd2 = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd2, axis=1, kind="stable")[:, :k]
        out_i[start:stop] = np.take_along_axis(part, order, axis=1)
        best = np.take_along_axis(pd2, order, axis=1).astype(np.float64) + q_sq[start:stop, None]
        out_d[start:stop] = np.sqrt(np.maximum(best, 0.0))
    return out_d, out_i


def reference_sample(n: int, seed: int, size: int = _REFERENCE, exact_max: int = _EXACT_MAX) -> IntArray:
    """All indices when ``n <= exact_max``, else a seeded sorted sample of ``size`` of them."""
    if n <= exact_max:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)


def neighbours(rep: Representation, k: int, seed: int = 0) -> tuple[FloatArray, IntArray]:
    """The ``k`` nearest other records of every record in :func:`dense_view` (distances, indices).

    Exact up to 20,000 records; above that, neighbours are searched among a seeded sample of
    reference records (so votes and distances are estimates; this keeps 100k records in seconds).
    The reference sample is 5,000 records.
    """
    slot = _slot(rep)
    key = f"knn:{seed}"
    have = slot.get(key)
    if have is not None and have[1].shape[1] >= k:
        return have[0][:, :k], have[1][:, :k]
    x = dense_view(rep, seed)
    n = x.shape[0]
    kk = min(k, n - 1)
    ref = reference_sample(n, seed)
    ids = np.arange(n, dtype=np.int64)
    dist, pos = knn_search(x, x[ref], kk, query_ids=ids, ref_ids=ref)
    out = (dist, ref[pos])
    slot[key] = out
    return out
