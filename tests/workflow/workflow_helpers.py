"""Helpers for the workflow tests (imported by name: a unique module name, no package)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataward.acquire.acquire import acquire
from dataward.batches import Batch
from dataward.identity import Actor
from dataward.model.roles import Role
from dataward.workspace import Workspace


def _without_detection() -> str:
    from dataward.workflow.approval_policy import default_policy_text

    text = default_policy_text()
    required = 'required_checks = ["integrity", "screening", "detection"]'
    assert required in text
    return text.replace(required, 'required_checks = ["integrity", "screening"]')


#: the default policy, except that it openly requires no detection (these tests screen with the fast checks)
WITHOUT_DETECTION = _without_detection()

PEOPLE = {
    "ingrid": [Role.INGESTER],
    "sam": [Role.SCREENER],
    "rita": [Role.REVIEWER],
    "alice": [Role.APPROVER],
    "bob": [Role.APPROVER],
    "carl": [Role.APPROVER, Role.INGESTER],
}


def write_csv(path: Path, n: int = 60, *, pii: bool = False) -> Path:
    lines = ["text,label"]
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        extra = f" contact me at person{i}@example.com" if pii and i % 10 == 0 else ""
        lines.append(f"review number {i} was {'great' if i % 2 else 'poor'}{extra},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Flow:
    ws: Workspace
    tmp: Path
    actors: dict[str, Actor]

    def actor(self, name: str) -> Actor:
        if name not in self.actors:
            self.actors[name] = self.ws.actor(name)
        return self.actors[name]

    def batch(self, n: int = 60, *, source: str = "vendor", by: str = "ingrid", **kw: Any) -> Batch:
        path = write_csv(self.tmp / f"data-{len(list(self.tmp.glob('data-*')))}.csv", n, **kw)
        return acquire(self.ws, self.actor(by), source, [path])

    def cli(self, *args: str, who: str = "admin") -> int:
        from dataward.cli import main

        return int(main(["-w", str(self.ws.path), "--as", who, *args]))
