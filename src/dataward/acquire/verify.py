"""Verify a batch: re-read every stored object, recompute file digests, record digests and Merkle roots,
check the manifest signature and the signer's key. Results are values (a report), not exceptions."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from dataward.batches import Batch, load_batch
from dataward.core import dsse, merkle
from dataward.errors import Error, NotFoundError, SignatureError
from dataward.records.leaves import leaf_list, record_digests
from dataward.store import batches as batch_rows
from dataward.store.objects import ObjectStore
from dataward.timeutil import parse_iso
from dataward.workspace import Workspace


@dataclass(frozen=True)
class Problem:
    """One verification problem: its kind, what is wrong, and the file it concerns (if one)."""

    kind: str  # manifest | signature | key | file | records | merkle | catalog
    detail: str
    file: str | None = None
    record: int | None = None  # 0-based record number within the file

    def to_json(self) -> dict[str, Any]:
        """The problem as JSON."""
        return {"kind": self.kind, "file": self.file, "record": self.record, "detail": self.detail}

    def line(self) -> str:
        """The problem as one line of text."""
        where = self.file or "batch"
        if self.record is not None:
            where += f" record {self.record}"
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class VerificationReport:
    """What :func:`verify_batch` found: files and records checked, the manifest's signer, the problems."""

    batch: str
    files_checked: int
    records_checked: int
    signer: str | None
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "batch": self.batch,
            "ok": self.ok,
            "files_checked": self.files_checked,
            "records_checked": self.records_checked,
            "signer": self.signer,
            "problems": [p.to_json() for p in self.problems],
        }


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _hash_object(store: ObjectStore, area: str, digest: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    for chunk in store.iter_chunks(area, digest):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def verify_batch(ws: Workspace, batch_id: str, *, area: str | None = None) -> VerificationReport:
    """Verify batch ``batch_id`` against its signed manifest: the signature, the catalog's rows, and every
    stored file and record digest (read from ``area``; default: where the batch's state keeps its files)."""
    with ws.engine.connect() as conn:
        batch = load_batch(conn, batch_id)
        keys = ws.public_keys(conn)
    area = area or ("released" if batch.state in ("released", "revoked") else "quarantine")
    problems: list[Problem] = []
    manifest, signer = _check_manifest(ws, batch, keys, problems)
    if manifest is None:
        return VerificationReport(batch.id, 0, 0, signer, tuple(problems))
    files = manifest.get("files")
    if not isinstance(files, list):
        problems.append(Problem("manifest", "manifest lists no files"))
        return VerificationReport(batch.id, 0, 0, signer, tuple(problems))
    _check_catalog_matches(batch, manifest, problems)
    all_leaves: list[bytes] = []
    records_checked = 0
    for f in files:
        leaves, n = _check_file(ws.objects, area, f, problems)
        records_checked += n
        all_leaves.extend(leaves)
    root = merkle.root_from_leaf_hashes(all_leaves).hex()
    if not _eq(root, str(manifest.get("merkle_root"))):
        problems.append(Problem("merkle", f"batch Merkle root {root[:16]}... differs from the manifest's"))
    return VerificationReport(batch.id, len(files), records_checked, signer, tuple(problems))


def _check_manifest(
    ws: Workspace, batch: Batch, keys: dict[str, Any], problems: list[Problem]
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = ws.objects.read_bytes("meta", batch.manifest_digest, verify=False)
    except Error as exc:
        problems.append(Problem("manifest", exc.message))
        return None, None
    if not _eq(hashlib.sha256(data).hexdigest(), batch.manifest_digest):
        problems.append(Problem("manifest", "the stored signed manifest was modified (its SHA-256 no longer matches)"))
        return None, None
    try:
        env = dsse.Envelope.from_bytes(data)
        if env.to_bytes() != data:
            raise SignatureError("envelope is not in canonical form")
        statement = dsse.parse_statement(env)
    except Error as exc:
        problems.append(Problem("manifest", exc.message))
        return None, None
    signer = None
    if not env.signatures:
        problems.append(Problem("signature", "manifest is not signed"))
    for s in env.signatures:
        row = keys.get(s.keyid)
        if row is None:
            problems.append(Problem("signature", f"manifest signed by unknown key {s.keyid[:16]}"))
            continue
        signer = row.principal
        try:
            pub = dsse.public_key_from_hex(row.public_key)
            dsse.verify_envelope(env, {s.keyid: pub})
        except Error as exc:
            problems.append(Problem("signature", exc.message))
            continue
        _check_key_validity(row, batch.created_at, problems)
    pred = statement.predicate
    if statement.predicate_type != dsse.PREDICATE_MANIFEST or not isinstance(pred, dict):
        problems.append(Problem("manifest", f"unexpected predicate type {statement.predicate_type}"))
        return None, signer
    if pred.get("batch") != batch.id:
        problems.append(Problem("manifest", f"manifest is for batch {pred.get('batch')!r}, not {batch.id!r}"))
    subjects = dict(statement.subjects)
    for f in pred.get("files", []):
        if subjects.get(f.get("name")) != f.get("sha256"):
            problems.append(
                Problem("manifest", "statement subject differs from the manifest's file list", f.get("name"))
            )
    return pred, signer


def _check_key_validity(row: Any, signed_at: str, problems: list[Problem]) -> None:
    t = parse_iso(signed_at)
    if parse_iso(row.created_at) > t:
        problems.append(Problem("key", f"key {row.keyid[:16]} was created after the manifest was signed"))
    if row.expires_at and parse_iso(row.expires_at) < t:
        problems.append(Problem("key", f"key {row.keyid[:16]} had expired when the manifest was signed"))
    if row.revoked_at and parse_iso(row.revoked_at) <= t:
        problems.append(Problem("key", f"key {row.keyid[:16]} was revoked before the manifest was signed"))


def _check_catalog_matches(batch: Batch, manifest: dict[str, Any], problems: list[Problem]) -> None:
    if manifest.get("merkle_root") != batch.merkle_root:
        problems.append(Problem("catalog", "catalog Merkle root differs from the signed manifest's"))
    if manifest.get("record_count") != batch.record_count:
        problems.append(Problem("catalog", "catalog record count differs from the signed manifest's"))
    by_pos = {i: f for i, f in enumerate(manifest.get("files", []))}
    if len(by_pos) != len(batch.files):
        problems.append(Problem("catalog", "catalog file list differs from the signed manifest's"))
    for bf in batch.files:
        mf = by_pos.get(bf.position)
        if mf is None or mf.get("sha256") != bf.sha256 or mf.get("name") != bf.name:
            problems.append(Problem("catalog", "catalog file entry differs from the signed manifest's", bf.name))


def _check_file(store: ObjectStore, area: str, f: dict[str, Any], problems: list[Problem]) -> tuple[list[bytes], int]:
    name = str(f.get("name"))
    digest = str(f.get("sha256"))
    expected_leaves: list[bytes] | None = None
    try:
        raw = leaf_list(store, digest, str(f.get("records_digest")), verify=False)
        if not _eq(hashlib.sha256(raw).hexdigest(), str(f.get("records_digest"))):
            problems.append(Problem("records", "stored record-digest list was modified", name))
        else:
            expected_leaves = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    except Error as exc:
        problems.append(Problem("records", exc.message, name))
    try:
        got, size = _hash_object(store, area, digest)
    except Error as exc:
        problems.append(Problem("file", exc.message, name))
        return expected_leaves or [], 0
    if not _eq(got, digest):
        problems.append(Problem("file", f"SHA-256 is {got[:16]}..., manifest says {digest[:16]}...", name))
    if size != f.get("size"):
        problems.append(Problem("file", f"size is {size}, manifest says {f.get('size')}", name))
    try:
        rd = record_digests(
            lambda: store.open(area, digest),
            name,
            str(f.get("format")),
            file_sha256=digest,
            strict=False,
            encoding=str(f.get("encoding")),
        )
        leaves = rd.leaf_list()
    except Error as exc:
        problems.append(Problem("records", f"records could not be re-read: {exc.message}", name))
        return expected_leaves or [], 0
    if str(f.get("format")) == "file":
        leaves = [merkle.leaf_hash(bytes.fromhex(digest))]
    if expected_leaves is not None:
        bad = [
            i for i, (a, b) in enumerate(zip(leaves, expected_leaves, strict=False)) if not hmac.compare_digest(a, b)
        ]
        for i in bad[:50]:
            problems.append(Problem("records", "record digest differs from the acquired one", name, i))
        if len(bad) > 50:
            problems.append(Problem("records", f"... and {len(bad) - 50} more records differ", name))
        if len(leaves) != len(expected_leaves):
            problems.append(
                Problem(
                    "records",
                    f"{len(leaves)} records now, {len(expected_leaves)} when acquired",
                    name,
                    min(len(leaves), len(expected_leaves)),
                )
            )
        if f.get("records") != len(expected_leaves):
            problems.append(Problem("records", "record-digest list length differs from the manifest's count", name))
    root = merkle.root_from_leaf_hashes(leaves).hex()
    if not _eq(root, str(f.get("merkle_root"))):
        problems.append(Problem("merkle", f"file Merkle root {root[:16]}... differs from the manifest's", name))
    return leaves, len(leaves)


def batch_manifest(ws: Workspace, batch_id: str) -> dict[str, Any]:
    """The signed manifest's predicate (unverified: use :func:`verify_batch` to trust it)."""
    with ws.engine.connect() as conn:
        digest = batch_rows.manifest_digest(conn, batch_id)
    if digest is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    env = dsse.Envelope.from_bytes(ws.objects.read_bytes("meta", digest))
    out: dict[str, Any] = json.loads(env.payload)["predicate"]
    return out
