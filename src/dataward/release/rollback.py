"""Rollback: a new version without tainted records; what it drops is revoked.

Whole batches (``--without BATCH|SOURCE``, ``--to VERSION``) move released -> revoked. Single records
(``--without-records``) are dropped from their batches: the new version keeps every other record of the
batch, its signed manifest lists each dropped record (file, index, leaf digest, the rollback version and
why) and its Merkle root covers the records it serves; the log entry names the same records, and replaying
it revokes them, so no version may serve them afterwards (ADR 0034).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataward.batches import BatchState, load_batch
from dataward.errors import ConflictError, InputError, IntegrityError, NotFoundError
from dataward.identity import Actor
from dataward.lifecycle import PREDICATE_REVOCATION, attest, transition
from dataward.model.version import Version
from dataward.release.versions import (
    check_may,
    commit_version,
    entry_records,
    get_version,
    latest_number,
    load_version,
    parent_entries,
    parse_spec,
    plan_version,
    verify_version,
    version_subject,
)
from dataward.store import lineage_repo
from dataward.workspace import Workspace

# record selectors -------------------------------------------------------------------------------------------
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_FINDING = re.compile(r"^(?P<batch>[A-Za-z0-9_.\-]+)#(?P<n>[0-9]{1,9})$")
_BATCH_RECORD = re.compile(r"^(?P<batch>[A-Za-z0-9_.\-]+):(?P<n>[0-9]{1,12})$")
_FILE_RECORD = re.compile(r"^(?P<batch>[A-Za-z0-9_.\-]+)/(?P<file>[^\n]+):(?P<n>[0-9]{1,12})$")


@dataclass(frozen=True)
class Selector:
    """What to drop: ``digest`` (every served record with this RFC 6962 leaf hash), ``record`` (record
    ``n`` of a batch, numbered across its files as screening and audits do), ``file-record`` (record ``n``
    of one file, the ``_record`` column of ``dataward.open``) or ``finding`` (every record of finding ``n``
    of the batch's signed screening report)."""

    kind: str
    text: str
    batch: str | None = None
    file: str | None = None
    n: int = 0


def parse_selector(text: str, where: str = "record") -> Selector:
    """One selector: a 64-hex record digest, ``BATCH:N``, ``BATCH/FILE:N`` or a finding id ``BATCH#N``."""
    t = text.strip()
    if _DIGEST.match(t.lower()):
        return Selector("digest", t.lower())
    for kind, rx in (("finding", _FINDING), ("record", _BATCH_RECORD), ("file-record", _FILE_RECORD)):
        m = rx.match(t)
        if m:
            return Selector(kind, t, m.group("batch"), m.groupdict().get("file"), int(m.group("n")))
    raise InputError(
        f"{where}: {t[:80]!r} is not a record digest, BATCH:N, BATCH/FILE:N or a finding id BATCH#N",
        advice="List record digests (the _record_digest column of dataward.open), one per line.",
    )


def read_selectors(arg: str) -> list[Selector]:
    """``--without-records FILE|FINDING``: a file listing records (one per line, ``#`` comments) or a
    findings JSON (``screen --show --json``, a list of findings carrying ``batch``, or findings carrying
    ``record_digests``); anything else must be a finding id ``BATCH#N``."""
    path = Path(arg)
    if not path.is_file():
        if _FINDING.match(arg.strip()):
            return [parse_selector(arg, "--without-records")]
        raise InputError(
            f"--without-records {arg!r}: no such file, and not a finding id BATCH#N",
            advice="Give a file of record digests (one per line), a findings JSON, or a finding id (`screen --show`).",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: cannot be read ({exc})") from None
    if text.lstrip()[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {exc.lineno}: not valid JSON ({exc.msg})") from None
        out = _findings_selectors(doc, path.name)
    else:
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            body = re.sub(r"\s+#.*$", "", line).strip()
            if body and not body.startswith("#"):
                out.append(parse_selector(body, f"{path.name} line {i}"))
    if not out:
        raise InputError(f"{path.name}: names no records", advice="List one record digest (or BATCH:N) per line.")
    return out


def _findings_selectors(doc: Any, name: str) -> list[Selector]:
    top_batch = doc.get("batch") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
        findings = doc["findings"]
    elif isinstance(doc, dict) and isinstance(doc.get("results"), list):
        findings = [f for r in doc["results"] if isinstance(r, dict) for f in r.get("findings") or []]
    elif isinstance(doc, list):
        findings = doc
    else:
        raise InputError(f"{name}: a JSON file here must hold findings (a list, or an object with `findings`)")
    out: list[Selector] = []
    for k, f in enumerate(findings):
        where = f"{name} finding {k}"
        if not isinstance(f, dict):
            raise InputError(f"{where}: not an object")
        label = f"{f.get('check')}/{f.get('kind')}"
        digests = f.get("record_digests")
        if isinstance(digests, list):
            out += [parse_selector(str(d), f"{where} ({label})") for d in digests]
            continue
        batch = f.get("batch") or top_batch
        records = f.get("records")
        if not isinstance(batch, str) or not isinstance(records, list):
            raise InputError(
                f"{where} ({label}) names no batch records",
                advice="Use the findings of `dataward screen BATCH --show --json`, or list record digests.",
            )
        n = f.get("n_records", len(records))
        if isinstance(n, int) and n > len(records):
            raise InputError(
                f"{where} ({label}) lists {len(records)} of its {n} records; dropping exactly those is not possible",
                advice=f"Name the finding by its id ({f.get('id') or batch + '#N'}) instead.",
            )
        for r in records:
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise InputError(f"{where} ({label}): record {r!r} is not a record number")
            out.append(Selector("record", f"{batch}:{r}", batch, None, r))
    return out


@dataclass(frozen=True)
class _Pick:
    batch: str
    file: str
    record: int
    sha256: str
    by: str


def _resolve(ws: Workspace, latest: Version, selectors: Sequence[Selector]) -> list[_Pick]:
    """The served records of ``latest`` the selectors name (each once; refusals name the selector)."""
    entries = parent_entries(ws, latest)
    every: dict[str, list[tuple[str, int, bytes]]] = {}
    served: dict[str, set[tuple[str, int]]] = {}
    by_digest: dict[str, list[tuple[str, str, int]]] = {}

    def load(bid: str) -> None:
        if bid in every:
            return
        if bid not in entries:
            raise NotFoundError(f"batch {bid} is not in {latest.spec}")
        e = entries[bid]
        every[bid] = entry_records(ws, e, served=False)
        served[bid] = {(f, k) for f, k, _ in entry_records(ws, e)}

    picks: dict[tuple[str, str, int], _Pick] = {}

    def take(bid: str, f: str, k: int, leaf: str, by: str, sel: Selector) -> None:
        if (f, k) not in served[bid]:
            raise ConflictError(f"{sel.text}: record {k} of {bid}/{f} is already dropped from {latest.spec}")
        picks.setdefault((bid, f, k), _Pick(bid, f, k, leaf, by))

    for sel in selectors:
        if sel.kind == "digest":
            if not by_digest:
                for bid in entries:
                    load(bid)
                    for f, k, leaf in every[bid]:
                        if (f, k) in served[bid]:
                            by_digest.setdefault(leaf.hex(), []).append((bid, f, k))
            hits = by_digest.get(sel.text)
            if not hits:
                raise NotFoundError(f"record {sel.text} is not served by {latest.spec}")
            for bid, f, k in hits:
                take(bid, f, k, sel.text, "digest", sel)
            continue
        assert sel.batch is not None
        load(sel.batch)
        recs = every[sel.batch]
        if sel.kind == "file-record":
            hit = [(f, k, leaf) for f, k, leaf in recs if f == sel.file and k == sel.n]
            if not hit:
                raise NotFoundError(f"{sel.text}: batch {sel.batch} has no record {sel.n} in a file {sel.file!r}")
            f, k, leaf = hit[0]
            take(sel.batch, f, k, leaf.hex(), f"record {sel.text}", sel)
            continue
        numbers = [sel.n]
        by = f"record {sel.text}"
        if sel.kind == "finding":
            numbers, by = _finding_records(ws, sel)
        for n in numbers:
            if n >= len(recs):
                raise InputError(f"{sel.text}: batch {sel.batch} has {len(recs)} records, no record {n}")
            f, k, leaf = recs[n]
            take(sel.batch, f, k, leaf.hex(), by, sel)
    return sorted(picks.values(), key=lambda p: (p.batch, _file_index(entries[p.batch], p.file), p.record))


def _file_index(entry: dict[str, Any], name: str) -> int:
    return next(i for i, f in enumerate(entry["files"]) if f["name"] == name)


def _finding_records(ws: Workspace, sel: Selector) -> tuple[list[int], str]:
    """The records of finding ``sel.n`` of the batch's signed screening report (all of them, or a refusal)."""
    from dataward.workflow.screening import latest_report

    assert sel.batch is not None
    report = latest_report(ws, sel.batch)  # signature and flagged list verified
    if sel.n >= len(report.findings):
        raise NotFoundError(
            f"finding {sel.text}: the screening report of {sel.batch} has {len(report.findings)} finding(s)",
            advice=f"List them with `dataward screen {sel.batch} --show --json` (each has its id).",
        )
    f = report.findings[sel.n]
    if f.count > len(f.records):
        raise InputError(
            f"finding {sel.text} ({f.check}/{f.kind}) lists {len(f.records)} of its {f.count} records",
            advice="Its record list was capped; drop its records by digest (from a detector run on the data).",
        )
    if not f.records:
        raise ConflictError(f"finding {sel.text} ({f.check}/{f.kind}) names no records")
    return list(f.records), f"finding {sel.text} ({f.check}/{f.kind}: {f.summary})"


def rollback_records(
    ws: Workspace, actor: Actor, dataset: str, selectors: Sequence[Selector], *, reason: str | None = None
) -> Version:
    """A new version of ``dataset``: the latest one minus exactly the records ``selectors`` name; the clean
    records of their batches stay. The dropped records are listed in the signed manifest and the log entry,
    and revoked (no version may serve them afterwards)."""
    check_may(ws, actor, "dataset.rollback", f"dataset:{dataset}")
    if not selectors:
        raise InputError("--without-records names no records")
    with ws.engine.connect() as conn:
        n = latest_number(conn, dataset)
        if n is None:
            raise NotFoundError(f"dataset {dataset!r} has no versions")
        latest = load_version(conn, dataset, n)
    rep = verify_version(ws, latest.spec, full=False)
    if rep.integrity_problems:
        raise IntegrityError(f"{latest.spec} fails verification: {rep.integrity_problems[0]}")
    picks = _resolve(ws, latest, selectors)
    spec = f"{dataset}@{latest.number + 1}"
    drops: dict[str, list[dict[str, Any]]] = {}
    for p in picks:
        drops.setdefault(p.batch, []).append(
            {"file": p.file, "record": p.record, "sha256": p.sha256, "version": spec, "reason": reason, "by": p.by}
        )
    keep = list(latest.batches)
    plan = plan_version(ws, actor, dataset, keep, [], [], latest, drop_records=drops)
    logged = [{"batch": p.batch, "file": p.file, "record": p.record, "sha256": p.sha256} for p in picks]
    with ws.change(actor, "dataset.rollback", version_subject(dataset, plan.number)) as ch:
        summary = {"records": len(picks), "batches": sorted(drops)}
        details = {"rollback": [{"without_records": summary}], "reason": reason, "dropped": [], "revoked": []}
        commit_version(ws, ch, plan, "rollback", {**details, "dropped_records_count": len(picks)})
        ch.details.update({**details, "dropped_records": logged})
    return get_version(ws, f"{dataset}@{plan.number}")


def version_dropped_records(ws: Workspace, v: Version, *, only_new: bool = True) -> list[dict[str, Any]]:
    """The records ``v``'s signed manifest drops (``only_new``: those this version dropped), each with its
    batch, file, index, digest, the version that dropped it, the reason and what selected it."""
    out: list[dict[str, Any]] = []
    for bid, e in parent_entries(ws, v).items():
        for d in e.get("dropped_records") or []:
            if not only_new or d.get("version") == v.spec:
                out.append({"batch": bid, **d})
    return out


def resolve_without(ws: Workspace, target: str) -> tuple[str, str]:
    """('batch', id) or ('source', name) for ``--without``."""
    with ws.engine.connect() as conn:
        kind = lineage_repo.batch_or_source(conn, target)
    if kind is not None:
        return kind, target
    raise NotFoundError(f"{target!r} is neither a batch nor a source")


def rollback(
    ws: Workspace,
    actor: Actor,
    dataset: str,
    *,
    to: str | int | None = None,
    without: Sequence[str] = (),
    without_records: Sequence[Selector] | None = None,
    reason: str | None = None,
) -> tuple[Version, list[str]]:
    """A new version of ``dataset`` holding the batches of version ``to``, or the latest version minus
    ``without`` (batch ids or source names), or minus single records (``without_records``: selectors from
    :func:`parse_selector` / :func:`read_selectors`). Returns the new version and the batches it revoked (a
    dropped batch that was revoked already, through another dataset, is not revoked twice; a record-level
    rollback revokes records, not batches)."""
    check_may(ws, actor, "dataset.rollback", f"dataset:{dataset}")
    if sum(x is not None and x != [] and x != () for x in (to, without or None, without_records)) != 1:
        raise InputError("give exactly one of --to VERSION, --without BATCH|SOURCE or --without-records FILE|FINDING")
    if without_records is not None:
        return rollback_records(ws, actor, dataset, without_records, reason=reason), []
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
