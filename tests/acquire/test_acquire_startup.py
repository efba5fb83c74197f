"""What the acquire command imports at start-up (ADR 0055): fingerprinting files needs no Arrow or NumPy,
and a local object store no fsspec, nor output that is not drawn rich's tables and progress bars (ADR 0100)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("pyarrow", "numpy", "pandas", "sklearn", "fsspec", "rich.table", "rich.progress")


def _loaded_after(code: str) -> list[str]:
    probe = f"import json, sys; {code}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ, check=True)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.slow
def test_acquire_command_imports_no_arrow_numpy_or_fsspec() -> None:
    assert _loaded_after("import dataward.cli._acquire") == []


@pytest.mark.slow
def test_records_readers_still_load_on_first_use() -> None:
    # the lazy re-export resolves to the reader's own function, and only then is Arrow imported
    loaded = _loaded_after(
        "import dataward.records as r, dataward.records.readers as rd; assert r.read_table is rd.read_table"
    )
    assert "pyarrow" in loaded
