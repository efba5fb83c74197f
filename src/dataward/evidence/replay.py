"""Replay the signed audit log into the trusted state every gate decides on (pure: no I/O).

In the style of python-tuf's ``TrustedMetadataSet``: the caller passes in the raw log rows and the raw
public keys it read, this module trusts nothing it is given. Each entry must be canonical JSON, its
indexed columns must repeat its signed body, its signature must verify with a key that the log itself
registered for the signing principal and that was valid at the entry's time (created by an earlier entry,
not expired, retired or revoked by then), and the signer must have held a role allowing the action at that
moment. Only entries that pass change the state; the others are reported as problems.

The catalog tables are a projection of this state for speed (see :mod:`dataward.evidence.projection`);
they are never the authority. The keys table is read only for public key bytes, and those are pinned
by the log: a key ID is the SHA-256 of the raw public key.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import json.scanner
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dataward.access import PERMISSIONS, allowed
from dataward.core import dsse
from dataward.core.canonical import canonical_json
from dataward.model.admin_change import change_id_of
from dataward.model.log_entry import RawEntry
from dataward.model.roles import Grant, Role
from dataward.model.subject import Subject

LOG_PRINCIPAL = "@workspace-log"

#: actions that register a key for the entry's subject principal (details carry ``keyid``)
KEY_REGISTERING = frozenset({"principal.add", "key.generate", "key.rotate", "key.register", "key.add", "key.migrate"})
#: batch states in order of the lifecycle (dataward.lifecycle.ALLOWED is the authority on arrows)
FINAL_STATES = frozenset({"rejected", "revoked"})
#: admin changes: with an admin threshold K > 1 each must apply a pending change (``details.change``) that K
#: distinct admins signed (admin.propose / admin.sign entries), with keys valid when it applies (TUF root style)
ADMIN_CHANGES = frozenset(
    {
        "principal.add",
        "role.grant",
        "role.revoke",
        "key.add",
        "key.generate",
        "key.rotate",
        "key.revoke",
        "source.add",
        "source.update",
        "policy.set",
        "intel.add",
        "admin.threshold",
    }
)
#: detail fields the applying entry adds to the statement's details (the rest must equal it exactly)
CHANGE_FIELDS = frozenset({"change", "signers"})
#: actions the log key may sign: its own creation, and reads it witnesses for a reader whose key the
#: console does not hold (``data.read`` names the reader in its details; it changes no state)
LOG_WITNESSED = frozenset({"workspace.init", "data.read"})
#: actions that change no catalog row: not kept for the projection
UNRECORDED = frozenset({"data.read", "access.denied", "log.verify", "log.replay", "console.read", "console.login"})


@dataclass
class KeyEvidence:
    """A key's life according to the log."""

    keyid: str
    principal: str
    created_at: str
    created_seq: int
    expires_at: str | None = None
    retired_at: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None

    def invalid_at(self, t: str) -> str | None:
        """Why a signature made at ``t`` is invalid, or None."""
        k = self.keyid[:16]
        if self.created_at > t:
            return f"key {k} did not exist yet"
        if self.expires_at and self.expires_at < t:
            return f"key {k} had expired"
        if self.retired_at and self.retired_at < t:
            return f"key {k} had been retired by rotation"
        if self.revoked_at and self.revoked_at <= t:
            return f"key {k} had been revoked"
        return None

    @property
    def status(self) -> str:
        """The key's status as the log shows it: active, retired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.retired_at is not None:
            return "retired"
        return "active"


@dataclass(frozen=True)
class ApprovalEvidence:
    """One signed approval of a batch, as the log recorded it."""

    seq: int
    time: str
    approver: str
    keyid: str
    envelope: str
    policy: str
    tier: str | None
    required: int


@dataclass
class BatchEvidence:
    """A batch's signed history: its acquisition, its state, its approvals, its revocation."""

    id: str
    source: str
    acquirer: str
    manifest: str
    merkle_root: str
    records: int
    files: int
    acquired_seq: int
    acquired_at: str
    state: str = "quarantined"
    state_seq: int = 0
    screened_by: str | None = None
    report: str | None = None
    audited_by: str | None = None
    audit: str | None = None
    approvals: list[ApprovalEvidence] = field(default_factory=list)
    revoked_seq: int | None = None


@dataclass(frozen=True)
class VersionEvidence:
    """A dataset version's signed release (or rollback) entry."""

    dataset: str
    number: int
    kind: str
    manifest: str
    merkle_root: str
    records: int
    parent: int | None
    batches: tuple[str, ...]
    created_by: str
    seq: int
    time: str
    #: records the version leaves out of its batches (record-level rollback): (batch, file, record, sha256)
    dropped: tuple[tuple[str, str, int, str], ...] = ()


@dataclass(frozen=True)
class RecordRevocation:
    """A record a signed rollback entry dropped as tainted: no version may serve it afterwards."""

    batch: str
    file: str
    record: int
    sha256: str
    version: str  # the rollback version that dropped it
    seq: int
    reason: str | None


@dataclass(frozen=True)
class SignatureEvidence:
    """One admin's signature on a pending change: the admin.propose or admin.sign entry it made."""

    principal: str
    keyid: str
    seq: int
    time: str


@dataclass
class ChangeEvidence:
    """A pending admin change as the log recorded it: its signed statement and the admins who signed it."""

    id: str
    statement: dict[str, Any]
    proposed_by: str
    proposed_seq: int
    signatures: dict[str, SignatureEvidence] = field(default_factory=dict)  # one per principal: twice counts once
    status: str = "pending"  # pending | applied | withdrawn
    closed_seq: int | None = None

    @property
    def action(self) -> str:
        """The admin action the change applies (principal.add, role.grant, ...)."""
        return str(self.statement.get("action"))

    @property
    def subject(self) -> str:
        """The subject of the entry the change appends when it applies."""
        return str(self.statement.get("subject"))


@dataclass(frozen=True)
class GenerationEvidence:
    """A synthetic batch's signed generation statement entry (``batch.generation``)."""

    batch: str
    source: str | None
    principal: str
    seq: int
    statement: str | None  # the attestation's envelope digest


@dataclass(frozen=True)
class VerifyEvidence:
    """One signed ``batch.verify`` entry: a re-hash (``ok``) or a bit-for-bit regeneration (``regenerated``)."""

    batch: str
    principal: str
    seq: int
    ok: bool | None
    regenerated: bool | None


@dataclass(frozen=True)
class ReplayProblem:
    """A log entry the replay refused, and why."""

    seq: int | None
    detail: str

    def line(self) -> str:
        """The problem as one line of text."""
        return (f"entry {self.seq}: " if self.seq is not None else "log: ") + self.detail


@dataclass
class TrustedState:
    """The state the signed log proves. ``size`` is how many entries were replayed."""

    size: int = 0
    workspace_id: str | None = None
    keys: dict[str, KeyEvidence] = field(default_factory=dict)
    principals: dict[str, str | None] = field(default_factory=dict)  # name -> created_by
    grants: set[tuple[str, str, str | None]] = field(default_factory=set)  # (principal, role, source)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: list[tuple[int, str]] = field(default_factory=list)  # (seq, sha256) in log order
    batches: dict[str, BatchEvidence] = field(default_factory=dict)
    versions: dict[tuple[str, int], VersionEvidence] = field(default_factory=dict)
    #: batch -> (file, record) -> its revocation, from record-level rollback entries
    revoked_records: dict[str, dict[tuple[str, int], RecordRevocation]] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)  # name -> created_by
    attestations: dict[str, dict[str, Any]] = field(default_factory=dict)  # envelope sha256 -> index fields
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)  # verified entries that change state, in order
    admin_threshold: int = 1
    changes: dict[str, ChangeEvidence] = field(default_factory=dict)  # pending admin changes by CHANGE id
    default_policy: str | None = None  # the packaged policy's digest: in force until a policy.set
    problems: list[ReplayProblem] = field(default_factory=list)
    last_time: str = ""
    last_leaf: bytes | None = b""  # the stored leaf hash of entry size-1 when replayed (b"" for none)
    aliases: dict[str, str] = field(default_factory=dict)  # the other ID form of each public key -> its ID
    generations: dict[str, GenerationEvidence] = field(default_factory=dict)  # batch -> its generation entry
    verifications: dict[str, list[VerifyEvidence]] = field(default_factory=dict)  # batch -> batch.verify entries
    _pubs: dict[str, Ed25519PublicKey] = field(default_factory=dict, repr=False)
    #: (principal, action, source) -> whether the principal's grants allow it; valid only for the grants as
    #: they are now: emptied whenever ``grants`` changes (:func:`_apply_roles`, the only place that changes it)
    _allowed: dict[tuple[str, str, str | None], bool] = field(default_factory=dict, repr=False, compare=False)
    #: the signed body of each of ``entries`` (kept by a replay asked to, :func:`replay`'s ``keep_bodies``):
    #: a canonical body is the exact JSON of the entry parsed from it, so a snapshot writes it as it is
    #: (dataward.log._snapshot); used only while it has one body per entry, in the same order
    _bodies: list[bytes] = field(default_factory=list, repr=False, compare=False)

    def fork(self) -> TrustedState:
        """An independent copy to replay uncommitted entries onto (the parsed public keys are shared)."""
        pubs, self._pubs = self._pubs, {}
        try:
            out = copy.deepcopy(self)
        finally:
            self._pubs = pubs
        out._pubs = dict(pubs)
        out._allowed = {}
        return out

    # queries ---------------------------------------------------------------------------------------------
    def grants_of(self, principal: str) -> list[Grant]:
        """The principal's roles according to the log."""
        out = []
        # the principal's own grants picked first, then sorted (called once per replayed entry)
        mine = [g for g in self.grants if g[0] == principal]
        for _p, role, src in sorted(mine, key=lambda g: (g[1], g[2] or "")) if len(mine) > 1 else mine:
            try:
                out.append(Grant(Role(role), src))
            except ValueError:
                continue
        return out

    def policy_at(self, seq: int) -> str | None:
        """The policy digest in force just before entry ``seq``."""
        digest = self.default_policy
        for s, d in self.policies:
            if s >= seq:
                break
            digest = d
        return digest

    def admins(self) -> set[str]:
        """Principals holding the admin role for every source, according to the log."""
        return {p for p, role, src in self.grants if role == "admin" and src is None}

    def effective_admin_threshold(self) -> int:
        """How many distinct admin signatures an admin change needs now: the threshold the log set, but
        never more than there are admins (a workspace made with ``--admin-threshold 2`` and one admin can
        add its second admin; from then on every admin change needs two)."""
        return max(1, min(self.admin_threshold, len(self.admins())))

    def valid_signers(self, change: ChangeEvidence, at: str) -> set[str]:
        """The admins whose signature on ``change`` counts at ``at``: each still an admin, with the key it
        signed with still valid (not expired, retired or revoked since)."""
        admins = self.admins()
        return {
            s.principal
            for s in change.signatures.values()
            if s.principal in admins and self.key_valid(s.keyid, s.principal, at) is None
        }

    def regenerated(self, batch_id: str) -> bool:
        """Whether a valid signed ``batch.verify`` entry with ``regenerated: true`` follows the batch's valid
        signed generation statement (a row forged into the log by SQL is neither)."""
        g = self.generations.get(batch_id)
        return g is not None and any(
            v.regenerated is True and v.seq > g.seq for v in self.verifications.get(batch_id, [])
        )

    def key_valid(self, keyid: str, principal: str, at: str) -> str | None:
        """Why ``keyid`` could not sign for ``principal`` at ``at`` according to the log, or None."""
        k = self.keys.get(keyid)
        if k is None and keyid in self.aliases:  # the same key under its other ID form (dsse.legacy_key_id)
            k = self.keys.get(self.aliases[keyid])
        if k is None:
            return f"key {keyid[:16]} was never registered in the log"
        if k.principal != principal:
            return f"key {keyid[:16]} belongs to {k.principal}, not {principal}"
        return k.invalid_at(at)


def _problem(state: TrustedState, seq: int | None, detail: str) -> None:
    if len(state.problems) < 1000:
        state.problems.append(ReplayProblem(seq, detail))


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _subject_name(subject: str, prefix: str) -> str | None:
    return subject[len(prefix) :] if subject.startswith(prefix) else None


#: the C scanner json.loads ends in (json.loads of bytes first guesses the encoding and strips whitespace)
_scan_json: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _loads(body: Any) -> Any:
    """``json.loads(body)``: the scanner alone for UTF-8 bytes holding exactly one JSON value, json.loads
    (and its exceptions) for anything else."""
    if type(body) is bytes:
        try:
            text = body.decode("utf-8")
            obj, end = _scan_json(text, 0)
            if end == len(text):
                return obj
        except (UnicodeDecodeError, ValueError, StopIteration, RecursionError):
            pass
    return json.loads(body)


def _parse(state: TrustedState, raw: RawEntry, *, form_checked: bool = False) -> dict[str, Any] | None:
    """The signed body of ``raw`` if it is well formed and its columns repeat it, else None (a problem).
    ``form_checked``: the caller has checked that the body is canonical JSON (re-encoding it costs about as
    much as the rest of the replay of an entry)."""
    try:
        obj = _loads(raw.body)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        _problem(state, raw.seq, "entry is not valid JSON (altered)")
        return None
    if not isinstance(obj, dict) or (not form_checked and canonical_json(obj) != raw.body):
        _problem(state, raw.seq, "entry is not canonical JSON (altered)")
        return None
    get = obj.get
    # every check below at once, as one expression (the entry that fails one is judged again, check by check,
    # to name the first that fails)
    t, p, a, sj, k = get("time"), get("principal"), get("action"), get("subject"), get("keyid")
    if (
        type(t) is str
        and type(p) is str
        and type(a) is str
        and type(sj) is str
        and type(k) is str
        and t == raw.time
        and p == raw.principal
        and a == raw.action
        and sj == raw.subject
        and k == raw.keyid
        and get("seq") == raw.seq
        and type(get("details")) is dict
    ):
        return obj
    for col, column in (
        ("time", raw.time),
        ("principal", raw.principal),
        ("action", raw.action),
        ("subject", raw.subject),
        ("keyid", raw.keyid),
    ):
        v = get(col)
        if type(v) is not str or v != column:  # the JSON parser makes exact str values
            _problem(state, raw.seq, f"column {col!r} differs from the signed entry (altered)")
            return None
    if get("seq") != raw.seq:
        _problem(state, raw.seq, f"entry says it is number {obj.get('seq')!r} (renumbered)")
        return None
    if not isinstance(obj.get("details"), dict):
        _problem(state, raw.seq, "entry has no details object (altered)")
        return None
    return obj


def key_id_of(pub: bytes) -> str:
    """dataward's key ID of raw Ed25519 public key bytes (dataward.core.dsse.key_id; "" if not a key)."""
    try:
        return dsse.key_id(Ed25519PublicKey.from_public_bytes(pub))
    except ValueError:
        return ""


def key_ids_of(pub: bytes) -> tuple[str, str]:
    """Both ID forms of a raw public key: the current one and the legacy one (SHA-256 of the raw key,
    written by workspaces created before keyrings); ("", "") if not a key."""
    kid = key_id_of(pub)
    return (kid, hashlib.sha256(pub).hexdigest()) if kid else ("", "")


def names_key(pub: bytes, keyid: str) -> bool:
    """Whether ``keyid`` names ``pub`` in either ID form (constant-time comparisons)."""
    cur, old = key_ids_of(pub)
    k = keyid.encode()
    return bool(cur) and (hmac.compare_digest(cur.encode(), k) | hmac.compare_digest(old.encode(), k))


def _verify_signature(state: TrustedState, raw: RawEntry, obj: dict[str, Any], pub: bytes | None) -> bool:
    kid: str = obj["keyid"]
    if pub is None:
        _problem(state, raw.seq, f"signed by key {kid[:16]}, whose public key is not registered")
        return False
    if not names_key(pub, kid):
        _problem(state, raw.seq, f"the registered public key of {kid[:16]} was replaced (its ID does not match)")
        return False
    key = state._pubs.get(kid)
    if key is None:
        try:
            key = state._pubs[kid] = Ed25519PublicKey.from_public_bytes(pub)
        except ValueError:
            _problem(state, raw.seq, f"key {kid[:16]} is not an Ed25519 public key")
            return False
    try:
        key.verify(raw.signature, raw.body)
    except (InvalidSignature, TypeError):
        _problem(state, raw.seq, f"signature by {obj['principal']} does not verify (forged or altered)")
        return False
    return True


def _is_bootstrap(state: TrustedState, raw: RawEntry, obj: dict[str, Any]) -> bool:
    """Entries 0 and 1 of a new workspace: the log key's ``workspace.init`` and the first admin's own
    ``principal.add`` (signed with the key it registers); no one holds a role before them."""
    if raw.seq == 0:
        return bool(obj["action"] == "workspace.init" and obj["principal"] == LOG_PRINCIPAL)
    if raw.seq != 1 or obj["action"] != "principal.add" or state.principals:
        return False
    if obj["principal"] == LOG_PRINCIPAL:
        return True  # the workspace registers its first admin's public key (signed by the log key)
    return bool(obj["subject"] == f"principal:{obj['principal']}" and obj["details"].get("keyid") == obj["keyid"])


def _authorize(state: TrustedState, raw: RawEntry, obj: dict[str, Any]) -> bool:
    """The signer held a role allowing the action at that moment (deny by default, as access.require)."""
    principal, action, details = obj["principal"], obj["action"], obj["details"]
    if principal == LOG_PRINCIPAL:
        # the log key records denials, checkpoints and the workspace's own creation, never decisions
        if action in PERMISSIONS and action not in LOG_WITNESSED:
            _problem(state, raw.seq, f"the log key signed a {action} (only principals take decisions)")
            return False
        return True
    if details.get("self_service") is True and obj["subject"] == Subject.principal(principal):
        return True  # a principal may always rotate its own key (principals.rotate_key)
    if action == "batch.approve":
        # the entry is submitted by one principal, the approval itself is the approver's (checked in _apply)
        return True
    if action not in PERMISSIONS:
        return True  # an action this version does not know changes nothing here
    if not _allowed(state, principal, action, _action_source(state, obj)):
        _problem(state, raw.seq, f"{principal} did not hold a role allowing {action} at that time")
        return False
    return True


def _allowed(state: TrustedState, principal: str, action: str, source: str | None) -> bool:
    """``allowed(state.grants_of(principal), action, source)``, remembered until the grants change: the
    answer depends on nothing else, and every change of ``state.grants`` empties the memo first."""
    key = (principal, action, source)
    memo = state._allowed
    ok = memo.get(key)
    if ok is None:
        ok = memo[key] = allowed(state.grants_of(principal), action, source)
    return ok


def _self_rotation(obj: dict[str, Any]) -> bool:
    return bool(
        obj["action"] == "key.rotate"
        and obj["details"].get("self_service") is True
        and obj["subject"] == f"principal:{obj['principal']}"
    )


def _admin_quorum(st: TrustedState, raw: RawEntry, obj: dict[str, Any]) -> bool:
    """Admin-change entries: the change they apply was signed by enough distinct, valid admins; and the
    admin.propose / admin.sign / admin.withdraw entries are consistent with the changes they name."""
    action, principal, d, t = obj["action"], obj["principal"], obj["details"], obj["time"]
    if principal == LOG_PRINCIPAL:
        return True  # the log key takes no admin decision (refused by _authorize)
    if action in ("admin.propose", "admin.sign", "admin.withdraw"):
        return _change_entry(st, raw, obj)
    if action not in ADMIN_CHANGES or _self_rotation(obj):
        return True
    need = st.effective_admin_threshold()
    cid = d.get("change")
    what = f"{action} of {obj['subject']}"
    if cid is None:
        if need <= 1:
            return True
        _problem(st, raw.seq, f"{what} applied with 1 admin signature, {need} required (admin threshold)")
        return False
    ch = st.changes.get(cid) if isinstance(cid, str) else None
    if ch is None:
        _problem(st, raw.seq, f"{what} names change {str(cid)[:16]}, which no valid log entry proposed")
        return False
    if ch.status != "pending":
        _problem(st, raw.seq, f"{what}: change {ch.id[:16]} was already {ch.status} (entry {ch.closed_seq})")
        return False
    rest = {k: v for k, v in d.items() if k not in CHANGE_FIELDS}
    if ch.action != action or ch.subject != obj["subject"] or rest != ch.statement.get("details"):
        _problem(st, raw.seq, f"{what} does not match the signed statement of change {ch.id[:16]}")
        return False
    valid = st.valid_signers(ch, t)
    if principal not in ch.signatures:
        _problem(st, raw.seq, f"{what}: {principal} applied change {ch.id[:16]} without signing it")
        return False
    if len(valid) < need:
        _problem(
            st,
            raw.seq,
            f"{what} applied with {len(valid)} valid admin signature(s) on change {ch.id[:16]}, {need} required "
            "(admin threshold)",
        )
        return False
    ch.status, ch.closed_seq = "applied", raw.seq
    return True


def _change_entry(st: TrustedState, raw: RawEntry, obj: dict[str, Any]) -> bool:
    action, who, d, t = obj["action"], obj["principal"], obj["details"], obj["time"]
    cid = d.get("change")
    if not isinstance(cid, str) or obj["subject"] != Subject.change(cid):
        _problem(st, raw.seq, f"{action} entry does not name its change")
        return False
    sig = SignatureEvidence(who, obj["keyid"], raw.seq, t)
    if action == "admin.propose":
        stmt = d.get("statement")
        if not isinstance(stmt, dict) or not hmac.compare_digest(change_id_of(stmt), cid):
            _problem(st, raw.seq, f"change {cid[:16]}: its id is not the digest of the statement (altered)")
            return False
        if cid in st.changes:
            _problem(st, raw.seq, f"change {cid[:16]} was proposed twice")
            return False
        stmt_action = stmt.get("action")
        if stmt_action not in ADMIN_CHANGES or not isinstance(stmt.get("details"), dict):
            _problem(st, raw.seq, f"change {cid[:16]} proposes {stmt_action!r}, which is not an admin change")
            return False
        if not allowed(st.grants_of(who), str(stmt_action), None):
            _problem(st, raw.seq, f"{who} did not hold a role allowing {stmt_action} at that time")
            return False
        new = ChangeEvidence(cid, stmt, who, raw.seq)
        if who in st.admins():
            new.signatures[who] = sig  # the proposer's own signature counts when it is an admin's
        st.changes[cid] = new
        return True
    ch = st.changes.get(cid)
    if ch is None:
        _problem(st, raw.seq, f"{action} names change {cid[:16]}, which no valid log entry proposed")
        return False
    if ch.status != "pending":
        _problem(st, raw.seq, f"{action}: change {cid[:16]} was already {ch.status}")
        return False
    if action == "admin.sign":
        ch.signatures.setdefault(who, sig)  # the same admin signing twice counts once
    else:
        ch.status, ch.closed_seq = "withdrawn", raw.seq
    return True


def _action_source(state: TrustedState, obj: dict[str, Any]) -> str | None:
    bid = _subject_name(obj["subject"], "batch:")
    if bid is not None and bid in state.batches:
        return state.batches[bid].source
    src = obj["details"].get("source")
    return src if isinstance(src, str) else None


def replay(
    entries: Iterable[RawEntry],
    public_keys: Mapping[str, bytes],
    *,
    state: TrustedState | None = None,
    check_signatures: bool = True,
    distrust: frozenset[int] = frozenset(),
    keep_bodies: bool = False,
) -> TrustedState:
    """Replay ``entries`` (in sequence order) onto ``state`` (a new one by default) and return it.

    ``public_keys`` maps key IDs to raw Ed25519 public key bytes, as read from anywhere: each is checked
    against its ID. Entries must be consecutive from ``state.size``; a gap or a duplicate is a problem.
    ``check_signatures=False`` only for a caller that has just verified every entry's signature and canonical
    form itself (``log verify``); key validity over time and authorization are still checked here. Entries whose
    sequence number is in ``distrust`` (that caller's failures) are skipped without a second report.
    ``keep_bodies``: keep the signed body of each kept entry beside it (for a caller that writes the state
    out, :func:`dataward.log._snapshot.encode_state`; a state replayed onto one without them keeps none).
    """
    st = state if state is not None else TrustedState()
    for kid, pub in public_keys.items():
        for form in key_ids_of(pub):
            if form and form != kid:
                st.aliases.setdefault(form, kid)
    keep = keep_bodies and len(st._bodies) == len(st.entries)
    if not keep:
        st._bodies.clear()
    for raw in entries:
        if raw.seq != st.size:
            _problem(st, raw.seq, f"expected entry {st.size} here (entries missing, inserted or reordered)")
            if raw.seq < st.size:
                continue
        st.size = raw.seq + 1
        if raw.seq in distrust:
            continue
        obj = _parse(st, raw, form_checked=not check_signatures)
        if obj is None:
            continue
        t: str = obj["time"]
        if t < st.last_time:
            _problem(st, raw.seq, "entry is older than the one before it (reordered)")
            continue
        signer_pub = public_keys.get(obj["keyid"])
        if signer_pub is None and obj["keyid"] in st.aliases:  # an entry naming its key by the other ID form
            signer_pub = public_keys.get(st.aliases[obj["keyid"]])
        if check_signatures and not _verify_signature(st, raw, obj, signer_pub):
            continue
        bootstrap = _is_bootstrap(st, raw, obj)
        if bootstrap and raw.seq == 0:
            st.keys[obj["keyid"]] = KeyEvidence(obj["keyid"], LOG_PRINCIPAL, t, 0)
        elif bootstrap:
            st.keys[obj["keyid"]] = KeyEvidence(obj["keyid"], obj["principal"], t, 1)
        why = st.key_valid(obj["keyid"], obj["principal"], t)
        if why:
            _problem(st, raw.seq, f"signature made when {why}")
            continue
        if not bootstrap and not _authorize(st, raw, obj):
            continue
        if not bootstrap and not _admin_quorum(st, raw, obj):
            continue
        st.last_time = t
        n_kept = len(st.entries)
        _apply(st, raw.seq, obj)
        if keep and len(st.entries) > n_kept:
            # the entry kept is ``obj`` itself, parsed from this body, which is canonical JSON (checked above,
            # or by the caller when check_signatures is False): the body is exactly the entry's JSON
            if st.entries[-1] is obj and len(st._bodies) == n_kept:
                st._bodies.append(raw.body)
            else:
                keep = False
                st._bodies.clear()
    return st


#: the actions whose facts are about the principal their subject names
_PRINCIPAL_ACTIONS = KEY_REGISTERING | {"role.grant", "role.revoke"}
#: the actions :func:`_apply_synthetic` records (of a ``batch:`` subject)
_SYNTHETIC_ACTIONS = frozenset({"batch.generation", "batch.verify"})
#: the actions :func:`_apply_batch` acts on without a known batch as subject (it creates one, or changes the
#: batches its details list); for any other action it changes only the known batch its subject names
_BATCH_ACTIONS = frozenset({"batch.acquire", "dataset.release", "dataset.rollback", "incident.resolve"})
#: the actions :func:`_apply_version` records
_VERSION_ACTIONS = frozenset({"dataset.release", "dataset.rollback"})


def _apply(st: TrustedState, seq: int, obj: dict[str, Any]) -> None:
    """Change the state by one verified, authorized entry."""
    action: str = obj["action"]
    subject: str = obj["subject"]
    d: dict[str, Any] = obj["details"]
    t: str = obj["time"]
    who: str = obj["principal"]
    if action == "workspace.init":
        st.workspace_id = _subject_name(subject, "workspace:")
        if isinstance(d.get("admin_threshold"), int) and d["admin_threshold"] >= 1:
            st.admin_threshold = d["admin_threshold"]
    if action in _PRINCIPAL_ACTIONS:  # the facts that name a principal by the entry's subject
        name = _subject_name(subject, "principal:")
        if name is not None:
            if action == "principal.add":
                st.principals[name] = None if seq == 1 else who
                _apply_roles(st, name, d.get("roles"), add=True)
            elif action == "role.grant":
                _apply_roles(st, name, d.get("roles"), add=True)
            elif action == "role.revoke":
                _apply_roles(st, name, d.get("roles"), add=False)
            if action in KEY_REGISTERING:
                if action != "principal.add" and name not in st.principals:
                    st.principals[name] = who
                if isinstance(d.get("keyid"), str):
                    old = _str(d.get("old_keyid"))
                    if old is not None and old in st.keys and st.keys[old].retired_at is None:
                        st.keys[old].retired_at = t
                    if d["keyid"] not in st.keys:
                        st.keys[d["keyid"]] = KeyEvidence(
                            d["keyid"], name, t, seq, expires_at=_str(d.get("expires_at"))
                        )
    elif action == "key.revoke":
        kid = _str(d.get("keyid"))
        if kid is not None and kid in st.keys and st.keys[kid].principal != LOG_PRINCIPAL:
            st.keys[kid].revoked_at = _str(d.get("revoked_at")) or t
            st.keys[kid].revocation_reason = _str(d.get("reason"))
    elif action in ("source.add", "source.update"):
        src = _subject_name(subject, "source:")
        if src is not None:
            row = dict(st.sources.get(src, {}))
            row.update({k: v for k, v in d.items() if k != "name"})
            row.setdefault("created_by", who)
            st.sources[src] = row
    elif action == "admin.threshold" and isinstance(d.get("threshold"), int) and d["threshold"] >= 1:
        st.admin_threshold = d["threshold"]
    elif action == "policy.set" and isinstance(d.get("sha256"), str):
        st.policies.append((seq, d["sha256"]))
    elif action == "token.create" and isinstance(d.get("token"), str):
        st.tokens[d["token"]] = {**d, "created_by": who, "created_at": t}
    elif action == "token.revoke" and isinstance(d.get("token"), str) and d["token"] in st.tokens:
        st.tokens[d["token"]].update({"revoked_at": t, "revoked_by": who})
    if action not in UNRECORDED:
        # the copy kept is the entry with its number; a body whose "seq" is that int already is kept as
        # parsed (nothing changes an entry's dict after it is parsed; equal to the copy it used to make)
        st.entries.append(obj if type(obj.get("seq")) is int and obj["seq"] == seq else {**obj, "seq": seq})
    # each helper below changes nothing for an entry outside its guard (they test the same conditions)
    bid = _subject_name(subject, "batch:")
    if bid is not None and action in _SYNTHETIC_ACTIONS:
        _apply_synthetic(st, seq, obj)
    if action in _BATCH_ACTIONS or (bid is not None and bid in st.batches):
        _apply_batch(st, seq, obj)
    if action in _VERSION_ACTIONS:
        _apply_version(st, seq, obj)
    for a in d.get("attestations") or []:
        if isinstance(a, dict) and isinstance(a.get("sha256"), str):
            st.attestations[a["sha256"]] = {
                "subject": subject,
                "predicate_type": a.get("type"),
                "principal": who,
                "keyid": obj["keyid"],
                "batch_id": _str(a.get("batch")) if "batch" in a else _str(d.get("batch")),
                "seq": seq,
            }


def _apply_synthetic(st: TrustedState, seq: int, obj: dict[str, Any]) -> None:
    """The facts of ``batch.generation`` and ``batch.verify`` entries (for the ``regenerable`` rule)."""
    action: str = obj["action"]
    d: dict[str, Any] = obj["details"]
    bid = _subject_name(obj["subject"], "batch:")
    if bid is None:
        return
    if action == "batch.generation" and d.get("batch") == bid and bid not in st.generations:
        st.generations[bid] = GenerationEvidence(
            bid, _str(d.get("source")), obj["principal"], seq, _first_attestation(d)
        )
    elif action == "batch.verify":
        ok, regen = d.get("ok"), d.get("regenerated")
        st.verifications.setdefault(bid, []).append(
            VerifyEvidence(
                bid,
                obj["principal"],
                seq,
                ok if isinstance(ok, bool) else None,
                regen if isinstance(regen, bool) else None,
            )
        )


def _apply_roles(st: TrustedState, principal: str, roles: Any, *, add: bool) -> None:
    if not isinstance(roles, list):
        return
    st._allowed.clear()  # the grants change: no remembered authorization holds any longer
    for text in roles:
        if not isinstance(text, str):
            continue
        role, _, src = text.partition("@")
        g = (principal, role, src or None)
        if add:
            st.grants.add(g)
        else:
            st.grants.discard(g)


def _apply_batch(st: TrustedState, seq: int, obj: dict[str, Any]) -> None:
    action: str = obj["action"]
    d: dict[str, Any] = obj["details"]
    who: str = obj["principal"]
    bid = _subject_name(obj["subject"], "batch:")
    if action == "batch.acquire" and bid is not None and bid not in st.batches:
        st.batches[bid] = BatchEvidence(
            id=bid,
            source=str(d.get("source")),
            acquirer=who,
            manifest=str(d.get("manifest_sha256")),
            merkle_root=str(d.get("merkle_root")),
            records=int(d.get("records") or 0),
            files=int(d.get("files") or 0),
            acquired_seq=seq,
            acquired_at=obj["time"],
            state_seq=seq,
        )
        return
    b = st.batches.get(bid) if bid is not None else None
    if b is not None and d.get("batch") == b.id and isinstance(d.get("to_state"), str):
        if action == "batch.approve":
            _apply_approval(st, seq, obj, b)
        if d.get("from_state") == b.state:
            if action == "batch.screen":
                b.screened_by = who
                b.report = _first_attestation(d)
            elif action == "audit.complete":
                b.audited_by = who
                b.audit = _first_attestation(d)
            b.state, b.state_seq = d["to_state"], seq
        else:
            _problem(st, seq, f"batch {b.id} moves from {d.get('from_state')!r}, but the log has it {b.state}")
    elif b is not None and action == "batch.approve":
        _apply_approval(st, seq, obj, b)
    if action in ("dataset.release", "dataset.rollback"):
        for key, to in (("released", "released"), ("revoked", "revoked")):
            for x in d.get(key) or []:
                rb = st.batches.get(x) if isinstance(x, str) else None
                if rb is not None and rb.state not in FINAL_STATES:
                    rb.state, rb.state_seq = to, seq
                    if to == "revoked":
                        rb.revoked_seq = seq
    if action == "incident.resolve":
        for x in d.get("revoked") or []:
            rb = st.batches.get(x) if isinstance(x, str) else None
            if rb is not None and rb.state == "released":
                rb.state, rb.state_seq, rb.revoked_seq = "revoked", seq, seq
    if action == "batch.revoke" and b is not None:
        b.state, b.state_seq, b.revoked_seq = "revoked", seq, seq


def _first_attestation(d: dict[str, Any]) -> str | None:
    for a in d.get("attestations") or []:
        if isinstance(a, dict) and isinstance(a.get("sha256"), str):
            return str(a["sha256"])
    return None


def _apply_approval(st: TrustedState, seq: int, obj: dict[str, Any], b: BatchEvidence) -> None:
    d: dict[str, Any] = obj["details"]
    approver = _str(d.get("approver")) or obj["principal"]
    keyid = _str(d.get("keyid")) or obj["keyid"]
    envelope = _first_attestation(d)
    t: str = obj["time"]
    why = st.key_valid(keyid, approver, t)
    if why is None and approver == b.acquirer:
        why = f"{approver} acquired batch {b.id} (separation of duties)"
    if why is None and not allowed(st.grants_of(approver), "batch.approve", b.source):
        why = f"{approver} did not hold the approver role for source {b.source} at that time"
    if why is None and b.state != "audited":
        why = f"batch {b.id} was {b.state}, not audited"
    if why is None and any(a.approver == approver for a in b.approvals):
        why = f"{approver} had already approved batch {b.id}"
    policy = _str(d.get("policy"))
    if why is None and (policy is None or policy != st.policy_at(seq)):
        why = f"the approval names policy {str(policy)[:12]}, not the one in force ({str(st.policy_at(seq))[:12]})"
    if why is None and envelope is None:
        why = "the approval entry names no signed approval"
    if why is not None:
        _problem(st, seq, f"approval of batch {b.id} does not count: {why}")
        return
    required = d.get("required")
    b.approvals.append(
        ApprovalEvidence(
            seq,
            t,
            approver,
            keyid,
            str(envelope),
            str(policy),
            _str(d.get("tier")),
            required if isinstance(required, int) and required >= 1 else 1,
        )
    )


def _apply_version(st: TrustedState, seq: int, obj: dict[str, Any]) -> None:
    action: str = obj["action"]
    if action not in ("dataset.release", "dataset.rollback"):
        return
    d: dict[str, Any] = obj["details"]
    ds, number = d.get("dataset"), d.get("version")
    if not isinstance(ds, str) or not isinstance(number, int) or obj["subject"] != f"version:{ds}@{number}":
        _problem(st, seq, "release entry does not name its dataset version")
        return
    if (ds, number) in st.versions:
        _problem(st, seq, f"version {ds}@{number} was released twice")
        return
    batches = d.get("batches")
    dropped = _dropped_records(d.get("dropped_records")) if action == "dataset.rollback" else ()
    if dropped is None:
        _problem(st, seq, f"rollback entry of {ds}@{number} has a malformed dropped-record list")
        return
    st.datasets.setdefault(ds, obj["principal"])
    reason = _str(d.get("reason"))
    for bid, fname, rec, digest in dropped:
        st.revoked_records.setdefault(bid, {}).setdefault(
            (fname, rec), RecordRevocation(bid, fname, rec, digest, f"{ds}@{number}", seq, reason)
        )
    st.versions[(ds, number)] = VersionEvidence(
        ds,
        number,
        "release" if action == "dataset.release" else "rollback",
        str(d.get("manifest_sha256")),
        str(d.get("merkle_root")),
        int(d.get("records") or 0),
        d.get("parent") if isinstance(d.get("parent"), int) else None,
        tuple(str(x) for x in batches) if isinstance(batches, list) else (),
        obj["principal"],
        seq,
        obj["time"],
        dropped,
    )


def _dropped_records(raw: Any) -> tuple[tuple[str, str, int, str], ...] | None:
    """A rollback entry's ``dropped_records`` as (batch, file, record, sha256), or None if malformed."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return None
    out: list[tuple[str, str, int, str]] = []
    for d in raw:
        if not isinstance(d, dict):
            return None
        b, f, r, h = d.get("batch"), d.get("file"), d.get("record"), d.get("sha256")
        if not (isinstance(b, str) and isinstance(f, str) and isinstance(h, str)):
            return None
        if not isinstance(r, int) or isinstance(r, bool) or r < 0:
            return None
        out.append((b, f, r, h))
    return tuple(out)


def approvals_required(b: BatchEvidence, policy_requirements: Mapping[str, Mapping[str, int]]) -> int:
    """How many distinct approvals ``b`` needs: the policy in force says per tier (``policy_requirements``:
    policy digest -> tier -> approvals); an approver cannot lower it by naming an easier tier, so the
    strictest tier any approval names counts, and never less than any approval's own ``required``."""
    need = 1
    for a in b.approvals:
        need = max(need, a.required)
        tiers = policy_requirements.get(a.policy)
        if tiers:
            need = max(need, tiers.get(a.tier or "", max(tiers.values(), default=1)))
    return need


def batch_cleared(b: BatchEvidence, policy_requirements: Mapping[str, Mapping[str, int]]) -> str | None:
    """Why ``b`` may not be served from a release, or None: acquired, screened, audited, k distinct valid
    approvals under the policy in force, released by a signed entry and not revoked since."""
    if b.revoked_seq is not None or b.state == "revoked":
        return f"batch {b.id} was revoked (log entry {b.revoked_seq if b.revoked_seq is not None else b.state_seq})"
    if b.state != "released":
        return f"batch {b.id} is {b.state} according to the signed log, not released"
    if b.report is None:
        return f"batch {b.id} has no signed screening report in the log"
    if b.audit is None:
        return f"batch {b.id} has no signed audit attestation in the log"
    need = approvals_required(b, policy_requirements)
    if len({a.approver for a in b.approvals}) < need:
        return f"batch {b.id} has {len(b.approvals)} valid approval(s) in the log, {need} required"
    return None
