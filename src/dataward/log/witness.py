"""The client-side witness: the last checkpoint this client saw of each log.

Entries are keyed by the log's identity, its origin and public key, not by anything a workspace can
rename: a ``workspace_id`` changed (in ``dataward.toml`` and the catalog) after a rewind is an error, not a
new log, and so is a known log key under another origin, or a known workspace directory with another log.

Every command checks that the workspace's log still extends what the witness saw (a consistency proof
from the witnessed size to the current one). A log that shrank, or whose history differs, was rewound or
forked: someone restored an old catalog or rewrote entries. The witness also pins the log's public key
on first use, so a swapped log key is caught too.

The witness file also keeps, per workspace, the last *full* verification this client made (size, root,
digest of the stored rows): ``dataward log verify --incremental`` trusts the entries it covers after a tree
check (docs/adr/0005-log-verification.md). Read-check-write of the file happens under an exclusive lock,
so concurrent commands neither lose each other's updates nor move the witness backwards.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import merkle
from dataward.core.checkpoint import Checkpoint, parse_signed_checkpoint
from dataward.core.dsse import key_id
from dataward.errors import Error, IntegrityError
from dataward.log.auditlog import NodeReader, latest_checkpoint

if TYPE_CHECKING:
    from dataward.log.verify import LogVerification
    from dataward.workspace import Workspace

WITNESS_ENV = "DATAWARD_WITNESS"


class RewoundLogError(IntegrityError):
    default_advice = (
        "The audit log no longer extends what this client saw before: the catalog was restored from an older "
        "copy or its history was rewritten. Do not use this workspace until an admin investigates (to inspect "
        "it, e.g. with `dataward log verify`, set DATAWARD_WITNESS to a scratch file for that command)."
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


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (a sibling ``.lock`` file) for a read-check-write of the witness."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, same behaviour otherwise
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _log_key(ws: Workspace) -> str:
    """The witness entry name of ``ws``'s log: its origin and log key ID."""
    return f"log {ws.origin} {key_id(ws.log_public_key())}"


def _entry(data: dict[str, Any], ws: Workspace) -> dict[str, Any] | None:
    """This log's entry (or, from a witness written before entries were keyed by log, the workspace's)."""
    prev = data.get(_log_key(ws))
    if prev is None:
        prev = data.get(ws.id)  # legacy layout: keyed by workspace_id
    return prev if isinstance(prev, dict) else None


def _check_identity(data: dict[str, Any], ws: Workspace, log_kid: str) -> None:
    """Refuse a known log under a new name: the same log key with another origin or workspace_id, or a
    known workspace directory whose log key changed (a rewind dressed up as a new workspace)."""
    me = _log_key(ws)
    here = str(ws.path)
    for name, e in data.items():
        if not isinstance(e, dict):
            continue
        if name == me:
            wid = e.get("workspace_id")
            if wid is not None and wid != ws.id:
                raise RewoundLogError(
                    f"log {ws.origin}: the workspace_id changed from {wid} to {ws.id} (this client saw this log "
                    "under the other id): the catalog was restored or its identity rewritten"
                )
            continue
        if not name.startswith("log "):
            continue
        if e.get("log_keyid") == log_kid:
            raise RewoundLogError(
                f"log key {log_kid[:16]} signs the log {e.get('origin')}, but this workspace claims the origin "
                f"{ws.origin}: its identity was rewritten"
            )
        if e.get("path") == here and e.get("workspace_id") == ws.id:
            raise RewoundLogError(
                f"workspace {ws.id} at {here}: the log key changed from {str(e.get('log_keyid'))[:16]} to "
                f"{log_kid[:16]}"
            )


def current_checkpoint(ws: Workspace) -> tuple[Checkpoint, bytes] | None:
    with ws.engine.connect() as conn:
        note = latest_checkpoint(conn)
    if note is None:
        return None
    pub = ws.log_public_key()
    cp = parse_signed_checkpoint(note, {ws.origin: pub}, origin=ws.origin)
    return cp, note


def check_witness(ws: Workspace, path: Path | str | None = None) -> Checkpoint | None:
    """Check the workspace's log against the witness, then advance the witness. Raises if rewound/forked."""
    path = Path(path) if path else witness_path()
    with _locked(path):
        return _check_locked(ws, path)


def _check_locked(ws: Workspace, path: Path) -> Checkpoint | None:
    got = current_checkpoint(ws)
    data = _load(path)
    log_kid = key_id(ws.log_public_key())
    _check_identity(data, ws, log_kid)
    prev = _entry(data, ws)
    if got is None:
        if isinstance(prev, dict) and int(prev.get("size") or 0) > 0:
            raise RewoundLogError(
                f"workspace {ws.id}: the audit log was rewound from {prev.get('size')} to 0 entries "
                "(no signed checkpoint left)"
            )
        return None
    cp, note = got
    if isinstance(prev, dict):
        if prev.get("log_keyid") != log_kid:
            raise RewoundLogError(
                f"workspace {ws.id}: the log key changed from {str(prev.get('log_keyid'))[:16]} to {log_kid[:16]}"
            )
        try:
            psize = int(prev["size"])
            proot = base64.b64decode(prev["root"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise IntegrityError(
                f"witness file {path}: the entry of workspace {ws.id} is damaged",
                advice="Restore the witness file from a backup, or remove that entry to trust the log anew.",
            ) from None
        if cp.size < psize:
            raise RewoundLogError(f"workspace {ws.id}: the audit log was rewound from {psize} to {cp.size} entries")
        if cp.size == psize:
            if not hmac.compare_digest(proot, cp.root_hash):
                raise RewoundLogError(
                    f"workspace {ws.id}: the audit log was forked or rewound at size {psize} (root differs)"
                )
        elif psize > 0:
            with ws.engine.connect() as conn:
                try:
                    proof = merkle.consistency_proof(psize, cp.size, NodeReader(conn))
                    merkle.verify_consistency(psize, cp.size, proot, cp.root_hash, proof)
                except (Error, LookupError) as exc:
                    raise RewoundLogError(
                        f"workspace {ws.id}: the audit log of {cp.size} entries was forked or rewound: it does "
                        f"not extend the {psize} entries this client saw ({exc})"
                    ) from None
    entry: dict[str, Any] = {
        "origin": ws.origin,
        "workspace_id": ws.id,
        "path": str(ws.path),
        "size": cp.size,
        "root": base64.b64encode(cp.root_hash).decode(),
        "log_keyid": log_kid,
        "checkpoint": note.decode("utf-8"),
    }
    if isinstance(prev, dict) and isinstance(prev.get("verified"), dict):
        entry["verified"] = prev["verified"]
    data.pop(ws.id, None)  # a legacy entry is now kept under the log's own name
    data[_log_key(ws)] = entry
    _save(path, data)
    return cp


def verified_mark(ws: Workspace, path: Path | str | None = None) -> dict[str, Any] | None:
    """The last full verification of ``ws`` this client recorded, if it is well-formed and current."""
    data = _load(Path(path) if path else witness_path())
    prev = _entry(data, ws)
    if prev is None:
        return None
    mark = prev.get("verified")
    if not isinstance(mark, dict) or mark.get("log_keyid") != key_id(ws.log_public_key()):
        return None
    try:
        size = int(mark["size"])
        chunk = int(mark.get("chunk", 1))
        ok = (
            size >= 0
            and chunk >= 1
            and len(bytes.fromhex(str(mark["root"]))) == 32
            and len(str(mark["rows_digest"])) == 64
        )
    except (KeyError, ValueError, TypeError):
        return None
    return mark if ok else None


def record_verified(ws: Workspace, result: LogVerification, path: Path | str | None = None) -> None:
    """Remember a successful full or incremental verification of ``ws`` (for ``--incremental`` next time)."""
    path = Path(path) if path else witness_path()
    with _locked(path):
        data = _load(path)
        prev = _entry(data, ws)
        entry: dict[str, Any] = (
            prev if prev is not None else {"origin": ws.origin, "workspace_id": ws.id, "path": str(ws.path)}
        )
        old = entry.get("verified")
        if isinstance(old, dict) and int(old.get("size", 0)) > result.entries:
            return  # never move the mark backwards (a concurrent verification saw more)
        entry["verified"] = {
            "size": result.entries,
            "root": result.root,
            "rows_digest": result.rows_digest,
            "chunk": result.chunk,
            "log_keyid": key_id(ws.log_public_key()),
        }
        data.pop(ws.id, None)
        data[_log_key(ws)] = entry
        _save(path, data)


def pinned_public_key(ws: Workspace) -> Ed25519PublicKey:
    return ws.log_public_key()
