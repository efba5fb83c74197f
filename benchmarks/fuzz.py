"""Fuzz benchmark: N mutated inputs per format through the records layer and the `check` command.

Each input is read (strict, then lenient) in a fresh subprocess-free forked worker with no sandbox of its
own, so a segfault is seen as a signal, a Python traceback as an exception that is not a dataward error,
and a hang as an input still running after the timeout. A sample (every --cli-every-th input) also runs
`dataward check` as a real subprocess; its exit status must be one of docs/exit-codes.md.

Counts reported per format (target: all 0): tracebacks, segfaults (any signal), hangs over the timeout,
undocumented exit codes; plus refused / read, load average and CPU time. There is no peer: the floor is 0.

Usage: python benchmarks/fuzz.py [--count 2000] [--formats csv,jsonl] [--timeout 60] [--cli-every 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
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


def _read(path: str, fmt: str) -> int:
    """0 read, 1 refused with a dataward error, 2 a traceback (any other exception)."""
    for errors in ("strict", "replace"):
        try:
            for _ in records.read(path, fmt, errors=errors):
                pass
        except Error:
            return 1
        except BaseException:
            return 2
    return 0


def one(path: str, fmt: str, timeout: float) -> str:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        os._exit(_read(path, fmt))
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "hang"
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        return "segfault"
    return {0: "read", 1: "refused", 2: "traceback"}.get(os.WEXITSTATUS(status), "traceback")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--cli-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0, cpu0 = time.monotonic(), os.times()
    out: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="dataward-fuzz-") as tmp:
        for fmt in args.formats.split(","):
            counts = dict.fromkeys(("read", "refused", "traceback", "segfault", "hang", "undocumented_exit"), 0)
            base = seed(fmt)
            for i in range(args.count):
                path = Path(tmp) / f"{fmt}-{i}{SUFFIX[fmt]}"
                path.write_bytes(mutate(base, rng))
                counts[one(str(path), fmt, args.timeout)] += 1
                if args.cli_every and i % args.cli_every == 0:
                    got = subprocess.run(
                        [sys.executable, "-c", "from dataward.cli import run; run()", "check", str(path), "--quiet"],
                        capture_output=True,
                        text=True,
                        timeout=args.timeout * 2,
                        check=False,
                    )
                    if got.returncode not in EXIT_CODES or "Traceback" in got.stderr:
                        counts["undocumented_exit"] += 1
                path.unlink()
            out[fmt] = counts
            if sys.stderr.isatty():
                print(fmt, counts, file=sys.stderr)
    cpu1 = os.times()
    summary = {
        "count_per_format": args.count,
        "formats": out,
        "totals": {k: sum(c[k] for c in out.values()) for k in ("traceback", "segfault", "hang", "undocumented_exit")},
        "seconds": round(time.monotonic() - t0, 1),
        "cpu_seconds": round(
            cpu1.children_user
            + cpu1.children_system
            - cpu0.children_user
            - cpu0.children_system
            + cpu1.user
            + cpu1.system
            - cpu0.user
            - cpu0.system,
            1,
        ),
        "loadavg": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for fmt, c in out.items():
            print(f"{fmt:8} " + " ".join(f"{k}={v}" for k, v in c.items()))
        print("totals", summary["totals"], f"{summary['seconds']} s, load {summary['loadavg'][0]:.2f}")


if __name__ == "__main__":
    main()
