"""docs/architecture.md describes the code as it is (issue #13): its diagram's edges are the code's, and its
layout names every package."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
sys.path.insert(0, str(ROOT / "scripts"))

import layer_diagram  # noqa: E402


def _edges(mermaid: str) -> set[tuple[str, str, str]]:
    return {(a, arrow, b) for a, arrow, b in re.findall(r"^\s*(\w+) (-->|-\.->)\|\d+\| (\w+)$", mermaid, flags=re.M)}


@pytest.mark.slow  # over a second: the quick lane (make check) leaves it to make test
def test_the_diagram_has_the_codes_edges() -> None:
    documented = _edges(DOC.split("```mermaid", 1)[1].split("```", 1)[0])
    assert documented, "no mermaid diagram in docs/architecture.md"
    generated = _edges(layer_diagram.mermaid())
    assert documented == generated, "run `python scripts/layer_diagram.py` and paste the diagram into the doc"


def test_every_package_has_a_layer_and_a_line_in_the_layout() -> None:
    src = ROOT / "src" / "dataward"
    names = sorted(
        {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        | {p.stem for p in src.glob("*.py") if p.stem != "__init__"}
    )
    layout = DOC.split("src/dataward/", 1)[1].split("```", 1)[0]
    for name in names:
        layer_diagram.layer_of(f"dataward.{name}")  # raises for a package in no layer
        assert re.search(rf"\b{re.escape(name)}(/|\.py)", layout), f"{name} is not in the doc's layout"
