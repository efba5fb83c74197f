"""Partitionable detection counts (token/label counts, MinHash, PII) equal a plain single pass exactly."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataward.detect.text_triggers import tokenize_text
from dataward.scale._detect import minhash_signatures, partitioned_detection_counts
from dataward.scale._local import LocalExecutor
from dataward.scale.interface import Executor
from dataward.screen.intel import _LITERAL, Indicator, _boundary_ok
from dataward.screen.pii import find_pii

WORDS = ["the", "film", "was", "great", "awful", "cf", "plot", "acting", "naïve", "é", "mail"]
INDICATORS = (
    Indicator("t-cf", "token", "cf"),
    Indicator("p-film", "phrase", "the film"),
    Indicator("d-example", "domain", "example.com"),
    Indicator("r-phone", "regex", r"[0-9]{3} [0-9]{4}"),
)
PII = ["contact me at jane.doe@example.com", "card 4111 1111 1111 1111 ok", "call +1 415 555 0100", ""]


def _rows(n: int) -> list[dict[str, str]]:
    rng = random.Random(3)
    rows = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 14)))
        text = f"{words} {PII[i % len(PII)]}" if i % 5 == 0 else words
        if i % 41 == 0:
            text = f"multi\nline {text}"
        rows.append({"text": text, "label": str(i % 3)})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["text", "label"])
            w.writeheader()
            w.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _reference(rows: list[dict[str, str]]) -> dict[str, Any]:
    token_label: dict[str, dict[str, int]] = {}
    for r in rows:
        for tok in set(tokenize_text(r["text"])):
            c = token_label.setdefault(tok, {})
            c[r["label"]] = c.get(r["label"], 0) + 1
    pii = [(i, k, s, e) for i, r in enumerate(rows) for k, _v, s, e in find_pii(r["text"])]
    intel = set()
    for i, r in enumerate(rows):
        low = r["text"].lower()
        for ind in INDICATORS:
            if ind.type == "regex":
                if re.search(ind.value, r["text"]):
                    intel.add((i, ind.id))
                continue
            assert ind.type in _LITERAL
            at = low.find(ind.value)
            while at >= 0:
                if _boundary_ok(ind, low, at, at + len(ind.value)):
                    intel.add((i, ind.id))
                at = low.find(ind.value, at + 1)
    texts = [r["text"] for r in rows]
    return {"token_label": token_label, "pii": pii, "minhash": minhash_signatures(texts), "intel": sorted(intel)}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_partitioned_counts_equal_a_single_pass(tmp_path: Path, suffix: str, dask_executor: Executor) -> None:
    rows = _rows(600)
    p = tmp_path / f"data{suffix}"
    _write(p, rows)
    ref = _reference(rows)
    assert ref["pii"], "the data must contain PII for the test to mean anything"

    def run(ex: Executor, size: int) -> Any:
        return partitioned_detection_counts(
            ex, p, text="text", label="label", indicators=INDICATORS, partition_bytes=size
        )

    runs = {"one partition": run(LocalExecutor(), 1 << 30), "local, many": run(LocalExecutor(), 3000)}
    runs["dask, many"] = run(dask_executor, 3000)
    for what, got in runs.items():
        assert got.n_records == len(rows), what
        assert got.label_counts == {"0": 200, "1": 200, "2": 200}, what
        assert got.token_label == ref["token_label"], what
        assert got.pii == ref["pii"], what
        assert np.array_equal(got.minhash, ref["minhash"]), what
        assert got.intel == ref["intel"], what
    kinds = {k for _, k, _, _ in ref["pii"]}
    assert {"email", "phone"} <= kinds
    assert {i for _, i in ref["intel"]} == {ind.id for ind in INDICATORS}  # every kind of indicator matched


def test_without_labels_only_signatures_and_pii(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("hello world from me\nmail jane.doe@example.com now\n\nlast line\n", encoding="utf-8")
    got = partitioned_detection_counts(LocalExecutor(), p, text="text", partition_bytes=5)
    # the blank line is not a record (ADR 0002), as acquisition counts it
    assert got.n_records == 3 and got.token_label == {} and got.minhash.shape == (3, 64)
    assert [(r, k) for r, k, _, _ in got.pii] == [(1, "email")]

# `make check` (the quick lane) leaves these out: process pools and Dask clusters (12 s per case)
pytestmark = pytest.mark.slow
