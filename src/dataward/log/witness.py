"""The client-side witness: the last checkpoint this client saw of each log.

Entries are keyed by the log's identity, its origin and public key, not by anything a workspace can
rename: a ``workspace_id`` changed (in ``dataward.toml`` and the catalog) after a rewind is an error, not a
new log, and so is a known log key under another origin, or a known workspace directory with another log.

Every command checks that the workspace's log still extends what the witness saw (a consistency proof
from the witnessed size to the current one). A log that shrank, or whose history differs, was rewound or
forked: someone restored an old catalog or rewrote entries. The witness also pins the log's public key
on first use, so a swapped log key is caught too.

The witness file also keeps, per log, what the last successful verification this client made proved (size,
the Merkle frontier bound to the signed checkpoint of that size, the replayed evidence state in a file
beside it, a digest per key, all under a MAC keyed by this client's own secret): ``dataward log verify
--incremental`` checks only the entries appended since (docs/adr/0045-incremental-witness-and-log-speed.md).
The state file is not rewritten by every such run: the mark names the state it rests on (its size and
frontier), and the verified entries past it are replayed onto it once their leaves fold from that frontier to
the mark's (docs/adr/0052-log-at-the-floor-state-journal.md).
Read-check-write of the file happens under an exclusive lock, so concurrent commands neither lose each
other's updates nor move the witness backwards.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import Checkpoint, parse_signed_checkpoint
from dataward.core.dsse import key_id
from dataward.errors import Error, IntegrityError
from dataward.log._snapshot import decode_state, encode_state_parts
from dataward.log.auditlog import NodeReader, latest_checkpoint
from dataward.log.query import checkpoint_at

if TYPE_CHECKING:
    from dataward.evidence.replay import TrustedState
    from dataward.log.verify import LogVerification
    from dataward.workspace import Workspace

WITNESS_ENV = "DATAWARD_WITNESS"


class RewoundLogError(IntegrityError):
    """The log no longer extends what this client's witness saw (rewound, forked or renamed)."""

    default_advice = (
        "The audit log no longer extends what this client saw before: the catalog was restored from an older "
        "copy or its history was rewritten. Do not use this workspace until an admin investigates (to inspect "
        "it, e.g. with `dataward log verify`, set DATAWARD_WITNESS to a scratch file for that command)."
    )


def witness_path() -> Path:
    """This client's witness file (``DATAWARD_WITNESS``, else the user's config directory)."""
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
    """The workspace's latest checkpoint, verified under its log key, and its note (None if the log has none)."""
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


@dataclass(frozen=True)
class VerifiedMark:
    """What an earlier successful verification proved, as this client recorded it (docs/adr/0045-*).

    ``frontier`` is the compact range of the first ``size`` entries (their perfect-subtree hashes, largest
    first): with the new entries' leaves it gives the current root without reading the verified ones.
    ``state`` is the evidence replayed over them; ``keys`` a digest per registered key as it was then (a key
    changed since re-judges the verified entries it signed); ``marked`` the noteworthy lines found in them.
    """

    size: int
    root: bytes
    frontier: tuple[bytes, ...]
    last_time: str
    keys: dict[str, str]
    marked: tuple[tuple[int, str, str], ...]  # (seq, keyid, line)
    marked_count: int
    state: TrustedState
    #: the state file this mark rests on, when it is older than the mark (docs/adr/0052-*): its size, the
    #: frontier of that many entries and its SHA-256; the entries from there to ``size`` are replayed onto it
    #: after their leaves are checked to fold from that frontier to ``frontier``. None: write ``state`` anew
    base: StateBase | None = None


@dataclass(frozen=True)
class StateBase:
    """The evidence state file a verification started from: the number of entries it covers, their
    frontier, the file's SHA-256."""

    size: int
    frontier: tuple[bytes, ...]
    digest: str


def journal_limit(size: int) -> int:
    """How many verified entries a mark of ``size`` may keep outside its state file (replayed on each
    incremental run) before the state is written anew: about the square root of the balance between
    rewriting the state (O(size)) and replaying the journal (O(limit)) at 1,000 new entries a run."""
    return max(2_000, math.isqrt(size) * 20)


def _witness_key(path: Path, *, create: bool) -> bytes | None:
    """This client's secret for the marks' MACs (beside the witness file, owner-only); None if absent."""
    kpath = path.with_name(path.name + ".key")
    try:
        return bytes.fromhex(kpath.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        if not create:
            return None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    key = secrets.token_bytes(32)
    fd = os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


def _mark_mac(key: bytes, mark: dict[str, Any]) -> str:
    body = {k: v for k, v in mark.items() if k != "mac"}
    return hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


def _state_path(path: Path, ws: Workspace) -> Path:
    """Where the evidence state of ``ws``'s last verification is kept (one file per log)."""
    name = hashlib.sha256(_log_key(ws).encode("utf-8")).hexdigest()[:24]
    return path.with_name(path.name + ".states") / f"{name}.json"


def read_verified_mark(ws: Workspace, path: Path | str | None = None) -> tuple[VerifiedMark | None, str]:
    """The last verification of ``ws`` this client recorded, checked, and why it is not usable ("" when
    there is none). Every field is bound: the MAC (this client's key) over the mark, the log key's signature
    on the checkpoint it names, the frontier against that checkpoint's root, the state file's SHA-256."""
    path = Path(path) if path else witness_path()
    prev = _entry(_load(path), ws)
    mark = prev.get("verified") if prev is not None else None
    if not isinstance(mark, dict):
        return None, ""
    if mark.get("version") != 2:
        return None, "the recorded verification is of an older format"
    key = _witness_key(path, create=False)
    if key is None or not hmac.compare_digest(_mark_mac(key, mark), str(mark.get("mac", ""))):
        return None, "the recorded verification does not match its MAC (edited, or the witness key is gone)"
    try:
        size = int(mark["size"])
        root = bytes.fromhex(str(mark["root"]))
        frontier = tuple(base64.b64decode(h, validate=True) for h in mark["frontier"])
        cp = parse_signed_checkpoint(
            str(mark["checkpoint"]).encode("utf-8"), {ws.origin: ws.log_public_key()}, origin=ws.origin
        )
        front = merkle.MerkleFrontier(size, frontier)
        keys = {str(k): str(v) for k, v in dict(mark["keys"]).items()}
        marked = tuple((int(s), str(k), str(line)) for s, k, line in mark["marked"])
        marked_count, last_time, state_digest = int(mark["marked_count"]), str(mark["last_time"]), str(mark["state"])
        state_size = int(mark.get("state_size", size))
        state_frontier = (
            tuple(base64.b64decode(h, validate=True) for h in mark["state_frontier"])
            if "state_frontier" in mark
            else frontier
        )
        merkle.MerkleFrontier(state_size, state_frontier)  # the right number of hashes of the right size
        if not 0 <= state_size <= size:
            raise ValueError("state size out of range")
    except (Error, KeyError, TypeError, ValueError, binascii.Error):
        return None, "the recorded verification is damaged"
    if mark.get("log_keyid") != key_id(ws.log_public_key()):
        return None, "the recorded verification is of another log key"
    if cp.size != size or not hmac.compare_digest(cp.root_hash, root) or not hmac.compare_digest(front.root(), root):
        return None, "the recorded verification does not match the signed checkpoint it names"
    try:
        data = _state_path(path, ws).read_bytes()
    except OSError:
        return None, "the recorded evidence state is missing"
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), state_digest):
        return None, "the recorded evidence state was changed"
    try:
        state = decode_state(data)
    except Error:
        return None, "the recorded evidence state does not decode"
    if state.size != state_size:
        return None, "the recorded evidence state is of another size"
    base = StateBase(state_size, state_frontier, state_digest)
    return VerifiedMark(size, root, frontier, last_time, keys, marked, marked_count, state, base), ""


def verified_mark(ws: Workspace, path: Path | str | None = None) -> VerifiedMark | None:
    """The last verification of ``ws`` this client recorded, if it is intact and of this log."""
    return read_verified_mark(ws, path)[0]


def record_verified(
    ws: Workspace, result: LogVerification, proof: VerifiedMark, path: Path | str | None = None
) -> None:
    """Remember a successful full or incremental verification of ``ws`` (for ``--incremental`` next time):
    ``proof`` is what it proved, ``result`` the verification (its checkpoint must cover exactly those entries)."""
    path = Path(path) if path else witness_path()
    with _locked(path):
        data = _load(path)
        prev = _entry(data, ws)
        entry: dict[str, Any] = (
            prev if prev is not None else {"origin": ws.origin, "workspace_id": ws.id, "path": str(ws.path)}
        )
        old = entry.get("verified")
        if isinstance(old, dict) and int(old.get("size", 0)) > proof.size:
            return  # never move the mark backwards (a concurrent verification saw more)
        with ws.engine.connect() as conn:
            note = checkpoint_at(conn, proof.size)
        if note is None or proof.size != result.entries:
            return
        base = proof.base
        if base is None or base.size > proof.size or proof.size - base.size > journal_limit(proof.size):
            # the state written anew (a full verification, or a journal grown past its limit)
            # written and hashed piece by piece: the same bytes as encode_state, without a copy of the whole
            parts = encode_state_parts(proof.state)
            spath = _state_path(path, ws)
            spath.parent.mkdir(parents=True, exist_ok=True)
            tmp = spath.with_name(f".{spath.name}.{secrets.token_hex(4)}")
            digest = hashlib.sha256()
            with tmp.open("wb") as f:
                for part in parts:
                    f.write(part)
                    digest.update(part)
            del parts
            os.replace(tmp, spath)
            base = StateBase(proof.size, proof.frontier, digest.hexdigest())
        mark: dict[str, Any] = {
            "version": 2,
            "size": proof.size,
            "root": proof.root.hex(),
            "checkpoint": note.decode("utf-8"),
            "frontier": [base64.b64encode(h).decode("ascii") for h in proof.frontier],
            "last_time": proof.last_time,
            "keys": dict(proof.keys),
            "marked": [list(m) for m in proof.marked],
            "marked_count": proof.marked_count,
            "state": base.digest,
            "state_size": base.size,
            "state_frontier": [base64.b64encode(h).decode("ascii") for h in base.frontier],
            "log_keyid": key_id(ws.log_public_key()),
        }
        mark["mac"] = _mark_mac(_witness_key(path, create=True) or b"", mark)
        entry["verified"] = mark
        data.pop(ws.id, None)
        data[_log_key(ws)] = entry
        _save(path, data)


def pinned_public_key(ws: Workspace) -> Ed25519PublicKey:
    """The workspace's log public key."""
    return ws.log_public_key()
