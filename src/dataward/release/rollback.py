"""Rollback: a new version without tainted records; what it drops is revoked (released -> revoked)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from dataward.batches import BatchState, load_batch
from dataward.errors import ConflictError, InputError, IntegrityError, NotFoundError
from dataward.identity import Actor
from dataward.lifecycle import PREDICATE_REVOCATION, attest, transition
from dataward.release.versions import (
    Version,
    check_may,
    commit_version,
    get_version,
    latest_number,
    load_version,
    parse_spec,
    plan_version,
    verify_version,
    version_subject,
)
from dataward.store import schema
from dataward.workspace import Workspace


def resolve_without(ws: Workspace, target: str) -> tuple[str, str]:
    """('batch', id) or ('source', name) for ``--without``."""
    with ws.engine.connect() as conn:
        if conn.execute(select(schema.batches.c.id).where(schema.batches.c.id == target)).first():
            return "batch", target
        if conn.execute(select(schema.sources.c.name).where(schema.sources.c.name == target)).first():
            return "source", target
    raise NotFoundError(f"{target!r} is neither a batch nor a source")


def rollback(
    ws: Workspace,
    actor: Actor,
    dataset: str,
    *,
    to: str | int | None = None,
    without: Sequence[str] = (),
    reason: str | None = None,
) -> tuple[Version, list[str]]:
    """A new version of ``dataset`` holding the batches of version ``to``, or the latest version minus
    ``without`` (batch ids or source names). Returns the new version and the batches it revoked (a dropped
    batch that was revoked already, through another dataset, is not revoked twice)."""
    check_may(ws, actor, "dataset.rollback", f"dataset:{dataset}")
    if (to is None) == (not without):
        raise InputError("give exactly one of --to VERSION or --without BATCH|SOURCE")
    with ws.engine.connect() as conn:
        n = latest_number(conn, dataset)
        if n is None:
            raise NotFoundError(f"dataset {dataset!r} has no versions")
        latest = load_version(conn, dataset, n)
    targets: list[dict[str, str]] = []
    if to is not None:
        number = to if isinstance(to, int) else _version_number(dataset, to)
        target = get_version(ws, f"{dataset}@{number}")
        if target.number == latest.number:
            raise ConflictError(f"{target.spec} is already the latest version; nothing to roll back")
        keep = list(target.batches)
        targets.append({"to": target.spec})
    else:
        drop: set[str] = set()
        with ws.engine.connect() as conn:
            for w in without:
                kind, name = resolve_without(ws, w)
                targets.append({kind: name})
                for i in latest.batches:
                    if (kind == "batch" and i == name) or (kind == "source" and load_batch(conn, i).source == name):
                        drop.add(i)
        if not drop:
            raise ConflictError(f"{latest.spec} holds nothing from {', '.join(without)}; nothing to roll back")
        keep = [i for i in latest.batches if i not in drop]
    dropped = [i for i in latest.batches if i not in keep]
    revive = [i for i in keep if i not in latest.batches]
    with ws.engine.connect() as conn:
        for i in keep:
            st = load_batch(conn, i).state
            if st != BatchState.RELEASED:
                raise ConflictError(
                    f"batch {i} of the target version is {st}; it cannot come back",
                    advice="Roll back with --without instead, naming what to drop.",
                )
    rep = verify_version(ws, latest.spec, full=False)
    bad = rep.integrity_problems
    if bad:
        raise IntegrityError(f"{latest.spec} fails verification: {bad[0]}")
    plan = plan_version(ws, actor, dataset, [i for i in keep if i not in revive], revive, dropped, latest)
    with ws.engine.connect() as conn:
        to_revoke = [i for i in dropped if load_batch(conn, i).state != BatchState.REVOKED]
    with ws.change(actor, "dataset.rollback", version_subject(dataset, plan.number)) as ch:
        details = {"rollback": targets, "reason": reason, "dropped": dropped, "revoked": to_revoke}
        commit_version(ws, ch, plan, "rollback", details)
        for i in to_revoke:  # the others were revoked already (through another dataset)
            b = load_batch(ch.conn, i)
            transition(ch, i, BatchState.REVOKED)
            pred = {"batch": i, "dataset": dataset, "version": plan.number, "reason": reason, "by": targets}
            attest(ws, ch, [(i, b.manifest_digest)], PREDICATE_REVOCATION, pred, batch_id=i)
        for k in ("batch", "from_state", "to_state"):
            ch.details.pop(k, None)
        ch.details.update(details)
    return get_version(ws, f"{dataset}@{plan.number}"), to_revoke


def _version_number(dataset: str, text: str) -> int:
    if text.isdigit() or (text[:1] == "v" and text[1:].isdigit()):
        return int(text.lstrip("v"))
    ds, n = parse_spec(text)
    if ds != dataset or n is None:
        raise InputError(f"--to {text!r} is not a version of {dataset}")
    return n
