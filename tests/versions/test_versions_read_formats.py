"""Reading every record format out of a version: rows line up with the signed record digests."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dataward
from dataward.acquire.acquire import acquire
from dataward.release.versions import release

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

if TYPE_CHECKING:
    from release_helpers import Env


def _leaf(b: bytes) -> str:
    return hashlib.sha256(b"\x00" + b).hexdigest()


def test_each_format_reads_with_its_record_digests(env: Env) -> None:
    d = env.path / "delivery"
    d.mkdir()
    (d / "a.csv").write_text('q,n\n"x, quoted",1\nplain,2\n')
    (d / "b.jsonl").write_text('{"q": "j1", "n": 3}\n\n{"q": "j2", "n": 4}\n')
    (d / "c.txt").write_text("line one\r\nline two\n")
    pq.write_table(pa.table({"q": ["p1"], "n": [5]}), d / "d.parquet")
    (d / "e.bin").write_bytes(b"\x00\x01binary")
    b = acquire(env.ws, env.actor("ingrid"), "vendor", [d]).id
    env.drive(b)
    release(env.ws, env.actor("alice"), "train", [b])
    t = dataward.open("train@1", workspace=env.ws, principal="tom")
    rows = t.to_pylist()
    by_file: dict[str, list[dict]] = {}
    for r in rows:
        by_file.setdefault(r["_file"], []).append(r)
    assert [r["q"] for r in by_file["a.csv"]] == ["x, quoted", "plain"]
    assert [r["_record_digest"] for r in by_file["a.csv"]] == [_leaf(b'"x, quoted",1'), _leaf(b"plain,2")]
    assert [r["n"] for r in by_file["b.jsonl"]] == [3, 4]
    assert [r["_record"] for r in by_file["b.jsonl"]] == [0, 1]
    assert [r["text"] for r in by_file["c.txt"]] == ["line one", "line two"]
    assert by_file["c.txt"][0]["_record_digest"] == _leaf(b"line one")  # CRLF folded, as when acquired
    assert by_file["d.parquet"][0]["q"] == "p1"
    (binary,) = by_file["e.bin"]
    assert binary["content"] == b"\x00\x01binary"
    assert binary["_record_digest"] == _leaf(hashlib.sha256(b"\x00\x01binary").digest())
    assert len(rows) == 8 and {r["_batch"] for r in rows} == {b}
    df = dataward.open("train@1", as_="pandas", workspace=env.ws, principal="tom")
    assert len(df) == 8 and {"_batch", "_file", "_record", "_record_digest"} <= set(df.columns)
    assert sorted(df["_record_digest"]) == sorted(r["_record_digest"] for r in rows)
