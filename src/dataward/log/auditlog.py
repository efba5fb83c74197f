"""Appending to and reading the audit log inside catalog transactions.

Each entry body is canonical JSON (seq, time, principal, action, subject, details, keyid) signed by the
acting principal. The Merkle leaf is the canonical JSON ``{"entry": <body>, "signature": "<base64>"}``
(see :func:`leaf_data`), so the tree commits to the signature too: a changed signature is a changed leaf.
Leaves form an RFC 6962 Merkle tree whose perfect subtrees are stored in ``log_nodes`` (level, index), so
proofs need O(log n) reads. Appends happen in the same transaction as the change they record; after each
append (or batch of appends) the workspace log key signs a C2SP checkpoint.

Appenders are serialized (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock)
and read the log's size only after taking the lock, so two processes cannot fork the tree. Entry times
never go backwards (a clock that steps back is clamped to the previous entry's time), and every signing
key must be the principal's active, unexpired key at the moment of the append.
"""

from __future__ import annotations

import base64
import hashlib
import json.encoder
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dataward.core import merkle
from dataward.core.canonical import canonical_json
from dataward.core.checkpoint import Checkpoint, sign_checkpoint
from dataward.errors import IntegrityError, SignatureError
from dataward.identity import Actor
from dataward.store import log_entries as store
from dataward.store.catalog import Transaction, lock_for_append
from dataward.timeutil import now, now_iso, parse_iso

_encode_str = json.encoder.encode_basestring  # the C encoder canonical_json's json.dumps uses
#: canonical_json's settings in one encoder built once (json.dumps with options builds one per call)
_canonical_text = json.encoder.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
).encode


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


#: the C encoder JSONEncoder.encode makes on every call, made once (canonical_json's settings: sorted keys,
#: compact separators, UTF-8 kept, no NaN; no circular-reference markers, so a cyclic value raises
#: RecursionError instead of ValueError); used for dicts and lists (entry details, the bodies log verify checks)
_c_encode = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _no_default, _encode_str, None, ":", ",", True, False, False
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def _canonical_details(details: dict[str, Any]) -> bytes:
    """canonical_bytes(details) for a dict."""
    if _c_encode is None:
        return _canonical_text(details).encode("utf-8")
    return "".join(_c_encode(details, 0)).encode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """:func:`dataward.core.canonical.canonical_json` of ``value``, byte for byte, at less cost per call (the
    log encodes and checks one body per entry)."""
    return canonical_text(value).encode("utf-8")


def canonical_text(value: Any) -> str:
    """:func:`canonical_bytes` before its UTF-8 encoding. For a ``body`` that decodes as UTF-8,
    ``canonical_text(v) == body.decode("utf-8")`` exactly when ``canonical_bytes(v) == body`` (strict UTF-8
    is one-to-one; a text holding a lone surrogate, which no decoded body holds, is simply unequal), so a
    check can compare texts and skip the encoding. Raises ValueError for NaN or infinities."""
    if _c_encode is not None and type(value) in (dict, list):
        return "".join(_c_encode(value, 0))
    return _canonical_text(value)


@dataclass(frozen=True)
class PendingEntry:
    """An entry to append: who acts (and signs), the action, its subject and details."""

    actor: Actor
    action: str
    subject: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class LogEntry:
    """An appended entry: its indexed fields, the signed body, the signature and the leaf hash."""

    seq: int
    time: str
    principal: str
    action: str
    subject: str
    details: Mapping[str, Any]
    keyid: str
    entry: bytes
    signature: bytes
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (details as signed, the leaf hash in hex)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "principal": self.principal,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details),
            "keyid": self.keyid,
            "leaf_hash": self.leaf_hash.hex(),
        }


def entry_body(
    seq: int, time: str, principal: str, action: str, subject: str, details: Mapping[str, Any], keyid: str
) -> bytes:
    """The canonical JSON of the entry object (keys sorted: action, details, keyid, principal, seq, subject,
    time), assembled from its parts; any value of another type than expected goes through the generic encoder."""
    if type(seq) is int and all(type(v) is str for v in (time, principal, action, subject, keyid)):
        return b"".join(
            (
                b'{"action":',
                _str_json(action),
                b',"details":',
                canonical_bytes(dict(details)),
                b',"keyid":',
                _str_json(keyid),
                b',"principal":',
                _str_json(principal),
                b',"seq":',
                str(seq).encode("ascii"),
                b',"subject":',
                _str_json(subject),
                b',"time":',
                _str_json(time),
                b"}",
            )
        )
    return canonical_json(
        {
            "seq": seq,
            "time": time,
            "principal": principal,
            "action": action,
            "subject": subject,
            "details": dict(details),
            "keyid": keyid,
        }
    )


def _str_json(value: str) -> bytes:
    # json.dumps(value, ensure_ascii=False) for a str, as canonical_json encodes it
    return _encode_str(value).encode("utf-8")


def leaf_data(entry: bytes, signature: bytes) -> bytes:
    """The bytes of an entry's Merkle leaf: canonical JSON ``{"entry": <body>, "signature": "<base64>"}``.

    Built by concatenation: ``entry`` is already canonical JSON and the keys sort as written, so this is the
    canonical encoding of that object.
    """
    return b'{"entry":' + entry + b',"signature":"' + base64.b64encode(signature) + b'"}'


def entry_leaf_hash(entry: bytes, signature: bytes) -> bytes:
    """The RFC 6962 leaf hash of an entry and its signature (see :func:`leaf_data`)."""
    return merkle.leaf_hash(leaf_data(entry, signature))


def log_size(conn: Transaction) -> int:
    """One past the highest sequence number stored (0 for an empty log)."""
    return store.log_size(conn)


class NodeReader:
    """Reads stored perfect-subtree hashes, with a write-through cache for appends in one transaction."""

    def __init__(self, conn: Transaction) -> None:
        self._conn = conn
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        key = (level, index)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        h = store.node_hash(self._conn, level, index)
        if h is None:
            raise LookupError(f"log node ({level}, {index}) is missing")
        self._cache[key] = h
        return h

    def remember(self, level: int, index: int, h: bytes) -> None:
        """Cache a node this transaction wrote (so later leaves of the same append find it)."""
        self._cache[(level, index)] = h

    def prefetch(self, wanted: Iterable[tuple[int, int]]) -> None:
        """Read the nodes ``wanted`` in one query per 200 (not one query each); missing ones stay unread."""
        keys = sorted({k for k in wanted if k not in self._cache})
        for level, idx, h in store.nodes(self._conn, keys):
            self._cache[(level, idx)] = h

    def prefetch_for(self, compute: Callable[[merkle.GetNode], Any]) -> None:
        """Prefetch every node ``compute`` asks for: which nodes a proof or root needs depends only on sizes
        and indexes, never on hash values, so a dry run with a recording accessor lists them."""
        wanted: list[tuple[int, int]] = []

        def record(level: int, index: int) -> bytes:
            wanted.append((level, index))
            return bytes(32)

        compute(record)
        self.prefetch(wanted)


def root_at(size: int, get_node: NodeReader) -> bytes:
    """Root of the first ``size`` leaves, from stored perfect subtrees."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.subtree_root(0, size, get_node)


#: how far the previous entry's time may be ahead of this machine's clock (clock skew between writers)
MAX_CLOCK_SKEW = timedelta(minutes=10)


def _time_or_none(text: str) -> datetime | None:
    try:
        t = parse_iso(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def check_signing_keys(conn: Transaction, actors: Sequence[Actor], at: str) -> None:
    """Each actor's key must be its principal's active, unexpired key at ``at`` (a retired key cannot sign)."""
    seen: set[str] = set()
    for a in actors:
        if a.keyid in seen:
            continue
        seen.add(a.keyid)
        row = store.signing_key(conn, a.keyid)
        if row is None or row.principal != a.name:
            raise SignatureError(f"key {a.keyid[:16]} is not a registered key of {a.name}")
        if row.status != "active":
            raise SignatureError(
                f"key {a.keyid[:16]} of {a.name} is {row.status} and can no longer sign",
                advice=f"Act with {a.name}'s current key (open the workspace again), or ask an admin for a new one.",
            )
        if row.expires_at is not None and parse_iso(row.expires_at) <= parse_iso(at):
            raise SignatureError(
                f"key {a.keyid[:16]} of {a.name} expired at {row.expires_at}",
                advice=f"Rotate it: `dataward key rotate {a.name}`.",
            )


def append(conn: Transaction, entries: Sequence[PendingEntry], *, log_key: Actor, origin: str) -> list[LogEntry]:
    """Append ``entries`` (in order) and sign one checkpoint for the new size; same transaction as the caller.

    Raises :class:`SignatureError` (and so rolls the caller's change back) if a signing key is not active.
    """
    lock_for_append(conn)
    size, last_time = store.last_entry(conn)
    if last_time and _time_or_none(last_time) is None:
        raise IntegrityError(
            f"the last audit log entry ({size - 1}) has no valid time ({last_time[:40]!r})",
            advice="Run `dataward log verify`: the entry was altered.",
        )
    if last_time and parse_iso(last_time) > now() + MAX_CLOCK_SKEW:
        # following it would date every new entry in the future; refuse loudly instead
        raise IntegrityError(
            f"the last audit log entry ({size - 1}) is dated {last_time}, in the future",
            advice="Check this machine's clock, then run `dataward log verify`: the entry may have been altered.",
        )
    if entries:
        check_signing_keys(conn, [pe.actor for pe in entries] + [log_key], max(now_iso(), last_time))
    if not entries:
        return []
    nodes = NodeReader(conn)
    # the old frontier: every stored node the new leaves and the new root can need, in one query
    old = merkle.range_nodes(0, size)
    nodes.prefetch(old)
    frontier = merkle.MerkleFrontier(size, [nodes(level, idx) for level, idx in old])
    # never go back in time: the order of entries is also their time order (the verifier checks it); the
    # entries of one append share its time (they are one transaction)
    t = max(now_iso(), last_time)
    bodies = _bodies(size, t, entries)
    sigs = _sign_all(entries, bodies)
    sha256 = hashlib.sha256
    b64 = base64.b64encode
    leaves = [
        sha256(b'\x00{"entry":' + body + b',"signature":"' + b64(sig) + b'"}').digest()
        for body, sig in zip(bodies, sigs, strict=True)
    ]  # merkle.leaf_hash(leaf_data(body, sig)), inlined
    rows: list[tuple[Any, ...]] = []  # in the column order of schema.log_entries
    out: list[LogEntry] = []
    for i, (pe, body, sig, leaf) in enumerate(zip(entries, bodies, sigs, leaves, strict=True)):
        actor = pe.actor
        rows.append((size + i, t, actor.name, pe.action, pe.subject, body, actor.keyid, sig, leaf))
        out.append(LogEntry(size + i, t, actor.name, pe.action, pe.subject, pe.details, actor.keyid, body, sig, leaf))
    node_rows = frontier.extend(leaves)  # every perfect subtree the new leaves complete, level by level
    store.insert_entries(conn, rows)
    store.insert_nodes(conn, node_rows)
    note = sign_checkpoint(Checkpoint(origin, frontier.size, frontier.root()), origin, log_key.key)
    store.insert_checkpoint(conn, frontier.size, note.decode("utf-8"), now_iso())
    return out


def _bodies(first: int, t: str, entries: Sequence[PendingEntry]) -> list[bytes]:
    """The entry bodies of one append (the same bytes as :func:`entry_body` of each): the parts every entry of
    a batch shares (its time, the actor's name and key, the action) are encoded once."""
    if type(t) is not str or type(first) is not int:
        return [
            entry_body(first + i, t, pe.actor.name, pe.action, pe.subject, pe.details, pe.actor.keyid)
            for i, pe in enumerate(entries)
        ]
    tail = b',"time":' + _str_json(t) + b"}"
    actions: dict[Any, bytes] = {}
    middles: dict[tuple[Any, Any], bytes] = {}
    out: list[bytes] = []
    for i, pe in enumerate(entries):
        actor, action, subject = pe.actor, pe.action, pe.subject
        name, keyid = actor.name, actor.keyid
        head = actions.get(action)
        middle = middles.get((name, keyid))
        if head is None or middle is None or type(subject) is not str:
            if not (type(action) is str and type(name) is str and type(keyid) is str and type(subject) is str):
                out.append(entry_body(first + i, t, name, action, subject, pe.details, keyid))
                continue
            head = actions[action] = b'{"action":' + _str_json(action) + b',"details":'
            middle = middles[(name, keyid)] = (
                b',"keyid":' + _str_json(keyid) + b',"principal":' + _str_json(name) + b',"seq":'
            )
        details = pe.details
        out.append(
            b"".join(
                (
                    head,
                    _canonical_details(details if type(details) is dict else dict(details)),
                    middle,
                    str(first + i).encode("ascii"),
                    b',"subject":',
                    _str_json(subject),
                    tail,
                )
            )
        )
    return out


def _sign_all(entries: Sequence[PendingEntry], bodies: Sequence[bytes]) -> list[bytes]:
    """Each body signed by its entry's actor: one bulk call per actor (a batch usually has one)."""
    groups: dict[int, list[int]] = {}
    for i, pe in enumerate(entries):
        groups.setdefault(id(pe.actor), []).append(i)
    sigs: list[bytes] = [b""] * len(bodies)
    for idx in groups.values():
        for i, sig in zip(idx, entries[idx[0]].actor.sign_many([bodies[i] for i in idx]), strict=True):
            sigs[i] = sig
    return sigs


def latest_checkpoint(conn: Transaction) -> bytes | None:
    """The signed note of the latest checkpoint, or None for a log without one."""
    return store.latest_checkpoint(conn)


def iter_entries(conn: Transaction, *, batch: int = 10_000) -> Iterator[Any]:
    """Every stored entry row in sequence order, streamed ``batch`` rows at a time."""
    return store.iter_entry_rows(conn, batch=batch)
