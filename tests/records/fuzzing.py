"""Seed files of every format and the mutations the fuzz suite (and benchmarks/fuzz.py) applies to them."""

from __future__ import annotations

import io
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "text", "npy")
SUFFIX = {
    "csv": ".csv",
    "tsv": ".tsv",
    "jsonl": ".jsonl",
    "json": ".json",
    "parquet": ".parquet",
    "text": ".txt",
    "npy": ".npy",
}


def seed(fmt: str) -> bytes:
    """A small valid file of ``fmt``."""
    if fmt == "csv":
        return b'id,text,label\n1,"hello, world",a\n2,"multi\nline",b\n3,plain,a\n'
    if fmt == "tsv":
        return b'id\ttext\tlabel\n1\thello "q\ta\n2\tworld\tb\n'
    if fmt == "jsonl":
        return b'{"id": 1, "text": "hi", "label": "a"}\n{"id": 2, "text": "yo", "label": "b", "x": [1, {"y": 2}]}\n'
    if fmt == "json":
        return b'[{"id": 1, "text": "hi"}, {"id": 2, "text": "yo"}]'
    if fmt == "text":
        return "first line\nsecond línea\n\nthird\n".encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        pq.write_table(pa.table({"id": [1, 2, 3], "text": ["a", "b", None], "v": [0.5, 1.5, 2.5]}), buf)
        return buf.getvalue()
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
        return buf.getvalue()
    raise ValueError(fmt)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three of: byte flips, truncation, NULs, invalid UTF-8, a huge line, odd quoting, wrong types,
    deep nesting, duplicated header, CR-only line endings."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(11)
        pos = rng.randrange(len(out) + 1) if out else 0
        if kind == 0 and out:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(out))
                out[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out = out[: rng.randrange(len(out) + 1)]
        elif kind == 2:
            out[pos:pos] = b"\x00" * rng.randint(1, 16)
        elif kind == 3:
            out[pos:pos] = rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"])
        elif kind == 4:
            out[pos:pos] = b"z" * rng.choice([1 << 10, 1 << 16, 1 << 20])
        elif kind == 5:
            out[pos:pos] = rng.choice([b'"', b'""', b'"a"b"', b'\n"', b',"\n\n', b'\t"\t'])
        elif kind == 6:
            out[pos:pos] = rng.choice([b"null\n", b"[1]\n", b'"s"\n', b"1e999\n", b'{"id": "x"}\n', b"NaN\n"])
        elif kind == 7:
            depth = rng.choice([300, 5000, 100_000])
            out[pos:pos] = b"[" * depth + b"]" * depth + b"\n"
        elif kind == 8:
            out[pos:pos] = b"id,id\n"
        elif kind == 9:
            out = bytearray(bytes(out).replace(b"\n", b"\r"))
        else:
            out = out + out[: rng.randrange(len(out) + 1)]
    return bytes(out)
