"""Where ``dataward detect`` spends memory on text: each detector's peak resident and virtual memory.

The records of :mod:`detect_scale` are loaded once; each default text detector then runs in its own forked
process, so its peak is its own (plus the shared loaded records). Reported per detector: wall and CPU
seconds, the load average at its end, peak RSS (``VmHWM``), peak address space (``VmPeak``, what
``RLIMIT_AS`` counts) and peak private data (what ``RLIMIT_DATA`` counts, sampled). A large gap between
address space and RSS is reserved, never-touched memory (thread arenas, allocator pools), which an
address-space limit refuses although it costs nothing::

    python benchmarks/detect_memory.py --n 50000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from detect_scale import make_texts


def _status() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmPeak", "VmHWM", "VmRSS", "VmData", "VmSize"):
            out[key] = int(value.split()[0]) << 10
    return out


def _measure(fn: Any) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its seconds, peak RSS, peak address space and sampled peak data."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os.close(rfd)
        peak_data = [_status()["VmData"]]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak_data[0] = max(peak_data[0], _status()["VmData"])

        threading.Thread(target=sample, daemon=True).start()
        t0, c0 = time.perf_counter(), time.process_time()
        err = ""
        try:
            fn()
        except BaseException as exc:  # reported, not hidden
            err = f"{type(exc).__name__}: {exc}"[:200]
        done.set()
        st = _status()
        out = {
            "seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - c0, 2),
            "load": [round(x, 1) for x in os.getloadavg()],
            "peak_rss_mib": st["VmHWM"] >> 20,
            "peak_as_mib": st["VmPeak"] >> 20,
            "peak_data_mib": max(peak_data[0], st["VmData"]) >> 20,
            "error": err,
        }
        os.write(wfd, json.dumps(out).encode())
        os._exit(0)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 65536):
        data += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return json.loads(data) if data else {"error": "child died"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detectors", default="")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from dataward.detect import api
    from dataward.detect.representation import from_frame

    frame = make_texts(args.n, args.seed)
    base = _status()
    rep = from_frame(frame, label="label", text="text")
    loaded = _status()
    mib = {k: v >> 20 for k, v in (("base", base["VmRSS"]), ("loaded", loaded["VmRSS"]))}
    print(f"n={args.n} load {os.getloadavg()} RSS {mib['base']} MiB, with the records {mib['loaded']} MiB")
    api.load_builtin_detectors()
    chosen = api._choose(rep, [d for d in args.detectors.split(",") if d] or None, ())
    for cls in chosen:

        def one(cls: Any = cls) -> None:
            with threadpool_limits(limits=1):
                api._run(cls, {}, rep, args.seed)

        print(f"{cls.name:18s} {_measure(one)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
