"""Rebuild the catalog projection from the signed log (``dataward log replay``).

The replayed :class:`~dataward.evidence.replay.TrustedState` says which rows every projected table must
hold and what their decision columns must be (:func:`dataward.evidence.projection.expected`). The rebuild
turns each divergence into one step: a row no signed entry accounts for is deleted, a decision cell is set
back to what the log says, a deleted row is inserted again (display columns such as ``created_at`` get the
time of the rebuild). What the log cannot supply (a column it never recorded, a public key it names only by
digest and never carried) is reported as unrestorable: restore that from a backup.

This module plans (pure, over the replayed state and the catalog rows); :mod:`dataward.log.rebuild` runs
``log verify`` first and applies the plan with its log entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dataward.evidence.projection import KEYS, NON_DECISION, Divergence, Rows, _key_text, _same
from dataward.evidence.replay import TrustedState, key_id_of
from dataward.store import rebuild as sql
from dataward.store.evidence_repo import catalog_rows, raw_entries
from dataward.timeutil import now_iso

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from dataward.workspace import Workspace

#: natural-key columns that are not columns of their table (derived when the catalog is read)
_DERIVED_KEYS = frozenset({"n"})


@dataclass
class Plan:
    """What a rebuild would change: the steps, the divergences they repair, and what it cannot repair."""

    steps: list[sql.Step] = field(default_factory=list)
    repairs: list[Divergence] = field(default_factory=list)
    unrestorable: list[Divergence] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The repairs and the unrepairable divergences, as JSON."""
        return {
            "repairs": [d.to_json() for d in self.repairs],
            "unrestorable": [d.to_json() for d in self.unrestorable],
        }


def carried_public_keys(conn: Connection) -> dict[str, bytes]:
    """keyid -> raw public key, for every key some log entry carries (``details.public_key``). Read from
    unverified entries on purpose: a key is accepted only under the ID that is its own SHA-256, so where it
    was found does not matter, and a public key replaced in the keys table cannot hide the signer's entries."""
    import json

    out: dict[str, bytes] = {}
    for raw in raw_entries(conn):
        try:
            d = json.loads(raw.body).get("details")
            pk = bytes.fromhex(d["public_key"]) if isinstance(d, dict) and isinstance(d.get("public_key"), str) else b""
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError):
            continue
        kid = key_id_of(pk) if pk else ""
        if kid:
            out[kid] = pk
    return out


def _value(want: Any, public: Mapping[str, str]) -> tuple[bool, Any]:
    """(restorable, the cell value) for an expected value; a public key pinned by its ID is restorable
    when some signed entry carried the key."""
    if isinstance(want, tuple) and len(want) == 2 and want[0] == "sha256":
        pk = public.get(str(want[1]))
        return pk is not None, pk
    return True, want


def plan_table(
    table: str,
    want: Rows,
    rows: list[dict[str, Any]],
    *,
    strict_rows: bool,
    public: Mapping[str, str],
    audit_ids: Mapping[str, int],
    now: str,
) -> Plan:
    """The steps that make ``rows`` (the catalog's) agree with ``want`` (the log's) for one table."""
    plan = Plan()
    keycols = KEYS[table]
    pkcols = sql.primary_key(table)
    required = sql.required_columns(table)
    seen: set[tuple[Any, ...]] = set()
    for r in rows:
        key = tuple(r.get(c) for c in keycols)
        pk = {c: r.get(c) for c in pkcols}
        if key in seen or (strict_rows and key not in want):
            why = "duplicate row (inserted)" if key in seen else "no signed log entry accounts for this row (inserted)"
            plan.steps.append(sql.Step("delete", table, pk, {}))
            plan.repairs.append(Divergence(table, _key_text(key), None, f"{why}: deleted"))
            continue
        seen.add(key)
        exp = want.get(key)
        if exp is None:
            continue
        fix: dict[str, Any] = {}
        for col, val in exp.items():
            if _same(table, col, val, r.get(col)):
                continue
            ok, v = _value(val, public)
            shown = val[1] if isinstance(val, tuple) else val
            d = f"catalog had {r.get(col)!r}, the signed log says {shown!r}"
            if ok:
                fix[col] = v
                plan.repairs.append(Divergence(table, _key_text(key), col, d + ": restored"))
            else:
                plan.unrestorable.append(Divergence(table, _key_text(key), col, d + "; the log never carried the key"))
        if fix:
            plan.steps.append(sql.Step("update", table, pk, fix))
    for key, exp in want.items():
        if key in seen:
            continue
        values, missing = _insert_values(table, keycols, key, exp, public, audit_ids, required, now)
        if missing:
            plan.unrestorable.append(
                Divergence(table, _key_text(key), None, f"row is missing (deleted); the log does not record {missing}")
            )
            continue
        plan.steps.append(sql.Step("insert", table, {}, values))
        plan.repairs.append(Divergence(table, _key_text(key), None, "row is missing (deleted): inserted again"))
    return plan


def _insert_values(
    table: str,
    keycols: tuple[str, ...],
    key: tuple[Any, ...],
    exp: Mapping[str, Any],
    public: Mapping[str, str],
    audit_ids: Mapping[str, int],
    required: Mapping[str, bool],
    now: str,
) -> tuple[dict[str, Any], str | None]:
    values: dict[str, Any] = {}
    for c, v in zip(keycols, key, strict=True):
        if c in _DERIVED_KEYS:
            continue
        if c == "batch_id" and "audit_id" in required:
            if v not in audit_ids:
                return {}, "the audit row it belongs to"
            values["audit_id"] = audit_ids[v]
            continue
        values[c] = v
    for col, val in exp.items():
        ok, v = _value(val, public)
        if not ok:
            return {}, f"column {col} (the public key)"
        values[col] = v
    display = NON_DECISION.get(table, {})
    for col, needed in required.items():
        if not needed or col in values:
            continue
        why = display.get(col, "")
        if why.startswith("display") and col.endswith("_at"):
            values[col] = now
        elif col == "byte_count" and why.startswith("display"):
            values[col] = 0
        else:
            return {}, f"column {col}"
    return values, None


def plan_rebuild(ws: Workspace, conn: Connection, st: TrustedState) -> Plan:
    """The whole rebuild: every projected table, and the divergences no step can repair."""
    from dataward.evidence.load import _signed_manifests
    from dataward.evidence.projection import expected

    manifests, problems = _signed_manifests(ws, st)
    want = expected(st, origin=ws.origin, manifests=manifests)
    plan = Plan(unrestorable=[Divergence("batches", p.split(":")[0][6:], None, p) for p in problems])
    public = {k: v.hex() for k, v in carried_public_keys(conn).items() if k in st.keys}
    ids = sql.audit_ids(conn)
    now = now_iso()
    for table in KEYS:
        if table == "meta":
            continue  # the workspace's identity: Workspace.open refuses a catalog whose identity changed
        part = plan_table(
            table, want[table], catalog_rows(conn, table), strict_rows=True, public=public, audit_ids=ids, now=now
        )
        plan.steps += part.steps
        plan.repairs += part.repairs
        plan.unrestorable += part.unrestorable
    return plan
