"""Backdoor patch mining for images: pixel regions whose exact values are rare yet come with one label.

A BadNets-style trigger stamps the same small patch on the poisoned images and relabels them to a target
class. Three tests in turn, all without ground truth:

1. per pixel (and channel), values are quantised to 16 levels; a (pixel, level) pair is a candidate when
   its carriers are almost all of one label and that is significant (binomial tail against the label's
   base rate, Bonferroni-corrected over all pairs);
2. candidates of one label that touch (8-neighbourhood) and share most carriers (Jaccard >= 0.5) are
   merged into a region; the carriers of the region are the records matching (nearly) all its pixels;
3. the region must be a *shortcut*: with the region masked out, at least half of the carriers' other
   pixels must look like other classes (k-NN among the non-carriers), and the joint evidence (purity tail
   x disagreement tail against the natural disagreement rate of that class) must survive Bonferroni
   correction over all (pixel, level) tokens. A natural class feature (a stroke every "0" has) fails this
   test; a trigger pasted on other classes' images passes it. At most 30 regions (the most significant)
   are tested.

The finding names the region (rows, columns), its pixel values, the label it comes with and every record
that carries it.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from dataward.detect._anywhere import (
    base_disagreement_anywhere,
    content_disagrees,
    enriched_windows,
    grey_grid,
    masked_disagreement_anywhere,
    positions,
    screen_bound,
    window_mask,
)
from dataward.detect._shortcuts import ShortcutMiner, base_disagreement, enriched_tokens, masked_disagreement, trigger_p
from dataward.detect.interface import (
    BoolArray,
    DetectorResult,
    Finding,
    FloatArray,
    IntArray,
    Modality,
    Representation,
)
from dataward.detect.registry import register

_LEVELS = 16


def _location_name(r0: int, r1: int, c0: int, c1: int, h: int, w: int) -> str:
    rc = (r0 + r1) / 2.0
    cc = (c0 + c1) / 2.0
    vert = "top" if rc < h / 3 else ("bottom" if rc >= 2 * h / 3 else "middle")
    horiz = "left" if cc < w / 3 else ("right" if cc >= 2 * w / 3 else "centre")
    return f"{vert}-{horiz}"


@register
class PatchTriggers(ShortcutMiner):
    name: ClassVar[str] = "patch_triggers"
    modalities: ClassVar[frozenset[Modality]] = frozenset({Modality.IMAGE})

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        t0 = time.perf_counter()
        n = rep.n_records
        assert rep.labels is not None
        params = {
            "min_support": self.min_support,
            "purity": self.purity,
            "alpha": self.alpha,
            "disagreement": self.disagreement,
            "levels": _LEVELS,
        }
        if rep.images is None:
            return DetectorResult(self.name, np.zeros(n), np.zeros(n, dtype=bool), {}, skipped="no images")
        imgs = rep.images if rep.images.ndim == 4 else rep.images[:, :, :, None]
        _, h, w, ch = imgs.shape
        y = rep.labels
        k_classes = len(rep.label_names)
        q = np.minimum((imgs * _LEVELS).astype(np.int64), _LEVELS - 1).reshape(n, -1)  # (n, h*w*ch)
        max_support = max(self.min_support, int(self.max_fraction * n))
        candidates = enriched_tokens(
            q,
            y,
            k_classes,
            _LEVELS,
            min_support=self.min_support,
            max_support=max_support,
            purity=self.purity,
            alpha=self.alpha,
        )
        regions = self._regions(candidates, q, h, w, ch)[: self.max_regions]
        regions += self._window_regions(imgs, q, y, k_classes, max_support)[: self.max_regions]
        flagged = np.zeros(n, dtype=bool)
        scores = np.zeros(n)
        reasons: dict[int, tuple[str, ...]] = {}
        findings: list[Finding] = []
        flat = rep.images.reshape(n, -1)
        tested = 0
        prior = np.bincount(y, minlength=k_classes) / n
        n_tests = max(1, int(sum(len(np.unique(q[:, c])) for c in range(q.shape[1]))))
        for pixels, levels, lab in regions:
            match = (q[:, pixels] == levels[None, :]).mean(axis=1)
            carriers = np.flatnonzero(match >= 0.9)
            if carriers.size < self.min_support or carriers.size > max_support:
                continue
            if flagged[carriers].mean() >= 0.5:
                continue  # the same trigger, already reported
            labelled = carriers[y[carriers] == lab]
            if labelled.size < self.purity * carriers.size:
                continue
            tested += 1
            pixels, levels = self._grow(q, pixels, levels, carriers, h, w, ch)
            disagree, looks = masked_disagreement(flat, y, carriers, labelled, pixels, lab, self.k)
            looks_like = {rep.label_names[c]: v for c, v in looks.items()}
            if disagree < self.disagreement:
                continue
            base = base_disagreement(flat, y, carriers, pixels, lab, self.k)
            joint = trigger_p(labelled.size, carriers.size, prior[lab], round(disagree * labelled.size), base)
            if joint * n_tests >= self.alpha:
                continue
            locs = np.unravel_index(pixels, (h, w, ch))
            r0, r1 = int(locs[0].min()), int(locs[0].max())
            c0, c1 = int(locs[1].min()), int(locs[1].max())
            values = np.median(rep.images.reshape(n, h, w, -1)[carriers][:, r0 : r1 + 1, c0 : c1 + 1, :], axis=0)
            values_list = np.round(values.squeeze(-1) if values.shape[-1] == 1 else values, 3).tolist()
            label_name = rep.label_names[lab]
            where = _location_name(r0, r1, c0, c1, h, w)
            summary = (
                f"trigger patch rows {r0}-{r1}, cols {c0}-{c1} ({where}) in {carriers.size} records, "
                f"{labelled.size} labelled {label_name!r}; with it masked, {disagree:.0%} of them look like "
                f"other classes"
            )
            detail = (
                f"carries the {r1 - r0 + 1}x{c1 - c0 + 1} patch at rows {r0}-{r1}, cols {c0}-{c1} "
                f"tied to {label_name!r}"
            )
            for i in carriers:
                flagged[i] = True
                scores[i] = max(scores[i], 0.5 + 0.5 * disagree)
                reasons[int(i)] = (*reasons.get(int(i), ()), detail)
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=summary,
                    records=tuple(int(i) for i in carriers),
                    evidence={
                        "trigger": {
                            "kind": "patch",
                            "rows": [r0, r1],
                            "cols": [c0, c1],
                            "location": where,
                            "values": values_list,
                        },
                        "label": label_name,
                        "masked_disagreement": round(disagree, 3),
                        "natural_disagreement": round(base, 3),
                        "p_value": float(f"{min(1.0, joint * n_tests):.3g}"),
                        "content_looks_like": looks_like,
                    },
                    score=0.95,
                )
            )
        anywhere_tested = self._anywhere(
            rep, imgs, y, k_classes, max_support, n_tests, flagged, scores, reasons, findings
        )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons=reasons,
            findings=tuple(findings),
            params={
                **params,
                "candidates": len(candidates),
                "regions_tested": tested,
                "anywhere_tested": anywhere_tested,
            },
            seconds=time.perf_counter() - t0,
        )

    def _anywhere(
        self,
        rep: Representation,
        imgs: FloatArray,
        y: IntArray,
        k_classes: int,
        max_support: int,
        n_fixed_tests: int,
        flagged: BoolArray,
        scores: FloatArray,
        reasons: dict[int, tuple[str, ...]],
        findings: list[Finding],
    ) -> int:
        """Translation-invariant search (see :mod:`dataward.detect._anywhere`): a small pattern at any
        position. Bonferroni over the fixed-pixel tokens and every window code, together."""
        n, h, w, ch = imgs.shape
        g, f = grey_grid(imgs)
        tokens, n_codes = enriched_windows(
            g,
            y,
            k_classes,
            min_support=self.min_support,
            max_support=max_support,
            purity=self.purity,
            alpha=self.alpha,
        )
        n_tests = n_fixed_tests + n_codes
        prior = np.bincount(y, minlength=k_classes) / n
        flat = imgs.reshape(n, -1)
        tested = 0
        # test first the tokens whose carriers' content already votes for other classes (unmasked k-NN):
        # a handful of planted records (0.3 %) cannot win on the purity tail alone against natural,
        # label-pure strokes with many carriers. Only tokens whose best joint p-value could pass are kept.
        disagrees = content_disagrees(flat, y, self.k)
        rate = float(disagrees.mean())
        bound = {id(t): screen_bound(t, y, float(prior[t.label]), disagrees, rate) for t in tokens}
        # the most label-pure first (as before: a large patch can move the unmasked vote too), interleaved
        # with the best bounds; twice the cap, so that neither order loses its first max_regions
        tokens = [t for t in tokens if bound[id(t)] * n_tests < self.alpha]
        by_bound = sorted(tokens, key=lambda t: (bound[id(t)], t.p_value, -t.size))
        rank = {id(t): 2 * i for i, t in enumerate(tokens)}  # already in order of purity
        for i, t in enumerate(by_bound):
            rank[id(t)] = min(rank[id(t)], 2 * i + 1)
        tokens.sort(key=lambda t: rank[id(t)])
        sets = [set(t.carriers[y[t.carriers] == t.label].tolist()) for t in tokens]
        for ti, first in enumerate(tokens):
            if tested >= 2 * self.max_regions:
                break
            # the most specific form of this pattern: among the tokens of the same label whose labelled
            # carriers mostly coincide, the largest window (a 2x2 piece of a 3x3 pattern can also occur in
            # natural images; the whole 3x3 does not)
            same = [
                j
                for j, t in enumerate(tokens)
                if t.label == first.label and len(sets[j] & sets[ti]) >= 0.5 * len(sets[j] | sets[ti])
            ]
            tok = tokens[max(same, key=lambda j: (tokens[j].size, -tokens[j].p_value))]
            carriers = tok.carriers
            labelled = carriers[y[carriers] == tok.label]
            if flagged[labelled].mean() >= 0.9:
                continue  # the same trigger, already reported (a fixed-pixel finding may hold only the
                # carriers where the pattern happened to cover the same pixels: then this one extends it)
            # a code that a few natural records share with a reported trigger's carriers borrows that
            # trigger's evidence: its carriers no stronger finding holds must themselves look like another
            # class (a stronger finding's missed carriers do; natural ones do not)
            own = labelled[~flagged[labelled]]
            tested += 1
            where = positions(g, tok, labelled)
            masks = {r: window_mask((h, w, ch), c, tok.size, f) for r, c in where.items()}
            if own.size < labelled.size:
                own_masks = {r: masks[r] for r in own.tolist()}
                if masked_disagreement_anywhere(flat, y, carriers, own_masks, tok.label, self.k)[0] < self.disagreement:
                    continue
            disagree, looks, _ = masked_disagreement_anywhere(flat, y, carriers, masks, tok.label, self.k)
            if disagree < self.disagreement:
                continue
            base = base_disagreement_anywhere(flat, y, carriers, tok.label, (h, w, ch), tok.size, f, self.k, seed=5)
            joint = trigger_p(labelled.size, carriers.size, prior[tok.label], round(disagree * labelled.size), base)
            if joint * n_tests >= self.alpha:
                continue
            side = tok.size * f
            crops = [imgs[r, a * f : a * f + side, b * f : b * f + side, :] for r, c in where.items() for a, b in c[:1]]
            values = np.median(np.stack(crops), axis=0)
            values_list = np.round(values.squeeze(-1) if values.shape[-1] == 1 else values, 3).tolist()
            label_name = rep.label_names[tok.label]
            looks_like = {rep.label_names[c]: v for c, v in looks.items()}
            n_places = len({c[0] for c in where.values() if c})
            summary = (
                f"trigger patch {side}x{side} at varying positions ({n_places} distinct) in {labelled.size} records "
                f"labelled {label_name!r} ({carriers.size} carry it); with it masked, {disagree:.0%} of them look "
                f"like other classes"
            )
            detail = f"carries the {side}x{side} pattern tied to {label_name!r} at rows/cols " + "{}"
            hit = labelled
            for i in hit.tolist():
                flagged[i] = True
                scores[i] = max(scores[i], 0.5 + 0.5 * disagree)
                corner = where[int(i)][0]
                reasons[int(i)] = (*reasons.get(int(i), ()), detail.format(f"{corner[0] * f},{corner[1] * f}"))
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=summary,
                    records=tuple(int(i) for i in hit),
                    evidence={
                        "trigger": {
                            "kind": "patch",
                            "anywhere": True,
                            "size": [side, side],
                            "values": values_list,
                            "positions": {str(r): [where[r][0][0] * f, where[r][0][1] * f] for r in hit.tolist()},
                        },
                        "label": label_name,
                        "carriers": int(carriers.size),
                        "masked_disagreement": round(disagree, 3),
                        "natural_disagreement": round(base, 3),
                        "labelled_carriers": int(labelled.size),
                        "p_value": float(f"{min(1.0, joint * n_tests):.3g}"),
                        "tests": int(n_tests),
                        "content_looks_like": looks_like,
                    },
                    score=0.95,
                )
            )
        return tested

    def _regions(
        self, candidates: list[tuple[int, int, int]], q: IntArray, h: int, w: int, ch: int
    ) -> list[tuple[IntArray, IntArray, int]]:
        """Merge touching candidates of one label that share carriers; most significant regions first."""
        if not candidates:
            return []
        carriers = [set(np.flatnonzero(q[:, p] == lev).tolist()) for p, lev, _ in candidates]
        parent = list(range(len(candidates)))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        coords = [np.unravel_index(p, (h, w, ch)) for p, _, _ in candidates]
        order = sorted(range(len(candidates)), key=lambda i: (candidates[i][2], coords[i][0], coords[i][1]))
        for ai, a in enumerate(order):
            for b in order[ai + 1 :]:
                if candidates[b][2] != candidates[a][2]:
                    break
                if abs(int(coords[a][0]) - int(coords[b][0])) > 1:
                    if int(coords[b][0]) - int(coords[a][0]) > 1:
                        break
                    continue
                if abs(int(coords[a][1]) - int(coords[b][1])) > 1:
                    continue
                inter = len(carriers[a] & carriers[b])
                union = len(carriers[a] | carriers[b])
                if union and inter / union >= 0.5:
                    parent[find(a)] = find(b)
        groups: dict[int, list[int]] = {}
        for i in range(len(candidates)):
            groups.setdefault(find(i), []).append(i)
        out: list[tuple[IntArray, IntArray, int]] = []
        rank: list[int] = []
        for members in groups.values():
            # one level per pixel: keep the candidate with most carriers
            best: dict[int, int] = {}
            for i in members:
                p = candidates[i][0]
                if p not in best or len(carriers[i]) > len(carriers[best[p]]):
                    best[p] = i
            pix = np.array(sorted(best), dtype=np.int64)
            lev = np.array([candidates[best[p]][1] for p in pix], dtype=np.int64)
            out.append((pix, lev, candidates[members[0]][2]))
            rank.append(min(members))  # candidates arrive sorted by p-value
        order = sorted(range(len(out)), key=lambda i: rank[i])
        out = [out[i] for i in order]
        return out

    def _window_regions(
        self, imgs: FloatArray, q: IntArray, y: IntArray, k_classes: int, max_support: int
    ) -> list[tuple[IntArray, IntArray, int]]:
        """Candidates from 2x2 windows (8 grey levels per pixel): patterns, e.g. a checkerboard, whose
        pixels are common one by one but rare together."""
        n, h, w, ch = imgs.shape
        if h < 2 or w < 2:
            return []
        grey = np.minimum((imgs.mean(axis=3) * 8).astype(np.int64), 7)
        codes = (grey[:, :-1, :-1] * 512 + grey[:, :-1, 1:] * 64 + grey[:, 1:, :-1] * 8 + grey[:, 1:, 1:]).reshape(
            n, -1
        )
        tokens = enriched_tokens(
            codes,
            y,
            k_classes,
            4096,
            min_support=self.min_support,
            max_support=max_support,
            purity=self.purity,
            alpha=self.alpha,
        )
        out: list[tuple[IntArray, IntArray, int]] = []
        for win, code, lab in tokens:
            r, c = divmod(win, w - 1)
            carriers = np.flatnonzero(codes[:, win] == code)
            pix = np.array(
                sorted(
                    int(np.ravel_multi_index((rr, cc, z), (h, w, ch)))
                    for rr in (r, r + 1)
                    for cc in (c, c + 1)
                    for z in range(ch)
                ),
                dtype=np.int64,
            )
            lev = np.array([np.bincount(q[carriers, p], minlength=_LEVELS).argmax() for p in pix], dtype=np.int64)
            out.append((pix, lev, lab))
        return out

    @staticmethod
    def _grow(
        q: IntArray, pixels: IntArray, levels: IntArray, carriers: IntArray, h: int, w: int, ch: int
    ) -> tuple[IntArray, IntArray]:
        """Add neighbouring pixels on which (almost) all carriers agree and most other records differ."""
        n = q.shape[0]
        others = np.ones(n, dtype=bool)
        others[carriers] = False
        have = {int(p): int(v) for p, v in zip(pixels, levels, strict=True)}
        sub = q[carriers]
        for _ in range(max(h, w)):
            added = False
            rows, cols, _ = np.unravel_index(np.array(sorted(have)), (h, w, ch))
            for r, c in {(int(a), int(b)) for a, b in zip(rows, cols, strict=True)}:
                for dr in (-1, 0, 1):
                    for dc in (-1, 0, 1):
                        rr, cc = r + dr, c + dc
                        if not (0 <= rr < h and 0 <= cc < w):
                            continue
                        for z in range(ch):
                            p = int(np.ravel_multi_index((rr, cc, z), (h, w, ch)))
                            if p in have:
                                continue
                            vals = np.bincount(sub[:, p], minlength=_LEVELS)
                            lev = int(vals.argmax())
                            if vals[lev] < 0.95 * carriers.size:
                                continue
                            if others.any() and np.mean(q[others, p] == lev) > 0.5:
                                continue
                            have[p] = lev
                            added = True
            if not added:
                break
        pix = np.array(sorted(have), dtype=np.int64)
        return pix, np.array([have[int(p)] for p in pix], dtype=np.int64)
