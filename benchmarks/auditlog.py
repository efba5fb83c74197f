"""Benchmark of the audit log (dataward.log) on SQLite, with named peers in the same run.

Measures:
- append throughput: entries/s batched (many entries in one transaction, one checkpoint per batch) and one
  entry per transaction (``ws.record``: authorize, sign, append, checkpoint, commit);
- ``verify_log`` at 10^5 and 10^6 entries: full (every signature; 1 process and a process pool) and
  incremental (entries covered by this client's earlier full verification get the tree check only);
- inclusion proof time (``prove_inclusion``: O(log n) node reads + the checkpoint) and size.

Peers (same machine, same run, ratios printed):
- ``sqlite-insert``: the same rows inserted with no signature, tree or checkpoint (the storage floor);
- ``ed25519-verify``: the bare signature checks verify must do (the crypto floor of a full verify);
- ``ed25519-sign``: the bare signing every appended entry needs (the crypto ceiling of append throughput);
- ``pymerkle-sqlite``: pymerkle 7 ``SqliteTree`` (RFC 9162 hashing, unsigned entries) append and
  inclusion proofs, when installed (``make bench-env`` builds ``.venv-bench-merkle``).

Run: ``.venv-bench-merkle/bin/python benchmarks/auditlog.py [--sizes 100000 1000000] [--json OUT]``
(``.venv/bin/python`` works too, without the pymerkle peer). Writes docs/benchmarks-auditlog.md with
``--markdown``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def append_batched(ws: Any, actor: Any, n: int, batch: int) -> float:
    """Append ``n`` entries in transactions of ``batch``; returns seconds."""
    from dataward.log import auditlog
    from dataward.store.catalog import write_transaction

    log_key = ws.log_actor()
    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        entries = [
            auditlog.PendingEntry(actor, "batch.verify", f"batch:b-{done + i}", {"ok": True, "problems": 0})
            for i in range(k)
        ]
        with write_transaction(ws.engine) as conn:
            auditlog.append(conn, entries, log_key=log_key, origin=ws.origin)
        done += k
    return time.perf_counter() - t0


def append_single(ws: Any, actor: Any, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        ws.record(actor, "batch.verify", f"batch:s-{i}", {"ok": True, "problems": 0})
    return time.perf_counter() - t0


def peer_sqlite_insert(tmp: Path, n: int) -> float:
    """The same rows (a 330-byte body, a 64-byte signature, a leaf hash) with no crypto and no tree."""
    db = tmp / "peer.db"
    for f in tmp.glob("peer.db*"):
        f.unlink()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(
        "CREATE TABLE log (seq INTEGER PRIMARY KEY, time TEXT, principal TEXT, action TEXT, subject TEXT,"
        " entry BLOB, keyid TEXT, signature BLOB, leaf_hash BLOB)"
    )
    body = b"x" * 330
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        con.execute("BEGIN IMMEDIATE")
        con.executemany(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, "2026-01-01T00:00:00.000000Z", "p", "a", f"s{i}", body, "k" * 64, b"s" * 64, b"h" * 32)
                for i in range(start, min(n, start + 1000))
            ],
        )
        con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return dt


def peer_ed25519(n: int) -> float:
    k = Ed25519PrivateKey.generate()
    pub = k.public_key()
    body = b"y" * 330
    sig = k.sign(body)
    t0 = time.perf_counter()
    for _ in range(n):
        pub.verify(sig, body)
    return time.perf_counter() - t0


def peer_ed25519_sign(n: int) -> float:
    k = Ed25519PrivateKey.generate()
    body = b"y" * 330
    t0 = time.perf_counter()
    for _ in range(n):
        k.sign(body)
    return time.perf_counter() - t0


def peer_pymerkle(tmp: Path, n: int, proofs: int) -> dict[str, float] | None:
    try:
        from pymerkle import SqliteTree  # optional peer (benchmark venv)
    except ImportError:
        return None
    for f in tmp.glob("pymerkle.db*"):
        f.unlink()
    tree = SqliteTree(str(tmp / "pymerkle.db"))
    data = [b"y" * 330 + str(i).encode() for i in range(n)]
    t0 = time.perf_counter()
    tree.append_entries(data)
    t_append = time.perf_counter() - t0
    rng = random.Random(1)
    times = []
    for _ in range(proofs):
        i = rng.randrange(1, n + 1)
        t0 = time.perf_counter()
        tree.prove_inclusion(i, n)
        times.append(time.perf_counter() - t0)
    tree.close()
    return {"append_per_s": n / t_append, "proof_ms": statistics.median(times) * 1e3}


def proofs(ws: Any, count: int) -> dict[str, float]:
    from dataward.log.query import prove_inclusion

    with ws.engine.connect() as conn:
        from dataward.log.auditlog import log_size

        n = log_size(conn)
    rng = random.Random(0)
    times = []
    sizes = []
    hashes = []
    for _ in range(count):
        seq = rng.randrange(n)
        t0 = time.perf_counter()
        p = prove_inclusion(ws, seq)
        times.append(time.perf_counter() - t0)
        sizes.append(len(json.dumps(p.to_json())))
        hashes.append(len(p.proof))
    return {
        "proof_ms_median": statistics.median(times) * 1e3,
        "proof_ms_p95": sorted(times)[int(0.95 * len(times))] * 1e3,
        "proof_hashes": statistics.mean(hashes),
        "proof_bytes_hashes": statistics.mean(hashes) * 32,
        "proof_bytes_json": statistics.mean(sizes),
    }


def _cpu_split() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its finished children (pool workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _cpu() -> float:
    return sum(_cpu_split())


LAST_SPLIT: dict[str, float] = {}


def _timed(fn: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result): on a shared machine CPU seconds are the load-independent figure.
    The split into this process and its workers is left in LAST_SPLIT."""
    (s0, k0), t0 = _cpu_split(), time.perf_counter()
    r = fn()
    wall = time.perf_counter() - t0
    s1, k1 = _cpu_split()
    LAST_SPLIT.update(parent=s1 - s0, workers=k1 - k0)
    return wall, (s1 - s0) + (k1 - k0), r


def verify_figures(ws: Any, witness: Path) -> dict[str, Any]:
    from dataward.log.verify import default_workers, verify_log

    out: dict[str, Any] = {}
    wall, cpu, r = _timed(lambda: verify_log(ws, workers=1, witness_path=witness))
    out["full_1_process_s"], out["full_1_process_cpu_s"] = wall, cpu
    out["entries_full"] = r.entries
    assert r.ok, [p.line() for p in r.problems[:5]]
    w = default_workers()
    out["workers"] = w
    if w > 1:
        wall, cpu, r = _timed(lambda: verify_log(ws, workers=w, witness_path=witness, remember=True))
        out[f"full_{w}_processes_s"], out[f"full_{w}_processes_cpu_s"] = wall, cpu
        out[f"full_{w}_processes_idle_estimate_s"] = LAST_SPLIT["parent"] + LAST_SPLIT["workers"] / w
        assert r.ok
    else:
        verify_log(ws, workers=1, witness_path=witness, remember=True)
    # a few new entries since the recorded verification, then the incremental check
    append_batched(ws, ws.actor("bench"), 1000, 1000)
    wall, cpu, r = _timed(lambda: verify_log(ws, workers=1, incremental=True, witness_path=witness))
    out["incremental_s"], out["incremental_cpu_s"] = wall, cpu
    out["incremental_new_entries"] = r.entries - r.trusted_prefix
    assert r.ok and r.mode == "incremental", r.to_json()
    if w > 1:
        wall, cpu, r = _timed(lambda: verify_log(ws, workers=w, incremental=True, witness_path=witness))
        out[f"incremental_{w}_processes_s"], out[f"incremental_{w}_processes_cpu_s"] = wall, cpu
        out[f"incremental_{w}_processes_idle_estimate_s"] = LAST_SPLIT["parent"] + LAST_SPLIT["workers"] / w
        assert r.ok
    out["entries"] = r.entries
    out["signatures_per_cpu_s"] = r.entries / out["full_1_process_cpu_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000], help="log sizes (none: append only)")
    ap.add_argument("--batch", type=int, default=1000, help="entries per transaction when batched")
    ap.add_argument("--single", type=int, default=2000, help="entries appended one per transaction")
    ap.add_argument("--proofs", type=int, default=1000)
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--markdown", default=None, help="write the figures as Markdown to this file")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args()

    from dataward import principals
    from dataward.model.roles import Grant, Role
    from dataward.workspace import Workspace

    tmp = Path(args.dir or tempfile.mkdtemp(prefix="dw-bench-log-"))
    witness = tmp / "witness.json"
    os.environ["DATAWARD_WITNESS"] = str(witness)
    os.environ["DATAWARD_KEYRING"] = str(tmp / "keyring")  # the bench principals' keys: never the user's keyring
    if (tmp / "ws" / "dataward.toml").exists():  # --dir of an earlier run: reuse its log
        ws = Workspace.open(tmp / "ws")
    else:
        ws = Workspace.init(tmp / "ws", admin="admin")
        admin = ws.actor("admin")
        principals.enroll(ws, admin, "bench", [Grant(Role.AUDITOR)])
    bench = ws.actor("bench")
    res: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        "sizes": {},
    }

    # append throughput (measured on the first 20k batched entries and `--single` single ones)
    n_tp = 20_000
    wall, cpu, _ = _timed(lambda: append_batched(ws, bench, n_tp, args.batch))
    res["append_batched_per_s"], res["append_batched_per_cpu_s"] = n_tp / wall, n_tp / cpu
    wall, cpu, _ = _timed(lambda: append_single(ws, bench, args.single))
    res["append_single_per_s"], res["append_single_per_cpu_s"] = args.single / wall, args.single / cpu
    res["peer_sqlite_insert_per_s"] = n_tp / peer_sqlite_insert(tmp, n_tp)
    c0 = _cpu()
    peer_ed25519(20_000)
    res["peer_ed25519_verify_per_cpu_s"] = 20_000 / (_cpu() - c0)
    c0 = _cpu()
    peer_ed25519_sign(20_000)
    res["peer_ed25519_sign_per_cpu_s"] = 20_000 / (_cpu() - c0)
    print(
        f"append batched ({args.batch}/tx): {_fmt(res['append_batched_per_s'])} entries/s; "
        f"one per transaction: {_fmt(res['append_single_per_s'])} entries/s",
        file=sys.stderr,
    )

    for size in sorted(args.sizes):
        with ws.engine.connect() as conn:
            from dataward.log.auditlog import log_size

            have = log_size(conn)
        if size > have:
            t0 = time.perf_counter()
            append_batched(ws, bench, size - have, 10_000)
            print(f"built {size:,} entries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        fig = verify_figures(ws, witness)
        fig.update(proofs(ws, args.proofs))
        res["sizes"][str(size)] = fig
        print(f"{size:,}: {json.dumps(fig)}", file=sys.stderr)

    peer = peer_pymerkle(tmp, 100_000, args.proofs)
    if peer:
        res["peer_pymerkle_sqlite"] = peer
    text = json.dumps(res, indent=2)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(markdown(res), encoding="utf-8")
    ws.engine.dispose()
    return 0


def markdown(res: dict[str, Any]) -> str:
    """The figures as Markdown: wall time as measured, CPU time, and the CPU-bound estimate for an idle machine."""
    sign, verify = res["peer_ed25519_sign_per_cpu_s"], res["peer_ed25519_verify_per_cpu_s"]
    lines = [
        "# Audit log benchmark",
        "",
        f"Machine: {res['machine']}. SQLite catalog (WAL, synchronous=FULL). Produced by "
        "`benchmarks/auditlog.py`; targets from issue 3. The machine was shared (see the load): wall times "
        "are as measured; CPU seconds (this process + its pool workers) do not depend on the load. The idle "
        "estimate is this process's CPU time plus the workers' CPU time divided by the number of workers.",
        "",
        "## Append",
        "",
        "| measure | wall (measured) | per CPU second | target | peers (same run, per CPU second) |",
        "| --- | --- | --- | --- | --- |",
        f"| batched (1000 entries / transaction) | {_fmt(res['append_batched_per_s'])}/s | "
        f"{_fmt(res['append_batched_per_cpu_s'])}/s | >= 20,000/s | bare Ed25519 signing {_fmt(sign)}/s "
        f"(ours / signing alone = {res['append_batched_per_cpu_s'] / sign:.2f}); raw SQLite insert of the "
        f"same rows, no crypto: {_fmt(res['peer_sqlite_insert_per_s'])}/s wall |",
        f"| one per transaction (`ws.record`: authorize, sign, append, checkpoint, commit) | "
        f"{_fmt(res['append_single_per_s'])}/s | {_fmt(res['append_single_per_cpu_s'])}/s | - | - |",
    ]
    pm = res.get("peer_pymerkle_sqlite")
    if pm:
        lines.append(
            f"| peer: pymerkle 7 SqliteTree append (unsigned, no checkpoint) | {_fmt(pm['append_per_s'])}/s | - |"
            " - | - |"
        )
    lines += [
        "",
        "## Verify (`dataward log verify`)",
        "",
        "| log size | mode | wall (measured) | CPU s | idle estimate | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in res["sizes"].values():
        n, w = int(f["entries_full"]), f["workers"]
        lines.append(
            f"| {n:,} | full, 1 process | {f['full_1_process_s']:.1f} s | {f['full_1_process_cpu_s']:.1f} | "
            f"{f['full_1_process_cpu_s']:.1f} s | < 10 s at 10^6 |"
        )
        if f"full_{w}_processes_s" in f:
            cpu = f[f"full_{w}_processes_cpu_s"]
            lines.append(
                f"| {n:,} | full, {w} processes | {f[f'full_{w}_processes_s']:.1f} s | {cpu:.1f} | "
                f"{f[f'full_{w}_processes_idle_estimate_s']:.1f} s | < 10 s at 10^6 |"
            )
        lines.append(
            f"| {n:,} | incremental, 1 process ({f['incremental_new_entries']:,} new entries) | "
            f"{f['incremental_s']:.1f} s | {f['incremental_cpu_s']:.1f} | {f['incremental_cpu_s']:.1f} s | "
            "< 10 s at 10^6 |"
        )
        if f"incremental_{w}_processes_s" in f:
            cpu = f[f"incremental_{w}_processes_cpu_s"]
            lines.append(
                f"| {n:,} | incremental, {w} processes | {f[f'incremental_{w}_processes_s']:.1f} s | {cpu:.1f} | "
                f"{f[f'incremental_{w}_processes_idle_estimate_s']:.1f} s | < 10 s at 10^6 |"
            )
        lines.append(
            f"| {n:,} | peer: the bare Ed25519 checks alone | - | {n / verify:.1f} | {n / verify / w:.1f} s | - |"
        )
    lines += ["", "## Inclusion proofs (`dataward log prove`)", ""]
    lines += ["| log size | time (median, p95, wall) | size | target | peer |", "| --- | --- | --- | --- | --- |"]
    for f in res["sizes"].values():
        size = f["entries"]
        peer = f"pymerkle SqliteTree at 100,000: {pm['proof_ms']:.2f} ms" if pm else "-"
        lines.append(
            f"| {int(size):,} | {f['proof_ms_median']:.2f} ms, {f['proof_ms_p95']:.2f} ms | "
            f"{f['proof_hashes']:.0f} hashes = {f['proof_bytes_hashes']:.0f} bytes "
            f"({f['proof_bytes_json']:.0f} bytes as JSON with entry, signature and checkpoint) | < 1 ms | {peer} |"
        )
    lines += ["", "Raw figures (JSON):", "", "```json", json.dumps(res, indent=2), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
