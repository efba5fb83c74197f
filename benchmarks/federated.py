"""Federated provenance benchmark: how often the trace ranks the poisoned node first, and the cost per round.

Each incident is a full simulation (dataward.federated._simulation): N node workspaces with their own logs,
one poisoned with a backdoor, FedAvg rounds where every node signs its update and is witnessed by two
peers, the coordinator verifying every contribution, then an incident on the aggregated model.
Baseline for the rank: a random ranking puts the poisoned node first with probability 1/N.

    python benchmarks/federated.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from dataward.federated._simulation import Scenario, run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a small grid for development")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    grid = [("digits", n, s) for n in (5, 10, 20) for s in range(6)] + [
        ("breast_cancer", n, s) for n in (5, 10) for s in range(4)
    ]
    if args.quick:
        grid = [("digits", 5, 0), ("breast_cancer", 5, 0)]
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    rows = []
    for ds, n, seed in grid:
        out = run(Scenario(dataset=ds, n_nodes=n, rounds=4, seed=seed))
        rows.append(out.to_json())
        print(json.dumps(rows[-1]), file=sys.stderr)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    took = [r for r in rows if r["attack_took"]]
    first = sum(1 for r in took if r["rank_of_poisoned"] == 1)
    summary = {
        "incidents": len(took),
        "scenarios": len(rows),
        "poisoned_node_first": first,
        "poisoned_node_first_share": first / max(1, len(took)),
        "random_baseline_share": sum(1 / r["nodes"] for r in took) / max(1, len(took)),
        "mean_rank": sum(r["rank_of_poisoned"] for r in took) / max(1, len(took)),
        "poisoned_batch_first_share": sum(1 for r in took if r["poisoned_batch_first"]) / max(1, len(took)),
        "seconds_per_round_by_nodes": {
            n: round(sum(r["seconds_per_round"] for r in rows if r["nodes"] == n)
                     / max(1, sum(1 for r in rows if r["nodes"] == n)), 3)
            for n in sorted({r["nodes"] for r in rows})
        },
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_start": load0,
        "load_average_end": os.getloadavg()[0],
    }
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
