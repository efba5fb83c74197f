"""Fuzz benchmark: N mutated inputs per format through the records layer and the `check` command.

Records-layer share (every input): each mutated file is read (strict, then lenient) in a worker forked
from this process after it has imported every reader (a fork then costs milliseconds) and confined by the
records sandbox (`records.sandbox.confine`: no inherited descriptors, no network, RLIMIT_AS/CPU/FSIZE/
NOFILE). A signal is a segfault, an exception that is not a dataward error a traceback, a worker still
running after --timeout seconds (wall clock) a hang.

CLI share (every --cli-every-th input): `dataward check FILE` as a real subprocess; a status that is not
in errors.EXIT_CODES (docs/exit-codes.md) is an undocumented exit, a "Traceback" on stderr a traceback,
a signal a segfault, a run over twice the timeout a hang.

Counts per format (target: all 0): tracebacks, segfaults, hangs, undocumented exit codes; plus read /
refused, the CLI runs, load average and CPU time (this process and its children). There is no peer: the
floor is 0. Every failing input is copied to --keep DIR (to become a regression file in
tests/records/corpus/).

Usage: python benchmarks/fuzz.py [--count 2000] [--formats csv,jsonl] [--timeout 60] [--cli-every 50]
       [--seed 0] [--keep DIR] [--progress N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "records"))

from fuzzing import FORMATS, SUFFIX, mutate, seed

from dataward import records
from dataward.errors import EXIT_CODES, Error
from dataward.records.sandbox import SandboxLimits, confine

KINDS = ("read", "refused", "traceback", "segfault", "hang", "undocumented_exit", "cli_runs")
FAILURES = ("traceback", "segfault", "hang", "undocumented_exit")


def _read(path: str, fmt: str) -> int:
    """0 read, 1 refused with a one-line dataward error, 2 a traceback (any other exception)."""
    for errors in ("strict", "replace"):
        try:
            for _ in records.read(path, fmt, errors=errors):
                pass
        except Error as exc:
            return 1 if exc.message and "\n" not in exc.message else 2
        except BaseException:
            return 2
    return 0


def one(path: str, fmt: str, timeout: float) -> str:
    """Read ``path`` in a confined forked worker; the outcome."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the worker
        status = 2
        try:
            confine(SandboxLimits(cpu_seconds=int(timeout) + 1), keep_fds=set())
            status = _read(path, fmt)
        finally:
            os._exit(status)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang"
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    if os.WIFSIGNALED(status):
        # the CPU limit (timeout + 1 s of CPU) is a hang, any other signal a crash
        return "hang" if os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL) else "segfault"
    return {0: "read", 1: "refused", 2: "traceback"}.get(os.WEXITSTATUS(status), "traceback")


def cli(path: str, timeout: float) -> str | None:
    """`dataward check` on ``path`` in a subprocess; the failure kind, or None when it behaved.

    A hang is a run that used more than ``timeout`` CPU seconds (itself and its sandbox worker), or that
    is still running after 10x ``timeout`` of wall time: on a shared, loaded machine wall time alone
    would count a niced, starved run as hung."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        got = subprocess.run(
            [sys.executable, "-c", "from dataward.cli import run; run()", "check", path, "--quiet"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout * 10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "hang"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if cpu > timeout:
        return "hang"
    if got.returncode < 0:
        return "segfault"
    if "Traceback" in got.stderr:
        return "traceback"
    if got.returncode not in EXIT_CODES:
        return "undocumented_exit"
    return None


def _warm_up(tmp: Path) -> None:
    """Import every reader in this process once, so that a forked worker does not import them again."""
    for fmt in FORMATS:
        path = tmp / f"warm{SUFFIX[fmt]}"
        path.write_bytes(seed(fmt))
        _read(str(path), fmt)
        path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--cli-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="copy every failing input into this directory")
    ap.add_argument("--progress", type=int, default=0, help="print the counts so far every N inputs (stderr)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--recheck", nargs="+", type=Path, help="only run `check` on these kept inputs again")
    args = ap.parse_args()
    if args.recheck:
        for p in args.recheck:
            t, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            bad = cli(str(p), args.timeout)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            print(f"{p.name}: {bad or 'ok'} ({time.monotonic() - t:.1f} s wall, {used:.1f} s CPU)")
        return
    rng = random.Random(args.seed)
    t0, cpu0 = time.monotonic(), os.times()
    out: dict[str, dict[str, int]] = {}
    kept: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dataward-fuzz-") as tmpdir:
        tmp = Path(tmpdir)
        _warm_up(tmp)
        for fmt in args.formats.split(","):
            counts = dict.fromkeys(KINDS, 0)
            base = seed(fmt)
            for i in range(args.count):
                path = tmp / f"{fmt}-{i}{SUFFIX[fmt]}"
                path.write_bytes(mutate(base, rng))
                kinds = [one(str(path), fmt, args.timeout)]
                counts[kinds[0]] += 1
                if args.cli_every and i % args.cli_every == 0:
                    counts["cli_runs"] += 1
                    bad = cli(str(path), args.timeout)
                    if bad:
                        counts[bad] += 1
                        kinds.append("cli-" + bad)
                failed = [k for k in kinds if k.removeprefix("cli-") in FAILURES]
                if failed and args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    name = f"{fmt}-seed{args.seed}-{i}-{failed[0]}{SUFFIX[fmt]}"
                    shutil.copyfile(path, args.keep / name)
                    kept.append(name)
                path.unlink()
                if args.progress and (i + 1) % args.progress == 0 and i + 1 < args.count:
                    print(fmt, "after", i + 1, counts, f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
            out[fmt] = counts
            print(fmt, counts, f"{time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system) - (
        cpu0.user + cpu0.system + cpu0.children_user + cpu0.children_system
    )
    summary = {
        "count_per_format": args.count,
        "cli_every": args.cli_every,
        "seed": args.seed,
        "formats": out,
        "totals": {k: sum(c[k] for c in out.values()) for k in FAILURES},
        "kept": kept,
        "seconds": round(time.monotonic() - t0, 1),
        "cpu_seconds": round(cpu, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for fmt, c in out.items():
            print(f"{fmt:8} " + " ".join(f"{k}={v}" for k, v in c.items()))
        print(
            "totals",
            summary["totals"],
            f"{summary['seconds']} s wall, {summary['cpu_seconds']} s CPU, load {summary['loadavg'][0]:.2f}",
        )


if __name__ == "__main__":
    main()
