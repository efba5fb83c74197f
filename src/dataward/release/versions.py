"""Dataset versions: release (approved -> released), signed version manifests, and their verification.

A version's manifest (predicate :data:`PREDICATE_RELEASE`) lists its batches in a defined order (sorted by
batch id), each with its signed batch manifest digest and its files' record-digest lists; the version's
Merkle root is the RFC 6962 root over the record leaves of those batches in that order (files in batch
order, records in file order). Creating a version is one catalog transaction with its log entry
(subject ``version:DATASET@N``); the batch state transitions happen in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature

from dataward import progress as progress_protocol
from dataward.access import require_separation
from dataward.acquire.verify import batch_manifest, verify_batch
from dataward.batches import Batch, BatchState, load_batch
from dataward.core import dsse, merkle
from dataward.core.checkpoint import parse_signed_checkpoint
from dataward.errors import (
    ConflictError,
    Error,
    InputError,
    IntegrityError,
    NotFoundError,
    PolicyError,
)
from dataward.identity import Actor
from dataward.lifecycle import PREDICATE_APPROVAL, PREDICATE_RELEASE, attest, transition
from dataward.log.auditlog import NodeReader, entry_leaf_hash, latest_checkpoint
from dataward.log.verify import key_valid_at
from dataward.model.roles import Grant
from dataward.model.version import Version
from dataward.records.leaves import leaf_list
from dataward.store import versions_repo
from dataward.store.catalog import Transaction
from dataward.timeutil import now_iso
from dataward.workspace import Change, Workspace, check_name

RELEASE_ACTIONS = ("dataset.release", "dataset.rollback")
ORDER = "batches sorted by id; files in batch order; records in file order"
_SPEC = re.compile(r"^(?P<ds>[A-Za-z0-9_.\-][A-Za-z0-9_.@\-]*)@(?:v)?(?P<n>[0-9]{1,9}|latest)$")

Progress = Callable[[str, int], None]


# naming -----------------------------------------------------------------------------------------------------
def parse_spec(text: str) -> tuple[str, int | None]:
    """``DATASET@N`` (or ``@vN``, or ``@latest`` -> None) into (dataset, number)."""
    m = _SPEC.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        hint = (
            "Batches are never read directly: release them into a dataset version first."
            if text.startswith("b-") or "@" not in text
            else "Name a version as DATASET@N, e.g. train@3."
        )
        raise InputError(f"{text!r} is not DATASET@VERSION", advice=hint)
    n = m.group("n")
    number = None if n == "latest" else int(n)
    if number is not None and number < 1:
        raise InputError(f"{text!r}: versions are numbered from 1")
    return m.group("ds"), number


def require_logged(
    ws: Workspace, principal: str, grants: Iterable[Grant], action: str, subject: str, source: str | None = None
) -> None:
    """Refuse unless ``grants`` allow ``action`` (on ``source``); a refusal is logged as ``access.denied``."""
    ws.require_granted(principal, grants, action, subject, source)


def check_may(ws: Workspace, actor: Actor, action: str, subject: str) -> None:
    """Refuse early (and log the denial) when ``actor`` may not take ``action`` at all."""
    ws.authorize(actor.name, action, subject)


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name with ``@`` or outside the workspace's name rules (InputError)."""
    if "@" in name:
        raise InputError(f"dataset name {name!r} contains '@'", advice="'@' separates a dataset from its version.")
    try:
        check_name(name, "dataset")
    except Error as exc:
        raise InputError(exc.message, advice=exc.advice) from None


def version_subject(dataset: str, number: int) -> str:
    """The log subject of a version: ``version:DATASET@N``."""
    return f"version:{dataset}@{number}"


def latest_number(tx: Transaction, dataset: str) -> int | None:
    """The number of the dataset's newest version in the catalog, or None when it has none."""
    return versions_repo.latest_number(tx, dataset)


def load_version(tx: Transaction, dataset: str, number: int | None) -> Version:
    """Version ``number`` of ``dataset`` (None: the newest) read inside ``tx``; unknown: NotFoundError."""
    return versions_repo.load_version(tx, dataset, number)


def get_version(ws: Workspace, spec: str) -> Version:
    """The version ``DATASET@N`` (or ``@latest``); unknown: NotFoundError."""
    ds, n = parse_spec(spec)
    with ws.engine.connect() as conn:
        return load_version(conn, ds, n)


def list_versions(ws: Workspace, dataset: str | None = None) -> list[Version]:
    """Every version (or ``dataset``'s), ordered by dataset and number."""
    with ws.engine.connect() as conn:
        return versions_repo.version_rows(conn, dataset)


def versions_containing(tx: Transaction, batch_ids: Iterable[str]) -> list[tuple[str, int]]:
    """(dataset, number) of every version that contains one of ``batch_ids``, sorted."""
    return versions_repo.versions_containing(tx, batch_ids)


# envelopes --------------------------------------------------------------------------------------------------
def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(str(a).encode(), str(b).encode())


def read_envelope(ws: Workspace, digest: str, what: str) -> dsse.Envelope:
    """The stored envelope named ``digest``, re-hashed and in canonical form."""
    data = ws.objects.read_bytes("meta", digest, verify=False)
    if not _eq(hashlib.sha256(data).hexdigest(), digest):
        raise IntegrityError(f"{what}: the stored signed envelope was modified (its SHA-256 no longer matches)")
    env = dsse.Envelope.from_bytes(data)
    if env.to_bytes() != data:
        raise IntegrityError(f"{what}: the signed envelope is not in canonical form")
    return env


def verify_signed_by(env: dsse.Envelope, keys: dict[str, Any], principal: str, signed_at: str, what: str) -> list[str]:
    """Problems unless ``env`` carries a valid signature by ``principal``'s key valid at ``signed_at``."""
    problems: list[str] = []
    for s in env.signatures:
        row = keys.get(s.keyid)
        if row is None:
            problems.append(f"{what}: signed by unknown key {s.keyid[:16]}")
            continue
        try:
            dsse.verify_envelope(env, {s.keyid: dsse.public_key_from_hex(row.public_key)})
        except Error as exc:
            problems.append(f"{what}: {exc.message}")
            continue
        if row.principal != principal:
            problems.append(f"{what}: signed by {row.principal}, but recorded as made by {principal}")
            continue
        why = key_valid_at(row, signed_at)
        if why:
            problems.append(f"{what}: signed when {why}")
            continue
        return []
    return problems or [f"{what}: not signed"]


# approvals --------------------------------------------------------------------------------------------------
def approval_problem(ws: Workspace, conn: Transaction, batch: Batch, keys: dict[str, Any]) -> str | None:
    """None if ``batch`` carries a valid signed approval by someone other than its acquirer."""
    cands = versions_repo.approval_statements(conn, batch.id, PREDICATE_APPROVAL)
    if not cands:
        return f"batch {batch.id} has no signed approval"
    last = ""
    for cand in dict.fromkeys(cands):
        digest, principal, created_at = cand.envelope_digest, cand.principal, cand.created_at
        what = f"approval of batch {batch.id}"
        if principal == batch.created_by:
            last = f"{what} was signed by its acquirer {principal} (separation of duties)"
            continue
        try:
            env = read_envelope(ws, digest, what)
            st = dsse.parse_statement(env)
        except Error as exc:
            last = exc.message
            continue
        if st.predicate_type != PREDICATE_APPROVAL:
            last = f"{what}: unexpected predicate type {st.predicate_type}"
            continue
        pred = st.predicate
        if isinstance(pred, dict) and "batch" in pred and pred["batch"] != batch.id:
            last = f"{what}: the signed approval is for batch {pred['batch']!r}"
            continue
        if isinstance(pred, dict) and "manifest" in pred and not _eq(str(pred["manifest"]), batch.manifest_digest):
            last = f"{what}: the signed approval is for another manifest of the batch"
            continue
        problems = verify_signed_by(env, keys, principal, created_at, what)
        if problems:
            last = problems[0]
            continue
        return None
    return last


# leaves -----------------------------------------------------------------------------------------------------
def leaf_bytes(ws: Workspace, file_sha256: str, records_digest: str, where: str) -> bytes:
    """A file's record leaves, concatenated (32 bytes each), from its re-hashed record-digest list (an opaque
    file's from its SHA-256: no object holds it)."""
    try:
        raw = leaf_list(ws.objects, file_sha256, records_digest)
    except Error as exc:
        raise IntegrityError(f"{where}: record-digest list: {exc.message}") from None
    if len(raw) % 32:
        raise IntegrityError(f"{where}: record-digest list has a partial leaf")
    return raw


def file_leaves(ws: Workspace, file_sha256: str, records_digest: str, where: str) -> list[bytes]:
    """The 32-byte record leaf hashes of a file, from its record-digest list."""
    raw = leaf_bytes(ws, file_sha256, records_digest, where)
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def _file_entries(m: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f["name"],
            "sha256": f["sha256"],
            "size": f["size"],
            "format": f["format"],
            "encoding": f.get("encoding"),
            "records": f["records"],
            "records_digest": f["records_digest"],
        }
        for f in m.get("files", [])
    ]


def signed_batch_files(ws: Workspace, manifest_digest: str, batch_id: str) -> list[dict[str, Any]]:
    """The file entries of a batch's signed manifest, re-hashed (the version manifest must repeat them)."""
    st = dsse.parse_statement(read_envelope(ws, manifest_digest, f"manifest of batch {batch_id}"))
    if not isinstance(st.predicate, dict):
        raise IntegrityError(f"manifest of batch {batch_id} has no predicate")
    return _file_entries(st.predicate)


def batch_entry(ws: Workspace, batch: Batch) -> dict[str, Any]:
    """The manifest entry of ``batch`` (from its signed batch manifest, which the caller has verified)."""
    files = _file_entries(batch_manifest(ws, batch.id))
    return {
        "batch": batch.id,
        "source": batch.source,
        "manifest_sha256": batch.manifest_digest,
        "merkle_root": batch.merkle_root,
        "records": batch.record_count,
        "files": files,
    }


def dropped_of(entry: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """The records a version entry drops (record-level rollback), by (file name, record index in the file)."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for d in entry.get("dropped_records") or []:
        if not isinstance(d, dict) or not isinstance(d.get("file"), str) or not isinstance(d.get("record"), int):
            raise IntegrityError(f"batch {entry.get('batch')}: a dropped-record entry is malformed")
        key = (d["file"], d["record"])
        if key in out:
            raise IntegrityError(f"batch {entry.get('batch')}: record {key[1]} of {key[0]} is dropped twice")
        out[key] = d
    return out


def entry_records(ws: Workspace, entry: dict[str, Any], *, served: bool = True) -> list[tuple[str, int, bytes]]:
    """(file name, record index in the file, leaf hash) of every record of a version entry, in the defined
    order; ``served`` leaves out the records the entry drops (each checked against its signed leaf)."""
    dropped = dropped_of(entry) if served else {}
    out: list[tuple[str, int, bytes]] = []
    seen = 0
    for f in entry["files"]:
        leaves = file_leaves(ws, f["sha256"], f["records_digest"], f"batch {entry['batch']} file {f['name']}")
        if len(leaves) != f["records"]:
            raise IntegrityError(f"batch {entry['batch']} file {f['name']}: record-digest list length differs")
        for k, leaf in enumerate(leaves):
            d = dropped.get((f["name"], k))
            if d is None:
                out.append((f["name"], k, leaf))
                continue
            seen += 1
            if not _eq(str(d.get("sha256")), leaf.hex()):
                raise IntegrityError(
                    f"batch {entry['batch']} file {f['name']} record {k}: the dropped record's digest differs"
                )
    if seen != len(dropped):
        raise IntegrityError(f"batch {entry['batch']}: a dropped record names no record of the batch")
    return out


def entry_leaves(ws: Workspace, entry: dict[str, Any]) -> list[bytes]:
    """The leaf hashes of the records a version entry serves (its dropped records left out)."""
    return [leaf for _f, _k, leaf in entry_records(ws, entry)]


# release ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """A version about to be released: its number, parent, batches in order, manifest entries and Merkle root."""

    dataset: str
    number: int
    parent: Version | None
    batch_ids: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    entries: tuple[dict[str, Any], ...]
    to_release: tuple[str, ...]  # added batches still approved (they move to released)
    leaves_root: str
    record_count: int
    extra: dict[str, Any] = field(default_factory=dict)


def _unique(items: Sequence[str], what: str) -> list[str]:
    seen: list[str] = []
    for i in items:
        if i in seen:
            raise InputError(f"{what} {i!r} is given twice")
        seen.append(i)
    return seen


def parent_entries(ws: Workspace, parent: Version) -> dict[str, dict[str, Any]]:
    """Batch entries of a verified parent version's signed manifest, by batch id."""
    st = dsse.parse_statement(read_envelope(ws, parent.manifest_digest, f"version {parent.spec}"))
    pred = st.predicate if isinstance(st.predicate, dict) else {}
    return {e["batch"]: e for e in pred.get("batches", []) if isinstance(e, dict) and "batch" in e}


def plan_version(
    ws: Workspace,
    actor: Actor,
    dataset: str,
    keep: Sequence[str],
    add: Sequence[str],
    removed: Sequence[str],
    parent: Version | None,
    *,
    progress: Progress | None = None,
    drop_records: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> Plan:
    """Check and verify what a new version of ``dataset`` would hold; copies added batches into released.

    ``drop_records`` (batch id -> dropped-record entries) leaves those records out of kept batches; the
    records earlier versions dropped stay dropped (a kept batch's entry carries them forward)."""
    with ws.engine.connect() as conn:
        keys = ws.public_keys(conn)
        batches = {i: load_batch(conn, i) for i in [*keep, *add]}
        for i in add:
            b = batches[i]
            if b.state not in (BatchState.APPROVED, BatchState.RELEASED):
                raise ConflictError(
                    f"batch {i} is {b.state}; only approved batches can be released",
                    advice="Screen, audit and approve it first (`dataward approve`).",
                )
            require_separation(actor.name, b.created_by, "release")
            why = approval_problem(ws, conn, b, keys)
            if why:
                raise PolicyError(why, advice="Only batches with a valid signed approval can be released.")
        for i in keep:
            if batches[i].state != BatchState.RELEASED:
                raise ConflictError(
                    f"batch {i} of {parent.spec if parent else dataset} is {batches[i].state}",
                    advice="Drop it first with `dataward rollback --without`.",
                )
    prev = parent_entries(ws, parent) if parent and keep else {}
    entries: dict[str, dict[str, Any]] = {}
    for i in keep:
        if i not in prev:
            raise IntegrityError(f"batch {i} is in the catalog's {parent.spec if parent else ''} but not its manifest")
        entries[i] = prev[i]
    for i in add:
        b = batches[i]
        area = "quarantine" if b.state == BatchState.APPROVED else "released"
        rep = verify_batch(ws, i, area=area)
        if not rep.ok:
            raise IntegrityError(f"batch {i} fails verification: {rep.problems[0].line()}")
        if b.state == BatchState.APPROVED:
            for f in b.files:
                ws.objects.copy("quarantine", "released", f.sha256)  # re-hashes on the way
                if progress:
                    progress(f.name, f.size)
        entries[i] = batch_entry(ws, b)
    for i, new_drops in (drop_records or {}).items():
        if i not in entries:
            raise ConflictError(f"batch {i} is not in the new version; its records cannot be dropped")
        old_drops = list(entries[i].get("dropped_records") or [])
        merged = sorted([*old_drops, *new_drops], key=lambda d: (_file_pos(entries[i], d["file"]), d["record"]))
        entries[i] = {**entries[i], "dropped_records": merged}
    from dataward.evidence.gates import revoked_records_served
    from dataward.evidence.load import trusted_state

    st = trusted_state(ws)
    spec = f"{dataset}@{(parent.number + 1) if parent else 1}"
    for i in sorted(entries):
        served = revoked_records_served(st, i, set(dropped_of(entries[i])), spec)
        if served:
            raise ConflictError(
                served[0],
                advice=f"Drop them first: `dataward rollback {dataset} --without-records FILE` (or --without {i}).",
            )
    order = tuple(sorted(entries))
    leaves: list[bytes] = []
    for i in order:
        leaves.extend(entry_leaves(ws, entries[i]))
    return Plan(
        dataset,
        (parent.number + 1) if parent else 1,
        parent,
        order,
        tuple(add),
        tuple(removed),
        tuple(entries[i] for i in order),
        tuple(i for i in add if batches[i].state == BatchState.APPROVED),
        merkle.root_from_leaf_hashes(leaves).hex(),
        len(leaves),
    )


def _file_pos(entry: dict[str, Any], name: str) -> int:
    for k, f in enumerate(entry["files"]):
        if f["name"] == name:
            return k
    raise IntegrityError(f"batch {entry['batch']} has no file {name!r}")


def commit_version(ws: Workspace, ch: Change, plan: Plan, kind: str, details: dict[str, Any]) -> str:
    """Inside ``ch``: insert the version, move batches, sign the manifest; returns the manifest digest."""
    conn = ch.conn
    have = latest_number(conn, plan.dataset)
    if have != (plan.parent.number if plan.parent else None):
        raise ConflictError(f"dataset {plan.dataset} got version {have} meanwhile; retry", advice="Run it again.")
    created_at = now_iso()
    if plan.parent is None:
        versions_repo.ensure_dataset(conn, plan.dataset, created_at=created_at, created_by=ch.actor.name)
    for i in plan.to_release:
        transition(ch, i, BatchState.RELEASED)
    predicate = {
        "dataset": plan.dataset,
        "version": plan.number,
        "kind": kind,
        "parent": plan.parent.number if plan.parent else None,
        "parent_manifest": plan.parent.manifest_digest if plan.parent else None,
        "batches": list(plan.entries),
        "added": list(plan.added),
        "removed": list(plan.removed),
        "record_count": plan.record_count,
        "merkle_root": plan.leaves_root,
        "record_digest": "rfc6962-leaf-sha256",
        "order": ORDER,
        "released_by": ch.actor.name,
        "released_at": created_at,
        **details,
    }
    subjects = [(f"{plan.dataset}@{plan.number}", plan.leaves_root)] + [
        (f"{e['batch']}/{f['name']}", f["sha256"]) for e in plan.entries for f in e["files"]
    ]
    digest = attest(ws, ch, subjects, PREDICATE_RELEASE, predicate)
    version = Version(
        plan.dataset,
        plan.number,
        plan.parent.number if plan.parent else None,
        kind,
        digest,
        plan.leaves_root,
        plan.record_count,
        tuple(plan.batch_ids),
        created_at,
        ch.actor.name,
    )
    versions_repo.insert_version(conn, version)
    for k in ("batch", "from_state", "to_state"):
        ch.details.pop(k, None)
    ch.details.update(
        {
            "dataset": plan.dataset,
            "version": plan.number,
            "parent": plan.parent.number if plan.parent else None,
            "manifest_sha256": digest,
            "merkle_root": plan.leaves_root,
            "records": plan.record_count,
            "batches": list(plan.batch_ids),
            "added": list(plan.added),
            "removed": list(plan.removed),
            "released": list(plan.to_release),
        }
    )
    return digest


def release(
    ws: Workspace,
    actor: Actor,
    dataset: str,
    add: Sequence[str],
    remove: Sequence[str] = (),
    *,
    progress: Progress | None = None,
) -> Version:
    """Create the next version of ``dataset``: its parent's batches, minus ``remove``, plus ``add``."""
    check_dataset_name(dataset)
    check_may(ws, actor, "dataset.release", f"dataset:{dataset}")
    add = _unique(add, "batch")
    remove = _unique(remove, "batch")
    if not add and not remove:
        raise InputError("nothing to release", advice="Name batches with --add BATCH (and/or --remove BATCH).")
    both = sorted(set(add) & set(remove))
    if both:
        raise InputError(f"batch {both[0]} is both added and removed")
    with ws.engine.connect() as conn:
        n = latest_number(conn, dataset)
        parent = load_version(conn, dataset, n) if n is not None else None
    have = list(parent.batches) if parent else []
    for i in add:
        if i in have:
            raise ConflictError(f"batch {i} is already in {parent.spec if parent else dataset}")
    for i in remove:
        if i not in have:
            raise ConflictError(f"batch {i} is not in {parent.spec if parent else dataset + ' (no versions yet)'}")
    keep = [i for i in have if i not in remove]
    if parent is not None:
        rep = verify_version(ws, parent.spec, full=False)
        bad = rep.integrity_problems  # kept revoked batches are refused below, with advice
        if bad:
            raise IntegrityError(f"parent version {parent.spec} fails verification: {bad[0]}")
    plan = plan_version(ws, actor, dataset, keep, add, remove, parent, progress=progress)
    from dataward.evidence.gates import require_cleared_for_release
    from dataward.workflow import approval_policy as policy

    for i in add:  # after the catalog's own checks (their errors say what to do); the log has the last word
        require_cleared_for_release(ws, i, policy)
    with ws.change(actor, "dataset.release", version_subject(dataset, plan.number)) as ch:
        commit_version(ws, ch, plan, "release", {})
    return get_version(ws, f"{dataset}@{plan.number}")


# verification -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionReport:
    """What verifying a version found: batches and records checked, the signer, every problem."""

    version: str
    batches_checked: int
    records: int
    signer: str | None
    full: bool
    problems: tuple[str, ...] = ()
    revoked: tuple[str, ...] = ()  # revoked batches (each also has its line in ``problems``)
    revoked_records: tuple[str, ...] = ()  # lines (also in ``problems``) of served records a rollback revoked

    @property
    def ok(self) -> bool:
        """Whether the version verified without a problem."""
        return not self.problems

    @property
    def integrity_problems(self) -> list[str]:
        """The problems other than revoked batches (a diff or rollback may look at a revoked version)."""
        return [p for p in self.problems if p not in self._revoked_lines]

    @property
    def _revoked_lines(self) -> set[str]:
        return {revoked_line(b, self.version) for b in self.revoked} | set(self.revoked_records)

    def to_json(self) -> dict[str, Any]:
        """The JSON form `dataset verify --json` prints."""
        return {
            "version": self.version,
            "ok": self.ok,
            "full": self.full,
            "batches_checked": self.batches_checked,
            "records": self.records,
            "signer": self.signer,
            "problems": list(self.problems),
        }


def check_release_entry(ws: Workspace, conn: Transaction, v: Version, keys: dict[str, Any]) -> list[str]:
    """The version's log entry: present, signed by its creator, naming its manifest, in the signed log."""
    rows = versions_repo.logged_entries(conn, version_subject(v.dataset, v.number), RELEASE_ACTIONS)
    if len(rows) != 1:
        return [f"version {v.spec}: {len(rows)} release log entries (expected exactly one)"]
    row = rows[0]
    body = row.entry
    obj = json.loads(body)
    krow = keys.get(row.keyid)
    if krow is None or krow.principal != v.created_by or obj.get("principal") != v.created_by:
        return [f"version {v.spec}: its log entry was not made by {v.created_by}"]
    try:
        dsse.public_key_from_hex(krow.public_key).verify(bytes(row.signature), body)
    except InvalidSignature:
        return [f"version {v.spec}: its log entry's signature does not verify"]
    details = obj.get("details") or {}
    if not _eq(str(details.get("manifest_sha256")), v.manifest_digest):
        return [f"version {v.spec}: the catalog's manifest differs from the one its log entry names"]
    note = latest_checkpoint(conn)
    if note is None:
        return ["the log has no signed checkpoint"]
    try:
        cp = parse_signed_checkpoint(note, {ws.origin: ws.log_public_key()}, origin=ws.origin)
        seq = int(row.seq)
        if seq >= cp.size:
            return [f"version {v.spec}: its log entry {seq} is beyond the signed checkpoint ({cp.size} entries)"]
        proof = merkle.inclusion_proof(seq, cp.size, NodeReader(conn))
        merkle.verify_inclusion(entry_leaf_hash(body, bytes(row.signature)), seq, cp.size, proof, cp.root_hash)
    except (Error, LookupError) as exc:
        return [f"version {v.spec}: its log entry is not in the signed log ({exc})"]
    return []


def verify_version(
    ws: Workspace, spec: str, *, full: bool = True, progress: progress_protocol.Progress | None = None
) -> VersionReport:
    """Check a version end to end. ``full`` also re-hashes every released file and record (``progress``
    is told each batch as it is checked)."""
    from dataward.evidence.gates import check_version, latest_logged_number
    from dataward.workflow import approval_policy as policy

    ds, n = parse_spec(spec)
    problems: list[str] = []
    with ws.engine.connect() as conn:
        if n is None:
            # "latest" is the newest version the signed log released: deleting rows cannot roll it back
            n = latest_logged_number(ws, ds, conn)
        v = load_version(conn, ds, n)
        keys = ws.public_keys(conn)
        batches: dict[str, Batch] = {}
        for i in v.batches:
            try:
                batches[i] = load_batch(conn, i)
            except NotFoundError:
                problems.append(f"batch {i} of {v.spec} is missing from the catalog")
        problems += check_release_entry(ws, conn, v, keys)
        revoked: list[str] = []
        for b in batches.values():
            if b.state == BatchState.REVOKED:
                revoked.append(b.id)
                problems.append(revoked_line(b.id, v.spec))
            elif b.state != BatchState.RELEASED:
                problems.append(f"batch {b.id} of {v.spec} is {b.state}, not released")
            why2 = approval_problem(ws, conn, b, keys)
            if why2:
                problems.append(why2)
        evidence = check_version(ws, conn, v, policy)
        problems += [p for p in evidence.problems if p not in problems]
        revoked += [b for b in evidence.revoked if b not in revoked]
        revoked_records = evidence.revoked_records
    signer = None
    pred: dict[str, Any] = {}
    try:
        env = read_envelope(ws, v.manifest_digest, f"version {v.spec}")
        sig = verify_signed_by(env, keys, v.created_by, v.created_at, f"manifest of {v.spec}")
        problems += sig
        signer = None if sig else v.created_by
        st = dsse.parse_statement(env)
        if st.predicate_type != PREDICATE_RELEASE or not isinstance(st.predicate, dict):
            problems.append(f"manifest of {v.spec} has predicate type {st.predicate_type}")
        else:
            pred = st.predicate
    except Error as exc:
        problems.append(f"manifest of {v.spec}: {exc.message}")
    records = 0
    if pred:
        problems += _check_predicate(v, pred)
        entries = [e for e in pred.get("batches", []) if isinstance(e, dict)]
        leaves: list[bytes] = []
        leaf_errors = len(entries) != len(batches)
        task = progress_protocol.phase(progress, f"verifying {v.spec}", len(entries), unit="batches")
        for e in entries:
            task.advance(1)
            b2 = batches.get(str(e.get("batch")))
            if b2 is None:
                continue
            if not _eq(str(e.get("manifest_sha256")), b2.manifest_digest) or e.get("merkle_root") != b2.merkle_root:
                problems.append(f"batch {b2.id}: its catalog manifest differs from the one {v.spec} signed")
            try:
                if e.get("files") != signed_batch_files(ws, str(e.get("manifest_sha256")), b2.id):
                    problems.append(f"batch {b2.id}: {v.spec} lists other files than the batch's signed manifest")
                leaves.extend(entry_leaves(ws, e))
            except (Error, KeyError, TypeError) as exc:
                leaf_errors = True
                problems.append(f"batch {b2.id}: {exc}")
            if full:
                rep = verify_batch(ws, b2.id, area="released")
                problems += [f"batch {b2.id}: {p.line()}" for p in rep.problems]
        task.done()
        records = len(leaves)
        if not leaf_errors and not _eq(merkle.root_from_leaf_hashes(leaves).hex(), v.merkle_root):
            problems.append(f"version {v.spec}: record leaves do not hash to its signed Merkle root")
    return VersionReport(
        v.spec, len(batches), records, signer, full, tuple(problems), tuple(revoked), tuple(revoked_records)
    )


def revoked_line(batch_id: str, spec: str) -> str:
    """The problem line for a revoked batch of a version."""
    return f"batch {batch_id} of {spec} is revoked"


def _check_predicate(v: Version, pred: dict[str, Any]) -> list[str]:
    out: list[str] = []
    want = {
        "dataset": v.dataset,
        "version": v.number,
        "parent": v.parent,
        "merkle_root": v.merkle_root,
        "record_count": v.record_count,
        "kind": v.kind,
    }
    for k, val in want.items():
        if pred.get(k) != val:
            out.append(f"version {v.spec}: catalog {k} {val!r} differs from the signed manifest's {pred.get(k)!r}")
    ids = [str(e.get("batch")) for e in pred.get("batches", []) if isinstance(e, dict)]
    if ids != list(v.batches):
        out.append(f"version {v.spec}: the catalog's batch list differs from the signed manifest's")
    if ids != sorted(ids):
        out.append(f"version {v.spec}: the signed batch list is not in the defined order")
    return out


def require_verified(
    ws: Workspace, spec: str, *, full: bool = True, progress: progress_protocol.Progress | None = None
) -> tuple[Version, dict[str, Any]]:
    """Raise unless ``spec`` verifies; return it and its signed manifest predicate."""
    rep = verify_version(ws, spec, full=full, progress=progress)
    if not rep.ok:
        more = f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""
        raise IntegrityError(
            f"{rep.version} fails verification: {rep.problems[0]}{more}",
            advice="Refusing to hand out this data; see `dataward dataset verify " + rep.version + "`.",
        )
    v = get_version(ws, rep.version)
    st = dsse.parse_statement(read_envelope(ws, v.manifest_digest, f"version {v.spec}"))
    assert isinstance(st.predicate, dict)
    return v, st.predicate
