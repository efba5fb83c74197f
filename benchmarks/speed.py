"""Speed against the physical floor (issue 18): each row of the issue's table, before and after, same run.

"before" is today's code path selected in the same run (pure-Python leaf hashing with
``DATAWARD_NATIVE_HASH=0``; Ed25519 through OpenSSL with ``DATAWARD_ED25519=openssl``); "after" is the
default; the floor is the bare work measured in the same run:

- records: leaf hashes + Merkle root of a 1M-row CSV (in-process: the record reader with validation, and the
  hashing alone) against ``openssl dgst -sha256`` over the same file;
- append, batched (1,000 entries per transaction), in entries per CPU-second, against bare Ed25519 signing by
  the same library;
- full ``log verify`` of N entries on 2 processes, in CPU seconds, against N bare Ed25519 verifications by
  the fastest library installed; incremental verify of 1,000 new entries, once and over several rounds;
- acquire of many files (the CLI: copy + fsync + hash + sign) against the slower of ``openssl dgst`` over the
  files on 2 cores and ``cp -r`` + ``sync``.

Every measurement runs in its own child process and reports wall time, CPU time (user + sys, children
included) and the load average before and after, because the machine may be shared. Ratios are throughput
ratios against the floor (1.0 = at the floor). Writes benchmarks/out/speed.json.

Run: .venv/bin/python benchmarks/speed.py [--quick] [--only records append verify acquire]
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
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BEFORE = {"DATAWARD_NATIVE_HASH": "0", "DATAWARD_ED25519": "openssl"}


def _cpu_all() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed(fn: Any) -> dict[str, Any]:
    load = _load()
    c, t = _cpu_all(), time.perf_counter()
    value = fn()
    return {"wall": time.perf_counter() - t, "cpu": _cpu_all() - c, "load": [load, _load()], "value": value}


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: float(r["wall"]))


# ----------------------------------------------------------------------------------- child parts


def child_records(path: str, repeat: int) -> dict[str, Any]:
    from dataward.core import leafhash
    from dataward.records import leaves as records

    def reader() -> str:
        rd = records.record_digests(lambda: open(path, "rb"), "rows.csv", "csv", file_sha256="")  # noqa: SIM115
        return rd.root().hex()

    def hashing() -> str:
        with open(path, "rb") as f:
            leaves, _n = records.line_leaves(f, "rows.csv", skip_header=True, strict=False)
        return leafhash.merkle_root(leaves).hex()

    return {
        "native": leafhash.NATIVE,
        "reader": best([timed(reader) for _ in range(repeat)]),
        "hashing": best([timed(hashing) for _ in range(repeat)]),
    }


def _bench_workspace(root: Path) -> Any:
    from dataward import principals
    from dataward.model.roles import Grant, Role
    from dataward.workspace import Workspace

    root.mkdir(parents=True, exist_ok=True)
    os.environ["DATAWARD_WITNESS"] = str(root / "witness.json")
    if (root / "ws" / "dataward.toml").exists():
        return Workspace.open(root / "ws")
    ws = Workspace.init(root / "ws", admin="admin")
    admin = ws.actor("admin")
    principals.add_principal(ws, admin, "bench", [Grant(Role.AUDITOR)])
    principals.generate_key(ws, admin, "bench")
    return ws


def child_append(root: str, n: int) -> dict[str, Any]:
    import auditlog as peers
    from dataward.core import ed25519

    ws = _bench_workspace(Path(root))
    bench = ws.actor("bench")
    peers.append_batched(ws, bench, 1000, 1000)  # warm: imports, caches, first checkpoint
    run = timed(lambda: peers.append_batched(ws, bench, n, 1000))
    msg = b"y" * 330
    sign = timed(lambda: len([bench.sign(msg) for _ in range(n)]))  # the same Signer append uses
    bulk = timed(lambda: len(bench.sign_many([msg] * n)))  # the key prepared once: bare libsodium per message
    return {"backend": ed25519.BACKEND, "append": run, "n": n, "sign": min(sign, bulk, key=lambda r: r["cpu"])}


def child_build_log(root: str, n: int) -> dict[str, Any]:
    import auditlog as peers
    from dataward.log.auditlog import log_size

    ws = _bench_workspace(Path(root))
    with ws.engine.connect() as conn:
        have = log_size(conn)
    if n > have:
        peers.append_batched(ws, ws.actor("bench"), n - have, 10_000)
    return {"entries": n}


def child_verify(root: str, workers: int) -> dict[str, Any]:
    from dataward.core import ed25519
    from dataward.log.verify import verify_log

    ws = _bench_workspace(Path(root))
    witness = Path(root) / "witness.json"
    full = timed(lambda: verify_log(ws, workers=workers, witness_path=witness, remember=True).entries)
    return {"backend": ed25519.BACKEND, "full": full}


def child_incremental(root: str, rounds_n: int = 6) -> dict[str, Any]:
    """1,000 new entries on top of the log ``child_verify`` verified (and remembered): the incremental check
    alone, then with ``remember`` as the CLI runs it (it rewrites the witness's evidence state)."""
    import auditlog as peers
    from dataward.log.verify import verify_log

    ws = _bench_workspace(Path(root))
    witness = Path(root) / "witness.json"
    peers.append_batched(ws, ws.actor("bench"), 1000, 1000)

    def run(remember: bool) -> int:
        r = verify_log(ws, workers=1, incremental=True, witness_path=witness, remember=remember)
        assert r.ok and r.mode == "incremental", r.to_json()
        return int(r.entries - r.trusted_prefix)

    check = timed(lambda: run(False))
    first = timed(lambda: run(True))
    # what it costs run after run: the state file is kept while the journal of verified entries past it
    # stays under its limit (ADR 0052), then written anew; rounds of 1,000 new entries, one rewrite among them
    rounds = []
    for _ in range(rounds_n):
        peers.append_batched(ws, ws.actor("bench"), 1000, 1000)
        rounds.append(timed(lambda: run(True)))
    cpus = [r["cpu"] for r in rounds]
    series = {"cpu": cpus, "mean_cpu": sum(cpus) / len(cpus), "max_cpu": max(cpus), "load": rounds[-1]["load"]}
    return {"incremental": check, "incremental_remember": first, "series": series}


def child_verify_floor(n: int) -> dict[str, Any]:
    """Bare verifications per CPU-second of each library (330-byte bodies, like log entries)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dataward.core import ed25519

    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes_raw()
    body = b"y" * 330
    sig = key.sign(body)
    out = {}
    checks = [("libsodium", ed25519.verifier(pub)), ("openssl", ed25519.openssl_verifier(pub))]
    try:  # a peer when installed (benchmarks/requirements-merkle.txt does not pin it): ZIP 215 rules, no batch API
        import ed25519_zebra  # type: ignore[import-not-found]

        checks.append(("ed25519-zebra", lambda s, m: bool(ed25519_zebra.ed_verify(s, m, pub))))
    except ImportError:
        pass
    for name, check in checks:
        assert check(sig, body) and not check(sig, body + b"!"), name
        r = timed(lambda check=check: sum(check(sig, body) for _ in range(n)))
        out[name] = n / r["cpu"]
    return out


def child_copy(paths: list[str], dest: str, repeat: int) -> dict[str, Any]:
    """The copy path alone (in-process: copy + hash + fsync + rename of every file, no CLI start-up)."""
    from dataward.acquire.acquire import _copy_all
    from dataward.acquire.inputs import InputFile
    from dataward.store.objects import ObjectStore

    items = [InputFile(Path(p).name, Path(p)) for p in paths]
    runs = []
    for i in range(repeat):
        store = ObjectStore(str(Path(dest) / f"objects-{i}"))
        os.sync()  # earlier runs' dirty pages are not this run's fsync
        runs.append(timed(lambda store=store: len(_copy_all(store, items, 8, None))))
        shutil.rmtree(Path(dest) / f"objects-{i}", ignore_errors=True)
    return {"copy": best(runs)}


def child_startup() -> dict[str, Any]:
    """Import time of the acquire command (what every CLI run pays before its work)."""
    return {
        "import": timed(lambda: __import__("dataward.cli._acquire") and 0),
    }


CHILDREN = {
    "copy": child_copy,
    "startup": child_startup,
    "records": child_records,
    "append": child_append,
    "build_log": child_build_log,
    "verify": child_verify,
    "incremental": child_incremental,
    "verify_floor": child_verify_floor,
}


def child(name: str, *args: Any, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run CHILDREN[name](*args) in a fresh interpreter (so an env switch takes effect at import)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import speed; "
        "print(json.dumps(speed.CHILDREN[sys.argv[2]](*json.loads(sys.argv[3]))))"
    )
    full_env = {**os.environ, **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", code, str(HERE), name, json.dumps(args)],
        env=full_env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"benchmark part {name} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -------------------------------------------------------------------------------------- floors


def run_cmd(cmds: list[list[str]]) -> dict[str, Any]:
    """Commands started together (one per core), timed as one: wall, CPU of the children, load."""

    def go() -> None:
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in cmds]
        for p in procs:
            if p.wait():
                raise SystemExit(f"{cmds[0][0]} failed")

    return timed(go)


def openssl_over(paths: list[Path], cores: int) -> dict[str, Any]:
    shares = [paths[i::cores] for i in range(cores)]
    return run_cmd([["openssl", "dgst", "-sha256", *map(str, s)] for s in shares if s])


# ------------------------------------------------------------------------------------------ rows


#: the issue's own figures (filed at low load, 2 cores), printed beside this run's for each row; for the log
#: rows, the figures the issue stands at after ADR 0045 (50k-entry log, load 10-13, CPU seconds)
FILED = {
    "CSV": "2.67 s (0.03x)",
    "append": "15.6k/cpu-s 0.49x",
    "full verify": "0.44x floor",
    "+ remember": "1.89 cpu-s",
    "incremental": "1.11 cpu-s",
    "CLI": "2.06 s (0.31x)",
}


def _filed(name: str) -> str:
    return next((v for k, v in FILED.items() if k in name), "-")


def _row(name: str, before: float | None, after: float, floor: float, unit: str, target: str, higher: bool) -> dict:
    """``higher``: the figure is a rate (entries/s); otherwise a time (s). Ratio = throughput / floor's."""
    ratio = (after / floor if higher else floor / after) if floor and after else 0.0
    ratio_before = None if before is None or not floor else (before / floor if higher else floor / before)
    return {
        "workload": name,
        "unit": unit,
        "before": before,
        "after": after,
        "floor": floor,
        "ratio_after": round(ratio, 3),
        "ratio_before": None if ratio_before is None else round(ratio_before, 3),
        "target": target,
        "filed": _filed(name),
    }


def part_records(a: argparse.Namespace, tmp: Path) -> list[dict]:
    import fingerprint

    sets = fingerprint.generate(Path(a.dir), 1, 1, 16, a.csv_rows)
    csv = sets["1M-row CSV (records)"][0]
    fingerprint._warm([csv])
    floor = best([openssl_over([csv], 1) for _ in range(a.repeat)])
    after = child("records", str(csv), a.repeat)
    before = child("records", str(csv), 1, env=BEFORE)
    rows = []
    for kind, label in (("hashing", "leaf hashes + root"), ("reader", "records (validated) + root")):
        r = _row(
            f"{a.csv_rows:,}-row CSV: {label}",
            before[kind]["wall"],
            after[kind]["wall"],
            floor["wall"],
            "s",
            ">= 0.5x openssl",
            False,
        )
        r.update(
            cpu_after=after[kind]["cpu"],
            cpu_before=before[kind]["cpu"],
            cpu_floor=floor["cpu"],
            load=after[kind]["load"],
            native=after["native"],
        )
        rows.append(r)
    return rows


def part_log(a: argparse.Namespace, tmp: Path) -> list[dict]:
    rows = []
    n = a.append_entries
    after = child("append", str(tmp / "append-after"), n)
    before = child("append", str(tmp / "append-before"), n, env=BEFORE)
    # CPU throughput (the machine is shared: wall time depends on the load, CPU seconds much less)
    r = _row(
        "log append, batched (entries per cpu-s)",
        n / before["append"]["cpu"],
        n / after["append"]["cpu"],
        n / after["sign"]["cpu"],
        "entries/cpu-s",
        ">= 25k/s",
        True,
    )
    r.update(
        floor_is=f"bare Ed25519 signing ({after['backend']}, the key prepared once)",
        before_floor=n / before["sign"]["cpu"],
        cpu_after=after["append"]["cpu"],
        cpu_floor=after["sign"]["cpu"],
        wall_after=after["append"]["wall"],
        wall_before=before["append"]["wall"],
        entries_per_s_wall=n / after["append"]["wall"],
        load=after["append"]["load"],
    )
    rows.append(r)

    size = a.log_entries
    log_dir = tmp / "log"
    child("build_log", str(log_dir), size)
    per_core = child("verify_floor", 20_000)
    fastest = max(per_core.values())
    after_v = child("verify", str(log_dir), 2)
    before_v = child("verify", str(log_dir), 2, env=BEFORE)
    r = _row(
        f"log full verify, {size:,} entries, 2 processes (cpu s)",
        before_v["full"]["cpu"],
        after_v["full"]["cpu"],
        size / fastest,
        "cpu s",
        "<= 1.2x the floor (ratio >= 0.83)",
        False,
    )
    r.update(
        floor_is=f"{size:,} bare verifications at {fastest:,.0f} per CPU-second ({max(per_core, key=per_core.get)})",
        verify_per_cpu_s=per_core,
        cpu_after=after_v["full"]["cpu"],
        cpu_before=before_v["full"]["cpu"],
        cpu_floor=size / fastest,
        wall_after=after_v["full"]["wall"],
        wall_before=before_v["full"]["wall"],
        load=after_v["full"]["load"],
        extrapolated_1m_cpu_s=after_v["full"]["cpu"] * 1_000_000 / size,
    )
    rows.append(r)
    incs = child("incremental", str(log_dir))
    for key, label in (("incremental", ""), ("incremental_remember", ", + remember")):
        inc = incs[key]
        # the 1 s target is in CPU seconds (the machine is shared): the row's figure is the CPU time
        r = _row(f"incremental verify, 1,000 new entries{label} (cpu s)", None, inc["cpu"], 1.0, "s", "< 1 s", False)
        r.update(
            floor_is="the 1 s target",
            wall_after=inc["wall"],
            cpu_after=inc["cpu"],
            load=inc["load"],
            new_entries=inc["value"],
            log_entries=size,
        )
        rows.append(r)
    series = incs["series"]
    r = _row(
        f"incremental verify + remember, mean of {len(series['cpu'])} rounds of 1,000 (cpu s)",
        None,
        series["mean_cpu"],
        1.0,
        "s",
        "< 1 s",
        False,
    )
    r.update(floor_is="the 1 s target", cpu_after=series["mean_cpu"], series=series, load=series["load"])
    rows.append(r)
    return rows


def part_acquire(a: argparse.Namespace, tmp: Path) -> list[dict]:
    import fingerprint

    # its own directory: the records part generates a set with one file under --dir
    sets = fingerprint.generate(Path(a.dir) / f"acquire-{a.many_files}", a.many_files, 4, 16, a.csv_rows)
    files = sets["many files"]
    fingerprint._warm(files)
    ossl = best([openssl_over(files, 2) for _ in range(a.repeat)])
    dest = tmp / "cp-dest"

    def cp_sync() -> None:
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["cp", "-r", str(files[0].parent), str(dest)], check=True)
        subprocess.run(["sync"], check=True)

    cp = best([timed(cp_sync) for _ in range(a.repeat)])
    shutil.rmtree(dest, ignore_errors=True)
    slower = ossl if ossl["wall"] >= cp["wall"] else cp
    floor = slower["wall"]
    load = _load()
    t_dw, c_dw = fingerprint.dataward_acquire(files, a.repeat)
    copy = child("copy", [str(p) for p in files], str(tmp / "copy"), a.repeat)["copy"]
    startup = child("startup")["import"]
    mb = sum(p.stat().st_size for p in files) / 1e6
    floor_is = f"slower of openssl on 2 cores ({ossl['wall']:.2f} s) and cp -r + sync ({cp['wall']:.2f} s)"
    r = _row(f"acquire {mb:,.0f} MB of files, CLI (s)", None, t_dw, floor, "s", ">= 0.8x the floor", False)
    r.update(floor_is=floor_is, cpu_after=c_dw, cpu_floor=slower["cpu"], load=[load, _load()])
    r2 = _row("  copy + hash + fsync of them, in-process (s)", None, copy["wall"], floor, "s", "(the copy path)", False)
    r2.update(floor_is=floor_is, cpu_after=copy["cpu"], cpu_floor=slower["cpu"], load=copy["load"])
    r3 = _row(
        "  CLI start-up: import of the acquire command (s)", None, startup["wall"], 0.0, "s", "(fixed cost)", False
    )
    r3.update(cpu_after=startup["cpu"], load=startup["load"])
    return [r, r2, r3]


PARTS = {"records": part_records, "append": part_log, "acquire": part_acquire}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/tmp/dataward-bench-speed")
    ap.add_argument("--csv-rows", type=int, default=1_000_000)
    ap.add_argument("--append-entries", type=int, default=20_000)
    ap.add_argument("--log-entries", type=int, default=100_000)
    ap.add_argument("--many-files", type=int, default=192)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=sorted(PARTS), default=sorted(PARTS))
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    a = ap.parse_args()
    if a.quick:
        a.csv_rows, a.append_entries, a.log_entries, a.many_files, a.repeat = 100_000, 5000, 20_000, 32, 1
        a.dir += "-quick"
    tmp = Path(tempfile.mkdtemp(prefix="dw-speed-"))
    print(f"cpus: {os.cpu_count()}, load average at start: {_load()}", file=sys.stderr)
    rows: list[dict] = []
    try:
        for name in ("records", "append", "acquire"):
            if name in a.only:
                rows.extend(PARTS[name](a, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = (
        f"{'workload':<52} {'filed':>16} {'before':>10} {'after':>10} {'floor':>10} {'x floor':>8} {'(before)':>8}"
        f" {'cpu after':>9} {'cpu floor':>9}  target"
    )
    print(head)
    for r in rows:
        before = "-" if r["before"] is None else f"{r['before']:.3g}"
        rb = "-" if r["ratio_before"] is None else f"{r['ratio_before']:.2f}"
        cpu_a = f"{r['cpu_after']:.3g}" if "cpu_after" in r else "-"
        cpu_f = f"{r['cpu_floor']:.3g}" if "cpu_floor" in r else "-"
        print(
            f"{r['workload']:<52} {r['filed']:>16} {before:>10} {r['after']:>10.3g} {r['floor']:>10.3g} "
            f"{r['ratio_after']:>7.2f}x {rb:>8} {cpu_a:>9} {cpu_f:>9}  {r['target']}  load {r.get('load')}"
        )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    meta = {"cpus": os.cpu_count(), "load_average_end": _load(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    (out / "speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"load average at end: {meta['load_average_end']}")


if __name__ == "__main__":
    main()
