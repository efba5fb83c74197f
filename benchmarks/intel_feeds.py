"""Intel feed parsing: realistic 2.4 MB feeds (YAML, JSON, a signed DSSE envelope, a STIX bundle) loaded
by `screen.intel.load_feed_bytes`, beside the previous path (PyYAML's pure-Python safe loader, then
`parse_feed`) as the floor to beat, in the same run.

Target: each 2.4 MB feed parses in under 2 s. Reports CPU seconds (the honest figure on a shared machine)
and wall seconds per feed, the ratio to the previous path, and the load average.

Usage: python benchmarks/intel_feeds.py [--mb 2.4] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "screen"))

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from intel_feedgen import feed, feed_json, feed_yaml, stix_bundle

from dataward.screen import intel


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), min(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mb", type=float, default=2.4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    key = Ed25519PrivateKey.generate()
    feeds = {
        "yaml": (feed_yaml(size), False),
        "json": (feed_json(size), False),
        "signed": (intel.sign_feed(intel.parse_feed(feed(size)), key), True),
        "stix": (stix_bundle(size), False),
    }
    rows: dict[str, dict[str, Any]] = {}
    for name, (data, signed) in feeds.items():
        keys = [key.public_key()] if signed else []

        def load(data: bytes = data, keys: list[Any] = keys, signed: bool = signed, name: str = name) -> Any:
            return intel.load_feed_bytes(data, where=name, keys=keys, allow_unsigned=not signed)

        n = len(load().indicators)
        cpu, wall = _best(load, args.repeat)
        row: dict[str, Any] = {"mb": round(len(data) / 1e6, 2), "indicators": n, "cpu_s": round(cpu, 3)}
        row["wall_s"] = round(wall, 3)
        if name == "yaml":  # the previous path: the pure-Python safe loader

            def old(data: bytes = data) -> Any:
                return intel.parse_feed(yaml.load(data.decode(), Loader=yaml.SafeLoader))

            ocpu, owall = _best(old, 1)
            row.update({"previous_cpu_s": round(ocpu, 2), "previous_wall_s": round(owall, 2)})
            row["speedup_cpu"] = round(ocpu / cpu, 1)
        row["under_2s_cpu"] = cpu < 2.0
        rows[name] = row
    out = {"feeds": rows, "loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, row in rows.items():
            print(f"{name:7} " + " ".join(f"{k}={v}" for k, v in row.items()))
        print(f"load {out['loadavg']}, {out['cpus']} CPUs")


if __name__ == "__main__":
    main()
