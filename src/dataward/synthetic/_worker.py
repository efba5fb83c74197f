"""The generator worker (``python -m dataward.synthetic._worker REQUEST``): sandbox first, then run."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dataward.core.canonical import canonical_json
from dataward.records.sandbox import SandboxLimits, confine


def code_digest(module: str) -> str:
    """SHA-256 over the module's source (a package: every .py file under it, by relative path)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise SystemExit(f"generator module {module!r} not found")
    origin = Path(spec.origin)
    h = hashlib.sha256()
    if origin.name == "__init__.py":
        for f in sorted(origin.parent.rglob("*.py")):
            h.update(str(f.relative_to(origin.parent)).encode() + b"\0" + f.read_bytes() + b"\0")
    else:
        h.update(origin.read_bytes())
    return h.hexdigest()


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _records(result: Any) -> Iterable[Mapping[str, Any]]:
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # a pandas DataFrame
        return list(result.to_dict(orient="records"))
    if isinstance(result, Iterable) and not isinstance(result, str | bytes | Mapping):
        return result
    raise SystemExit(f"the generator returned {type(result).__name__}, not records (an iterable of mappings)")


def main(argv: list[str]) -> int:
    req = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    inputs: dict[str, Any] = {}
    if req["inputs"]:
        import pandas as pd

        inputs = {k: pd.read_parquet(p) for k, p in req["inputs"].items()}
    module, _, function = req["ref"].partition(":")
    digest = code_digest(module.split(".")[0]) if "." in module else code_digest(module)
    # the records layer's sandbox: no network, resource limits, no workspace or secrets in the environment
    confine(
        SandboxLimits(
            memory_bytes=int(req["memory_limit"]),
            cpu_seconds=int(req["cpu_seconds"]),
            file_bytes=int(req["output_limit"]),
        )
    )
    fn = getattr(importlib.import_module(module), function, None)
    if not callable(fn):
        raise SystemExit(f"{module} has no function {function!r}")
    result = fn(seed=int(req["seed"]), params=dict(req["params"]), inputs=inputs)
    n = 0
    with open(req["output"], "wb") as out:
        for rec in _records(result):
            if not isinstance(rec, Mapping):
                raise SystemExit(f"record {n} is {type(rec).__name__}, not a mapping")
            out.write(canonical_json(_plain(rec)) + b"\n")
            n += 1
    libraries = {"python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("numpy", "pandas", "scikit-learn", "scipy", "pyarrow"):
        try:
            libraries[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    print(json.dumps({"code_sha256": digest, "libraries": libraries, "records": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
