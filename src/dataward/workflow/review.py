"""Showing one sampled record to a reviewer: its text, table row or file path, checked against its digest.

Records are segmented exactly as at acquisition (see :mod:`dataward.records.leaves`): line formats'
records are the non-blank lines (CSV/TSV header excluded), Parquet records are rows, other files are one
record. The bytes shown are re-hashed and compared with the record's leaf hash from the signed manifest,
so a reviewer never judges a record that differs from the one sampled.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from dataclasses import dataclass
from typing import IO, Any

from dataward.acquire.verify import batch_manifest
from dataward.batches import Batch
from dataward.core.canonical import canonical_json
from dataward.errors import IntegrityError, NotFoundError
from dataward.records.leaves import LINE_FORMATS
from dataward.workflow.audit import SampleItem
from dataward.workspace import Workspace


@dataclass(frozen=True)
class RecordView:
    """One sampled record as a reviewer sees it: its file, kind, value or local path, and whether it still
    matches its sampled digest."""

    record: int
    file: str
    file_record: int
    format: str
    kind: str  # text | row | json | file
    value: Any  # str (text), dict (row, json), None (file)
    path: str | None  # the object's local path (files, e.g. images)
    verified: bool | None  # re-hashed and equal to the sampled digest (None: not checkable here)

    def to_json(self) -> dict[str, Any]:
        """The JSON form the review pages and `audit review --json` show."""
        return {
            "record": self.record,
            "file": self.file,
            "file_record": self.file_record,
            "format": self.format,
            "kind": self.kind,
            "value": self.value,
            "path": self.path,
            "verified": self.verified,
        }


def _leaf(data: bytes) -> str:
    return hashlib.sha256(b"\x00" + data).hexdigest()


def _lines(f: IO[bytes], wanted: list[int], skip_header: bool) -> tuple[bytes | None, dict[int, bytes]]:
    """(header line, {n: the n-th record line}) of a line format, segmented as acquisition does."""
    need = set(wanted)
    found: dict[int, bytes] = {}
    header: bytes | None = None
    i = -1
    for raw in f:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        if skip_header and header is None:
            header = line
            continue
        i += 1
        if i in need:
            found[i] = line
            if len(found) == len(need):
                break
    missing = need - set(found)
    if missing:
        raise NotFoundError(f"record {min(missing)} is past the end of the file")
    return header, found


def read_record(ws: Workspace, batch: Batch, item: SampleItem) -> RecordView:
    """Read one sampled record from the quarantined batch and re-hash it against the digest the sample recorded."""
    f = next((x for x in batch.files if x.position == item.file_position), None)
    if f is None:
        raise NotFoundError(f"batch {batch.id} has no file at position {item.file_position}")
    encoding = "lines"
    for m in batch_manifest(ws, batch.id).get("files", []):
        if m.get("name") == f.name:
            encoding = str(m.get("encoding", "lines"))
    n = item.file_record
    path = ws.objects.local_path("quarantine", f.sha256)
    base: dict[str, Any] = {"record": item.record, "file": f.name, "file_record": n, "format": f.format}
    if f.format == "file":
        ok = hmac.compare_digest(_leaf(bytes.fromhex(f.sha256)), item.record_digest)
        return RecordView(**base, kind="file", value=None, path=path, verified=ok)
    if f.format == "parquet":
        import pyarrow.parquet as pq

        from dataward.records.leaves import jsonable as _jsonable

        with ws.objects.open("quarantine", f.sha256) as fh:
            pf = pq.ParquetFile(fh)
            seen = 0
            for rb in pf.iter_batches(batch_size=65536):
                if seen + rb.num_rows > n:
                    row = rb.slice(n - seen, 1).to_pylist()[0]
                    value = _jsonable(row)
                    ok = hmac.compare_digest(_leaf(canonical_json(value)), item.record_digest)
                    return RecordView(**base, kind="row", value=value, path=None, verified=ok)
                seen += rb.num_rows
        raise NotFoundError(f"record {n} is past the end of {f.name}")
    delim = "\t" if f.format == "tsv" else ","
    if encoding == "csv-records":
        with ws.objects.open("quarantine", f.sha256) as fh:
            text = fh.read().decode("utf-8", errors="replace")
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim) if r]
        if n + 1 >= len(rows):
            raise NotFoundError(f"record {n} is past the end of {f.name}")
        return RecordView(
            **base, kind="row", value=dict(zip(rows[0], rows[n + 1], strict=False)), path=None, verified=None
        )
    with ws.objects.open("quarantine", f.sha256) as fh:
        header, lines = _lines(fh, [n], skip_header=f.format in ("csv", "tsv"))
    return _line_view(base, f.format, header, lines[n], item.record_digest)


def _line_view(base: dict[str, Any], fmt: str, header: bytes | None, line: bytes, digest: str) -> RecordView:
    ok = hmac.compare_digest(_leaf(line), digest)
    text = line.decode("utf-8", errors="replace")
    delim = "\t" if fmt == "tsv" else ","
    if fmt in ("csv", "tsv") and header is not None:
        cols = next(csv.reader([header.decode("utf-8", errors="replace")], delimiter=delim))
        vals = next(csv.reader([text], delimiter=delim), [])
        return RecordView(**base, kind="row", value=dict(zip(cols, vals, strict=False)), path=None, verified=ok)
    if fmt == "jsonl":
        try:
            return RecordView(**base, kind="json", value=json.loads(text), path=None, verified=ok)
        except json.JSONDecodeError:
            pass
    return RecordView(**base, kind="text", value=text, path=None, verified=ok)


def read_records(ws: Workspace, batch: Batch, items: list[SampleItem]) -> dict[int, RecordView]:
    """Views of many sampled records, reading each line-format file once."""
    out: dict[int, RecordView] = {}
    encodings = {m.get("name"): m.get("encoding", "lines") for m in batch_manifest(ws, batch.id).get("files", [])}
    by_file: dict[int, list[SampleItem]] = {}
    for it in items:
        by_file.setdefault(it.file_position, []).append(it)
    for pos, mine in by_file.items():
        f = next((x for x in batch.files if x.position == pos), None)
        if f is None or f.format not in LINE_FORMATS or encodings.get(f.name) != "lines":
            out.update({it.record: read_record(ws, batch, it) for it in mine})
            continue
        with ws.objects.open("quarantine", f.sha256) as fh:
            header, lines = _lines(fh, [it.file_record for it in mine], skip_header=f.format in ("csv", "tsv"))
        for it in mine:
            base = {"record": it.record, "file": f.name, "file_record": it.file_record, "format": f.format}
            out[it.record] = _line_view(base, f.format, header, lines[it.file_record], it.record_digest)
    return out


def require_verified(view: RecordView) -> None:
    """Refuse a record that no longer matches its sampled digest (a record that cannot be checked passes)."""
    if view.verified is False:
        raise IntegrityError(
            f"record {view.record} ({view.file} #{view.file_record}) no longer matches the sampled digest",
            advice="Do not review it; verify the batch (`dataward verify BATCH`) and reject it.",
        )
