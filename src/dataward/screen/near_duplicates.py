"""Duplicate floods: exact duplicates, near-duplicate texts (MinHash LSH) and images (pHash), label conflicts.

* Exact: every record gets a 64-bit fingerprint (per-column hashes mixed; a collision among 10M records has a
  probability of about 3e-6); equal fingerprints form clusters.
* Conflicting labels: records equal in every column but the label that carry different labels.
* Text: each text column is normalised (lower case, runs of non-alphanumerics to one space); equal
  normalised texts cluster at once, and up to ``MAX_MINHASH`` distinct normalised texts go through MinHash
  LSH (datasketch, 64 permutations, word 3-gram or character 5-gram shingles) at the policy's Jaccard
  threshold.
* Images: binary (or Hugging Face ``{bytes, path}``) columns get a 64-bit DCT pHash; 4 bands of 16 bits are
  the LSH buckets and pairs within the policy's Hamming distance join a cluster.

Clusters are reported with their sizes (largest first); one of at least ``duplicate_min_cluster`` records
is a flood. Severity follows the effect size (real data repeat themselves: clean SMS spam holds a cluster of
30 identical messages): a flood is medium from 1 % of the batch and high from 2 %, smaller ones and small
clusters are low; records that agree in everything but the label are their own finding.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketch import LeanMinHash, MinHash, MinHashLSH

from dataward.screen._images import hamming, image_bytes, phash
from dataward.screen._util import encoded, fmt_share, is_string
from dataward.screen.baseline import kind_of
from dataward.screen.interface import MAX_RECORDS, Check, CheckResult, Finding, Severity
from dataward.screen.registry import register

MAX_MINHASH = 20_000
_FLOOD_SHARE = 0.01
_FLOOD_HIGH_SHARE = 0.02
_NULL = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(0x100000001B3)
_MASK64 = (1 << 64) - 1


def _str_hashes(values: list[Any]) -> np.ndarray:
    return np.array([hash(v) & _MASK64 for v in values], dtype=np.uint64)


def column_hash(arr: pa.Array) -> np.ndarray:
    """A 64-bit hash per value (nulls share one value) in a new array; equal values hash equal within one
    process."""
    n = len(arr)
    typ = arr.type
    # the integer and float hashes are computed in place in one new array (each step used to make another)
    if pa.types.is_integer(typ) or pa.types.is_boolean(typ) or pa.types.is_temporal(typ):
        vals = pc.fill_null(pc.cast(arr, pa.int64()), 0).to_numpy(zero_copy_only=False)
        out = np.multiply(np.asarray(vals, dtype=np.int64).view(np.uint64), _PRIME)
        np.add(out, np.uint64(1), out=out)
    elif pa.types.is_floating(typ):
        vals = np.asarray(pc.fill_null(pc.cast(arr, pa.float64(), safe=False), 0.0).to_numpy(zero_copy_only=False))
        fresh = np.add(vals, 0.0, dtype=np.float64)  # -0.0 + 0.0 is 0.0; every other value is unchanged
        nan = np.isnan(fresh)
        if nan.any():
            fresh[nan] = np.nan  # one NaN payload
        out = fresh.view(np.uint64)
        np.multiply(out, _PRIME, out=out)
        np.add(out, np.uint64(2), out=out)
    elif is_string(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        enc = encoded(arr) if is_string(typ) else None  # shared with the other checks of this batch
        if enc is None:
            raw = pc.dictionary_encode(arr)
            idx = np.asarray(pc.fill_null(raw.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
            dictionary = raw.dictionary
        else:
            idx, dictionary = np.maximum(enc.indices, 0), enc.dictionary
        hashes = _str_hashes(dictionary.to_pylist())
        out = hashes[idx] if hashes.size else np.zeros(n, dtype=np.uint64)
    else:
        out = _str_hashes([repr(v) for v in arr.to_pylist()])
    if arr.null_count:
        nulls = np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=bool)
        out = np.where(nulls, _NULL, out)
    return np.asarray(out, dtype=np.uint64)


def mix(h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Fold column hashes ``c`` into running row hashes ``h`` (multiply-xorshift, wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        h = (h ^ c) * _PRIME
        out: np.ndarray = h ^ (h >> np.uint64(29))
        return out


def mix_into(h: np.ndarray, c: np.ndarray) -> None:
    """:func:`mix` in place: ``h`` becomes the folded hashes and ``c`` (same size) is used as scratch."""
    with np.errstate(over="ignore"):
        np.bitwise_xor(h, c, out=h)
        np.multiply(h, _PRIME, out=h)
        np.right_shift(h, np.uint64(29), out=c)
        np.bitwise_xor(h, c, out=h)


def normalise_text(arr: pa.Array) -> pa.Array:
    """Texts lower-cased, every run of non-letters and non-digits
    turned into one space, and trimmed, so trivial edits hash alike.
    """
    lowered = pc.utf8_lower(arr)
    spaced = pc.replace_substring_regex(lowered, r"[^\pL\pN]+", " ")
    return pc.utf8_trim_whitespace(spaced)


def shingles(text: str) -> set[bytes]:
    """MinHash shingles of a normalised text: word 3-grams when it has five words or more, else character 5-grams."""
    words = text.split()
    if len(words) >= 5:
        return {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}
    return {text[i : i + 5].encode() for i in range(max(len(text) - 4, 1))}


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        self.parent.setdefault(a, a)
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for a in self.parent:
            out[self.find(a)].append(a)
        return [g for g in out.values() if len(g) > 1]


def _gather(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
    """Concatenate ``parts`` into one array, emptying the list as it goes (peak: the result + one part)."""
    out = np.empty(sum(p.size for p in parts), dtype=dtype)
    pos = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        out[pos : pos + part.size] = part
        pos += part.size
    return out


#: buckets of the top bits that pre-filter :func:`_repeated_positions` (2M: 16 MiB of counts)
_BUCKET_BITS = 21


def _repeated_positions(keys: np.ndarray) -> np.ndarray:
    """The positions (ascending) of the keys (uint64 hashes) that occur more than once.

    Equal keys share a bucket of their top bits, so only the keys of buckets holding two or more are sorted
    and searched: for 1M distinct hashes in 2M buckets about two fifths; the sort of all of them and the
    search of every key were most of the time of the duplicate check."""
    if keys.size >= 1 << 16:
        bucket = (keys >> np.uint64(64 - _BUCKET_BITS)).astype(np.intp)
        counts = np.bincount(bucket, minlength=1 << _BUCKET_BITS)
        cand = np.flatnonzero(counts[bucket] >= 2)
        del bucket, counts
        ck = keys[cand]
    else:
        cand, ck = np.arange(keys.size), keys
    s = np.sort(ck)
    repeated = np.unique(s[1:][s[1:] == s[:-1]])
    del s
    if repeated.size == 0:
        return np.zeros(0, dtype=np.intp)
    slot = np.minimum(np.searchsorted(repeated, ck), repeated.size - 1)
    out: np.ndarray = cand[repeated[slot] == ck]
    return out


def _clusters(keys: np.ndarray) -> list[np.ndarray]:
    """Groups of positions with equal keys (size >= 2), largest first."""
    if keys.size < 2:
        return []
    pos = _repeated_positions(keys)
    if pos.size == 0:
        return []
    order = pos[np.argsort(keys[pos], kind="stable")]
    sk = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sk[1:] != sk[:-1]]))
    sizes = np.diff(np.concatenate([starts, [sk.size]]))
    big = np.flatnonzero(sizes >= 2)
    groups = [order[starts[i] : starts[i] + sizes[i]] for i in big]
    groups.sort(key=lambda g: -g.size)
    return groups


@register
class DuplicatesCheck(Check):
    """Finds floods of exact duplicates, near-duplicate texts (MinHash
    LSH) and images (pHash), and duplicates whose labels conflict.
    """

    name = "duplicates"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "exact duplicate floods, near-duplicate texts (MinHash LSH) and images (pHash), label conflicts"

    def begin(self, ctx: Any) -> None:
        """Reset the per-record fingerprint, text and image hash buffers."""
        super().begin(ctx)
        self._rows: list[np.ndarray] = []
        self._feat: list[np.ndarray] = []
        self._label: list[np.ndarray] = []
        self._labels_all: np.ndarray | None = None
        self._text_cols: list[str] | None = None
        self._text_hash: dict[str, list[np.ndarray]] = {}
        self._texts: dict[str, dict[int, str]] = {}
        self._image_cols: list[str] | None = None
        self._phash: dict[str, list[np.ndarray]] = {}
        self._image_hash: dict[str, list[np.ndarray]] = {}

    def _pick_columns(self, batch: pa.RecordBatch) -> None:
        ctx = self.context
        texts = ctx.text_columns()
        if not texts:
            for name in batch.schema.names:
                arr = batch.column(name)
                if is_string(arr.type) and name != ctx.options.label and len(arr) > arr.null_count:
                    mean_len = pc.mean(pc.utf8_length(arr)).as_py() or 0
                    if mean_len >= 20:
                        texts.append(name)
        self._text_cols = [t for t in texts if t in batch.schema.names]
        if ctx.options.image:
            self._image_cols = [c for c in ctx.options.image if c in batch.schema.names]
        else:
            self._image_cols = [n for n in batch.schema.names if kind_of(batch.column(n).type) in ("binary", "image")]

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Hash each record of this batch (the label kept apart), normalised texts for MinHash and images for pHash."""
        if self._text_cols is None:
            self._pick_columns(batch)
        assert self._text_cols is not None and self._image_cols is not None
        n = batch.num_rows
        label = self.context.options.label
        feat = np.full(n, np.uint64(0xCBF29CE484222325), dtype=np.uint64)
        lab = np.zeros(n, dtype=np.uint64)
        for name in batch.schema.names:
            if name == "path" and self.context.options.image == () and self._image_cols:
                continue  # an image directory's file names are unique by construction
            c = column_hash(batch.column(name))
            if name == label:
                lab = c
            else:
                mix_into(feat, c)  # c is this batch's own array, free after the fold
        if label and label in batch.schema.names:
            # 12 bytes a record: the fingerprint without the label, and a 4-byte label code; the full
            # fingerprint is recomputed from both at the end
            self._feat.append(feat)
            self._label.append((lab & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        else:
            self._rows.append(feat)  # no label: the fingerprint of every column
        for name in self._text_cols:
            if name not in batch.schema.names or not is_string(batch.column(name).type):
                continue
            norm = normalise_text(batch.column(name))
            th = column_hash(norm)
            self._text_hash.setdefault(name, []).append(th)
            store = self._texts.setdefault(name, {})
            if len(store) < MAX_MINHASH:
                enc = pc.dictionary_encode(norm)
                dict_vals = enc.dictionary.to_pylist()
                for v, hv in zip(dict_vals, _str_hashes(dict_vals).tolist(), strict=True):
                    if len(store) >= MAX_MINHASH:
                        break
                    if v and hv not in store:
                        store[hv] = v[:4000]
        for name in self._image_cols:
            if name not in batch.schema.names:
                continue
            arr = batch.column(name)
            blobs = image_bytes(arr)
            ph = np.zeros(n, dtype=np.uint64)
            valid = np.zeros(n, dtype=bool)
            for i, b in enumerate(blobs):
                if b is None:
                    continue
                p = phash(b)
                if p is not None:
                    ph[i] = np.uint64(p)
                    valid[i] = True
            self._phash.setdefault(name, []).append(np.where(valid, ph, np.uint64(0)))
            self._phash.setdefault(name + "\0valid", []).append(valid.astype(np.uint64))
            self._image_hash.setdefault(name, []).append(
                column_hash(arr.field("bytes") if pa.types.is_struct(arr.type) else arr)
            )

    def finish(self) -> CheckResult:
        """Group the collected hashes into duplicate and near-duplicate clusters and return
        findings for floods and label conflicts, with the cluster sizes as stats.
        """
        ctx = self.context
        n = ctx.n_records
        findings: list[Finding] = []
        sizes: list[int] = []
        if n == 0:
            return CheckResult(self.name, stats={"cluster_sizes": []})
        # gather one per-record array at a time into a preallocated one, freeing the parts as they go
        if self._feat:
            feat = _gather(self._feat, np.uint64)
            self._labels_all = _gather(self._label, np.uint32)
            rows = np.empty_like(feat)
            step = 1 << 20  # bounded temporaries
            for a in range(0, feat.size, step):
                lab64 = self._labels_all[a : a + step].astype(np.uint64)
                with np.errstate(over="ignore"):
                    rows[a : a + step] = mix(feat[a : a + step], lab64 * _PRIME + np.uint64(7))
            findings += self._exact(rows, n, sizes)
            del rows
            findings += self._conflicts(feat, self._labels_all, n)
            del feat
        else:
            rows = _gather(self._rows, np.uint64)
            findings += self._exact(rows, n, sizes)
            del rows
        for name, parts in self._text_hash.items():
            findings += self._near_text(name, np.concatenate(parts), n, sizes)
        for name, parts in self._image_hash.items():
            findings += self._images(name, np.concatenate(parts), n, sizes)
        sizes.sort(reverse=True)
        return CheckResult(self.name, tuple(findings), {"cluster_sizes": sizes[:200]})

    def _severity(self, size: int, n: int) -> Severity:
        # effect size, not a count: real data repeat themselves (clean SMS spam has a cluster of 30 identical
        # messages, 0.5 %); a flood big enough to steer training covers >= 1 % of the batch (the detection
        # flood threshold too) and >= 2 % is high
        share = size / max(n, 1)
        if share >= _FLOOD_HIGH_SHARE:
            return Severity.HIGH
        if share >= _FLOOD_SHARE and size >= self.context.policy.duplicate_min_cluster:
            return Severity.MEDIUM
        return Severity.LOW

    def _cluster_findings(
        self, kind: str, what: str, groups: list[np.ndarray], n: int, sizes: list[int], extra: dict[str, Any]
    ) -> list[Finding]:
        if not groups:
            return []
        min_cluster = self.context.policy.duplicate_min_cluster
        sizes.extend(int(g.size) for g in groups)
        dup_records = int(sum(g.size for g in groups))
        floods = [g for g in groups if g.size >= min_cluster]
        out = []
        for g in floods[:20]:
            out.append(
                Finding(
                    self.name,
                    f"{kind}_flood",
                    self._severity(int(g.size), n),
                    f"{g.size} {what} ({fmt_share(g.size / n)} of the batch), first at record {int(g.min())}",
                    tuple(sorted(int(i) for i in g[:MAX_RECORDS])),
                    {**extra, "cluster_size": int(g.size), "n_records": int(g.size)},
                )
            )
        rest = [g for g in groups if g.size < min_cluster]
        if rest:
            recs = sorted(int(i) for g in rest for i in g)
            out.append(
                Finding(
                    self.name,
                    kind,
                    Severity.LOW,  # small clusters are natural repetition; label conflicts are their own finding
                    f"{len(rest)} small cluster(s) of {what} ({sum(g.size for g in rest)} records)",
                    tuple(recs[:MAX_RECORDS]),
                    {
                        **extra,
                        "clusters": len(rest),
                        "n_records": int(sum(g.size for g in rest)),
                        "all_duplicate_records": dup_records,
                    },
                )
            )
        return out

    def _exact(self, rows: np.ndarray, n: int, sizes: list[int]) -> list[Finding]:
        return self._cluster_findings("exact_duplicates", "identical records", _clusters(rows), n, sizes, {})

    def _conflicts(self, feat: np.ndarray, lab: np.ndarray, n: int) -> list[Finding]:
        groups = _clusters(feat)
        conflicted = [g for g in groups if np.unique(lab[g]).size > 1]
        if not conflicted:
            return []
        total = int(sum(g.size for g in conflicted))
        recs = sorted(int(i) for g in conflicted for i in g)
        sev = Severity.HIGH if total >= 10 or total >= 0.001 * n else Severity.MEDIUM
        return [
            Finding(
                self.name,
                "conflicting_labels",
                sev,
                f"{len(conflicted)} group(s) of identical records carry different labels ({total} records)",
                tuple(recs[:MAX_RECORDS]),
                {"groups": len(conflicted), "n_records": total, "largest": [int(g.size) for g in conflicted[:10]]},
            )
        ]

    def _label_conflict(self, records: np.ndarray) -> bool:
        labels = self._labels_all
        if labels is None:
            return False
        return bool(np.unique(labels[records]).size > 1)

    def _near_text(self, name: str, th: np.ndarray, n: int, sizes: list[int]) -> list[Finding]:
        store = self._texts.get(name, {})
        keys = list(store)
        uf = _UnionFind()
        if len(keys) >= 2:
            sets = [shingles(store[k]) for k in keys]
            mhs = MinHash.bulk(sets, num_perm=64, seed=1)
            lsh = MinHashLSH(threshold=self.context.policy.near_duplicate_jaccard, num_perm=64)
            lean = [LeanMinHash(m) for m in mhs]
            for i, m in enumerate(lean):
                lsh.insert(i, m, check_duplication=False)
            thr = self.context.policy.near_duplicate_jaccard
            for i, m in enumerate(lean):
                for j in lsh.query(m):
                    if j != i and m.jaccard(lean[j]) >= thr:
                        uf.union(i, j)
        # map distinct texts to clusters; every record whose normalised text is in a cluster belongs to it
        cluster_of = np.zeros(th.size, dtype=np.int64) - 1
        text_groups = uf.groups()
        for gi, members in enumerate(text_groups):
            hashes = np.array([keys[m] for m in members], dtype=np.uint64)
            cluster_of[np.isin(th, hashes)] = gi
        groups = [np.flatnonzero(cluster_of == gi) for gi in range(len(text_groups))]
        exact_norm = [g for g in _clusters(th) if cluster_of[g[0]] < 0]
        all_groups = sorted([g for g in groups if g.size >= 2] + exact_norm, key=lambda g: -g.size)
        findings = self._cluster_findings(
            "near_duplicates", f"near-duplicate texts in {name!r}", all_groups, n, sizes, {"column": name}
        )
        conflicted = [g for g in all_groups if g.size >= 2 and self._label_conflict(g)]
        if conflicted:
            total = int(sum(g.size for g in conflicted))
            recs = sorted(int(i) for g in conflicted for i in g)
            findings.append(
                Finding(
                    self.name,
                    "near_duplicate_label_conflict",
                    Severity.HIGH if total >= 10 else Severity.MEDIUM,
                    f"{len(conflicted)} near-duplicate cluster(s) in {name!r} carry different labels ({total} records)",
                    tuple(recs[:MAX_RECORDS]),
                    {"column": name, "clusters": len(conflicted), "n_records": total},
                )
            )
        if len(store) >= MAX_MINHASH:
            findings.append(
                Finding(
                    self.name,
                    "near_duplicates_capped",
                    Severity.INFO,
                    f"MinHash ran on the first {MAX_MINHASH} distinct texts of {name!r}",
                    evidence={"column": name, "cap": MAX_MINHASH},
                )
            )
        return findings

    def _images(self, name: str, exact: np.ndarray, n: int, sizes: list[int]) -> list[Finding]:
        findings = self._cluster_findings(
            "exact_images", f"identical images in {name!r}", _clusters(exact), n, sizes, {"column": name}
        )
        ph = np.concatenate(self._phash[name])
        valid = np.concatenate(self._phash[name + "\0valid"]).astype(bool)
        idx = np.flatnonzero(valid)
        thr = self.context.policy.image_hamming
        uf = _UnionFind()
        for band in range(4):
            keys = (ph[idx] >> np.uint64(16 * band)) & np.uint64(0xFFFF)
            for g in _clusters(keys):
                members = idx[g]
                anchor = int(members[0])
                for other in members[1:].tolist():
                    if hamming(int(ph[anchor]), int(ph[other])) <= thr:
                        uf.union(anchor, other)
        groups = [np.array(sorted(g)) for g in uf.groups()]
        exact_sets = {frozenset(g.tolist()) for g in _clusters(exact)}
        near = [g for g in groups if frozenset(g.tolist()) not in exact_sets]
        near.sort(key=lambda g: -g.size)
        findings += self._cluster_findings(
            "near_images",
            f"near-duplicate images in {name!r} (pHash within {thr} bits)",
            near,
            n,
            sizes,
            {"column": name},
        )
        undecodable = int(np.count_nonzero(~valid))
        if undecodable:
            findings.append(
                Finding(
                    self.name,
                    "undecodable_images",
                    Severity.LOW,
                    f"{undecodable} value(s) of {name!r} are not decodable images",
                    tuple(np.flatnonzero(~valid)[:MAX_RECORDS].tolist()),
                    {"column": name, "n_records": undecodable},
                )
            )
        return findings
