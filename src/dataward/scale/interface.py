"""The executor interface: ordered ``map`` of a picklable function over task arguments.

Tasks are top-level functions of plain, picklable arguments (paths, object-store URLs, byte ranges), so
they can run in another process or on another machine; results come back in task order. An executor
never changes results: partitioning is decided by the caller, before any task runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(ABC):
    """Runs tasks; ``map`` returns results in the order of ``items``."""

    name: str = "executor"

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many tasks may run at once (used to size partitions)."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(x) for x in items]``, possibly in parallel, in order. A task's exception is re-raised."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the executor's resources (a local cluster, a client)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
