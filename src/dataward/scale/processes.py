"""A process-pool executor on this machine: record hashing is per-record Python work (one SHA-256 call per
record, ~0.7 us each), which threads cannot share out, so large line files are hashed in worker processes.

Workers are forked (``fork`` start method where available): they start in milliseconds and inherit the
imported modules; tasks are the picklable top-level functions of :mod:`dataward.scale.records` and
:mod:`dataward.scale.merkle_parts`, so results are those of :class:`~dataward.scale.local.LocalExecutor`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from dataward.scale.interface import Executor

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

T = TypeVar("T")
R = TypeVar("R")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity masks
        return max(1, os.cpu_count() or 1)


class ProcessExecutor(Executor):
    """Runs tasks on a pool of ``workers`` local processes (created on first use, closed by ``close``)."""

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers if workers is not None else usable_cpus())
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing  # imported here: acquisitions without a pool do not pay for it
            from concurrent.futures import ProcessPoolExecutor

            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._pool = ProcessPoolExecutor(self._workers, mp_context=ctx)
        return self._pool

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self._workers == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        return list(self._get_pool().map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
