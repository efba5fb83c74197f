"""Lineage and training-run queries: the catalog's ``runs``, ``run_inputs`` and ``run_outputs`` tables, and
the rows the lineage graph is built from (sources, batches, versions, checkpoints, generation statements).

Typed repository functions over a :data:`~dataward.store.catalog.Transaction` the caller holds (a read
connection, or the ``Change`` that logs ``run.record``), returning frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert, select

from dataward.errors import NotFoundError
from dataward.model.training import Artifact, Run
from dataward.store import _schema as schema
from dataward.store.catalog import Transaction

__all__ = [
    "BatchNode",
    "Checkpoint",
    "Generation",
    "LineageRows",
    "Membership",
    "RunInput",
    "RunNode",
    "SourceNode",
    "VersionNode",
    "batch_or_source",
    "insert_run",
    "lineage_rows",
    "load_run",
    "run_ids",
]


@dataclass(frozen=True)
class SourceNode:
    """A source by name and kind."""

    name: str
    kind: str


@dataclass(frozen=True)
class BatchNode:
    """A batch: its source, state and record count."""

    id: str
    source: str
    state: str
    records: int


@dataclass(frozen=True)
class VersionNode:
    """A dataset version's row (its batches are :class:`Membership` rows)."""

    dataset: str
    number: int
    parent: int | None
    kind: str
    records: int
    created_at: str
    merkle_root: str


@dataclass(frozen=True)
class Checkpoint:
    """A model file delivered as a batch of a ``checkpoint`` source."""

    batch_id: str
    sha256: str
    name: str


@dataclass(frozen=True)
class Membership:
    """Batch ``batch_id`` is contained in version ``dataset@number``."""

    batch_id: str
    dataset: str
    number: int


@dataclass(frozen=True)
class Generation:
    """The signed generation statement of a synthetic batch (it names the versions it was conditioned on)."""

    batch_id: str
    envelope_digest: str


@dataclass(frozen=True)
class RunNode:
    """A training run's row."""

    id: str
    principal: str
    status: str
    finished_at: str


@dataclass(frozen=True)
class RunInput:
    """What a run read: a version (``ref`` DATASET@N) or a base model (``ref`` its path)."""

    run_id: str
    kind: str
    ref: str
    sha256: str


@dataclass(frozen=True)
class LineageRows:
    """Every row the lineage graph is built from, read in one transaction."""

    sources: tuple[SourceNode, ...]
    batches: tuple[BatchNode, ...]
    versions: tuple[VersionNode, ...]
    checkpoints: tuple[Checkpoint, ...]
    memberships: tuple[Membership, ...]
    generations: tuple[Generation, ...]
    runs: tuple[RunNode, ...]
    run_inputs: tuple[RunInput, ...]
    run_outputs: tuple[tuple[str, Artifact], ...]  # (run id, model file produced)


def lineage_rows(tx: Transaction, generation_predicate: str) -> LineageRows:
    """The graph's rows; ``generation_predicate`` is the predicate type of synthetic generation statements."""
    b, src, bf, at = schema.batches, schema.sources, schema.batch_files, schema.attestations
    ckpt = (
        select(bf.c.batch_id, bf.c.sha256, bf.c.name)
        .join(b, b.c.id == bf.c.batch_id)
        .join(src, src.c.name == b.c.source)
        .where(src.c.kind == "checkpoint")
    )
    generated = select(at.c.batch_id, at.c.envelope_digest).where(at.c.predicate_type == generation_predicate)
    return LineageRows(
        sources=tuple(SourceNode(r.name, r.kind) for r in tx.execute(select(src.c.name, src.c.kind))),
        batches=tuple(
            BatchNode(r.id, r.source, r.state, int(r.record_count))
            for r in tx.execute(select(b.c.id, b.c.source, b.c.state, b.c.record_count))
        ),
        versions=tuple(
            VersionNode(
                r.dataset,
                int(r.number),
                None if r.parent is None else int(r.parent),
                r.kind,
                int(r.record_count),
                r.created_at,
                r.merkle_root,
            )
            for r in tx.execute(select(schema.dataset_versions))
        ),
        checkpoints=tuple(Checkpoint(r.batch_id, r.sha256, r.name) for r in tx.execute(ckpt)),
        memberships=tuple(
            Membership(r.batch_id, r.dataset, int(r.number)) for r in tx.execute(select(schema.version_batches))
        ),
        generations=tuple(Generation(r.batch_id, r.envelope_digest) for r in tx.execute(generated)),
        runs=tuple(RunNode(r.id, r.principal, r.status, r.finished_at) for r in tx.execute(select(schema.runs))),
        run_inputs=tuple(RunInput(r.run_id, r.kind, r.ref, r.sha256) for r in tx.execute(select(schema.run_inputs))),
        run_outputs=tuple(
            (r.run_id, Artifact(r.name, r.sha256, int(r.size))) for r in tx.execute(select(schema.run_outputs))
        ),
    )


def insert_run(tx: Transaction, run: Run, dataset: str, number: int) -> None:
    """Store a recorded run with its inputs and outputs (inside the change that logs ``run.record``)."""
    tx.execute(
        insert(schema.runs).values(
            id=run.id,
            dataset=dataset,
            number=number,
            version_manifest=run.version_manifest,
            status=run.status,
            principal=run.principal,
            started_at=run.started_at,
            finished_at=run.finished_at,
            provenance_digest=run.provenance_digest,
        )
    )
    inputs = [{"kind": "version", "ref": run.version, "sha256": run.version_manifest}]
    if run.base_model:
        inputs.append({"kind": "base-model", "ref": run.base_model.name, "sha256": run.base_model.sha256})
    tx.execute(insert(schema.run_inputs), [{"run_id": run.id, "position": i, **r} for i, r in enumerate(inputs)])
    if run.outputs:
        tx.execute(
            insert(schema.run_outputs),
            [{"run_id": run.id, "position": i, **a.to_json()} for i, a in enumerate(run.outputs)],
        )


def load_run(tx: Transaction, run_id: str) -> Run:
    """The run ``run_id`` with its base model and outputs in order; unknown: :class:`NotFoundError`."""
    r = tx.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
    if r is None:
        raise NotFoundError(f"no run {run_id!r}", advice="List runs with `dataward run list`.")
    ti, to = schema.run_inputs, schema.run_outputs
    base = None
    for i in tx.execute(select(ti).where(ti.c.run_id == run_id, ti.c.kind == "base-model")):
        base = Artifact(i.ref, i.sha256, 0)
    outs = tuple(
        Artifact(o.name, o.sha256, int(o.size))
        for o in tx.execute(select(to).where(to.c.run_id == run_id).order_by(to.c.position))
    )
    return Run(
        r.id,
        f"{r.dataset}@{r.number}",
        r.version_manifest,
        r.status,
        r.principal,
        r.started_at,
        r.finished_at,
        r.provenance_digest,
        base,
        outs,
    )


def run_ids(tx: Transaction) -> list[str]:
    """Every run's id, in the order the runs finished."""
    ids: list[Any] = list(tx.execute(select(schema.runs.c.id).order_by(schema.runs.c.finished_at)).scalars())
    return [str(i) for i in ids]


def batch_or_source(tx: Transaction, name: str) -> Literal["batch", "source"] | None:
    """Whether ``name`` is a batch id or a source name (a batch id wins); None when it is neither."""
    if tx.execute(select(schema.batches.c.id).where(schema.batches.c.id == name)).first():
        return "batch"
    if tx.execute(select(schema.sources.c.name).where(schema.sources.c.name == name)).first():
        return "source"
    return None
