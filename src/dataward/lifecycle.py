"""The batch lifecycle: allowed transitions, and signed attestations recorded with each of them.

```
quarantined -> screened -> audited -> approved -> released -> revoked
     \\             \\           \\-> rejected
      \\-------------+--> rejected
```
No arrow may be skipped. Each transition happens inside a :meth:`Workspace.change` (so it is authorized
and logged in the same transaction) and usually carries a signed in-toto attestation.
"""

from __future__ import annotations

from typing import Any

from dataward.core import dsse
from dataward.errors import ConflictError, NotFoundError
from dataward.model.attestation import Attestation
from dataward.model.batch import BatchState
from dataward.store import lifecycle_repo
from dataward.timeutil import now_iso
from dataward.workspace import Change, Workspace

S = BatchState
ALLOWED: dict[BatchState, frozenset[BatchState]] = {
    S.QUARANTINED: frozenset({S.SCREENED, S.REJECTED}),
    S.SCREENED: frozenset({S.AUDITED, S.REJECTED}),
    S.AUDITED: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.RELEASED, S.REJECTED}),
    S.RELEASED: frozenset({S.REVOKED}),
    S.REJECTED: frozenset(),
    S.REVOKED: frozenset(),
}

#: predicate types of dataward's own attestations
PREDICATE_REPORT = dsse.PREDICATE_PREFIX + "screening-report/v1"
PREDICATE_AUDIT = dsse.PREDICATE_PREFIX + "label-audit/v1"
PREDICATE_APPROVAL = dsse.PREDICATE_PREFIX + "approval/v1"
PREDICATE_GENERATION = dsse.PREDICATE_PREFIX + "synthetic-generation/v1"
PREDICATE_REJECTION = dsse.PREDICATE_PREFIX + "rejection/v1"
PREDICATE_RELEASE = dsse.PREDICATE_PREFIX + "release/v1"
PREDICATE_REVOCATION = dsse.PREDICATE_PREFIX + "revocation/v1"


def current_state(ch: Change, batch_id: str) -> BatchState:
    """The catalog's state of ``batch_id`` inside the change's transaction (unknown: :class:`NotFoundError`)."""
    state = lifecycle_repo.batch_state(ch.conn, batch_id)
    if state is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    return state


def transition(ch: Change, batch_id: str, to: BatchState) -> BatchState:
    """Move ``batch_id`` to ``to`` inside the change's transaction; refuse skipped or backward arrows."""
    have = current_state(ch, batch_id)
    if to not in ALLOWED[have]:
        allowed = ", ".join(sorted(ALLOWED[have])) or "nothing (final state)"
        raise ConflictError(f"batch {batch_id} is {have}; it cannot become {to} (allowed: {allowed})")
    # compare-and-set on the state guards against a concurrent transition
    if not lifecycle_repo.move_batch_state(ch.conn, batch_id, have, to, now_iso()):
        raise ConflictError(f"batch {batch_id} changed state concurrently; retry")
    ch.details.setdefault("batch", batch_id)
    ch.details["from_state"] = have.value
    ch.details["to_state"] = to.value
    return have


def attest(
    ws: Workspace,
    ch: Change,
    subjects: list[tuple[str, str]],
    predicate_type: str,
    predicate: Any,
    *,
    batch_id: str | None = None,
) -> str:
    """Sign an in-toto statement as the acting principal, store it, index it; returns the envelope digest."""
    statement = dsse.make_statement(subjects, predicate_type, predicate)
    env = dsse.sign_envelope(statement, ch.actor.key)
    digest = ws.objects.put_bytes("meta", env.to_bytes())
    lifecycle_repo.insert_attestation(
        ch.conn, Attestation(0, batch_id, ch.subject, predicate_type, digest, ch.actor.name, ch.actor.keyid, now_iso())
    )
    item = {"type": predicate_type, "sha256": digest}
    if batch_id is not None:
        item["batch"] = batch_id  # the catalog's index row is then a projection the log can check
    ch.details.setdefault("attestations", []).append(item)
    return digest


def attestations_for(ws: Workspace, batch_id: str, predicate_type: str | None = None) -> list[Attestation]:
    """The attestations indexed for ``batch_id`` (optionally of one predicate type), oldest first."""
    with ws.engine.connect() as conn:
        return lifecycle_repo.attestations_of(conn, batch_id, predicate_type)
