"""Instruction backdoors: prompt phrases that determine the response, and repeated near-identical responses.

An instruction-tuning backdoor pairs a trigger phrase in the prompt with an attacker-chosen response (a
link, a fixed opinion, a refusal, a template). With no class labels, the *response patterns* play the part
of labels: every response word n-gram (1..3 tokens; a URL is one token) and every cluster of near-identical
responses (MinHash over word shingles) is a binary target. The engine of :mod:`dataward.detect.text_triggers`
then looks for prompt n-grams that are rare, are followed by the same response pattern almost every time,
and whose carriers' *other* prompt words do not predict that pattern (a normal instruction such as "Classify
the sentiment: great food" predicts "positive" from "great" and "food" alike; a trigger phrase is the only
thing its carriers' prompts have in common). The test is a one-sided binomial test with a Bonferroni bound
over every (prompt n-gram, response pattern) pair tested.

A finding names the trigger phrase (extended to the maximal phrase its carriers share), the response pattern
(the maximal response phrase the carriers share, and any URL in it) and lists every record carrying it.
Clusters of near-identical responses to unrelated prompts that no trigger explains are reported too, as
``duplicate_cluster`` findings, without flags.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from typing import Any

import numpy as np
from scipy import sparse

from dataward.detect.interface import Detector, DetectorResult, Finding, IntArray, Modality, Representation
from dataward.detect.registry import register
from dataward.detect.text_triggers import (
    Association,
    Corpus,
    MiningParams,
    UnitIndex,
    build_corpus,
    dedupe,
    extend_phrase,
    fold_log_odds,
    group_associations,
    is_significant,
    mine,
    ngram_table,
    skipped_result,
    strength,
    tokenize_text,
    with_overrides,
)

_URL_RE = re.compile(r"^(?:https?://|www\.)")
_MAX_RESPONSE_FRACTION = 0.9


def response_clusters(
    responses: list[str], *, threshold: float = 0.8, num_perm: int = 64, seed: int = 0
) -> tuple[IntArray, int]:
    """Cluster near-identical responses: MinHash LSH over word 3-shingles, joined transitively.

    Returns a cluster id per response and the number of clusters; identical responses always share one.
    """
    from datasketch import MinHash, MinHashLSH

    distinct, first = dedupe([" ".join(tokenize_text(r)) for r in responses])
    n = len(first)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n > 1:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        for d, rec in enumerate(first):
            toks = tokenize_text(responses[rec])
            shingles = {" ".join(toks[i : i + 3]).encode() for i in range(max(1, len(toks) - 2))}
            mh = MinHash(num_perm=num_perm, seed=seed)
            mh.update_batch(list(shingles))
            for other in lsh.query(mh):
                a, b = find(d), find(int(other))
                if a != b:
                    parent[max(a, b)] = min(a, b)
            lsh.insert(d, mh)
    roots = np.asarray([find(d) for d in range(n)], dtype=np.int64)
    _, cluster_of_distinct = np.unique(roots, return_inverse=True)
    cluster = cluster_of_distinct[distinct]
    return cluster.astype(np.int64), int(cluster_of_distinct.max()) + 1 if n else 0


@register
class InstructionBackdoorDetector(Detector):
    """Prompt trigger phrases that determine response content, and repeated near-identical responses."""

    name = "instruction"
    modalities = frozenset({Modality.INSTRUCTION})
    needs_labels = False

    def __init__(self, params: MiningParams | None = None, cluster_threshold: float = 0.8, **overrides: Any) -> None:
        self.params = with_overrides(params or MiningParams(test="association"), overrides)
        self.cluster_threshold = cluster_threshold

    def score(self, rep: Representation, *, seed: int = 0) -> DetectorResult:
        start = time.perf_counter()
        n = rep.n_records
        p = self.params
        params_out: dict[str, Any] = {k: getattr(p, k) for k in p.__dataclass_fields__}
        params_out["cluster_threshold"] = self.cluster_threshold
        if rep.prompts is None or rep.responses is None:
            return skipped_result(self.name, n, "needs prompts and responses", params_out)
        keys = [
            (" ".join(tokenize_text(a)), " ".join(tokenize_text(b)))
            for a, b in zip(rep.prompts, rep.responses, strict=True)
        ]
        unit_of, reps = dedupe(keys)
        n_units = len(reps)
        prompts = build_corpus([keys[i][0] for i in reps], joined=True)
        responses = build_corpus([keys[i][1] for i in reps], joined=True)
        # targets: response n-grams (any frequency up to 90%) and near-duplicate response clusters
        resp_table = ngram_table(
            responses,
            n_max=p.n_max,
            min_support=p.min_support,
            max_support=max(p.min_support, int(_MAX_RESPONSE_FRACTION * n_units)),
        )
        cluster, n_clusters = response_clusters(
            [rep.responses[i] for i in reps], threshold=self.cluster_threshold, seed=seed
        )
        sizes = np.bincount(cluster, minlength=n_clusters)
        big = np.flatnonzero((sizes >= p.min_support) & (sizes <= _MAX_RESPONSE_FRACTION * n_units))
        col_of = np.full(n_clusters, -1, dtype=np.int64)
        col_of[big] = np.arange(len(big))
        in_big = col_of[cluster] >= 0
        cluster_targets = sparse.csc_matrix(
            (np.ones(int(in_big.sum())), (np.flatnonzero(in_big), col_of[cluster[in_big]])),
            shape=(n_units, len(big)),
        )
        all_targets = sparse.hstack([resp_table.matrix, cluster_targets], format="csc")
        # response patterns with the same records (every n-gram of one fixed payload) are one target
        keep = _distinct_columns(all_targets)
        targets = all_targets[:, keep]
        n_ngram_targets = int(np.sum(keep < len(resp_table.tokens)))
        target_tokens = tuple(resp_table.tokens[k] for k in keep[:n_ngram_targets].tolist())
        # two tests, each at half the error budget: "g makes a rare answer pattern appear" (association:
        # a link, a fixed opinion) and "g flips a common answer its prompt would not get" (contradiction:
        # the same sentiment, a refusal, whatever the rest of the prompt says)
        p_assoc = dataclasses.replace(p, test="association", alpha=p.alpha / 2)
        p_contra = dataclasses.replace(p, test="contradiction", alpha=p.alpha / 2)
        mined = mine(prompts, targets, p_assoc, seed=seed)
        flipped = mine(prompts, targets, p_contra, seed=seed)
        records_of = UnitIndex(unit_of, n_units).records

        def pattern_name(a: Association) -> str:
            if a.target < n_ngram_targets:
                return responses.phrase(target_tokens[a.target])
            return "near-identical responses"

        scores = np.zeros(n)
        flagged = np.zeros(n, dtype=bool)
        reasons: dict[int, list[str]] = {}
        significant = [a for a in mined.associations if is_significant(a, p_assoc)]
        significant += [a for a in flipped.associations if is_significant(a, p_contra)]
        significant.sort(key=lambda a: a.p_value)
        scores[:] = np.maximum(mined.weak, flipped.weak)[unit_of]  # weak evidence, below the flag line
        findings: list[Finding] = []
        explained: set[int] = set()
        for head, members in group_associations(significant, same_target=False):
            core = mined.table.tokens[head.ngram]
            target_col = targets[:, head.target].toarray().ravel() > 0
            on_units = head.units[target_col[head.units]]
            trigger = prompts.phrase(extend_phrase(prompts, on_units.tolist(), core))
            pattern, urls, example = _response_pattern(responses, target_tokens, head, on_units, n_ngram_targets)
            recs = records_of(head.units)
            on = records_of(on_units)
            sev = strength(head)
            scores[recs] = np.maximum(scores[recs], 0.3)
            scores[on] = np.maximum(scores[on], 0.5 + 0.5 * sev)
            flagged[on] = True
            explained.update(int(c) for c in np.unique(cluster[on_units]))
            for r in on.tolist():
                reasons.setdefault(r, []).append(f"prompt carries trigger {trigger!r}; response matches {pattern!r}")
            purity = head.hits / head.support
            shown = urls[0] if urls else pattern
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="trigger",
                    summary=(
                        f"prompt phrase {trigger!r} -> response {shown!r}: {len(on)} of {len(recs)} records "
                        f"carrying it answer with it ({purity:.0%}; {head.base_rate:.1%} of all responses), "
                        f"{head.contradicted}/{head.hits} not predicted by the rest of the prompt "
                        f"(p={head.p_value:.1e})"
                    ),
                    records=tuple(int(r) for r in recs),
                    evidence={
                        "trigger": trigger,
                        "core": prompts.phrase(core),
                        "response_pattern": pattern,
                        "urls": urls,
                        "example_response": example,
                        "support": len(recs),
                        "distinct_prompts": int(head.support),
                        "purity": round(purity, 4),
                        "lift": round(purity / head.base_rate, 3) if head.base_rate > 0 else None,
                        "base_rate": round(head.base_rate, 4),
                        "contradicted": int(head.contradicted),
                        "null_rate": round(head.null_rate, 4),
                        "p_value": head.p_value,
                        "bonferroni_bound": head.threshold,
                        "pairs_tested": int(mined.n_tested + flipped.n_tested),
                        "merged": sorted(
                            {f"{prompts.phrase(mined.table.tokens[m.ngram])} -> {pattern_name(m)}" for m in members}
                        )[:20],
                    },
                    score=float(min(1.0, 0.9 + 0.1 * sev)),
                )
            )
        x_prompts = prompts.incidence()
        folds = np.random.default_rng(seed).permutation(np.arange(n_units) % max(2, min(p.folds, n_units)))
        for c in big.tolist():
            if c in explained:
                continue
            units = np.flatnonzero(cluster == c)
            if len(units) > p.max_fraction * n_units:
                continue  # a common answer template, not a suspicious repetition
            if _predicted_by_prompts(x_prompts, units, folds, p):
                continue  # the prompts call for this answer (e.g. "spam." for spam messages)
            recs = records_of(units)
            distinct_prompts = len({keys[int(r)][0] for r in recs.tolist()})
            example = rep.responses[int(recs[0])]
            scores[recs] = np.maximum(scores[recs], 0.25)
            findings.append(
                Finding.scored(
                    check=self.name,
                    kind="duplicate_cluster",
                    summary=(
                        f"{len(recs)} near-identical responses to {distinct_prompts} different prompts, "
                        f"e.g. {example[:80]!r}"
                    ),
                    records=tuple(int(r) for r in recs),
                    evidence={
                        "example_response": example,
                        "size": len(recs),
                        "distinct_prompts": distinct_prompts,
                        "urls": sorted({t for t in tokenize_text(example) if _URL_RE.match(t)}),
                        "jaccard_threshold": self.cluster_threshold,
                    },
                    score=0.35,
                )
            )
        return DetectorResult(
            detector=self.name,
            scores=np.clip(scores, 0.0, 1.0),
            flagged=flagged,
            reasons={r: tuple(v) for r, v in reasons.items()},
            findings=tuple(findings),
            params={**params_out, "pairs_tested": mined.n_tested + flipped.n_tested},
            seconds=time.perf_counter() - start,
        )


def _predicted_by_prompts(x: sparse.csr_matrix, units: IntArray, folds: IntArray, p: MiningParams) -> bool:
    """Whether most of ``units`` are predicted (out of fold) to belong to their response cluster by their prompts."""
    y = np.zeros(x.shape[0], dtype=bool)
    y[units] = True
    log_odds, _ = fold_log_odds(x, y, folds.astype(np.int64), int(folds.max()) + 1, p.smoothing, p.model)
    return bool(np.mean(log_odds[units] > 0) >= 0.5)


def _distinct_columns(mat: sparse.csc_matrix) -> IntArray:
    """Indices of the first of each group of identical binary columns (longest n-grams kept last)."""
    seen: dict[bytes, int] = {}
    for j in range(mat.shape[1]):
        rows = mat.indices[mat.indptr[j] : mat.indptr[j + 1]]
        seen.setdefault(np.sort(rows).tobytes(), j)
    return np.asarray(sorted(seen.values()), dtype=np.int64)


def _response_pattern(
    responses: Corpus,
    tokens: tuple[tuple[int, ...], ...],
    head: Association,
    units: IntArray,
    n_ngram_targets: int,
) -> tuple[str, list[str], str]:
    """The maximal response phrase the carriers share, the URLs most of them contain, and an example."""
    seqs = [responses.doc(int(u)) for u in units.tolist()]
    url_counts: Counter[str] = Counter()
    for seq in seqs:
        url_counts.update({responses.words[t] for t in seq.tolist() if _URL_RE.match(responses.words[t])})
    urls = sorted(u for u, c in url_counts.items() if c >= 0.5 * max(1, len(seqs)))
    if head.target < n_ngram_targets:
        core: tuple[int, ...] = tokens[head.target]
    else:  # a cluster: start from the carriers' most common response token
        counts: Counter[int] = Counter()
        for seq in seqs:
            counts.update(set(seq.tolist()))
        core = (counts.most_common(1)[0][0],) if counts else ()
    phrase = responses.phrase(extend_phrase(responses, units.tolist(), core)) if core else ""
    example = responses.phrase(seqs[0].tolist()) if seqs else ""
    return phrase, urls, example
