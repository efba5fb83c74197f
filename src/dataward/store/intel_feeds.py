"""Threat-intelligence feed queries: the catalog's loaded feed versions."""

from __future__ import annotations

from sqlalchemy import Connection, func, insert, select

from dataward.model.workflow_records import FeedRecord
from dataward.store import schema
from dataward.store.repository import repository, value_of

__all__ = ["feed_records", "insert_feed", "newest_version"]


@repository
def newest_version(conn: Connection, feed_id: str) -> int | None:
    """The highest loaded version of the feed (None: never loaded)."""
    t = schema.intel_feeds
    have = conn.execute(select(func.max(t.c.version)).where(t.c.feed_id == feed_id)).scalar()
    return None if have is None else int(have)


@repository
def feed_records(conn: Connection, *, latest_only: bool = True) -> list[FeedRecord]:
    """Loaded feeds by id (each id's newest version only, unless ``latest_only`` is false), in id order."""
    t = schema.intel_feeds
    rows = [value_of(FeedRecord, r) for r in conn.execute(select(t).order_by(t.c.feed_id, t.c.version))]
    if not latest_only:
        return rows
    latest: dict[str, FeedRecord] = {}
    for r in rows:
        latest[r.feed_id] = r
    return list(latest.values())


@repository
def insert_feed(conn: Connection, feed: FeedRecord) -> None:
    """Record a verified feed version."""
    conn.execute(
        insert(schema.intel_feeds).values(
            feed_id=feed.feed_id,
            version=feed.version,
            issuer=feed.issuer,
            feed_digest=feed.feed_digest,
            public_key=feed.public_key,
            indicators=feed.indicators,
            added_at=feed.added_at,
            added_by=feed.added_by,
        )
    )
