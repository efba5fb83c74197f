"""The Dask executor: tasks on a distributed cluster (``tcp://HOST:PORT``) or on a local one.

Workers must reach what the tasks name: input paths and the object store (a shared file system, or an
object store URL such as ``s3://bucket/prefix`` with credentials in the workers' environment). The
``memory://`` store is private to one process and cannot be used with Dask workers in other processes.
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

                # the workers' statistical profiler samples every task's stack: CPU that does no work
                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    self._cluster = distributed.LocalCluster(
                        n_workers=max(1, workers or 2),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=40,
                    )
                self._client = distributed.Client(self._cluster, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            where = scheduler or "a local cluster"
            raise SchedulerError(f"cannot reach the Dask scheduler at {where}: {exc}".splitlines()[0]) from None
        self.scheduler = scheduler or str(self._cluster.scheduler_address)

    @property
    def workers(self) -> int:
        try:
            info = self._client.scheduler_info()
        except Exception:  # the count only sizes partitions
            return 1
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        futures = self._client.map(fn, list(items), pure=False)
        try:
            return list(self._client.gather(futures))
        finally:
            for f in futures:
                f.release()

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
