"""The client-side witness: the last checkpoint this client saw for each workspace.

Every command checks that the workspace's log still extends what the witness saw (a consistency proof
from the witnessed size to the current one). A log that shrank, or whose history differs, was rewound or
forked: someone restored an old catalog or rewrote entries. The witness also pins the log's public key
on first use, so a swapped log key is caught too.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import merkle
from dataward.core.checkpoint import Checkpoint, parse_signed_checkpoint
from dataward.core.dsse import key_id
from dataward.errors import Error, IntegrityError
from dataward.log.auditlog import NodeReader, latest_checkpoint
from dataward.workspace import Workspace

WITNESS_ENV = "DATAWARD_WITNESS"


class RewoundLogError(IntegrityError):
    default_advice = (
        "The audit log no longer extends what this client saw before: the catalog was restored from an older "
        "copy or its history was rewritten. Do not use this workspace until an admin investigates."
    )


def witness_path() -> Path:
    env = os.environ.get(WITNESS_ENV)
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("dataward")) / "witness.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(
            f"witness file {path} is unreadable: {exc}", advice="Restore it or remove it to trust anew."
        ) from None
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def current_checkpoint(ws: Workspace) -> tuple[Checkpoint, bytes] | None:
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
    if note is None:
        return None
    pub = ws.log_public_key()
    cp = parse_signed_checkpoint(note, {ws.origin: pub}, origin=ws.origin)
    return cp, note


def check_witness(ws: Workspace, path: Path | None = None) -> Checkpoint | None:
    """Check the workspace's log against the witness, then advance the witness. Raises if rewound/forked."""
    path = path or witness_path()
    got = current_checkpoint(ws)
    if got is None:
        return None
    cp, note = got
    data = _load(path)
    prev = data.get(ws.id)
    log_kid = key_id(ws.log_public_key())
    if isinstance(prev, dict):
        if prev.get("log_keyid") != log_kid:
            raise RewoundLogError(
                f"workspace {ws.id}: the log key changed from {str(prev.get('log_keyid'))[:16]} to {log_kid[:16]}"
            )
        psize = int(prev["size"])
        proot = base64.b64decode(prev["root"])
        if cp.size < psize:
            raise RewoundLogError(f"workspace {ws.id}: the audit log was rewound from {psize} to {cp.size} entries")
        if cp.size == psize:
            if proot != cp.root_hash:
                raise RewoundLogError(f"workspace {ws.id}: the audit log forked at size {psize} (root differs)")
        elif psize > 0:
            with ws.engine.connect() as conn:
                try:
                    proof = merkle.consistency_proof(psize, cp.size, NodeReader(conn))
                    merkle.verify_consistency(psize, cp.size, proot, cp.root_hash, proof)
                except (Error, LookupError) as exc:
                    raise RewoundLogError(
                        f"workspace {ws.id}: the audit log of {cp.size} entries does not extend "
                        f"the {psize} this client saw ({exc})"
                    ) from None
    data[ws.id] = {
        "origin": ws.origin,
        "size": cp.size,
        "root": base64.b64encode(cp.root_hash).decode(),
        "log_keyid": log_kid,
        "checkpoint": note.decode("utf-8"),
    }
    _save(path, data)
    return cp


def pinned_public_key(ws: Workspace) -> Ed25519PublicKey:
    return ws.log_public_key()
