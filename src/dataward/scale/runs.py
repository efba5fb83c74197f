"""``check`` and ``detect`` on an executor: the suite is split, the data is not.

A screening check or a detector reads the whole batch (duplicates, outliers and label models need every
record at once), so what runs in parallel is the *suite*: the checks (or detectors) are dealt into one
group per worker, every task reads the file itself and runs its group, and the driver puts the results
back in suite order. Each check and detector is deterministic and independent of the others, so the
report equals the one a single process writes (tested), on every executor.

Every task parses the quarantined file inside :func:`dataward.records.sandbox.run_sandboxed` on the
worker that runs it: the driver never parses the data, and a Dask worker is no less confined than the
single-process path. The tasks take only paths and plain options, so they run on any executor; a Dask
worker must see the path (a shared file system).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataward.errors import InputError
from dataward.scale.interface import Executor

if TYPE_CHECKING:
    from dataward.detect.api import DetectionReport
    from dataward.screen.interface import ScreenReport

EXECUTORS = ("local", "processes", "dask")

#: relative CPU cost of the screening checks on tabular data (1M x 10 profile), to balance the groups
CHECK_COST = {
    "tails": 6.0,
    "outliers": 4.0,
    "duplicates": 3.0,
    "new_values": 2.0,
    "format": 1.5,
    "drift": 1.5,
    "pii": 1.5,
    "text_signals": 1.5,
    "range": 1.0,
}
#: the batch profile, built by the task whose group has the checks that read it
PROFILE_COST = 2.0


def make_executor(kind: str | None, *, workers: int | None = None, scheduler: str | None = None) -> Executor | None:
    """The executor named by ``--executor`` (None: the single-process code path, no executor at all)."""
    if kind is None:
        return None
    if kind not in EXECUTORS:
        raise InputError(f"unknown executor {kind!r}; one of {', '.join(EXECUTORS)}")
    if kind == "local":
        from dataward.scale._local import LocalExecutor

        return LocalExecutor()
    if kind == "processes":
        from dataward.scale.processes import ProcessExecutor, usable_cpus

        return ProcessExecutor(workers or usable_cpus())
    from dataward.scale.dask import DaskExecutor

    return DaskExecutor(scheduler=scheduler) if scheduler else DaskExecutor(workers=workers or 2)


def deal(names: Sequence[str], groups: int, cost: Mapping[str, float]) -> list[list[str]]:
    """``names`` dealt into at most ``groups`` groups of about equal total cost (longest first), each group
    in suite order; depends only on its arguments."""
    groups = max(1, min(groups, len(names)))
    bins: list[list[str]] = [[] for _ in range(groups)]
    load = [0.0] * groups
    for name in sorted(names, key=lambda n: (-cost.get(n, 1.0), names.index(n))):
        i = min(range(groups), key=lambda k: (load[k], k))
        bins[i].append(name)
        load[i] += cost.get(name, 1.0)
    order = {n: i for i, n in enumerate(names)}
    return [sorted(b, key=order.__getitem__) for b in bins if b]


# ------------------------------------------------------------------------------------------- check


@dataclass(frozen=True)
class CheckTask:
    """A worker's share of a `check` run: the file and the names of the checks it runs."""

    path: str
    checks: tuple[str, ...]
    options: Mapping[str, Any]


def check_task(t: CheckTask) -> ScreenReport:
    """Run one share of the checks on the file, in the worker's own sandbox."""
    from dataward.records.sandbox import run_sandboxed
    from dataward.screen.api import check_path

    return run_sandboxed(check_path, t.path, where=t.path, checks=list(t.checks), **t.options)


def check_on(executor: Executor, path: str, *, checks: Sequence[str] | None = None, **options: Any) -> ScreenReport:
    """:func:`dataward.screen.api.check_path` of ``path`` with the checks split across ``executor``'s workers
    (keyword arguments as for ``check_path``; ``progress`` is off)."""
    from dataclasses import replace

    from dataward.screen import registry

    t0 = time.perf_counter()
    names = list(checks) if checks else [c.name for c in registry.default_checks()]
    for n in names:
        registry.get(n)  # an unknown name is refused before any task runs
    options = {k: v for k, v in options.items() if k != "progress"}
    # the checks that read the batch's profile go together: the other tasks skip building it
    profiled = [n for n in names if registry.get(n).needs_batch_profile]
    unit = "\0profile"
    cost = {**CHECK_COST, unit: PROFILE_COST + sum(CHECK_COST.get(n, 1.0) for n in profiled)}
    dealt = deal([n for n in names if n not in profiled] + ([unit] if profiled else []), executor.workers, cost)
    order = {n: i for i, n in enumerate(names)}
    groups = [sorted([x for n in g for x in (profiled if n == unit else [n])], key=order.__getitem__) for g in dealt]
    parts = executor.map(check_task, [CheckTask(str(path), tuple(g), options) for g in groups])
    by_name = {r.check: r for part in parts for r in part.results}
    first = parts[0]
    return replace(
        first,
        results=tuple(by_name[n] for n in names if n in by_name),
        seconds=time.perf_counter() - t0,
    )


# ------------------------------------------------------------------------------------------ detect


@dataclass(frozen=True)
class DetectTask:
    """A worker's share of a `detect` run: the file and the names of the detectors it runs."""

    path: str
    detectors: tuple[str, ...]  # empty: choose (the names of the detectors that apply), run nothing
    options: Mapping[str, Any]


def _detect_part(path: str, detectors: tuple[str, ...], options: Mapping[str, Any]) -> Any:
    from threadpoolctl import threadpool_limits

    from dataward.detect import api
    from dataward.detect.representation import load_records

    opts = dict(options)
    fmt, seed = opts.pop("format", None), int(opts.pop("seed", 0))
    exclude, params = tuple(opts.pop("exclude", ())), opts.pop("params", None) or {}
    names = opts.pop("detectors", None)
    rep = load_records(path, format=fmt, **opts)
    api.load_builtin_detectors()
    if not detectors:
        return [c.name for c in api._choose(rep, names, exclude)]
    with threadpool_limits(limits=1):  # as detect() runs them
        out = []
        for name in detectors:
            from dataward.detect import registry

            out.append(api._run(registry.get(name), dict(params.get(name, {})), rep, seed))
        return out


def detect_task(t: DetectTask) -> Any:
    """Run one share of the detectors on the file, in the worker's own sandbox."""
    from dataward.records.sandbox import run_sandboxed

    return run_sandboxed(_detect_part, t.path, t.detectors, t.options, where=t.path)


def _combine(
    path: str, results: Mapping[str, Any], meta: Sequence[Mapping[str, Any]], options: Mapping[str, Any]
) -> Any:
    from dataward.detect import api
    from dataward.detect.representation import load_records

    opts = dict(options)
    fmt, seed = opts.pop("format", None), int(opts.pop("seed", 0))
    for k in ("exclude", "params", "detectors"):
        opts.pop(k, None)
    rep = load_records(path, format=fmt, **opts)
    return api.combine(rep, results, meta, seed=seed)


def detect_on(executor: Executor, path: str, **options: Any) -> DetectionReport:
    """:func:`dataward.detect.api.detect` of ``path`` with the detectors split across ``executor``'s workers
    (keyword arguments as for ``detect``; ``progress`` is off). The choice of detectors and the ensemble
    (:func:`dataward.detect.api.combine`) run sandboxed here, each detector sandboxed on a worker."""
    from dataclasses import replace

    from dataward.records.sandbox import run_sandboxed

    t0 = time.perf_counter()
    options = {k: v for k, v in options.items() if k != "progress" and v is not None}
    chosen: list[str] = run_sandboxed(_detect_part, path, (), options, where=path)
    groups = deal(chosen, executor.workers, {})
    parts = executor.map(detect_task, [DetectTask(str(path), tuple(g), options) for g in groups])
    by_name = {r.detector: r for part in parts for r in part}
    results = {n: by_name[n] for n in chosen}
    meta = [_meta(n, results[n]) for n in chosen]
    report: DetectionReport = run_sandboxed(_combine, path, results, meta, options, where=path)
    return replace(report, seconds=time.perf_counter() - t0)


def _meta(name: str, result: Any) -> dict[str, Any]:
    return {
        "name": name,
        "params": dict(result.params),
        "seconds": round(result.seconds, 4),
        "skipped": result.skipped,
        "n_flagged": int(result.flagged.sum()) if result.skipped is None else 0,
    }


__all__ = ["EXECUTORS", "check_on", "deal", "detect_on", "make_executor"]
