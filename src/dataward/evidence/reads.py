"""Who may read the record contents of a batch, decided by the batch's state in the signed log.

``data.read`` says a role may read data at all; which batch it may read depends on where the batch is in
its lifecycle: screeners and reviewers while it is under review, approvers while they decide, trainers
only once it is released. A trainer cannot read a quarantined or a rejected batch through the console,
whatever its catalog row says, because the state and the source are taken from the replayed log
(:func:`dataward.evidence.load.trusted_state`) and the roles too.

Every read of record contents through the console, the API or ``audit review`` is logged as one
``data.read`` entry per request (batch, how many records, their range, the reader), signed by the log
key as the witness of the read: the reader may be a console user whose key the server does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from dataward.access import Grant, Role
from dataward.errors import AuthorizationError

if TYPE_CHECKING:
    from dataward.evidence.replay import BatchEvidence, TrustedState
    from dataward.workspace import Workspace

R = Role
#: batch state (per the signed log) -> the roles that may read its records in that state
READERS: Mapping[str, frozenset[Role]] = {
    "quarantined": frozenset({R.SCREENER, R.REVIEWER}),
    "screened": frozenset({R.SCREENER, R.REVIEWER}),
    "audited": frozenset({R.APPROVER}),
    "approved": frozenset({R.APPROVER}),
    "released": frozenset({R.TRAINER, R.APPROVER, R.AUDITOR}),
    "rejected": frozenset({R.AUDITOR}),  # kept for incident work; no one trains or approves from it
    "revoked": frozenset({R.AUDITOR}),
}


def may_read(grants: Iterable[Grant], state: str, source: str) -> bool:
    """Whether ``grants`` allow reading records of a batch of ``source`` in ``state`` (deny by default)."""
    roles = READERS.get(state, frozenset())
    return any(g.role in roles and (g.source is None or g.source == source) for g in grants)


def read_refusal(st: TrustedState, principal: str, batch_id: str) -> str | None:
    """Why ``principal`` may not read the records of ``batch_id`` according to the log, or None."""
    b = st.batches.get(batch_id)
    if b is None:
        return f"batch {batch_id} was never acquired by a valid signed log entry"
    grants = st.grants_of(principal)
    if may_read(grants, b.state, b.source):
        return None
    need = ", ".join(sorted(READERS.get(b.state, frozenset()))) or "no role"
    have = ", ".join(sorted(f"{g.role}" + (f"@{g.source}" if g.source else "") for g in grants)) or "none"
    return (
        f"{principal} may not read the records of batch {batch_id}: it is {b.state} according to the signed "
        f"log, readable by [{need}] of source {b.source!r}; {principal} has [{have}]"
    )


def require_read(ws: Workspace, principal: str, batch_id: str) -> BatchEvidence:
    """The batch's evidence if ``principal`` may read its records now; otherwise log the denial and raise
    :class:`AuthorizationError` (exit 4, HTTP 403)."""
    from dataward.evidence.load import trusted_state

    st = trusted_state(ws)
    why = read_refusal(st, principal, batch_id)
    if why is not None:
        ws.record_denial(principal, "data.read", f"batch:{batch_id}", why)
        raise AuthorizationError(why, advice="Records are readable by the roles that handle the batch in its state.")
    return st.batches[batch_id]


def can_read(ws: Workspace, principal: str, batch_id: str) -> bool:
    """Whether ``principal`` may read the records of ``batch_id`` now (no denial is logged)."""
    from dataward.evidence.load import trusted_state

    return read_refusal(trusted_state(ws), principal, batch_id) is None


def log_read(ws: Workspace, principal: str, batch_id: str, records: Iterable[int], how: str) -> None:
    """One ``data.read`` entry for one request's reads of ``batch_id`` (nothing when no record was read)."""
    from dataward.evidence.load import trusted_state
    from dataward.log import auditlog
    from dataward.store.catalog import write_transaction

    nums = sorted(set(records))
    if not nums:
        return
    b = trusted_state(ws).batches.get(batch_id)
    details = {
        "principal": principal,
        "batch": batch_id,
        "state": b.state if b is not None else None,
        "records": len(nums),
        "first": nums[0],
        "last": nums[-1],
        "how": how,
    }
    log = ws.log_actor()
    with write_transaction(ws.engine) as conn:
        auditlog.append(
            conn,
            [auditlog.PendingEntry(log, "data.read", f"batch:{batch_id}", details)],
            log_key=log,
            origin=ws.origin,
        )
