"""Print the layer diagram of docs/architecture.md (mermaid), read from the code's imports.

Packages are grouped into layers (``LAYERS``, top to bottom); an edge is drawn between two layers when a
module of one imports a module of the other, labelled with the number of import statements. Edges that
point upwards (a lower layer importing a higher one) are the ones the layer contract still allows by name
(tests/test_layers.py); they are drawn dashed. Usage: ``python scripts/layer_diagram.py > diagram.mmd``.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_layers import imports, package

#: layer -> the packages (``dataward.X``) in it, top (user-facing) to bottom (pure)
LAYERS: dict[str, tuple[str, ...]] = {
    "ui": ("cli", "web", "demo"),
    "services": (
        "admin",
        "acquire",
        "workflow",
        "release",
        "lineage",
        "redteam",
        "incident",
        "synthetic",
        "federated",
        "maintenance",
    ),
    "engines": ("screen", "detect", "simulate", "modelscan", "records", "scale", "charts"),
    "trust": ("log", "evidence"),
    "state": ("workspace", "sources", "principals", "access", "batches", "lifecycle", "identity"),
    "store": ("store",),
    "values": ("model", "core", "plugins", "progress", "errors", "timeutil"),
}


def layer_of(pkg: str) -> str:
    """The layer of ``dataward.X`` (a KeyError names a package missing from LAYERS)."""
    name = pkg.split(".", 1)[1]
    for layer, members in LAYERS.items():
        if name in members:
            return layer
    raise KeyError(f"{pkg} is in no layer: add it to LAYERS")


def edges() -> dict[tuple[str, str], int]:
    """(from layer, to layer) -> number of import statements, over every dataward module."""
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for i in imports():
        if not i.target.startswith("dataward.") or package(i.module) == "dataward":
            continue
        a, b = layer_of(package(i.module)), layer_of(package(i.target))
        if a != b:
            out[(a, b)] += 1
    return dict(out)


def mermaid() -> str:
    """The diagram as mermaid text."""
    order = list(LAYERS)
    lines = ["flowchart TD"]
    for layer, members in LAYERS.items():
        lines.append(f'  {layer}["<b>{layer}</b><br/>{", ".join(members)}"]')
    for (a, b), n in sorted(edges().items(), key=lambda e: (order.index(e[0][0]), order.index(e[0][1]))):
        arrow = "-->" if order.index(a) < order.index(b) else "-.->"
        lines.append(f"  {a} {arrow}|{n}| {b}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(mermaid())
