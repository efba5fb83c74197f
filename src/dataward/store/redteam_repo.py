"""Red-team queries: the catalog's ``redteam_results`` table (keyed by model digest) and the training runs
that produced a model.

Typed repository functions over a :data:`~dataward.store.catalog.Transaction` the caller holds (a read
connection, or the ``Change`` that logs ``redteam.run``), returning frozen values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import insert, select

from dataward.store import _schema as schema
from dataward.store.catalog import Transaction

__all__ = ["ProducingRun", "RedteamResultRow", "earlier_models", "insert_result", "producing_run", "results_of"]


@dataclass(frozen=True)
class RedteamResultRow:
    """One red-team result: the model, the data it was tested on, the outcome and the signed report's digest."""

    id: str
    model_sha256: str  # "" when the model has no artifact digest
    model: str
    data: str
    passed: bool
    accuracy: float | None
    failures: int
    principal: str
    created_at: str
    report_digest: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form `redteam --json` prints for a stored result."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ProducingRun:
    """The first recorded run that produced a model: its id, dataset version and when it finished."""

    id: str
    dataset: str
    number: int
    finished_at: str


def _result(r: Any) -> RedteamResultRow:
    return RedteamResultRow(
        r.id,
        r.model_sha256,
        r.model,
        r.data,
        bool(r.passed),
        None if r.accuracy is None else float(r.accuracy),
        int(r.failures),
        r.principal,
        r.created_at,
        r.report_digest,
    )


def insert_result(tx: Transaction, row: RedteamResultRow) -> None:
    """Store a red-team result (inside the change that logs ``redteam.run``)."""
    tx.execute(insert(schema.redteam_results).values(asdict(row)))


def results_of(tx: Transaction, model_sha256: str, *, newest_first: bool = False) -> list[RedteamResultRow]:
    """Every result stored for the model with this digest, oldest first (or newest first)."""
    t = schema.redteam_results
    order = t.c.created_at.desc() if newest_first else t.c.created_at
    return [_result(r) for r in tx.execute(select(t).where(t.c.model_sha256 == model_sha256).order_by(order))]


def producing_run(tx: Transaction, model_sha256: str) -> ProducingRun | None:
    """The earliest recorded run that output the model with this digest, or None."""
    ro, runs = schema.run_outputs, schema.runs
    row = tx.execute(
        select(runs).join(ro, ro.c.run_id == runs.c.id).where(ro.c.sha256 == model_sha256).order_by(runs.c.finished_at)
    ).first()
    return None if row is None else ProducingRun(str(row.id), row.dataset, int(row.number), row.finished_at)


def earlier_models(tx: Transaction, run: ProducingRun) -> list[str]:
    """Digests of the models completed runs on the same dataset produced before ``run``, newest first."""
    ro, runs = schema.run_outputs, schema.runs
    q = (
        select(ro.c.sha256)
        .join(runs, ro.c.run_id == runs.c.id)
        .where(runs.c.dataset == run.dataset, runs.c.finished_at < run.finished_at, runs.c.status == "completed")
        .order_by(runs.c.finished_at.desc())
    )
    digests: list[Any] = list(tx.execute(q).scalars())
    return [str(s) for s in digests]
