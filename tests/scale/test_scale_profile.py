"""Screening baselines profiled in partitions: identical on every executor, and equal to the single pass
in everything that merges exactly (counts, value sets, min/max, tokens)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
from pathlib import Path

import pytest

from dataward.core.canonical import canonical_json
from dataward.scale._local import LocalExecutor
from dataward.scale._profile import partitioned_baseline, quoted_safe_cuts
from dataward.scale.interface import Executor
from dataward.screen.api import create_baseline

WORDS = ["alpha", "beta", "gamma", "delta", "free", "money", "click", "here", "é", "naïve"]


def _csv(path: Path, n: int) -> None:
    rng = random.Random(7)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label", "score", "group"])
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            if i % 97 == 0:
                text = f'multi "quoted"\nline {text}'
            score = "" if i % 50 == 0 else f"{rng.gauss(0, 1):.4f}"
            w.writerow([text, rng.choice("01"), score, rng.choice(["a", "b", "c"])])


def _exact_parts(b: object) -> dict[str, object]:
    prof = b.profile  # type: ignore[attr-defined]
    cols = {}
    for name, c in prof.columns.items():
        values = None if c.values_overflow else c.values  # an overflowing value set is kept only in part
        cols[name] = (c.kind, c.n, c.n_null, c.min, c.max, c.values_overflow, values, c.lengths, c.tokens, c.role)
    return {"n": prof.n_records, "cols": cols, "groups": prof.groups}


def test_quoted_safe_cuts_never_split_a_record(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    _csv(p, 600)
    data = p.read_bytes()
    total = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline="")))
    for target in (1, 50, 333, 4096, 1 << 20):
        cuts = quoted_safe_cuts(p, target)
        assert cuts[0][0] == 0 and cuts[-1][1] == len(data)
        rows = 0
        for a, b in cuts:
            part = data[a:b].decode()
            assert part.count('"') % 2 == 0
            rows += sum(1 for _ in csv.reader(io.StringIO(part, newline="")))
        assert rows == total


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "txt"])
def test_partitioned_baseline_matches(tmp_path: Path, fmt: str, dask_executor: Executor) -> None:
    p = tmp_path / "data.csv"
    _csv(p, 3000)
    if fmt != "csv":
        rows = list(csv.DictReader(io.StringIO(p.read_text(encoding="utf-8"), newline="")))
        p = tmp_path / f"data.{fmt}"
        if fmt == "jsonl":
            p.write_text("".join(json.dumps(r) + "\n" + ("\n" if i % 9 == 0 else "") for i, r in enumerate(rows)))
        else:
            p.write_text("".join(r["text"].replace("\n", " ") + "\n" for r in rows))
    label = None if fmt == "txt" else "label"
    group = () if fmt == "txt" else ("group",)
    single = create_baseline(p, label=label, group=group)
    local = partitioned_baseline(LocalExecutor(), p, label=label, group=group, partition_bytes=20_000)
    assert local.meta["partitions"] > 5
    on_dask = partitioned_baseline(dask_executor, p, label=label, group=group, partition_bytes=20_000)
    assert canonical_json(on_dask.profile.to_dict()) == canonical_json(local.profile.to_dict())
    assert _exact_parts(local) == _exact_parts(single)
    for name, c in single.profile.columns.items():
        assert local.profile.columns[name].mean == pytest.approx(c.mean, rel=1e-9, abs=1e-12)
        assert local.profile.columns[name].m2 == pytest.approx(c.m2, rel=1e-9, abs=1e-9)
    assert len(local.profile.sample_priority) == min(3000, single.profile.sample_size)


# `make check` (the quick lane) leaves these out: process pools and Dask clusters
pytestmark = pytest.mark.slow


def test_worker_planned_cuts_never_split_a_record(tmp_path: Path) -> None:
    """The quote counting shared out to the executor cuts only between records, as the serial scan does."""
    from dataward.scale._profile import _plan

    p = tmp_path / "d.csv"
    _csv(p, 600)
    data = p.read_bytes()
    total = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline=""))) - 1
    header_end = data.index(b"\n") + 1
    for target in (1, 50, 333, 4096, 1 << 20):
        ranges, header, _types, _schema = _plan(p, "csv", target, LocalExecutor())
        assert ranges[0][0] == header_end and ranges[-1][1] == len(data) and header == data[:header_end]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        rows = 0
        for a, b in ranges:
            part = data[a:b].decode()
            assert data[:b].count(b'"') % 2 == 0 and data[b - 1 : b] == b"\n"
            rows += sum(1 for _ in csv.reader(io.StringIO(part, newline="")))
        assert rows == total
