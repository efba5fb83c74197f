"""Denials of unauthenticated requests, rate-limited and aggregated: one ``access.denied`` entry per source
address and minute, with a count, so whoever can reach the port cannot grow the signed log without bound.

A request refused before anyone signed in (no token, an unknown, expired or revoked token, a failed
sign-in) is counted here instead of being logged on its own. The counts of a minute are written as one
entry per address when the first request of a later minute arrives (:meth:`DenialAggregator.flush_due`),
and whatever is pending when the console stops (:meth:`DenialAggregator.flush_all`). Refusals of a
signed-in principal are not counted here: each of those is logged as it happens, naming the principal.

Memory is bounded too: at most :data:`MAX_ADDRESSES` addresses are kept per minute (the rest are counted
under ``"(other)"``), and at most :data:`MAX_REASONS` distinct reasons per address.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataward.workspace import Workspace

MAX_ADDRESSES = 1000
MAX_REASONS = 20
OTHER = "(other)"


@dataclass
class _Bucket:
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)


def _minute_text(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%MZ")


@dataclass
class DenialAggregator:
    """Counts unauthenticated denials per (minute, address); writes them as aggregated log entries."""

    ws: Workspace
    clock: Callable[[], float] = time.time
    _pending: dict[int, dict[str, _Bucket]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, address: str | None, action: str, reason: str) -> None:
        """Count one refused unauthenticated request from ``address``."""
        minute = int(self.clock() // 60)
        addr = (address or "unknown")[:64]
        with self._lock:
            buckets = self._pending.setdefault(minute, {})
            if addr not in buckets and len(buckets) >= MAX_ADDRESSES:
                addr = OTHER
            b = buckets.setdefault(addr, _Bucket())
            b.count += 1
            why = reason[:200]
            if why in b.reasons or len(b.reasons) < MAX_REASONS:
                b.reasons[why] += 1
            else:
                b.reasons["(other reasons)"] += 1
            if action in b.actions or len(b.actions) < MAX_REASONS:
                b.actions[action] += 1

    def pending(self) -> int:
        """How many denials are counted and not yet written."""
        with self._lock:
            return sum(b.count for buckets in self._pending.values() for b in buckets.values())

    def due(self) -> bool:
        """Whether a minute before the current one has counts waiting (cheap: no lock, no I/O)."""
        now = int(self.clock() // 60)
        return any(m < now for m in list(self._pending))

    def flush_due(self) -> int:
        """Write the counts of every minute that is over; return how many entries were written."""
        now = int(self.clock() // 60)
        return self._flush(lambda m: m < now)

    def flush_all(self) -> int:
        """Write everything pending (at shutdown)."""
        return self._flush(lambda m: True)

    def _flush(self, which: Callable[[int], bool]) -> int:
        with self._lock:
            ready = {m: b for m, b in self._pending.items() if which(m)}
            for m in ready:
                del self._pending[m]
        if not ready:
            return 0
        from dataward.log import auditlog
        from dataward.store.catalog import write_transaction

        log = self.ws.log_actor()
        entries = [
            auditlog.PendingEntry(
                log,
                "access.denied",
                f"address:{addr}",
                {
                    "principal": "(unauthenticated)",
                    "source_address": addr,
                    "minute": _minute_text(m),
                    "count": b.count,
                    "actions": dict(sorted(b.actions.items())),
                    "reasons": dict(b.reasons.most_common()),
                },
            )
            for m, buckets in sorted(ready.items())
            for addr, b in sorted(buckets.items())
        ]
        with write_transaction(self.ws.engine) as conn:
            auditlog.append(conn, entries, log_key=log, origin=self.ws.origin)
        return len(entries)
