"""Dataset version queries: the catalog's ``datasets``, ``dataset_versions`` and ``version_batches`` tables,
read into :class:`dataward.model.version.Version` values, and the rows a version's verification reads
(the batch's approval statements, the version's release log entry).

Typed repository functions over a :data:`~dataward.store.catalog.Transaction` the caller holds (a read
connection, or the ``Change`` that logs ``dataset.release`` / ``dataset.rollback``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from dataward.errors import NotFoundError
from dataward.model.version import Version
from dataward.store import _schema as schema
from dataward.store.catalog import Transaction

__all__ = [
    "LoggedEntry",
    "SignedApproval",
    "approval_statements",
    "ensure_dataset",
    "insert_version",
    "latest_number",
    "load_version",
    "logged_entries",
    "version_rows",
    "versions_containing",
]


@dataclass(frozen=True)
class SignedApproval:
    """A stored approval statement of a batch: the envelope's digest, who made it, when."""

    envelope_digest: str
    principal: str
    created_at: str


@dataclass(frozen=True)
class LoggedEntry:
    """One audit-log entry as stored: its sequence number, signing key, canonical body and signature."""

    seq: int
    keyid: str
    entry: bytes
    signature: bytes


def _version(tx: Transaction, r: Any) -> Version:
    t = schema.version_batches
    q = select(t.c.batch_id).where(t.c.dataset == r.dataset, t.c.number == r.number).order_by(t.c.position)
    batch_ids: list[Any] = list(tx.execute(q).scalars())
    return Version(
        r.dataset,
        int(r.number),
        None if r.parent is None else int(r.parent),
        r.kind,
        r.manifest_digest,
        r.merkle_root,
        int(r.record_count),
        tuple(str(i) for i in batch_ids),
        r.created_at,
        r.created_by,
    )


def latest_number(tx: Transaction, dataset: str) -> int | None:
    """The number of the dataset's newest version in the catalog, or None when it has none."""
    t = schema.dataset_versions
    r = tx.execute(select(t.c.number).where(t.c.dataset == dataset).order_by(t.c.number.desc()).limit(1)).scalar()
    return None if r is None else int(r)


def load_version(tx: Transaction, dataset: str, number: int | None) -> Version:
    """Version ``number`` of ``dataset`` (None: the newest); unknown: :class:`NotFoundError`."""
    t = schema.dataset_versions
    if number is None:
        number = latest_number(tx, dataset)
        if number is None:
            raise NotFoundError(f"dataset {dataset!r} has no versions", advice="Create one with `dataward release`.")
    r = tx.execute(select(t).where(t.c.dataset == dataset, t.c.number == number)).first()
    if r is None:
        known = tx.execute(select(schema.datasets.c.name).where(schema.datasets.c.name == dataset)).first()
        what = f"no version {number} of dataset {dataset!r}" if known else f"no dataset {dataset!r}"
        raise NotFoundError(what, advice="List versions with `dataward dataset list`.")
    return _version(tx, r)


def version_rows(tx: Transaction, dataset: str | None = None) -> list[Version]:
    """Every version (or ``dataset``'s) ordered by dataset and number."""
    t = schema.dataset_versions
    q = select(t).order_by(t.c.dataset, t.c.number)
    if dataset:
        q = q.where(t.c.dataset == dataset)
    return [_version(tx, r) for r in tx.execute(q)]


def versions_containing(tx: Transaction, batch_ids: Iterable[str]) -> list[tuple[str, int]]:
    """(dataset, number) of every version that contains one of ``batch_ids``, sorted."""
    t = schema.version_batches
    ids = list(batch_ids)
    if not ids:
        return []
    rows = tx.execute(select(t.c.dataset, t.c.number).where(t.c.batch_id.in_(ids)).distinct())
    return sorted((r.dataset, int(r.number)) for r in rows)


def ensure_dataset(tx: Transaction, name: str, *, created_at: str, created_by: str) -> None:
    """Create the dataset ``name`` unless it exists (inside the change that releases its first version)."""
    if tx.execute(select(schema.datasets.c.name).where(schema.datasets.c.name == name)).first() is None:
        tx.execute(insert(schema.datasets).values(name=name, created_at=created_at, created_by=created_by))


def insert_version(tx: Transaction, v: Version) -> None:
    """Store version ``v`` with its batches in order (inside the change that logs its release)."""
    tx.execute(
        insert(schema.dataset_versions).values(
            dataset=v.dataset,
            number=v.number,
            parent=v.parent,
            kind=v.kind,
            manifest_digest=v.manifest_digest,
            merkle_root=v.merkle_root,
            record_count=v.record_count,
            batch_count=len(v.batches),
            created_at=v.created_at,
            created_by=v.created_by,
        )
    )
    if v.batches:
        tx.execute(
            insert(schema.version_batches),
            [{"dataset": v.dataset, "number": v.number, "batch_id": b, "position": i} for i, b in enumerate(v.batches)],
        )


def approval_statements(tx: Transaction, batch_id: str, predicate_type: str) -> list[SignedApproval]:
    """The batch's approval statements: its attestations of ``predicate_type`` in order, then its approvals."""
    at, ap = schema.attestations, schema.approvals
    attested = tx.execute(
        select(at).where(at.c.batch_id == batch_id, at.c.predicate_type == predicate_type).order_by(at.c.id)
    )
    out = [SignedApproval(r.envelope_digest, r.principal, r.created_at) for r in attested]
    out += [
        SignedApproval(r.envelope_digest, r.principal, r.created_at)
        for r in tx.execute(select(ap).where(ap.c.batch_id == batch_id))
    ]
    return out


def logged_entries(tx: Transaction, subject: str, actions: Sequence[str]) -> list[LoggedEntry]:
    """The audit-log entries on ``subject`` with one of ``actions``, as stored."""
    t = schema.log_entries
    rows = tx.execute(select(t).where(t.c.subject == subject, t.c.action.in_(list(actions))).order_by(t.c.seq))
    return [LoggedEntry(int(r.seq), str(r.keyid), bytes(r.entry), bytes(r.signature)) for r in rows]
