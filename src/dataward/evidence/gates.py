"""Gate checks recomputed from signed evidence (the I/O side: read envelopes, then decide with the replay).

Every way data leaves the workspace (``open``, ``export``, training runs, the console's record views) and
every decision that builds on earlier ones (``release``, ``approve``) asks these functions, which read the
trusted state replayed from the signed log (:mod:`dataward.evidence.replay`) and the signed envelopes the
log names by digest. A catalog row that disagrees with the evidence is reported by name, never believed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataward.core import dsse
from dataward.errors import Error, IntegrityError
from dataward.evidence.load import PolicyBook, policy_requirements, trusted_state
from dataward.evidence.replay import BatchEvidence, TrustedState, batch_cleared, names_key
from dataward.store.catalog import Transaction
from dataward.store.evidence_repo import public_keys

if TYPE_CHECKING:
    from dataward.workspace import Workspace

PREDICATE_APPROVAL = dsse.PREDICATE_PREFIX + "approval/v1"
PREDICATE_RELEASE = dsse.PREDICATE_PREFIX + "release/v1"


def _eq(a: Any, b: Any) -> bool:
    return hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass(frozen=True)
class EvidenceVerdict:
    """What the evidence says about serving one dataset version."""

    problems: tuple[str, ...]
    revoked: tuple[str, ...]
    #: problem lines of records the version serves that a later rollback revoked (a diff may look past them)
    revoked_records: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the evidence shows no problem."""
        return not self.problems


def _envelope(ws: Workspace, digest: str, what: str) -> dsse.Envelope:
    data = ws.objects.read_bytes("meta", digest, verify=False)
    if not _eq(hashlib.sha256(data).hexdigest(), digest):
        raise IntegrityError(f"{what}: the stored signed envelope was modified (its SHA-256 no longer matches)")
    return dsse.Envelope.from_bytes(data)


def signed_by_at(
    env: dsse.Envelope, st: TrustedState, pubs: dict[str, bytes], principal: str, at: str, what: str
) -> str | None:
    """None if ``env`` carries a signature by ``principal`` with a key the log shows valid at ``at``."""
    last = f"{what}: not signed by {principal}"
    for s in env.signatures:
        why = st.key_valid(s.keyid, principal, at)
        if why:
            last = f"{what}: signed when {why}"
            continue
        pub = pubs.get(s.keyid) or pubs.get(st.aliases.get(s.keyid, ""))  # either ID form of the key
        if pub is None or not names_key(pub, s.keyid):
            last = f"{what}: the public key of {s.keyid[:16]} is missing or replaced"
            continue
        try:
            dsse.verify_envelope(env, {s.keyid: dsse.public_key_from_hex(pub.hex())})
        except Error as exc:
            last = f"{what}: {exc.message}"
            continue
        return None
    return last


def approval_evidence_problem(
    ws: Workspace, st: TrustedState, pubs: dict[str, bytes], b: BatchEvidence, policies: PolicyBook
) -> str | None:
    """None if ``b`` is cleared by the log and enough of its logged approvals carry a valid signed envelope
    (``policies`` reads the approvals each logged policy requires)."""
    reqs = policy_requirements(ws, {a.policy for a in b.approvals}, policies)
    why = batch_cleared(b, reqs)
    if why:
        return why
    valid: set[str] = set()
    last = ""
    for a in b.approvals:
        what = f"approval of batch {b.id} by {a.approver}"
        try:
            env = _envelope(ws, a.envelope, what)
            stmt = dsse.parse_statement(env)
        except Error as exc:
            last = exc.message
            continue
        p = stmt.predicate
        if stmt.predicate_type != PREDICATE_APPROVAL or not isinstance(p, dict):
            last = f"{what}: not an approval statement"
            continue
        if p.get("batch") != b.id or not _eq(p.get("manifest"), b.manifest):
            last = f"{what}: the signed approval is for another batch or manifest"
            continue
        bad = signed_by_at(env, st, pubs, a.approver, a.time, what)
        if bad:
            last = bad
            continue
        valid.add(a.approver)
    from dataward.evidence.replay import approvals_required

    need = approvals_required(b, reqs)
    if len(valid) < need:
        return last or f"batch {b.id} has {len(valid)} valid signed approval(s), {need} required"
    return None


def latest_logged_number(ws: Workspace, dataset: str, conn: Transaction | None = None) -> int | None:
    """The newest version of ``dataset`` that a signed log entry released (the catalog cannot hide one)."""
    st = trusted_state(ws, conn)
    nums = [n for (ds, n) in st.versions if ds == dataset]
    return max(nums) if nums else None


def check_version(ws: Workspace, conn: Transaction, v: Any, policies: PolicyBook) -> EvidenceVerdict:
    """The signed evidence for serving version ``v`` (a :class:`dataward.release.versions.Version`);
    ``policies`` reads the approvals each logged policy requires."""
    st = trusted_state(ws, conn)
    pubs = public_keys(conn)
    problems: list[str] = []
    revoked: list[str] = []
    revoked_lines: list[str] = []
    ev = st.versions.get((v.dataset, v.number))
    if ev is None:
        return EvidenceVerdict((f"version {v.spec} was not released by any valid signed log entry",), ())
    for col, logged, cat in (
        ("manifest_digest", ev.manifest, v.manifest_digest),
        ("merkle_root", ev.merkle_root, v.merkle_root),
        ("created_by", ev.created_by, v.created_by),
        ("kind", ev.kind, v.kind),
        ("parent", ev.parent, v.parent),
        ("record_count", ev.records, v.record_count),
    ):
        if logged != cat:
            problems.append(f"version {v.spec}: catalog {col} {cat!r} differs from the signed log's {logged!r}")
    if tuple(v.batches) != ev.batches:
        problems.append(f"version {v.spec}: the catalog's batch list differs from the signed log's")
    signed_drops: dict[str, set[tuple[str, int]]] = {}
    try:
        env = _envelope(ws, ev.manifest, f"version {v.spec}")
        unsigned = signed_by_at(env, st, pubs, ev.created_by, ev.time, f"manifest of {v.spec}")
        if unsigned:
            problems.append(unsigned)
        signed_drops = _manifest_drops(env)
        if ev.kind == "rollback":
            # the records this rollback dropped: the log entry and the signed manifest must name the same
            in_log = set(ev.dropped)
            in_manifest = {(b, f, r, h) for b, f, r, h, by in _manifest_drop_rows(env) if by == v.spec}
            if in_log != in_manifest:
                problems.append(f"version {v.spec}: the dropped records differ from the ones its log entry names")
    except Error as exc:
        problems.append(exc.message)
    for bid in ev.batches:
        for line in revoked_records_served(st, bid, signed_drops.get(bid, set()), v.spec):
            revoked_lines.append(line)
            problems.append(line)
    for bid in ev.batches:
        b = st.batches.get(bid)
        if b is None:
            problems.append(f"batch {bid} of {v.spec} was never acquired by a valid signed log entry")
            continue
        if b.revoked_seq is not None or b.state == "revoked":
            # the same line as dataward.release.versions.revoked_line (a diff or rollback may look past it)
            revoked.append(bid)
            problems.append(f"batch {bid} of {v.spec} is revoked")
            continue
        why = approval_evidence_problem(ws, st, pubs, b, policies)
        if why:
            problems.append(why)
    return EvidenceVerdict(tuple(problems), tuple(revoked), tuple(revoked_lines))


def revoked_records_served(st: TrustedState, batch_id: str, dropped: set[tuple[str, int]], spec: str) -> list[str]:
    """A line for each rollback whose revoked records of ``batch_id`` version ``spec`` still serves."""
    by: dict[str, int] = {}
    for key, rr in st.revoked_records.get(batch_id, {}).items():
        if key not in dropped:
            by[rr.version] = by.get(rr.version, 0) + 1
    return [
        f"batch {batch_id} of {spec} serves {n} record(s) revoked by rollback {ver}" for ver, n in sorted(by.items())
    ]


def _manifest_drop_rows(env: dsse.Envelope) -> list[tuple[str, str, int, str, str]]:
    """(batch, file, record, sha256, dropping version) of every record a version manifest drops."""
    stmt = dsse.parse_statement(env)
    pred = stmt.predicate if isinstance(stmt.predicate, dict) else {}
    out: list[tuple[str, str, int, str, str]] = []
    for e in pred.get("batches") or []:
        if not isinstance(e, dict):
            continue
        for d in e.get("dropped_records") or []:
            rec = d.get("record") if isinstance(d, dict) else None
            if isinstance(d, dict) and isinstance(rec, int):
                out.append((str(e.get("batch")), str(d.get("file")), rec, str(d.get("sha256")), str(d.get("version"))))
    return out


def _manifest_drops(env: dsse.Envelope) -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {}
    for b, f, r, _h, _v in _manifest_drop_rows(env):
        out.setdefault(b, set()).add((f, r))
    return out


def require_logged_state(ws: Workspace, batch_id: str, wanted: str | tuple[str, ...], doing: str) -> None:
    """Refuse unless the signed log has ``batch_id`` in state ``wanted`` (the catalog's state column is a
    projection: a batch set to ``approved`` by SQL is still rejected here)."""
    st = trusted_state(ws)
    b = st.batches.get(batch_id)
    if b is None:
        raise IntegrityError(
            f"batch {batch_id} was never acquired by a valid signed log entry; refusing to {doing} it",
            advice="Run `dataward log verify`: the catalog row was inserted or altered.",
        )
    allowed = (wanted,) if isinstance(wanted, str) else wanted
    if b.state not in allowed:
        raise IntegrityError(
            f"batch {batch_id} is {b.state} according to the signed log, not {' or '.join(allowed)}; "
            f"refusing to {doing} it",
            advice="Run `dataward log verify`: the catalog's state column was altered.",
        )


def require_cleared_for_release(ws: Workspace, batch_id: str, policies: PolicyBook) -> None:
    """Refuse to release ``batch_id`` unless the log shows it approved by enough valid signed approvals
    (``policies`` reads the approvals each logged policy requires)."""
    # an approved batch, or one already released (into another dataset, or kept by a rollback)
    require_logged_state(ws, batch_id, ("approved", "released"), "release")
    st = trusted_state(ws)
    b = st.batches[batch_id]
    with ws.engine.connect() as conn:
        pubs = public_keys(conn)
    # the check of a released batch, asked as if it were released now
    probe = BatchEvidence(**{**b.__dict__, "state": "released", "approvals": list(b.approvals)})
    why = approval_evidence_problem(ws, st, pubs, probe, policies)
    if why:
        raise IntegrityError(f"refusing to release batch {batch_id}: {why}", advice="Run `dataward log verify`.")
