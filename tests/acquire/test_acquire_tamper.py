"""Tamper test: random single-byte changes to stored objects and manifests are all detected and located."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataward.acquire.acquire import acquire
from dataward.acquire.verify import batch_manifest, verify_batch

TRIALS = 1000
LINE_FORMATS = {"csv", "tsv", "jsonl", "text"}


def _delivery(d: Path) -> None:
    rng = random.Random(7)
    d.mkdir()
    rows = "\n".join(f"{i},{rng.random():.6f},label{rng.randint(0, 3)}" for i in range(150))
    (d / "a.csv").write_text("id,x,label\n" + rows + "\n")
    (d / "b.jsonl").write_text("".join(f'{{"prompt": "q{i}", "response": "r{rng.random():.4f}"}}\n' for i in range(80)))
    (d / "c.txt").write_text("".join(f"sentence number {i} is fine\n" for i in range(80)))
    (d / "d.bin").write_bytes(bytes(rng.randrange(256) for _ in range(1500)))
    pq.write_table(pa.table({"x": list(range(40)), "t": [f"v{i}" for i in range(40)]}), d / "e.parquet")


@pytest.mark.slow  # long: in `make test`, not in the quick lane (`make check`)
def test_every_single_byte_change_is_detected_and_located(env: Any) -> None:
    _delivery(env.path / "delivery")
    batch = acquire(env.ws, env.ingester, "vendor", [env.path / "delivery"])
    manifest = batch_manifest(env.ws, batch.id)
    store = env.ws.objects
    targets: list[tuple[str, str, str, dict[str, Any] | None]] = []  # (kind, path, file name, file entry)
    for f in manifest["files"]:
        targets.append(("file", store.path("quarantine", f["sha256"]), f["name"], f))
        if f["format"] != "file":  # an opaque file's list is implied by its SHA-256: nothing stored (ADR 0100)
            targets.append(("records", store.path("meta", f["records_digest"]), f["name"], f))
        else:
            assert not store.exists("meta", f["records_digest"])
    targets.append(("manifest", store.path("meta", batch.manifest_digest), "", None))
    assert verify_batch(env.ws, batch.id).ok
    rng = random.Random(2026)
    detected = located = record_expected = record_located = 0
    for _ in range(TRIALS):
        kind, path, name, entry = rng.choice(targets)
        data = bytearray(Path(path).read_bytes())
        off = rng.randrange(len(data))
        old = data[off]
        data[off] = rng.choice([b for b in range(256) if b != old])
        os.chmod(path, 0o644)
        Path(path).write_bytes(bytes(data))
        try:
            report = verify_batch(env.ws, batch.id)
        finally:
            data[off] = old
            Path(path).write_bytes(bytes(data))
        assert not report.ok, f"undetected: {kind} {name} byte {off}"
        detected += 1
        if kind == "manifest":
            located += any(p.kind == "manifest" for p in report.problems)
            continue
        named = [p for p in report.problems if p.file == name]
        located += bool(named)
        in_record = entry is not None and entry["format"] in LINE_FORMATS and kind == "file"
        if in_record and entry is not None and entry["format"] == "csv":
            in_record = off > bytes(data).index(b"\n")  # the header is not a record
        if in_record:
            record_expected += 1
            record_located += any(p.record is not None for p in named)
    assert detected == TRIALS
    assert located == TRIALS, "every change must be reported with its file (or the manifest)"
    assert record_located == record_expected, "changes inside records must name the record"
    assert record_expected > 100
    assert verify_batch(env.ws, batch.id).ok  # restored
