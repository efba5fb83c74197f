"""The partitionable parts of detection over partitions of one line-format file.

Per record, independent of every other record, so partitions give exactly the single-pass results:

* token/label document counts for shortcut mining (``dataward.detect.text_triggers.tokenize_text``):
  how many records of each label contain each token; counts add up across partitions;
* MinHash signatures (64 permutations, seed 1, 3-word or 5-character shingles of the normalised text, as
  the duplicates check computes them), concatenated in record order;
* PII matches (``dataward.screen.pii.find_pii``), with record numbers shifted by the partition's offset;
* threat-intelligence matches of the text column: literal indicators (token, phrase, url, domain) by
  Aho-Corasick over the lower-cased text with the intel check's word-boundary rules, and regex
  indicators (RE2 via Arrow), as (record, indicator id) pairs.

Partitions are read as for profiles (:mod:`dataward.scale.profile`), so CSV cuts never split a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dataward.records.sniff import canonical_format
from dataward.scale.interface import Executor
from dataward.scale.profile import PROFILE_FORMATS, ProfileTask, _batches, _plan
from dataward.scale.records import partition_target
from dataward.screen.baseline import value_key
from dataward.screen.conform import Conformer, ReadStats, detect_format
from dataward.screen.intel import Indicator
from dataward.screen.interface import ScreenError

NUM_PERM = 64
SEED = 1


@dataclass
class DetectionCounts:
    n_records: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    token_label: dict[str, dict[str, int]] = field(default_factory=dict)  # token -> label -> records
    minhash: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_PERM), dtype=np.uint64))
    pii: list[tuple[int, str, int, int]] = field(default_factory=list)  # (record, kind, start, end)
    intel: list[tuple[int, str]] = field(default_factory=list)  # (record, indicator id), sorted

    @classmethod
    def concat(cls, parts: Sequence[DetectionCounts]) -> DetectionCounts:
        """The counts of the partitions in order (record numbers shifted; one pass, no quadratic copies)."""
        out = cls()
        for part in parts:
            for k, v in part.label_counts.items():
                out.label_counts[k] = out.label_counts.get(k, 0) + v
            for tok, counts in part.token_label.items():
                into = out.token_label.setdefault(tok, {})
                for lab, c in counts.items():
                    into[lab] = into.get(lab, 0) + c
            out.pii.extend((r + out.n_records, k, s, e) for r, k, s, e in part.pii)
            out.intel.extend((r + out.n_records, i) for r, i in part.intel)
            out.n_records += part.n_records
        if parts:
            out.minhash = np.concatenate([p.minhash for p in parts])
        return out


def _texts_labels(t: ProfileTask, text: str, label: str | None) -> tuple[list[str], list[str]]:
    schema = pa.ipc.read_schema(pa.py_buffer(t.schema))
    conformer = Conformer(schema if len(schema) else None)
    texts: list[str] = []
    labels: list[str] = []
    offset = 0
    for raw in _batches(t, ReadStats()):
        batch = conformer.conform(raw, offset)
        offset += batch.num_rows
        if text not in batch.schema.names:
            raise ScreenError(f"{t.path}: no text column {text!r}", advice=f"Columns: {', '.join(batch.schema.names)}.")
        texts.extend("" if v is None else str(v) for v in batch.column(text).to_pylist())
        if label:
            col = batch.column(label).to_pylist() if label in batch.schema.names else [None] * batch.num_rows
            labels.extend("<null>" if v is None else value_key(v) for v in col)
    return texts, labels


def detect_task(t: ProfileTask) -> DetectionCounts:
    from dataward.detect.text_triggers import tokenize_text
    from dataward.screen.pii import find_pii

    opts = t.options
    texts, labels = _texts_labels(t, opts["text"], opts.get("label"))
    out = DetectionCounts(len(texts))
    if labels:
        for lab in labels:
            out.label_counts[lab] = out.label_counts.get(lab, 0) + 1
        for txt, lab in zip(texts, labels, strict=True):
            for tok in set(tokenize_text(txt)):
                counts = out.token_label.setdefault(tok, {})
                counts[lab] = counts.get(lab, 0) + 1
    if opts.get("minhash"):
        out.minhash = minhash_signatures(texts)
    if opts.get("pii"):
        out.pii = [(i, kind, s, e) for i, txt in enumerate(texts) for kind, _v, s, e in find_pii(txt)]
    if opts.get("indicators"):
        out.intel = intel_matches(texts, opts["indicators"])
    return out


def intel_matches(texts: list[str], indicators: Sequence[Indicator]) -> list[tuple[int, str]]:
    """Sorted (record, indicator id) pairs of the literal and regex indicators found in ``texts``."""
    import ahocorasick
    import pyarrow.compute as pc

    from dataward.screen.intel import LITERAL_TYPES, boundary_ok

    hits: set[tuple[int, str]] = set()
    by_value: dict[str, list[Indicator]] = {}
    for ind in indicators:
        if ind.type in LITERAL_TYPES:
            by_value.setdefault(ind.value, []).append(ind)
    if by_value:
        auto = ahocorasick.Automaton()
        for value, group in by_value.items():
            auto.add_word(value, (value, tuple(group)))
        auto.make_automaton()
        for row, text in enumerate(texts):
            low = text.lower()
            for end, (value, group) in auto.iter(low):
                start = end - len(value) + 1
                hits.update((row, ind.id) for ind in group if boundary_ok(ind, low, start, start + len(value)))
    arr = pa.array(texts, pa.string())
    for ind in indicators:
        if ind.type == "regex":
            mask = pc.fill_null(pc.match_substring_regex(arr, ind.value), False).to_numpy(zero_copy_only=False)
            hits.update((int(i), ind.id) for i in np.flatnonzero(mask))
    return sorted(hits)


def minhash_signatures(texts: list[str]) -> np.ndarray:
    """One row of ``NUM_PERM`` hash values per text (normalised as the duplicates check does)."""
    from datasketch import MinHash

    from dataward.screen.near_duplicates import normalise_text, shingles

    if not texts:
        return np.zeros((0, NUM_PERM), dtype=np.uint64)
    norm = normalise_text(pa.array(texts, pa.string())).to_pylist()
    sets = [shingles(x or "") for x in norm]
    mhs = MinHash.bulk(sets, num_perm=NUM_PERM, seed=SEED)
    return np.stack([np.asarray(m.hashvalues, dtype=np.uint64) for m in mhs])


def partitioned_detection_counts(
    executor: Executor,
    path: str | Path,
    *,
    text: str,
    label: str | None = None,
    format: str | None = None,
    minhash: bool = True,
    pii: bool = True,
    indicators: Sequence[Indicator] = (),
    partition_bytes: int | None = None,
) -> DetectionCounts:
    p = Path(path)
    if not p.is_file():
        raise ScreenError(f"{p}: not a file", advice="Give one CSV/TSV/JSON Lines/text file.")
    fmt = canonical_format(format) if format else detect_format(p)
    if fmt not in PROFILE_FORMATS:
        raise ScreenError(f"{p}: format {fmt!r} cannot be partitioned")
    target = partition_target(p.stat().st_size, partition_bytes)  # ~50 µs CPU a record: small partitions pay
    ranges, header, types, schema = _plan(p, fmt, target, executor)
    opts: dict[str, Any] = {"text": text, "label": label, "minhash": minhash, "pii": pii, "indicators": indicators}
    base = ProfileTask(str(p), fmt, 0, 0, 0, header, types, schema, opts)
    tasks = [replace(base, start=a, end=b, index=i) for i, (a, b) in enumerate(ranges)]
    if fmt in ("csv", "tsv") and not types:
        tasks = []
    return DetectionCounts.concat(executor.map(detect_task, tasks))
