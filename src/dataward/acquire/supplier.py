"""The supplier's side of a delivery: a signed manifest (``delivery.dsse.json``) of every file in it.

A supplier runs ``dataward sign-delivery DIR --key KEY`` before shipping DIR; the receiving workspace
checks the envelope against the supplier key registered on the source (``acquire --expect-signed``, or
found in the delivery directory). The envelope is a DSSE-wrapped in-toto Statement v1 whose subjects are
the files' relative names and SHA-256 digests; securesystemslib and in-toto tooling read it as is.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from dataward.acquire.inputs import collect_inputs
from dataward.core import dsse
from dataward.core.signer import SigningKey
from dataward.errors import ConflictError, InputError
from dataward.timeutil import now_iso

MANIFEST_NAME = "delivery.dsse.json"
_CHUNK = 1 << 20


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sign_delivery(
    directory: str | os.PathLike[str], key: SigningKey, *, supplier: str | None = None, force: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Write ``directory/delivery.dsse.json`` listing every file below ``directory``; returns path and summary."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory", advice="Give the directory you are about to deliver.")
    out = root / MANIFEST_NAME
    if out.exists() and not force:
        raise ConflictError(f"{out} already exists", advice="Pass --force to sign the delivery again.")
    files = [f for f in collect_inputs([root]) if f.name != MANIFEST_NAME]
    if not files:
        raise InputError(f"{root}: no files to sign")
    subjects = [(f.name, _sha256_file(f.path)) for f in files]
    predicate: dict[str, Any] = {"signed_at": now_iso(), "files": len(subjects)}
    if supplier:
        predicate["supplier"] = supplier
    statement = dsse.make_statement(subjects, dsse.PREDICATE_SUPPLIER_MANIFEST, predicate)
    envelope = dsse.sign_envelope(statement, key)
    tmp = root / f".{MANIFEST_NAME}.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("wb") as f:
            f.write(envelope.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out, {"manifest": str(out), "files": len(subjects), "keyid": envelope.signatures[0].keyid}
