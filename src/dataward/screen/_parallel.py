"""Screening's work on a small pool of threads: each batch's checks side by side, the next batch read meanwhile.

The checks of one batch are independent (each keeps its own state; the shared string encodings are
locked), and most of their time is in NumPy and Arrow kernels that release the GIL, so two cores run
them at once. Reading ahead decodes batch k+1 while batch k is checked. Python threads, not Arrow's
pool: its start and per-thread heaps cost the first call more than it saves (ADR 0059). The results do
not depend on the number of threads or on which thread ran what: every check sees its batches in order,
one at a time, and the report is assembled in the checks' registry order (ADR 0104).

``DATAWARD_SCREEN_THREADS=1`` runs everything on the calling thread, as before; the default is the number
of cores this process may run on, at most 4 (the checks of a batch are about ten tasks of unequal size).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_MAX_THREADS = 4
_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def _forget_pools() -> None:
    # a forked child has the parent's pool objects but not their threads: work sent to them would never run
    global _LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def screen_threads() -> int:
    """Threads for a batch's checks: ``DATAWARD_SCREEN_THREADS`` if set, else the usable cores (at most 4)."""
    raw = os.environ.get("DATAWARD_SCREEN_THREADS", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_THREADS, cores))


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    # one pool per size and process, kept: starting threads at every call costs more than the pool's idle threads
    key = threads if name == "checks" else -threads
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"dataward-screen-{name}")
            _POOLS[key] = pool
        return pool


def run_all(tasks: Sequence[Callable[[], None]], threads: int, *, on_caller: Sequence[Callable[[], None]] = ()) -> None:
    """Run every task on ``threads`` threads and the ``on_caller`` tasks on the calling thread meanwhile (all on
    the calling thread when ``threads`` is 1); return when all are done.

    Tasks are started in the order given (put the long ones first); an exception of a task is raised
    here once all have finished, so none is left running behind the caller."""
    if threads <= 1 or len(tasks) + len(on_caller) <= 1:
        for task in (*tasks, *on_caller):
            task()
        return
    pool = _pool("checks", threads)
    futures = [pool.submit(task) for task in tasks]
    error: BaseException | None = None
    for task in on_caller:
        try:
            task()
        except BaseException as exc:  # raised below, after the pool's tasks have finished
            error = error or exc
    for fut in futures:
        failure = fut.exception()
        if failure is not None and error is None:
            error = failure
    if error is not None:
        raise error


def read_ahead(items: Iterator[T], threads: int) -> Iterator[T]:
    """Yield ``items`` in order while the next one is produced on another thread.

    The iterator is advanced by one thread at a time (each step waits for the one before), so a generator
    is never run concurrently with itself; its exceptions are raised at the item they replace. Closing
    this iterator waits for the step under way and closes ``items`` (a reader's file is not left open)."""
    if threads <= 1:
        yield from items
        return
    pool = _pool("reader", 1)
    done = object()

    def step() -> object:
        return next(items, done)

    pending: Future[object] | None = pool.submit(step)
    try:
        while pending is not None:
            item = pending.result()
            pending = None
            if item is done:
                return
            pending = pool.submit(step)
            yield item  # type: ignore[misc]
    finally:
        if pending is not None:
            pending.exception()  # wait; an error of a step no one asked for is not raised
        close = getattr(items, "close", None)
        if close is not None:
            close()
