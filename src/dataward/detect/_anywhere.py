"""Translation-invariant patch search: small quantised windows that occur *anywhere* in an image.

A trigger stamped at a different position in every image has no fixed pixel to find; what its carriers
share is a small pattern somewhere. Every s x s window (s = 2 and 3) of every image is quantised to 8 grey
levels per pixel and read as one code; an image *carries* a code when the code occurs at any position in
it. Each (code, label) is then the same hypothesis as a fixed-pixel token: carriers almost all of one
label, a binomial tail against the label's base rate; survivors face a masked-content test in which each
carrier's own windows (wherever they are) are removed before its k nearest non-carriers vote.

The natural-disagreement null masks a window of the same size at a random position of records of the same
class, so that removing a few pixels is not itself taken as evidence.

Which codes are tested (at most a few dozen) is decided by a screening bound: the purity tail times the tail
of the carriers whose *unmasked* k-NN vote is another label (:func:`content_disagrees`,
:func:`screen_bound`). Five planted images cannot outrank natural label-pure strokes on purity alone, but
their content votes elsewhere; choosing the tested codes from the data keeps Bonferroni over every code
valid (docs/adr/0049-label-quality-beside-triggers-and-screened-window-codes.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from dataward.detect.interface import BoolArray, FloatArray, IntArray

GREY_LEVELS = 8
SIZES = (2, 3)
MAX_SIDE = 64  # larger images are block-averaged to at most this many pixels a side for the search
_MAX_QUERIES = 100
MAX_CARRIERS = 2000
_MAX_REFS = 3000


@dataclass(frozen=True)
class WindowToken:
    size: int
    code: int
    label: int
    p_value: float  # binomial purity tail, uncorrected
    carriers: IntArray


def grey_grid(imgs: FloatArray) -> tuple[IntArray, int]:
    """(n, h', w') quantised grey levels and the block factor used to shrink large images."""
    n, h, w, _ = imgs.shape
    grey = imgs.mean(axis=3)
    f = max(1, int(np.ceil(max(h, w) / MAX_SIDE)))
    if f > 1:
        hh, ww = h // f, w // f
        grey = grey[:, : hh * f, : ww * f].reshape(n, hh, f, ww, f).mean(axis=(2, 4))
    return np.minimum((grey * GREY_LEVELS).astype(np.int64), GREY_LEVELS - 1), f


def window_codes(g: IntArray, s: int) -> IntArray:
    """(n, h-s+1, w-s+1) codes of every s x s window (base GREY_LEVELS digits, row-major)."""
    n, h, w = g.shape
    hh, ww = h - s + 1, w - s + 1
    codes = np.zeros((n, hh, ww), dtype=np.int64)
    for dr in range(s):
        for dc in range(s):
            codes = codes * GREY_LEVELS + g[:, dr : dr + hh, dc : dc + ww]
    return codes


def enriched_windows(
    g: IntArray,
    y: IntArray,
    n_classes: int,
    *,
    min_support: int,
    max_support: int,
    purity: float,
    alpha: float,
) -> tuple[list[WindowToken], int]:
    """Label-pure window codes (screened at ``alpha`` per test) and the number of codes tested."""
    n = g.shape[0]
    prior = np.bincount(y, minlength=n_classes) / n
    out: list[WindowToken] = []
    n_tests = 0
    for s in SIZES:
        if g.shape[1] < s or g.shape[2] < s:
            continue
        codes = window_codes(g, s).reshape(n, -1)
        big = int(GREY_LEVELS ** (s * s))
        pairs = np.unique((np.arange(n, dtype=np.int64)[:, None] * big + codes).ravel())
        code_of = pairs % big
        order = np.argsort(code_of, kind="stable")  # group by code, images ascending within a code
        code_of = code_of[order]
        img_of = pairs[order] // big
        uniq, start, inverse, support = np.unique(code_of, return_index=True, return_inverse=True, return_counts=True)
        n_tests += int(uniq.size)
        counts = np.bincount(inverse * n_classes + y[img_of], minlength=uniq.size * n_classes)
        counts = counts.reshape(uniq.size, n_classes)
        lab = counts.argmax(axis=1)
        top = counts[np.arange(uniq.size), lab]
        keep = (support >= min_support) & (support <= max_support) & (top >= purity * support)
        keep &= prior[lab] < 0.95
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            continue
        pv = binom.sf(top[idx] - 1, support[idx], prior[lab[idx]])
        for j, p in zip(idx[pv < alpha].tolist(), pv[pv < alpha].tolist(), strict=True):
            members = img_of[start[j] : start[j] + support[j]]
            out.append(WindowToken(s, int(uniq[j]), int(lab[j]), float(p), members.astype(np.int64)))
    out.sort(key=lambda t: (t.p_value, -t.size))
    return out, max(1, n_tests)


def positions(g: IntArray, token: WindowToken, records: IntArray) -> dict[int, list[tuple[int, int]]]:
    """Where (top-left corners, in the search grid) the token's window occurs in each record."""
    codes = window_codes(g[records], token.size)
    out: dict[int, list[tuple[int, int]]] = {}
    for i, rec in enumerate(records.tolist()):
        rr, cc = np.nonzero(codes[i] == token.code)
        out[int(rec)] = [(int(a), int(b)) for a, b in zip(rr, cc, strict=True)]
    return out


def window_mask(shape: tuple[int, int, int], corners: list[tuple[int, int]], size: int, f: int) -> BoolArray:
    """Flat mask of the full-resolution pixels (all channels) under the windows at ``corners``."""
    h, w, ch = shape
    m = np.zeros((h, w, ch), dtype=bool)
    for r, c in corners:
        m[r * f : (r + size) * f, c * f : (c + size) * f, :] = True
    return m.ravel()


def _sample(idx: IntArray, size: int, seed: int) -> IntArray:
    if idx.size <= size:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, size=size, replace=False))


class _Refs:
    """Reference records for masked k-NN votes, with their squared values kept for masked distances."""

    def __init__(self, flat: FloatArray, y: IntArray, refs: IntArray) -> None:
        self.idx = refs
        self.x = flat[refs]
        self.x2 = self.x**2
        self.y = y[refs]

    def majority(self, query: int, q: FloatArray, drop: BoolArray, k: int) -> int:
        """k-NN majority label of ``q`` over the columns not in ``drop`` (``query`` itself excluded)."""
        keep = (~drop).astype(np.float64)
        qk = q * keep
        d2 = self.x2 @ keep - 2.0 * (self.x @ qk) + float(qk @ qk)
        d2[self.idx == query] = np.inf
        kk = max(1, min(k, self.idx.size - 1))
        nn = np.argpartition(d2, kk - 1)[:kk]
        return int(np.bincount(self.y[nn]).argmax())


def masked_disagreement_anywhere(
    flat: FloatArray,
    y: IntArray,
    carriers: IntArray,
    masks: dict[int, BoolArray],
    lab: int,
    k: int,
) -> tuple[float, dict[int, int], IntArray]:
    """Share of ``masks``' records (carriers labelled ``lab``) whose k-NN majority among non-carriers,
    each with its own windows removed, is another label; the per-label counts; the records that disagree.

    Asked of at most 2,000 carriers (a seeded sample) against at most 3,000 non-carriers."""
    n = flat.shape[0]
    others = np.ones(n, dtype=bool)
    others[carriers] = False
    queries = _sample(np.array(sorted(masks), dtype=np.int64), MAX_CARRIERS, 2)
    if others.sum() < k or queries.size == 0:
        return 0.0, {}, np.zeros(0, dtype=np.int64)
    refs = _Refs(flat, y, _sample(np.flatnonzero(others), _MAX_REFS, 1))
    looks: dict[int, int] = {}
    wrong: list[int] = []
    for qi in queries.tolist():
        m = refs.majority(qi, flat[qi], masks[qi], k)
        if m != lab:
            wrong.append(qi)
            looks[m] = looks.get(m, 0) + 1
    return len(wrong) / queries.size, looks, np.array(wrong, dtype=np.int64)


def content_disagrees(flat: FloatArray, y: IntArray, k: int, seed: int = 4) -> BoolArray:
    """Whether each record's k-NN majority (whole image, itself excluded, among at most 3,000 seeded
    references) is another label: a cheap, unmasked stand-in for the masked test, used only to decide
    which window codes are worth testing. A small trigger barely moves an image, so a relabelled image's
    neighbours still vote for its own content."""
    n = flat.shape[0]
    refs = _Refs(flat, y, _sample(np.arange(n, dtype=np.int64), _MAX_REFS, seed))
    out = np.zeros(n, dtype=bool)
    kk = max(1, min(k, refs.idx.size - 1))
    for a in range(0, n, 512):
        block = flat[a : a + 512]
        d2 = refs.x2.sum(axis=1)[None, :] - 2.0 * block @ refs.x.T + (block**2).sum(axis=1)[:, None]
        d2[refs.idx[None, :] == np.arange(a, a + block.shape[0])[:, None]] = np.inf
        nn = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        votes = refs.y[nn]
        major = np.array([np.bincount(v).argmax() for v in votes], dtype=np.int64)
        out[a : a + block.shape[0]] = major != y[a : a + block.shape[0]]
    return out


def screen_bound(token: WindowToken, y: IntArray, prior: float, disagrees: BoolArray, rate: float) -> float:
    """The joint p-value a token would reach if its carriers' masked votes matched their unmasked ones
    (:func:`content_disagrees`): the order in which tokens are tested, never the test itself. Any
    data-dependent choice of which tokens to test keeps Bonferroni over every code valid."""
    labelled = token.carriers[y[token.carriers] == token.label]
    d = int(disagrees[labelled].sum())
    p2 = float(binom.sf(d - 1, labelled.size, max(rate, 0.02))) if d else 1.0
    return token.p_value * p2


def base_disagreement_anywhere(
    flat: FloatArray,
    y: IntArray,
    carriers: IntArray,
    lab: int,
    shape: tuple[int, int, int],
    size: int,
    f: int,
    k: int,
    seed: int,
) -> float:
    """The null rate: records of class ``lab`` (non-carriers), a same-size window removed at a random
    position, whose k-NN majority among the other non-carriers is another label."""
    n = flat.shape[0]
    h, w, _ = shape
    others = np.ones(n, dtype=bool)
    others[carriers] = False
    pool = np.flatnonzero(others & (y == lab))
    if pool.size < 2:
        return 0.5
    refs = _Refs(flat, y, _sample(np.flatnonzero(others), _MAX_REFS, 1))
    rng = np.random.default_rng(seed)
    gh, gw = h // f - size + 1, w // f - size + 1
    wrong = 0
    queries = _sample(pool, _MAX_QUERIES, 3)
    for qi in queries.tolist():
        corner = (int(rng.integers(0, max(1, gh))), int(rng.integers(0, max(1, gw))))
        if refs.majority(qi, flat[qi], window_mask(shape, [corner], size, f), k) != lab:
            wrong += 1
    return wrong / queries.size
