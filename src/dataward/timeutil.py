"""Times are UTC, ISO-8601 with a 'Z', second precision plus microseconds: sortable as strings."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def to_iso(t: datetime) -> str:
    """``t`` in UTC as ISO 8601 with microseconds and a ``Z`` suffix, e.g. ``2026-01-02T03:04:05.000000Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    """The current UTC time in the ISO 8601 form of :func:`to_iso`."""
    return to_iso(now())


def parse_iso(text: str) -> datetime:
    """Datetime from ISO 8601 text, accepting a trailing ``Z`` for
    UTC; raises ``ValueError`` if the text is not ISO 8601.
    """
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
