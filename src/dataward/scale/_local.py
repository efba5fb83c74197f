"""The in-process executor: the single-process reference every other executor must match."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from dataward.scale.interface import Executor

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor(Executor):
    """Runs tasks here, one after another (``threads=1``) or on a thread pool."""

    name = "local"

    def __init__(self, threads: int = 1) -> None:
        self._threads = max(1, threads)

    @property
    def workers(self) -> int:
        return self._threads

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self._threads == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(self._threads) as pool:
            return list(pool.map(fn, items))
