"""The screening API: profile trusted data into a baseline, and check a batch (file, directory or table).

One pass over the data feeds every check (and the batch's own profile); a second pass runs only when a
check needs the records of a finding it knew only at the end. Memory stays bounded by the record-batch
size plus each check's capped state.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

import pyarrow as pa

from dataward.progress import Progress, Task
from dataward.screen import registry
from dataward.screen._heap import settle_heap, small_pages
from dataward.screen._parallel import read_ahead, run_all, screen_threads
from dataward.screen.baseline import Baseline, ProfileBuilder
from dataward.screen.conform import Conformer, ReadStats, raw_batches, table_batches
from dataward.screen.interface import (
    Check,
    CheckContext,
    CheckResult,
    Finding,
    Options,
    ScreenError,
    ScreenReport,
    Severity,
)
from dataward.screen.policy import ScreenPolicy

registry.load_all()  # import every check module now, so that their imports are not charged to a run

PathOrTable: TypeAlias = str | Path | pa.Table | pa.RecordBatch

__all__ = ["check_path", "check_table", "create_baseline", "load_baseline"]


def _columns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(c for c in value.split(",") if c)
    return tuple(value)


def _source(
    path_or_table: PathOrTable, fmt: str | None, stats: ReadStats
) -> tuple[str, list[str], Callable[[], Iterator[pa.RecordBatch]]]:
    if isinstance(path_or_table, pa.Table | pa.RecordBatch):
        return "<table>", [], table_batches(path_or_table)
    path = Path(path_or_table)
    _fmt, files, factory = raw_batches(path, fmt, stats)
    return str(path), [str(f) for f in files], factory


class _Progress:
    """One record-counting phase on a :class:`dataward.progress.Progress` (reports nowhere without one)."""

    def __init__(self, progress: Progress | bool | None, what: str) -> None:
        self.progress = progress if isinstance(progress, Progress) else None
        self.what = what
        self._task: Task | None = None

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self._task = self.progress.start(self.what, None, unit="records")
        return self

    def advance(self, n: int, what: str | None = None) -> None:
        if self._task is not None:
            if what:
                self._task.update(note=what)
            self._task.advance(n)

    def reset(self, what: str) -> None:
        if self._task is not None:
            self._task.update(completed=0, note=what)

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.done()


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file; raises :class:`ScreenError` if it cannot be read or is not a valid baseline."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScreenError(f"cannot read baseline {p}: {exc.strerror}") from None
    return Baseline.from_json(data, where=str(p))


def create_baseline(
    path_or_table: PathOrTable,
    *,
    format: str | None = None,
    label: str | None = None,
    text: str | Iterable[str] | None = None,
    group: str | Iterable[str] | None = None,
    sample_size: int = 10_000,
    max_values: int = 1000,
    max_tokens: int = 20_000,
    partition: str = "",
    seed: int = 0,
    progress: Progress | None = None,
) -> Baseline:
    """Profile trusted data (see :mod:`dataward.screen.baseline`); the result merges with other partitions'."""
    settle_heap()
    with small_pages():
        return _create_baseline(
            path_or_table,
            format=format,
            label=label,
            text=text,
            group=group,
            sample_size=sample_size,
            max_values=max_values,
            max_tokens=max_tokens,
            partition=partition,
            seed=seed,
            progress=progress,
        )


def _create_baseline(
    path_or_table: PathOrTable,
    *,
    format: str | None,
    label: str | None,
    text: str | Iterable[str] | None,
    group: str | Iterable[str] | None,
    sample_size: int,
    max_values: int,
    max_tokens: int,
    partition: str,
    seed: int,
    progress: Progress | None,
) -> Baseline:
    stats = ReadStats()
    subject, _files, factory = _source(path_or_table, format, stats)
    builder = ProfileBuilder(
        label=label,
        text=_columns(text),
        group=_columns(group),
        sample_size=sample_size,
        max_values=max_values,
        max_tokens=max_tokens,
        partition=partition or subject,
        seed=seed,
    )
    conformer = Conformer(None)
    offset = 0
    with _Progress(progress, f"profiling {subject}") as bar:
        for raw in read_ahead(factory(), screen_threads()):  # the next batch decoded while this one is profiled
            batch = conformer.conform(raw, offset)
            try:
                builder.update(batch, offset)
            except (pa.ArrowException, ValueError, TypeError, OverflowError, MemoryError) as exc:
                raise ScreenError(
                    f"{subject}: cannot profile the records from {offset}: {type(exc).__name__}: {str(exc)[:160]}",
                    advice="Fix the input or report this file to the dataward maintainers.",
                ) from None
            offset += batch.num_rows
            bar.advance(batch.num_rows)
    prof = builder.result()
    if label and label not in prof.columns:
        raise ScreenError(f"{subject}: label column {label!r} not found", advice=f"Columns: {', '.join(prof.columns)}.")
    return Baseline(
        prof,
        source=subject,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        meta={
            "invalid_utf8_blocks": stats.invalid_utf8,
            "type_violations": sum(v.count for v in conformer.violations.values()),
        },
    )


def check_table(table: pa.Table | pa.RecordBatch, **kwargs: Any) -> ScreenReport:
    """Screen an in-memory Arrow table (same keyword arguments as :func:`check_path`)."""
    return check_path(table, **kwargs)


def _indicators(intel: Iterable[Any]) -> list[Any]:
    from dataward.screen.intel import Feed, Indicator

    out: list[Indicator] = []
    for item in intel:
        if isinstance(item, Feed):
            out.extend(item.indicators)
        elif isinstance(item, Indicator):
            out.append(item)
        else:
            raise ScreenError(
                f"intel item {item!r} is neither a Feed nor an Indicator",
                advice="Load feeds with dataward.screen.intel.load_feed().",
            )
    return out


def check_path(
    path: PathOrTable,
    *,
    format: str | None = None,
    baseline: Baseline | str | Path | None = None,
    intel: Iterable[Any] = (),
    label: str | None = None,
    text: str | Iterable[str] | None = None,
    group: str | Iterable[str] | None = None,
    image: str | Iterable[str] | None = None,
    licence_column: str | None = None,
    source_licence: str | None = None,
    policy: ScreenPolicy | None = None,
    checks: Sequence[str] | str | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> ScreenReport:
    """Screen one batch (a file, a directory of files, or an Arrow table) and return the report.

    ``baseline`` is a :class:`Baseline` or the path of one; ``intel`` holds loaded feeds or indicators;
    ``checks`` names the checks to run (default: all registered). Column options name the label, text,
    group and image columns; without them the baseline's roles are used.
    """
    settle_heap()
    # One BLAS thread: the outlier scoring's (n x d) @ (d x d) products are too small to share, and a second
    # OpenBLAS thread spent 7x the CPU on hand-offs (47 vs 6.6 ms a batch on a busy machine), same results.
    with _blas_controller().limit(limits=1), small_pages():
        return _check_path(
            path,
            format=format,
            baseline=baseline,
            intel=intel,
            label=label,
            text=text,
            group=group,
            image=image,
            licence_column=licence_column,
            source_licence=source_licence,
            policy=policy,
            checks=checks,
            progress=progress,
            seed=seed,
        )


def _check_path(
    path: PathOrTable,
    *,
    format: str | None,
    baseline: Baseline | str | Path | None,
    intel: Iterable[Any],
    label: str | None,
    text: str | Iterable[str] | None,
    group: str | Iterable[str] | None,
    image: str | Iterable[str] | None,
    licence_column: str | None,
    source_licence: str | None,
    policy: ScreenPolicy | None,
    checks: Sequence[str] | str | None,
    progress: Progress | None,
    seed: int,
) -> ScreenReport:
    t0 = time.perf_counter()
    if isinstance(baseline, str | Path):
        baseline = load_baseline(baseline)
    policy = policy or ScreenPolicy()
    opts = Options(
        label=label or (baseline.profile.label if baseline else None),
        text=_columns(text),
        group=_columns(group),
        image=_columns(image),
        licence_column=licence_column,
        source_licence=source_licence,
        seed=seed,
    )
    stats = ReadStats()
    subject, files, factory = _source(path, format, stats)
    target = baseline.schema if baseline is not None else None
    conformer = Conformer(target)

    threads = screen_threads()

    def first_pass() -> Iterator[pa.RecordBatch]:
        offset = 0
        # the next batch is read and decoded while this one is checked; conforming (which may widen the schema
        # the checks read) stays on this thread, in order
        for raw in read_ahead(factory(), threads):
            batch = conformer.conform(raw, offset)
            offset += batch.num_rows
            yield batch

    ctx = CheckContext(
        subject=subject,
        schema=target if target is not None else pa.schema([]),
        batches=first_pass,
        options=opts,
        policy=policy,
        baseline=baseline,
        indicators=_indicators(intel),
        files=files,
    )
    names = _columns(checks) if isinstance(checks, str) else tuple(checks or ())
    classes = [registry.get(n) for n in names] if names else registry.default_checks()
    instances: list[Check] = [cls() for cls in classes]
    results: dict[str, CheckResult] = {}
    active: list[Check] = []
    timings: dict[str, float] = {}

    def guarded(check: Check, fn: Callable[[], Any]) -> bool:
        start = time.perf_counter()
        try:
            fn()
            return True
        except Exception as exc:  # a check must never take the whole screen down, nor hide a failure
            results[check.name] = _crashed(check, exc)
            return False
        finally:
            timings[check.name] = timings.get(check.name, 0.0) + time.perf_counter() - start

    text_cols = list(opts.text) or (
        [c.name for c in baseline.profile.columns.values() if c.role == "text"] if baseline else []
    )
    # the batch's own profile feeds the checks that compare it with the baseline (drift, labels, ...)
    builder: ProfileBuilder | None = (
        ProfileBuilder(label=opts.label, text=text_cols, group=opts.group, seed=seed, partition="batch")
        if any(c.needs_batch_profile for c in instances)
        else None
    )
    profile_error: str | None = None
    offset = 0
    first = True
    kept: list[pa.RecordBatch] | None = []  # the first pass's batches while they fit in _KEEP_BYTES
    kept_bytes = 0

    def start_checks() -> None:  # once the schema is known: at the first batch, or at the end of an empty input
        ctx.schema = conformer.schema
        for check in instances:
            reason = check.applies(ctx)
            if reason:
                results[check.name] = CheckResult(check.name, skipped=reason)
            elif guarded(check, lambda c=check: c.begin(ctx)):  # type: ignore[misc]
                active.append(check)

    first_batch = True
    with _Progress(progress, f"screening {subject}") as bar:
        for batch in first_pass():
            if first:
                start_checks()
                first = False
            ctx.schema = conformer.schema
            failed: list[Check] = []
            tasks: list[Callable[[], None]] = []
            mine: list[Callable[[], None]] = []  # checks that must stay on this thread (Check.thread_safe)
            if builder is not None:
                current: ProfileBuilder = builder

                def profile(b: pa.RecordBatch = batch, o: int = offset, into: ProfileBuilder = current) -> None:
                    nonlocal profile_error
                    try:
                        into.update(b, o)
                    except Exception as exc:  # the batch profile feeds drift checks; losing it must be visible
                        profile_error = f"{type(exc).__name__}: {str(exc)[:200]}"

                tasks.append(profile)
            for check in _longest_first(active, timings):

                def update(
                    c: Check = check, b: pa.RecordBatch = batch, o: int = offset, out: list[Check] = failed
                ) -> None:
                    if not guarded(c, lambda: c.update(b, o)):
                        out.append(c)

                (tasks if check.thread_safe else mine).append(update)
            if first_batch and baseline is not None:
                # the report names the baseline by its digest (the SHA-256 of its canonical JSON: ~40 ms of
                # Python for a profile's 80,000 sampled values): computed, and kept, while the checks run
                tasks.append(partial(_digest_of, baseline))
            first_batch = False
            run_all(tasks, threads, on_caller=mine)
            if profile_error is not None:
                builder = None
            for check in failed:
                active.remove(check)
            if kept is not None:
                kept_bytes += batch.nbytes
                if kept_bytes <= _KEEP_BYTES:
                    kept.append(batch)
                else:  # a large input: it is read again; hand the kept pages back now, not at the end
                    kept = None
                    _release_arrow_memory()
            offset += batch.num_rows
            bar.advance(batch.num_rows)
        if first:  # no batch at all: an empty input
            start_checks()
        ctx.n_records = offset
        ctx.schema = conformer.schema
        _release_arrow_memory()
        ctx.batch_profile = builder.result() if builder is not None else None
        ctx.conform_issues = _conform_findings(conformer, stats, offset)
        if profile_error:
            ctx.conform_issues.append(
                Finding(
                    "schema",
                    "check_error",
                    Severity.MEDIUM,
                    f"the batch profile could not be built ({profile_error}); drift checks did not run",
                    evidence={"error": profile_error},
                )
            )
        second = [c for c in active if _wants(c, results, guarded)]
        if kept is not None and not all(b.schema.equals(conformer.schema) for b in kept):
            kept = None  # the schema widened during the pass: read again, conformed to the final schema
        if second:
            bar.reset(f"screening {subject} (second pass)")
            pass2 = Conformer(conformer.schema)

            def again() -> Iterator[pa.RecordBatch]:
                if kept is not None:  # a small input: its conformed batches, not a second read
                    yield from kept
                    return
                off = 0
                for raw in factory():
                    out = pass2.conform(raw, off)
                    off += out.num_rows
                    yield out

            off = 0
            for batch in again():
                lost: list[Check] = []

                def second_update(c: Check, b: pa.RecordBatch = batch, o: int = off, out: list[Check] = lost) -> None:
                    if not guarded(c, lambda: c.update_second(b, o)):
                        out.append(c)

                run_all(
                    [partial(second_update, c) for c in second if c.thread_safe],
                    threads,
                    on_caller=[partial(second_update, c) for c in second if not c.thread_safe],
                )
                for check in lost:
                    second.remove(check)
                    active.remove(check)
                off += batch.num_rows
                bar.advance(batch.num_rows)
        kept = None
        _release_arrow_memory()
    finished: dict[str, CheckResult] = {}

    def finish(check: Check) -> None:
        box: list[CheckResult] = []
        if guarded(check, lambda: box.append(check.finish())):
            finished[check.name] = box[0]

    unfinished = [c for c in _longest_first(active, timings) if c.name not in results]
    run_all(
        [partial(finish, c) for c in unfinished if c.thread_safe],
        threads,
        on_caller=[partial(finish, c) for c in unfinished if not c.thread_safe],
    )
    for check in active:  # in the checks' order, whichever finished first
        res = finished.get(check.name)
        if res is not None:
            results[check.name] = CheckResult(
                res.check, res.findings, res.stats, timings.get(check.name, 0.0), res.skipped
            )
    ordered = tuple(results[c.name] for c in instances if c.name in results)
    return ScreenReport(
        subject=subject,
        n_records=offset,
        columns=tuple(conformer.schema.names),
        results=ordered,
        params={
            "baseline": baseline.digest() if baseline is not None else None,
            "label": opts.label,
            "text": list(opts.text) or text_cols,
            "group": list(opts.group),
            "indicators": len(ctx.indicators),
            "policy": {"pii": policy.pii, "licence_missing": policy.licence_missing},
        },
        seconds=time.perf_counter() - t0,
    )


_CONTROLLER: list[Any] = []


def _blas_controller() -> Any:
    """One threadpoolctl controller a process: making one walks every loaded library and resolves its path
    (about 40 ms a check), while limiting through it only sets the thread counts. It is made at the first
    check, after this module imported every check (and so the BLAS libraries the checks call)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


# Batches of a first pass are kept for the second one up to this many bytes (a re-read and re-conform of a
# 1M-row, 78 MiB Parquet batch cost ~0.3 CPU s); larger inputs are read again, so memory stays bounded.
_KEEP_BYTES = 128 << 20


def _digest_of(baseline: Baseline) -> None:
    baseline.digest()  # cached on the baseline


def _longest_first(checks: Sequence[Check], timings: dict[str, float]) -> list[Check]:
    """The checks in the order their work so far took longest (the registry's order at the first batch), so that
    the threads of :func:`run_all` end together; the order changes only who waits, never a result."""
    return sorted(checks, key=lambda c: -timings.get(c.name, 0.0))


def _release_arrow_memory() -> None:
    """Hand the pages Arrow's allocator kept after a pass back to the system (NumPy allocates elsewhere)."""
    release = getattr(pa.default_memory_pool(), "release_unused", None)
    if release is not None:
        release()


def _wants(check: Check, results: dict[str, CheckResult], guarded: Callable[[Check, Callable[[], Any]], bool]) -> bool:
    box: list[bool] = []
    ok = guarded(check, lambda: box.append(check.wants_second_pass()))
    return ok and bool(box and box[0])


def _crashed(check: Check, exc: Exception) -> CheckResult:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    msg = f"{type(exc).__name__}: {str(exc)[:200]}{loc}"
    return CheckResult(
        check.name,
        (
            Finding(
                check.name,
                "check_error",
                Severity.MEDIUM,
                f"check {check.name!r} could not finish on this input ({msg}); review the batch by hand",
                evidence={"error": msg},
            ),
        ),
        skipped=f"error: {msg}",
    )


def _conform_findings(conformer: Conformer, stats: ReadStats, n: int) -> list[Finding]:
    out = []
    for v in conformer.violations.values():
        if v.count:
            share = v.count / max(n, 1)
            out.append(
                Finding(
                    "schema",
                    "type_violation",
                    Severity.HIGH if share >= 0.01 else Severity.MEDIUM,
                    f"{v.count} value(s) of {v.column!r} are not {v.expected}",
                    tuple(v.records),
                    {
                        "column": v.column,
                        "expected": v.expected,
                        "n_records": v.count,
                        "examples": [e[:40] for e in v.examples],
                    },
                )
            )
    if stats.invalid_utf8:
        out.append(
            Finding(
                "schema",
                "invalid_utf8",
                Severity.MEDIUM,
                f"invalid UTF-8 in {stats.invalid_utf8} block(s) or line(s); replaced by U+FFFD",
                evidence={"blocks": stats.invalid_utf8},
            )
        )
    if stats.invalid_json_lines:
        out.append(
            Finding(
                "schema",
                "invalid_json",
                Severity.HIGH if len(stats.invalid_json_lines) > 10 else Severity.MEDIUM,
                f"{len(stats.invalid_json_lines)} line(s) are not valid JSON",
                tuple(stats.invalid_json_lines[:1000]),
                {"n_records": len(stats.invalid_json_lines)},
            )
        )
    if conformer.truncated_cells:
        out.append(
            Finding(
                "schema",
                "huge_cells",
                Severity.MEDIUM,
                f"{conformer.truncated_cells} cell(s) longer than 1 MiB characters (screened truncated)",
                evidence={"n_cells": conformer.truncated_cells},
            )
        )
    return out
