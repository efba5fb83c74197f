"""Fingerprinting benchmark: `dataward acquire` against `openssl dgst -sha256` and `sha256sum`, same run.

Generates (under --dir, default /tmp/dataward-bench-fp; nothing is committed):
  - many files: --many-files files of --file-mb MiB each (random bytes),
  - one large file of --large-mb MiB,
  - a CSV of --csv-rows rows (10 columns).
Each tool runs over the same files with a warm page cache, best of --repeat runs. dataward runs the real
CLI (`dataward acquire`) into a fresh workspace each time (with its bytecode cached, as an installed package
has it), so its figures include interpreter start-up, copying into the object store (temp file + fsync +
rename), record parsing, signing and the catalog transaction. A "start-up" row acquires a 1-byte file: the
fixed cost of every run.

The machine may be shared: for every run the CPU time of the child processes (user + sys, from
resource.getrusage(RUSAGE_CHILDREN), so it includes dataward's worker processes) is reported beside the
wall time of the same run, with the load average before and after each data set. Ratios are throughput
ratios (time of the peer / time of dataward; > 1 means dataward is faster), for wall and for CPU time.
Issue targets: many files >= 1.6x openssl's wall throughput; the CSV (records + Merkle root) >= 0.5x.
Prints a table; writes JSON to benchmarks/out/fingerprint.json.

Run: .venv/bin/python benchmarks/fingerprint.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def generate(root: Path, many: int, file_mb: int, large_mb: int, csv_rows: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    sets: dict[str, list[Path]] = {}
    d = root / "many"
    if not d.exists():
        d.mkdir(parents=True)
        for i in range(many):
            (d / f"part-{i:04d}.bin").write_bytes(rng.bytes(file_mb << 20))
    sets["many files"] = sorted(d.iterdir())
    big = root / "large" / "large.bin"
    if not big.exists():
        big.parent.mkdir(parents=True)
        with open(big, "wb") as f:
            for _ in range(large_mb // 16):
                f.write(rng.bytes(16 << 20))
    sets["one large file"] = [big]
    csv = root / "csv" / "rows.csv"
    if not csv.exists():
        csv.parent.mkdir(parents=True)
        cols = rng.normal(size=(csv_rows, 8)).round(5)
        labels = rng.integers(0, 5, csv_rows)
        with open(csv, "w") as f:
            f.write("c0,c1,c2,c3,c4,c5,c6,c7,label,text\n")
            for i in range(csv_rows):
                f.write(",".join(map(str, cols[i])) + f",{labels[i]},token{i % 997}\n")
    sets["1M-row CSV (records)"] = [csv]
    return sets


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(16 << 20):
                pass


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_cmd(
    cmd: list[str], repeat: int, env: dict[str, str] | None = None, setup: object = None
) -> tuple[float, float]:
    """Best wall time of ``repeat`` runs and the CPU time (user + sys, children included) of that run."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        if callable(setup):
            setup()
        c = _children_cpu()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        best = min(best, (time.perf_counter() - t, _children_cpu() - c))
    return best


def dataward_acquire(paths: list[Path], repeat: int) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp(prefix="dw-fp-"))
    env = {
        **os.environ,
        "DATAWARD_WITNESS": str(tmp / "witness.json"),
        "DATAWARD_WORKSPACE": str(tmp / "ws"),
        "DATAWARD_KEYRING": str(tmp / "keyring"),  # a scratch keyring for the bench principals
        # bytecode cached as an installed package has it (pip compiles it at install): a checkout run under
        # PYTHONDONTWRITEBYTECODE would compile every dataward module again on each run (ADR 0055)
        "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "dataward-bench-pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    dw = str(BIN / "dataward")
    # compiles (once) and caches the acquire command's modules before any timed run
    subprocess.run([dw, "acquire", "--help"], check=True, env=env, stdout=subprocess.DEVNULL)

    def fresh() -> None:
        shutil.rmtree(tmp / "ws", ignore_errors=True)
        (tmp / "witness.json").unlink(missing_ok=True)
        shutil.rmtree(tmp / "keyring", ignore_errors=True)
        init = [dw, "init", str(tmp / "ws"), "--admin", "a", "--no-passphrase"]
        subprocess.run(init, check=True, env=env, stdout=subprocess.DEVNULL)
        pub = tmp / "i.pub"
        with pub.open("w") as f:
            # its notice about the key file (stderr) is shown only if it fails: not part of the benchmark's output
            gen = [dw, "key", "generate", "i", "--no-passphrase"]
            done = subprocess.run(gen, env=env, stdout=f, stderr=subprocess.PIPE, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"dataward key generate failed:\n{done.stderr}")
        subprocess.run(
            [dw, "--as", "a", "principal", "add", "i", "--role", "ingester", "--key", str(pub)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [dw, "--as", "a", "source", "add", "s", "--kind", "internal", "--origin", "bench"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )

    try:
        return time_cmd([dw, "--as", "i", "acquire", "s", *map(str, paths)], repeat, env=env, setup=fresh)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/dataward-bench-fp")
    ap.add_argument("--many-files", type=int, default=192)
    ap.add_argument("--file-mb", type=int, default=4)
    ap.add_argument("--large-mb", type=int, default=256)
    ap.add_argument("--csv-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    a = ap.parse_args()
    if a.quick:
        a.many_files, a.large_mb, a.csv_rows, a.repeat, a.dir = 32, 64, 100_000, 1, a.dir + "-quick"
    sets = generate(Path(a.dir), a.many_files, a.file_mb, a.large_mb, a.csv_rows)
    tiny = Path(a.dir) / "tiny" / "one.bin"
    tiny.parent.mkdir(parents=True, exist_ok=True)
    tiny.write_bytes(b"x")
    targets = {"many files": 1.6, "1M-row CSV (records)": 0.5}
    results = []
    print(f"cpus: {os.cpu_count()}, load average at start: {_load()}")
    print(
        f"{'data':<22} {'MB':>6} | {'openssl':>16} | {'sha256sum':>16} | {'dataward':>16} | "
        f"{'dw/openssl wall':>15} {'cpu':>6} | target"
    )
    print(f"{'':<22} {'':>6} | {'s wall / s cpu':>16} | {'s wall / s cpu':>16} | {'s wall / s cpu':>16} |")
    t0, c0 = dataward_acquire([tiny], a.repeat)
    print(f"{'start-up (1 byte)':<22} {0:>6} | {'':>16} | {'':>16} | {t0:>7.3f} / {c0:>6.3f} |")
    for name, paths in sets.items():
        _warm(paths)
        load_before = _load()
        mb = _size(paths) / 1e6
        t_ossl, c_ossl = time_cmd(["openssl", "dgst", "-sha256", *map(str, paths)], a.repeat)
        t_sum, c_sum = time_cmd(["sha256sum", *map(str, paths)], a.repeat)
        t_dw, c_dw = dataward_acquire(paths, a.repeat)
        ratio, cpu_ratio = t_ossl / t_dw, c_ossl / c_dw
        target = targets.get(name)
        row = {
            "data": name,
            "mb": round(mb, 1),
            "files": len(paths),
            "openssl_mb_s": round(mb / t_ossl, 1),
            "sha256sum_mb_s": round(mb / t_sum, 1),
            "dataward_mb_s": round(mb / t_dw, 1),
            "dataward_over_openssl": round(ratio, 3),
            "dataward_over_openssl_cpu": round(cpu_ratio, 3),
            "dataward_over_openssl_excluding_startup": round(t_ossl / max(1e-9, t_dw - t0), 3),
            "target": target,
            "seconds": {"openssl": round(t_ossl, 3), "sha256sum": round(t_sum, 3), "dataward": round(t_dw, 3)},
            "cpu_seconds": {"openssl": round(c_ossl, 3), "sha256sum": round(c_sum, 3), "dataward": round(c_dw, 3)},
            "load_average": {"before": load_before, "after": _load()},
        }
        results.append(row)
        verdict = "" if target is None else f">= {target}x: {'met' if ratio >= target else 'missed'}"
        print(
            f"{name:<22} {mb:>6.0f} | {t_ossl:>7.3f} / {c_ossl:>6.3f} | {t_sum:>7.3f} / {c_sum:>6.3f} | "
            f"{t_dw:>7.3f} / {c_dw:>6.3f} | {ratio:>14.2f}x {cpu_ratio:>5.2f}x | {verdict}"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    meta = {
        "cpus": os.cpu_count(),
        "load_average_end": _load(),
        "startup": {"seconds": round(t0, 3), "cpu_seconds": round(c0, 3)},
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "repeat": a.repeat,
    }
    (out / "fingerprint.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"load average at end: {meta['load_average_end']}")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
