"""The Dask executor: tasks on a distributed cluster (``tcp://HOST:PORT``) or on a local one.

Workers must reach what the tasks name: input paths and the object store (a shared file system, or an
object store URL such as ``s3://bucket/prefix`` with credentials in the workers' environment). The
``memory://`` store is private to one process and cannot be used with Dask workers in other processes.

``map`` sends one task per worker thread, not one per item: each task runs a contiguous run of the items
in order (:func:`run_chunk`), so the scheduler handles a handful of tasks whatever the partition count
(the partition plan itself never depends on the executor), and a local cluster's results are fetched straight
from its workers (``direct``), not relayed by the scheduler, which in a ``LocalCluster`` shares the driver's process.
A local cluster polls less often than Dask's defaults (:data:`LOCAL_SETTINGS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from dataward.errors import Error
from dataward.scale.interface import Executor

_ADDRESS = re.compile(r"(tcp|tls)://[^\s/:]+(:[0-9]{1,5})")
T = TypeVar("T")
R = TypeVar("R")


class SchedulerError(Error):
    default_advice = "Check the scheduler address (tcp://HOST:PORT) and that the Dask scheduler is running."


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise Error("Dask is not installed", advice="Install the extra: pip install 'dataward[dask]'.") from None
    return distributed


def chunks(n_items: int, n_chunks: int) -> list[range]:
    """``range(n_items)`` cut into at most ``n_chunks`` contiguous runs whose lengths differ by at most one."""
    n_chunks = max(1, min(n_chunks, n_items))
    size, extra = divmod(n_items, n_chunks)
    out, start = [], 0
    for i in range(n_chunks):
        end = start + size + (1 if i < extra else 0)
        out.append(range(start, end))
        start = end
    return [r for r in out if len(r)]


def run_chunk(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``: one Dask task's share of a ``map``."""
    return [fn(x) for x in items]


#: a local cluster's settings. Every server of it (scheduler, nannies and client in the driver's process,
#: the workers) polls on timers: at Dask's defaults (event-loop tick 20 ms, memory monitor 100 ms, system
#: monitor 500 ms) an idle 2-worker cluster costs ~0.55 CPU s per 10 s in the driver and ~0.27 in each
#: worker, which at 10M rows is as much as the tasks' own work; at these, ~0.12 and ~0.05. The statistical
#: profiler (a stack sample of every task every 10 ms) is off. The workers' environment is Dask's default
#: without ``MALLOC_TRIM_THRESHOLD_``, which turns off glibc's dynamic ``mmap`` threshold.
LOCAL_SETTINGS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",  # the memory limits still hold, checked each second
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
}


class DaskExecutor(Executor):
    """``DaskExecutor(scheduler="tcp://host:8786")`` or ``DaskExecutor(workers=N)`` (a LocalCluster)."""

    name = "dask"

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None, timeout: float = 30) -> None:
        distributed = _import_distributed()
        self._cluster: Any = None
        if scheduler is not None and not _ADDRESS.fullmatch(scheduler):
            raise SchedulerError(f"{scheduler!r} is not a Dask scheduler address (tcp://HOST:PORT or tls://HOST:PORT)")
        try:
            if scheduler:
                self._client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
            else:
                import dask

                with dask.config.set(LOCAL_SETTINGS):  # read when the servers start their periodic callbacks
                    self._cluster = distributed.LocalCluster(
                        n_workers=max(1, workers or 2),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,  # no one could find its port; with bokeh installed it costs the start
                        silence_logs=40,
                    )
                    self._client = distributed.Client(self._cluster, set_as_default=False)
                    self._client.wait_for_workers(len(self._cluster.workers), timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            where = scheduler or "a local cluster"
            raise SchedulerError(f"cannot reach the Dask scheduler at {where}: {exc}".splitlines()[0]) from None
        self.scheduler = scheduler or str(self._cluster.scheduler_address)

    def _slots(self) -> list[str]:
        """One worker address per worker thread (sorted: the same order on every call)."""
        try:
            info = self._client.scheduler_info()
        except Exception:  # the slots only place tasks
            return []
        workers = info.get("workers", {})
        return [addr for addr in sorted(workers) for _ in range(max(1, int(workers[addr].get("nthreads", 1))))]

    @property
    def workers(self) -> int:
        """Worker threads the scheduler lists; for a local cluster never fewer than the workers it was
        started with (one thread each): a worker missing from one listing (busy, restarting) must not send
        an acquisition down the one-process path, which the caller decides from this count."""
        listed = len(self._slots())
        if self._cluster is not None:
            return max(1, listed, len(self._cluster.workers))
        return max(1, listed)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        items = list(items)
        slots = self._slots() or [""]
        runs = chunks(len(items), len(slots))
        futures = []
        for slot, run in zip(slots, runs, strict=False):
            where = {"workers": [slot], "allow_other_workers": True} if slot else {}
            futures.append(self._client.submit(run_chunk, fn, items[run.start : run.stop], pure=False, **where))
        try:
            # straight from a local cluster's workers; a remote cluster's workers may be out of the client's reach
            parts = self._client.gather(futures, direct=self._cluster is not None)
        finally:
            for f in futures:
                f.release()
        return [r for part in parts for r in part]

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers, "scheduler": self.scheduler}

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(scheduler: str | None = None, workers: int | None = None) -> Executor | None:
    """The executor for ``--scheduler``/``--workers``; None means the default in-process code path."""
    if scheduler:
        return DaskExecutor(scheduler=scheduler)
    if workers is not None and workers > 1:
        return DaskExecutor(workers=workers)
    return None
