"""Crash injection for tests: ``DATAWARD_CRASH_AT=<point>`` kills the process at that named point.

Every state change (:meth:`dataward.workspace.Workspace.change`) has two points, ``<action>.before-commit``
(the catalog rows and the log entry are written, not committed) and ``<action>.after-commit`` (committed;
the command's next step, often its next transaction, has not run). ``acquire`` adds its own
(``acquire.after-copy``...). The process ends with ``os._exit(137)``, as SIGKILL would: no clean-up, no
``finally``, no rollback but the database's own.
"""

from __future__ import annotations

import os

ENV = "DATAWARD_CRASH_AT"


def crash_point(name: str) -> None:
    """Die at once when ``DATAWARD_CRASH_AT`` names this point (or ``<name>#N`` on its N-th occurrence)."""
    want = os.environ.get(ENV)
    if not want:
        return
    if want == name:
        os._exit(137)
    if want.startswith(name + "#"):
        seen = _seen.get(name, 0) + 1
        _seen[name] = seen
        if want == f"{name}#{seen}":
            os._exit(137)


_seen: dict[str, int] = {}
