"""Run a generator in a worker process: no network, resource limits, only its inputs to read.

The worker imports ``MODULE``, calls ``FUNCTION(seed=..., params=..., inputs=...)`` and writes what it
returns (an iterable of mappings, or a pandas DataFrame) as canonical JSON lines, one record per line,
so the same records always give the same bytes and hence the same Merkle root. A crash, a limit hit or
an exception in the generator is a clean :class:`GeneratorError` naming the generator, never a dead CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataward.errors import Error

#: default limits for a generator run (raise with the matching keyword of :func:`run_generator`)
MEMORY_LIMIT = 4 << 30
CPU_SECONDS = 600
OUTPUT_LIMIT = 2 << 30
LIBRARIES = ("numpy", "pandas", "scikit-learn", "scipy", "pyarrow")


class GeneratorError(Error):
    """The generator could not run, crashed, hit a limit or returned something that is not records."""

    exit_code = 2
    default_advice = "Run the generator on its own to see why; it must return records for a given seed."


@dataclass(frozen=True)
class GeneratorRun:
    output: Path
    code_sha256: str
    libraries: Mapping[str, str]


def run_generator(
    ref: str,
    *,
    seed: int,
    params: Mapping[str, str],
    inputs: Mapping[str, Path],
    out_dir: Path,
    search_path: str | None = None,
    memory_limit: int = MEMORY_LIMIT,
    cpu_seconds: int = CPU_SECONDS,
) -> GeneratorRun:
    """Run ``ref`` (MODULE:FUNCTION) in a sandboxed worker; return the JSONL it wrote and what it ran."""
    out = out_dir / "synthetic.jsonl"
    request = {
        "ref": ref,
        "seed": seed,
        "params": dict(params),
        "inputs": {k: str(v) for k, v in inputs.items()},
        "output": str(out),
        "memory_limit": memory_limit,
        "cpu_seconds": cpu_seconds,
        "output_limit": OUTPUT_LIMIT,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAWARD_PASSPHRASE", "DATAWARD_KEYRING"))}
    env["PYTHONHASHSEED"] = "0"
    path = search_path if search_path is not None else os.getcwd()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="dataward-gen-") as tmp:
        req = Path(tmp) / "request.json"
        req.write_text(json.dumps(request), encoding="utf-8")
        proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "dataward.synthetic._worker", str(req)],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=cpu_seconds * 2 + 60,
            check=False,
        )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        if proc.returncode < 0:
            last = f"killed by signal {-proc.returncode} ({last})"
        raise GeneratorError(f"generator {ref} failed: {last}")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise GeneratorError(f"generator {ref}: the worker reported nothing") from None
    return GeneratorRun(out, str(info["code_sha256"]), dict(info["libraries"]))


def worker_request(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data
