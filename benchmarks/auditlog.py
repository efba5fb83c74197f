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


def verify_figures(ws: Any, witness: Path) -> dict[str, Any]:
    from dataward.log.verify import default_workers, verify_log

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    r = verify_log(ws, workers=1, witness_path=witness)
    out["full_1_process_s"] = time.perf_counter() - t0
    assert r.ok, [p.line() for p in r.problems[:5]]
    w = default_workers()
    if w > 1:
        t0 = time.perf_counter()
        r = verify_log(ws, workers=w, witness_path=witness, remember=True)
        out[f"full_{w}_processes_s"] = time.perf_counter() - t0
        assert r.ok
    else:
        verify_log(ws, workers=1, witness_path=witness, remember=True)
    out["workers"] = w
    # a few new entries since the recorded verification, then the incremental check
    append_batched(ws, ws.actor("bench"), 1000, 1000)
    t0 = time.perf_counter()
    r = verify_log(ws, workers=w, incremental=True, witness_path=witness)
    out["incremental_s"] = time.perf_counter() - t0
    out["incremental_new_entries"] = r.entries - r.trusted_prefix
    assert r.ok and r.mode == "incremental", r.to_json()
    out["entries"] = r.entries
    out["signatures_per_s_1_process"] = r.entries / out["full_1_process_s"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--batch", type=int, default=1000, help="entries per transaction when batched")
    ap.add_argument("--single", type=int, default=2000, help="entries appended one per transaction")
    ap.add_argument("--proofs", type=int, default=1000)
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--markdown", default=None, help="write the figures as Markdown to this file")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    args = ap.parse_args()

    from dataward import principals
    from dataward.access import Grant, Role
    from dataward.workspace import Workspace

    tmp = Path(args.dir or tempfile.mkdtemp(prefix="dw-bench-log-"))
    witness = tmp / "witness.json"
    os.environ["DATAWARD_WITNESS"] = str(witness)
    if (tmp / "ws" / "dataward.toml").exists():  # --dir of an earlier run: reuse its log
        ws = Workspace.open(tmp / "ws")
    else:
        ws = Workspace.init(tmp / "ws", admin="admin")
        admin = ws.actor("admin")
        principals.add_principal(ws, admin, "bench", [Grant(Role.AUDITOR)])
        principals.generate_key(ws, admin, "bench")
    bench = ws.actor("bench")
    res: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.1f}",
        "sizes": {},
    }

    # append throughput (measured on the first 20k batched entries and `--single` single ones)
    n_tp = 20_000
    dt = append_batched(ws, bench, n_tp, args.batch)
    res["append_batched_per_s"] = n_tp / dt
    dt = append_single(ws, bench, args.single)
    res["append_single_per_s"] = args.single / dt
    res["peer_sqlite_insert_per_s"] = n_tp / peer_sqlite_insert(tmp, n_tp)
    res["peer_ed25519_verify_per_s"] = 20_000 / peer_ed25519(20_000)
    res["peer_ed25519_sign_per_s"] = 20_000 / peer_ed25519_sign(20_000)
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
    lines = [
        "# Audit log benchmark",
        "",
        f"Machine: {res['machine']}. SQLite catalog (WAL, synchronous=FULL). "
        "Produced by `benchmarks/auditlog.py`; targets from issue 3.",
        "",
        "| measure | figure | target | peer (same run) |",
        "| --- | --- | --- | --- |",
        f"| append, batched (1000 entries/transaction) | {_fmt(res['append_batched_per_s'])} entries/s | "
        f">= 20,000/s | raw SQLite insert of the same rows: {_fmt(res['peer_sqlite_insert_per_s'])}/s "
        f"(ratio {res['append_batched_per_s'] / res['peer_sqlite_insert_per_s']:.3f}); bare Ed25519 signing "
        f"alone: {_fmt(res['peer_ed25519_sign_per_s'])}/s (ratio "
        f"{res['append_batched_per_s'] / res['peer_ed25519_sign_per_s']:.2f}) |",
        f"| append, one per transaction (`ws.record`) | {_fmt(res['append_single_per_s'])} entries/s | - | - |",
    ]
    pm = res.get("peer_pymerkle_sqlite")
    for size, f in res["sizes"].items():
        n = int(size)
        w = f["workers"]
        par = f.get(f"full_{w}_processes_s")
        lines.append(
            f"| verify {n:,} entries, full, 1 process | {f['full_1_process_s']:.1f} s | < 10 s at 10^6 | "
            f"bare Ed25519 checks alone: {n / res['peer_ed25519_verify_per_s']:.1f} s |"
        )
        if par:
            lines.append(f"| verify {n:,} entries, full, {w} processes | {par:.1f} s | < 10 s at 10^6 | - |")
        lines.append(
            f"| verify {n:,} entries, incremental ({f['incremental_new_entries']:,} new) | "
            f"{f['incremental_s']:.1f} s | < 10 s at 10^6 | - |"
        )
        peer = f"pymerkle SqliteTree (100k): {pm['proof_ms']:.2f} ms" if pm else "-"
        lines.append(
            f"| inclusion proof at {n:,} | {f['proof_ms_median']:.2f} ms median, {f['proof_ms_p95']:.2f} ms p95; "
            f"{f['proof_hashes']:.0f} hashes = {f['proof_bytes_hashes']:.0f} bytes "
            f"({f['proof_bytes_json']:.0f} bytes as JSON with entry and checkpoint) | < 1 ms | {peer} |"
        )
    if pm:
        lines.append(
            f"| pymerkle SqliteTree append (unsigned, no checkpoint) | {_fmt(pm['append_per_s'])} entries/s | - | "
            f"ours batched / pymerkle: {res['append_batched_per_s'] / pm['append_per_s']:.2f} |"
        )
    lines += ["", "Raw figures (JSON):", "", "```json", json.dumps(res, indent=2), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
