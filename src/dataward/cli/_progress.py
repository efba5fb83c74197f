"""The rich side of :mod:`dataward.progress`: bars on stderr, only when stderr is a terminal."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from dataward.progress import NullProgress, Task
from dataward.progress import Progress as ProgressProtocol


class _RichTask:
    def __init__(self, owner: RichProgress, bar: Progress, task: TaskID) -> None:
        self._owner, self._bar, self._task = owner, bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def update(self, *, completed: int | None = None, total: int | None = None, note: str | None = None) -> None:
        kw: dict[str, Any] = {}
        if completed is not None:
            kw["completed"] = completed
        if total is not None:
            kw["total"] = total
            kw["shown_total"] = f"{total:,}"
        if note is not None:
            kw["note"] = note
        self._bar.update(self._task, **kw)

    def done(self) -> None:
        self._owner.finish(self._task)


class RichProgress:
    """Draws each phase as a transient bar on ``console`` (stderr). One live display at a time: it starts
    with the first phase and stops when the last open phase is done. A worker forked while a bar is live
    (the parsing sandbox) reports nowhere; one forked before any bar draws its own."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._open: set[TaskID] = set()
        self._pid = os.getpid()

    def start(self, description: str, total: int | None = None, *, unit: str = "items") -> Task:
        if self._bar is not None and self._pid != os.getpid():
            # a sandboxed worker forked while the parent draws: the parent's bar stays the only one
            return NullProgress().start(description, total, unit=unit)
        if self._bar is None:
            self._pid = os.getpid()
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.fields[shown_total]} {task.fields[unit]}"),
                TextColumn("[dim]{task.fields[note]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.start()
        shown = f"{total:,}" if total is not None else "?"
        tid = self._bar.add_task(description, total=total, unit=unit, note="", shown_total=shown)
        self._open.add(tid)
        return _RichTask(self, self._bar, tid)

    def finish(self, tid: TaskID) -> None:
        if self._bar is None:
            return
        self._open.discard(tid)
        self._bar.remove_task(tid)
        if not self._open:
            self._bar.stop()
            self._bar = None


def terminal_progress(console: Console) -> ProgressProtocol | None:
    """A progress reporter for ``console`` when it is a terminal, else None (piped output stays clean)."""
    return RichProgress(console) if console.is_terminal else None
