"""Threat-intelligence feeds loaded into the workspace: verified on the way in, recorded in the log, and
matched by every `dataward screen` (each stored feed is re-verified against its key when it is used)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.core import dsse
from dataward.errors import ConflictError, InputError
from dataward.identity import Actor
from dataward.model.workflow_records import FeedRecord
from dataward.store import intel_feeds
from dataward.timeutil import now_iso
from dataward.workspace import Workspace, admin_change

if TYPE_CHECKING:
    from dataward.screen.intel import Feed


@dataclass(frozen=True)
class LoadedFeed:
    """A loaded feed version as `intel list` shows it: id, version, issuer, size, digest and verifying key."""

    feed_id: str
    version: int
    issuer: str
    indicators: int
    feed_digest: str
    keyid: str
    added_at: str
    added_by: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `intel list --json` prints."""
        return {
            "id": self.feed_id,
            "version": self.version,
            "issuer": self.issuer,
            "indicators": self.indicators,
            "sha256": self.feed_digest,
            "keyid": self.keyid,
            "added_at": self.added_at,
            "added_by": self.added_by,
        }


def add_feed(ws: Workspace, actor: Actor, path: str | Path, keys: Sequence[Ed25519PublicKey]) -> LoadedFeed:
    """Verify a signed feed with ``keys`` and load it. A feed may only move forward in version."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read feed {p}: {exc.strerror}") from None
    if not keys:
        raise InputError(f"{p}: give the feed's public key (--key) to verify it")
    return add_feed_bytes(ws, actor, data, str(p), keys)


def add_feed_bytes(
    ws: Workspace, actor: Actor, data: bytes, where: str, keys: Sequence[Ed25519PublicKey]
) -> LoadedFeed:
    """:func:`add_feed` of a feed already read (``where`` names it in errors). An admin change: under an
    admin threshold above 1 it is proposed (:mod:`dataward.admin`)."""
    from dataward.screen.intel import load_feed_bytes

    feed = load_feed_bytes(data, where=where, keys=keys)
    by_id = {dsse.key_id(k): k for k in keys}
    verifier = by_id[feed.signed_by[0]]
    digest = ws.objects.put_bytes("meta", data)
    call = {
        "op": "intel.add",
        "args": {"sha256": digest, "where": where, "keys": [dsse.public_key_bytes(k).hex() for k in keys]},
    }
    with admin_change(ws, actor, "intel.add", f"intel:{feed.id}@{feed.version}", call=call) as ch:
        have = intel_feeds.newest_version(ch.conn, feed.id)
        if have is not None and have >= feed.version:
            raise ConflictError(
                f"feed {feed.id!r} version {feed.version} is not newer than the loaded version {have}",
                advice="A feed only moves forward: an older version could be a rollback by an attacker.",
            )
        row = FeedRecord(
            feed.id,
            feed.version,
            feed.issuer,
            digest,
            dsse.public_key_bytes(verifier).hex(),
            len(feed.indicators),
            now_iso(),
            actor.name,
        )
        intel_feeds.insert_feed(ch.conn, row)
        ch.details.update(
            {
                "feed": feed.id,
                "version": feed.version,
                "issuer": feed.issuer,
                "indicators": len(feed.indicators),
                "sha256": digest,
                "keyid": feed.signed_by[0],
            }
        )
    return _loaded(row)


def _loaded(r: FeedRecord) -> LoadedFeed:
    return LoadedFeed(
        r.feed_id,
        r.version,
        r.issuer,
        r.indicators,
        r.feed_digest,
        dsse.key_id(dsse.public_key_from_hex(r.public_key)),
        r.added_at,
        r.added_by,
    )


def list_feeds(ws: Workspace, *, latest_only: bool = True) -> list[LoadedFeed]:
    """The loaded feeds in id order: each feed's newest version, or every version."""
    with ws.engine.connect() as conn:
        rows = intel_feeds.feed_records(conn, latest_only=latest_only)
    return [_loaded(r) for r in rows]


def active_feeds(ws: Workspace) -> list[Feed]:
    """The latest version of every loaded feed, re-read from the store and re-verified with its key."""
    from dataward.screen.intel import load_feed_bytes

    with ws.engine.connect() as conn:
        latest = intel_feeds.feed_records(conn, latest_only=True)
    feeds = []
    for r in latest:
        data = ws.objects.read_bytes("meta", r.feed_digest)  # re-hashed against its name
        feeds.append(
            load_feed_bytes(data, where=f"intel feed {r.feed_id}", keys=[dsse.public_key_from_hex(r.public_key)])
        )
    return feeds
