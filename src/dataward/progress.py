"""Progress of long work, as a small callback protocol (the library never draws; the CLI does).

Library code that can take more than a couple of seconds takes ``progress: Progress | None`` and calls
``progress.start(description, total)`` for each phase, then ``advance`` / ``update`` on the returned
:class:`Task` and ``done`` at the end. The CLI passes a rich implementation (cli/_progress.py) on a
terminal and nothing otherwise, so piped output carries no progress at all. :class:`Recorder` keeps the
calls, for tests and for callers that want to log them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Task(Protocol):
    """One phase of work: ``total`` units (None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done."""
        ...

    def update(self, *, completed: int | None = None, total: int | None = None, note: str | None = None) -> None:
        """Set the count done, the total, or a short note on what is being worked on."""
        ...

    def done(self) -> None:
        """The phase is over (a bar is removed or completed)."""
        ...


@runtime_checkable
class Progress(Protocol):
    """Where long work reports its phases."""

    def start(self, description: str, total: int | None = None, *, unit: str = "items") -> Task:
        """Begin a phase named ``description`` of ``total`` ``unit`` (None: unknown)."""
        ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        return None

    def update(self, *, completed: int | None = None, total: int | None = None, note: str | None = None) -> None:
        return None

    def done(self) -> None:
        return None


class NullProgress:
    """Reports nowhere."""

    def start(self, description: str, total: int | None = None, *, unit: str = "items") -> Task:
        """A task that ignores every report."""
        return _NullTask()


@dataclass
class RecordedTask:
    """A phase as a :class:`Recorder` saw it (for tests)."""

    description: str
    total: int | None
    unit: str
    completed: int = 0
    notes: list[str] = field(default_factory=list)
    finished: bool = False

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units."""
        self.completed += n

    def update(self, *, completed: int | None = None, total: int | None = None, note: str | None = None) -> None:
        """Record the new count, total or note."""
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if note is not None:
            self.notes.append(note)

    def done(self) -> None:
        """Mark the phase finished."""
        self.finished = True


@dataclass
class Recorder:
    """Keeps every task it was asked to start."""

    tasks: list[RecordedTask] = field(default_factory=list)

    def start(self, description: str, total: int | None = None, *, unit: str = "items") -> Task:
        """Start and keep a :class:`RecordedTask`."""
        t = RecordedTask(description, total, unit)
        self.tasks.append(t)
        return t


def phase(progress: Progress | None, description: str, total: int | None = None, *, unit: str = "items") -> Task:
    """``progress.start(...)``, or a task that reports nowhere when there is no progress."""
    return (progress or NullProgress()).start(description, total, unit=unit)
