"""Fingerprinting benchmark: `dataward acquire` against `openssl dgst -sha256` and `sha256sum`, same run.

Generates (under --dir, default /tmp/dataward-bench-fp; nothing is committed):
  - many files: --many-files files of --file-mb MiB each (random bytes),
  - one large file of --large-mb MiB,
  - a CSV of --csv-rows rows (10 columns).
Each tool runs over the same files with a warm page cache, best of --repeat runs. dataward runs the real
CLI (`dataward acquire`) into a fresh workspace each time, so its figures include interpreter start-up,
copying into the object store (temp file + fsync + rename), record parsing, signing and the catalog
transaction. Prints MB/s and ratios; writes JSON to benchmarks/out/fingerprint.json.

Run: .venv/bin/python benchmarks/fingerprint.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
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


def time_cmd(cmd: list[str], repeat: int, env: dict[str, str] | None = None, setup: object = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        if callable(setup):
            setup()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        best = min(best, time.perf_counter() - t)
    return best


def dataward_acquire(paths: list[Path], repeat: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="dw-fp-"))
    env = {**os.environ, "DATAWARD_WITNESS": str(tmp / "witness.json"), "DATAWARD_WORKSPACE": str(tmp / "ws")}
    dw = str(BIN / "dataward")

    def fresh() -> None:
        shutil.rmtree(tmp / "ws", ignore_errors=True)
        (tmp / "witness.json").unlink(missing_ok=True)
        subprocess.run([dw, "init", str(tmp / "ws"), "--admin", "a"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [dw, "--as", "a", "principal", "add", "i", "--role", "ingester"],
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
    results = []
    print(f"{'data':<22} {'MB':>7} {'openssl':>10} {'sha256sum':>10} {'dataward':>10} {'dw/openssl':>11}")
    for name, paths in sets.items():
        _warm(paths)
        mb = _size(paths) / 1e6
        t_ossl = time_cmd(["openssl", "dgst", "-sha256", *map(str, paths)], a.repeat)
        t_sum = time_cmd(["sha256sum", *map(str, paths)], a.repeat)
        t_dw = dataward_acquire(paths, a.repeat)
        row = {
            "data": name,
            "mb": round(mb, 1),
            "files": len(paths),
            "openssl_mb_s": round(mb / t_ossl, 1),
            "sha256sum_mb_s": round(mb / t_sum, 1),
            "dataward_mb_s": round(mb / t_dw, 1),
            "dataward_over_openssl": round(t_ossl / t_dw, 3),
            "seconds": {"openssl": round(t_ossl, 3), "sha256sum": round(t_sum, 3), "dataward": round(t_dw, 3)},
        }
        results.append(row)
        print(
            f"{name:<22} {mb:>7.0f} {row['openssl_mb_s']:>8} MB/s {row['sha256sum_mb_s']:>6} MB/s "
            f"{row['dataward_mb_s']:>6} MB/s {row['dataward_over_openssl']:>10.2f}x"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    meta = {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "fingerprint.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"load average during run: {meta['load_average']}")


if __name__ == "__main__":
    main()
