"""``dataward log replay``: verify the log, then rebuild the catalog projection from it (one transaction
with its ``log.replay`` entry). The plan is :mod:`dataward.evidence.rebuild`'s; this module adds the checks
that need the log layer: the log itself must verify first (entries, tree, checkpoint, witness), since a
rebuild from a rewound or forged log would make the catalog agree with the attacker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataward.evidence.projection import Divergence, Rows
from dataward.evidence.rebuild import Plan, carried_public_keys, plan_rebuild
from dataward.evidence.replay import TrustedState
from dataward.store import rebuild as sql

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from dataward.workspace import Workspace

#: ``log verify`` problem kinds that mean the log itself (its entries, tree, checkpoint or witness) was
#: altered; key, signature, evidence and projection problems can come from catalog rows the rebuild repairs
STRUCTURAL = frozenset({"entry", "missing", "order", "tree", "checkpoint", "node", "witness"})


@dataclass(frozen=True)
class RebuildResult:
    """What ``log replay`` found and (unless it was a dry run) changed."""

    plan: Plan
    applied: bool
    rows_changed: int
    entries: int

    @property
    def clean(self) -> bool:
        """Nothing diverged (a dry run), or everything that diverged was repaired."""
        return not self.plan.unrestorable and (self.applied or not self.plan.repairs)

    def to_json(self) -> dict[str, Any]:
        """What was found and changed, as JSON (``log replay --json``)."""
        return {
            "applied": self.applied,
            "entries": self.entries,
            "rows_changed": self.rows_changed,
            **self.plan.to_json(),
        }


def _meta_divergences(ws: Workspace, conn: Connection, st: TrustedState) -> list[Divergence]:
    from dataward.evidence.projection import compare
    from dataward.store.evidence_repo import catalog_rows

    want: Rows = {("workspace_id",): {"value": st.workspace_id}, ("log_origin",): {"value": ws.origin}}
    return compare("meta", want, catalog_rows(conn, "meta"), strict_rows=False)


def rebuild_projection(ws: Workspace, actor: Any, *, check: bool = False) -> RebuildResult:
    """Make the catalog's projected tables agree with the signed log (``check``: only say what differs).

    Refuses (IntegrityError) when the log itself does not verify. A rebuild that runs is one transaction
    with its ``log.replay`` entry (admins only); running it again changes nothing.
    """
    from dataward.errors import IntegrityError
    from dataward.evidence.load import default_policy_digest
    from dataward.evidence.replay import replay
    from dataward.log.verify import verify_log
    from dataward.store.evidence_repo import public_keys, raw_entries

    v = verify_log(ws, max_problems=1000, workers=1)
    bad = [p for p in v.problems if p.kind in STRUCTURAL]
    if bad:
        raise IntegrityError(
            f"the audit log itself fails verification ({bad[0].line()}); refusing to rebuild the catalog from it",
            advice="Run `dataward log verify` and restore the log from a backup first.",
        )

    def plan_in(conn: Connection) -> tuple[Plan, int]:
        pubs = {**public_keys(conn), **carried_public_keys(conn)}
        st = replay(raw_entries(conn), pubs, state=TrustedState(default_policy=default_policy_digest()))
        plan = plan_rebuild(ws, conn, st)
        plan.unrestorable += [
            Divergence(d.table, d.row, d.column, d.detail + "; the workspace identity is not rebuilt")
            for d in _meta_divergences(ws, conn, st)
        ]
        return plan, st.size

    if check:
        with ws.engine.connect() as conn:
            plan, size = plan_in(conn)
        return RebuildResult(plan, False, 0, size)
    with ws.change(actor, "log.replay", f"log:{ws.id}") as ch:
        plan, size = plan_in(ch.conn)
        changed = sql.apply(ch.conn, plan.steps)
        ch.details.update(
            {
                "entries": size,
                "repaired": len(plan.repairs),
                "unrestorable": len(plan.unrestorable),
                "rows_changed": changed,
                "tables": sorted({d.table for d in plan.repairs}),
            }
        )
    return RebuildResult(plan, True, changed, size)
