"""Find and remove what nothing references: stray objects and stale temporary files (``dataward doctor``).

An object is *referenced* when its digest appears anywhere in the catalog (any text column of any table,
the log entries' details included) or inside a referenced meta object (a DSSE envelope's statement names
the files it covers). The scan is deliberately over-inclusive: a digest-shaped string anywhere keeps an
object, because deleting a needed object is unrecoverable while keeping a stray one costs only disk.
Only files older than the grace period are candidates: a running command may be between publishing an
object and committing the batch that names it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, String, Text, select

from dataward.store import _schema as schema
from dataward.store.objects import AREAS, ObjectStore

_HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
#: meta objects larger than this are not parsed for nested references (record-digest lists are binary)
_MAX_PARSE = 64 << 20


@dataclass
class Garbage:
    """What ``find_garbage`` found: unreferenced objects as (area, digest), and stale temporary files."""

    objects: list[tuple[str, str]] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    bytes: int = 0


def catalog_digests(conn: Connection) -> set[str]:
    """Every digest-shaped string in every text column of the catalog."""
    found: set[str] = set()
    for table in schema.metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, String | Text)]
        if not cols:
            continue
        for row in conn.execute(select(*cols)):
            for value in row:
                if isinstance(value, str) and len(value) >= 64:
                    found.update(_HEX64.findall(value.lower()))
    return found


def _nested_digests(data: bytes) -> set[str]:
    """Digests named inside a meta object (JSON, DSSE envelopes decoded); binary objects name none."""
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return set()
    text = json.dumps(doc)
    if isinstance(doc, dict) and isinstance(doc.get("payload"), str):
        with contextlib.suppress(binascii.Error, ValueError):
            text += base64.b64decode(doc["payload"], validate=False).decode("utf-8", "replace")
    return set(_HEX64.findall(text.lower()))


def referenced_digests(conn: Connection, store: ObjectStore) -> set[str]:
    """The catalog's digests, closed over the references inside referenced meta objects."""
    refs = catalog_digests(conn)
    todo = list(refs)
    while todo:
        digest = todo.pop()
        if not store.exists("meta", digest):
            continue
        path = store.path("meta", digest)
        if store.fs.size(path) > _MAX_PARSE:
            continue
        for nested in _nested_digests(store.read_bytes("meta", digest, verify=False)) - refs:
            refs.add(nested)
            todo.append(nested)
    return refs


def _mtime(store: ObjectStore, path: str) -> float:
    info = store.fs.info(path)
    value = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def find_garbage(conn: Connection, store: ObjectStore, grace_seconds: float) -> Garbage:
    """Unreferenced objects and temporary files older than ``grace_seconds`` (never younger ones)."""
    cutoff = time.time() - grace_seconds
    refs = referenced_digests(conn, store)
    out = Garbage()
    for area in AREAS:
        base = f"{store.root}/{area}"
        if not store.fs.exists(base):
            continue
        for path in sorted(store.fs.find(base)):
            digest = path.rsplit("/", 1)[-1]
            if digest in refs or not _HEX64.fullmatch(digest) or _mtime(store, path) > cutoff:
                continue
            out.objects.append((area, digest))
            out.bytes += int(store.fs.size(path))
    incoming = f"{store.root}/incoming"
    if store.fs.exists(incoming):
        for path in sorted(store.fs.find(incoming)):
            if _mtime(store, path) <= cutoff:
                out.temp_files.append(path)
                out.bytes += int(store.fs.size(path))
    return out


def remove_garbage(store: ObjectStore, garbage: Garbage) -> None:
    """Delete what ``find_garbage`` found (call it inside a write transaction, after finding again)."""
    for area, digest in garbage.objects:
        store.remove(area, digest)
    for path in garbage.temp_files:
        if store.fs.exists(path):
            store.fs.rm(path)


def relative(store: ObjectStore, path: str) -> str:
    """``path`` relative to the store's root, for reports."""
    return os.path.relpath(path, store.root) if path.startswith(store.root) else path
