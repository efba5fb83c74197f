"""Lineage queries over the catalog: up- and downstream of a model, version, batch or source; blast radius.

The graph: source -> batch (supplied), batch -> version (contained in), version -> run (trained on),
model -> run (base model of), run -> model (produced). A version's parent is shown but not followed:
a child version need not contain its parent's records.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataward.core import dsse
from dataward.errors import Error, InputError, NotFoundError
from dataward.lifecycle import PREDICATE_GENERATION
from dataward.lineage.runs import hash_file
from dataward.release.versions import parse_spec
from dataward.store import lineage_repo
from dataward.workspace import Workspace

_HEX64 = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


@dataclass
class Graph:
    """The lineage graph: nodes by key (``kind:id``), edges both ways with their relation, version parents."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    down: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    up: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    parents: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, **attrs: Any) -> None:
        """Add the node ``key`` (or update its attributes)."""
        node = self.nodes.setdefault(key, {"id": key, "type": key.split(":", 1)[0]})
        node.update(attrs)

    def link(self, a: str, b: str, rel: str) -> None:
        """Add the edge ``a`` -> ``b`` with relation ``rel``."""
        self.down[a].add(b)
        self.up[b].add(a)
        self.edges.append((a, b, rel))

    def walk(self, start: str, direction: str) -> list[str]:
        """Every node reachable from ``start`` going ``down`` (descendants) or ``up`` (ancestors), breadth first."""
        nxt = self.down if direction == "down" else self.up
        seen: set[str] = {start}
        q = deque([start])
        order: list[str] = []
        while q:
            k = q.popleft()
            for m in sorted(nxt.get(k, ())):
                if m not in seen:
                    seen.add(m)
                    order.append(m)
                    q.append(m)
        return order


def build_graph(ws: Workspace) -> Graph:
    """The whole lineage graph of the workspace, read in one transaction."""
    g = Graph()
    with ws.engine.connect() as conn:
        rows = lineage_repo.lineage_rows(conn, PREDICATE_GENERATION)
    for s in rows.sources:
        g.add(f"source:{s.name}", kind=s.kind)
    for b in rows.batches:
        g.add(f"batch:{b.id}", source=b.source, state=b.state, records=b.records)
        g.link(f"source:{b.source}", f"batch:{b.id}", "supplied")
    for v in rows.versions:
        key = f"version:{v.dataset}@{v.number}"
        g.add(key, records=v.records, kind=v.kind, created_at=v.created_at, merkle_root=v.merkle_root)
        if v.parent is not None:
            g.parents[key] = f"version:{v.dataset}@{v.parent}"
    # a checkpoint acquired from a `checkpoint` source is the same node as that model wherever it is used
    for c in rows.checkpoints:
        g.add(f"model:{c.sha256}", name=c.name)
        g.link(f"batch:{c.batch_id}", f"model:{c.sha256}", "delivered checkpoint")
    for m in rows.memberships:
        g.link(f"batch:{m.batch_id}", f"version:{m.dataset}@{m.number}", "contained in")
    # a synthetic batch conditioned on a version descends from it (its signed generation statement)
    for gen in rows.generations:
        for spec in _conditioned_on(ws, gen.envelope_digest):
            if f"version:{spec}" in g.nodes and f"batch:{gen.batch_id}" in g.nodes:
                g.link(f"version:{spec}", f"batch:{gen.batch_id}", "conditioned")
    for r in rows.runs:
        g.add(f"run:{r.id}", principal=r.principal, status=r.status, finished_at=r.finished_at)
    for i in rows.run_inputs:
        if i.kind == "version":
            g.link(f"version:{i.ref}", f"run:{i.run_id}", "trained on")
        else:
            g.add(f"model:{i.sha256}", name=i.ref)
            g.link(f"model:{i.sha256}", f"run:{i.run_id}", "base model of")
    for run_id, out in rows.run_outputs:
        g.add(f"model:{out.sha256}", name=out.name, size=out.size)
        g.link(f"run:{run_id}", f"model:{out.sha256}", "produced")
    return g


def _conditioned_on(ws: Workspace, envelope_digest: str) -> list[str]:
    """The versions a generation statement names (an unreadable statement names none: verify reports it)."""
    try:
        st = dsse.parse_statement(dsse.Envelope.from_bytes(ws.objects.read_bytes("meta", envelope_digest)))
        return [str(k) for k in dict(st.predicate.get("conditioned_on") or {})]
    except (Error, OSError, AttributeError, TypeError, ValueError):
        return []


def resolve(ws: Workspace, g: Graph, target: str) -> str:
    """The graph key of ``target``: DATASET@N, a batch id, a source, a run id, a model digest or path."""
    if "@" in target:
        try:
            ds, n = parse_spec(target)
        except InputError:
            ds, n = "", None
        if ds:
            if n is None:
                ns = [int(k.rsplit("@", 1)[1]) for k in g.nodes if k.startswith(f"version:{ds}@")]
                n = max(ns) if ns else 0
            if f"version:{ds}@{n}" in g.nodes:
                return f"version:{ds}@{n}"
    for kind in ("batch", "source", "run"):
        if f"{kind}:{target}" in g.nodes:
            return f"{kind}:{target}"
    t = target.lower()
    if _HEX64.match(t):
        key = f"model:{t.removeprefix('sha256:')}"
        if key in g.nodes:
            return key
        raise NotFoundError(f"no recorded model with SHA-256 {t[:16]}...")
    p = Path(target)
    if p.is_file():
        a = hash_file(p)
        key = f"model:{a.sha256}"
        if key in g.nodes:
            return key
        raise NotFoundError(
            f"{p}: no recorded run produced or used this file (SHA-256 {a.sha256[:16]}...)",
            advice="Record the run that made it with `dataward run record`.",
        )
    raise NotFoundError(f"{target!r} is not a model, version, batch, source or run of this workspace")


def _subgraph_edges(g: Graph, keys: set[str]) -> list[dict[str, str]]:
    return [{"from": a, "to": b, "relation": r} for a, b, r in g.edges if a in keys and b in keys]


def lineage(ws: Workspace, target: str) -> dict[str, Any]:
    """Everything upstream (what it came from) and downstream (what came from it) of ``target``."""
    g = build_graph(ws)
    key = resolve(ws, g, target)
    up = g.walk(key, "up")
    down = g.walk(key, "down")
    keys = {key, *up, *down}
    out: dict[str, Any] = {
        "target": g.nodes[key],
        "upstream": [g.nodes[k] for k in up],
        "downstream": [g.nodes[k] for k in down],
        "edges": _subgraph_edges(g, keys),
    }
    if key in g.parents:
        out["parent_version"] = g.parents[key].split(":", 1)[1]
    kind, name = key.split(":", 1)
    if kind == "version":
        # the records the version leaves out of its batches, each with the rollback that dropped it and why
        from dataward.release.rollback import version_dropped_records
        from dataward.release.versions import get_version

        out["dropped_records"] = version_dropped_records(ws, get_version(ws, name), only_new=False)
    elif kind == "batch":
        # records of the batch a signed rollback revoked (the replayed log is the authority)
        from dataward.evidence.load import trusted_state

        revoked = trusted_state(ws).revoked_records.get(name, {})
        out["revoked_records"] = [
            {"file": r.file, "record": r.record, "sha256": r.sha256, "version": r.version, "reason": r.reason}
            for r in sorted(revoked.values(), key=lambda r: (r.seq, r.file, r.record))
        ]
    return out


def blast_radius(ws: Workspace, target: str) -> dict[str, Any]:
    """Every version that contains records from a batch or source, every run and model made from them."""
    g = build_graph(ws)
    key = resolve(ws, g, target)
    if g.nodes[key]["type"] not in ("batch", "source"):
        raise InputError(f"blast radius starts at a batch or a source, not a {g.nodes[key]['type']}")
    down = g.walk(key, "down")
    # descendants include synthetic batches conditioned on a tainted version: they are tainted too
    batches = [k for k in (key, *down) if k.startswith("batch:")]
    bset = set(batches)
    versions = []
    for k in down:
        if k.startswith("version:"):
            contained = sorted(b.split(":", 1)[1] for b in g.up[k] if b in bset)
            versions.append(
                {
                    "version": k.split(":", 1)[1],
                    "batches": contained,
                    "records_from_target": sum(int(g.nodes[f"batch:{b}"].get("records", 0)) for b in contained),
                    "records": g.nodes[k].get("records"),
                }
            )
    runs = [g.nodes[k] for k in down if k.startswith("run:")]
    models = []
    for k in down:
        if k.startswith("model:"):
            producers = sorted(r.split(":", 1)[1] for r in g.up[k] if r.startswith("run:"))
            models.append({"sha256": k.split(":", 1)[1], "name": g.nodes[k].get("name"), "runs": producers})
    return {
        "target": g.nodes[key],
        "batches": [g.nodes[b] for b in batches],
        "versions": versions,
        "runs": runs,
        "models": models,
    }
