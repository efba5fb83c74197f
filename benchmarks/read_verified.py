"""What the verified read path costs: dataward.open / export of a released version against plain reads.

Peers, in the same run on the same bytes: ``pyarrow.csv.read_csv`` of the delivered file (what training
code would do without dataward) and ``sha256sum``-style hashing of it (the floor for any verification).
dataward.open verifies the release log entry (inclusion proof), every signature and approval, re-hashes
every file and record (verify_batch), then reads with pyarrow re-hashing the bytes it hands out, and adds
the provenance columns; so ~3 passes over the data are expected.

Usage: python benchmarks/read_verified.py [--rows N] [--repeat K] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from pyarrow import csv as pacsv

    import dataward
    from dataward import principals
    from dataward.acquire.acquire import acquire
    from dataward.batches import BatchState, get_batch
    from dataward.lifecycle import PREDICATE_APPROVAL, attest, transition
    from dataward.model.roles import Grant, Role
    from dataward.release.versions import release
    from dataward.sources import add_source
    from dataward.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="dataward-read-") as tmp:
        root = Path(tmp)
        os.environ["DATAWARD_WITNESS"] = str(root / "witness.json")
        os.environ["DATAWARD_KEYRING"] = str(root / "keyring")  # never the user's own keyring
        data = root / "in" / "train.csv"
        data.parent.mkdir()
        with open(data, "w", encoding="utf-8") as f:
            f.write("text,label,score\n")
            for i in range(args.rows):
                f.write(f"example number {i} says something {'good' if i % 3 else 'bad'},{i % 2},{i * 0.001:.3f}\n")
        size = data.stat().st_size
        ws = Workspace.init(root / "ws", admin="admin")
        admin = ws.actor("admin")
        for name, role in (("ingrid", Role.INGESTER), ("alice", Role.APPROVER), ("tom", Role.TRAINER)):
            principals.enroll(ws, admin, name, [Grant(role)])
        add_source(ws, admin, "vendor", kind="third-party", origin="https://vendor.example", license="MIT")
        t = time.perf_counter()
        b = acquire(ws, ws.actor("ingrid"), "vendor", [data]).id
        t_acquire = time.perf_counter() - t
        # the bare lifecycle with a signed approval (the workflow's screening is benchmarked elsewhere)
        alice = ws.actor("alice")
        for state in (BatchState.SCREENED, BatchState.AUDITED, BatchState.APPROVED):
            with ws.change(alice, "batch.approve", f"batch:{b}") as ch:
                transition(ch, b, state)
                if state == BatchState.APPROVED:
                    m = get_batch(ws, b).manifest_digest
                    attest(ws, ch, [(f"batch:{b}", m)], PREDICATE_APPROVAL, {"batch": b, "manifest": m}, batch_id=b)
        t = time.perf_counter()
        release(ws, alice, "train", [b])
        t_release = time.perf_counter() - t

        tom = ws.actor("tom")
        n = [0]

        def export() -> None:
            n[0] += 1
            dataward.export("train@1", root / f"out{n[0]}", workspace=ws, principal=tom)

        res = {
            "rows": args.rows,
            "bytes": size,
            "acquire_s": t_acquire,
            "release_s": t_release,
            "open_arrow_s": _best(lambda: dataward.open("train@1", workspace=ws, principal=tom), args.repeat),
            "open_arrow_quick_s": _best(
                lambda: dataward.open("train@1", workspace=ws, principal=tom, verify="quick"), args.repeat
            ),
            "export_s": _best(export, args.repeat),
            "peer_pyarrow_read_csv_s": _best(lambda: pacsv.read_csv(data), args.repeat),
            "peer_sha256_s": _best(lambda: hashlib.sha256(data.read_bytes()).hexdigest(), args.repeat),
        }
        ws.engine.dispose()
    res["ratio_open_vs_pyarrow"] = res["open_arrow_s"] / res["peer_pyarrow_read_csv_s"]
    res["ratio_open_vs_sha256"] = res["open_arrow_s"] / res["peer_sha256_s"]
    res["open_mb_per_s"] = size / 1e6 / res["open_arrow_s"]
    if args.json:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}, indent=2))
    else:
        print(f"{args.rows:,} rows, {size / 1e6:.1f} MB (best of {args.repeat})")
        print(f"  acquire {res['acquire_s']:.2f} s, release {res['release_s']:.2f} s")
        print(f"  dataward.open (verified) {res['open_arrow_s']:.3f} s  ({res['open_mb_per_s']:.0f} MB/s)")
        print(f"  dataward.open quick      {res['open_arrow_quick_s']:.3f} s")
        print(f"  dataward.export          {res['export_s']:.3f} s")
        print(
            f"  peer pyarrow.read_csv    {res['peer_pyarrow_read_csv_s']:.3f} s  -> open is "
            f"{res['ratio_open_vs_pyarrow']:.1f}x"
        )
        print(f"  peer sha256 of the file  {res['peer_sha256_s']:.3f} s  -> open is {res['ratio_open_vs_sha256']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
