"""The catalog as a projection of the signed log (pure): what each decision column must hold, and where not.

:func:`expected` derives, from a replayed :class:`~dataward.evidence.replay.TrustedState`, the rows every
projected table must contain (keyed by the table's natural key) and the value of every decision column;
:func:`compare` names each divergence as (table, row, column). Columns that no gate reads are listed in
:data:`NON_DECISION` with the reason; :data:`LOG_TABLES` are checked by ``log verify`` itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dataward.core.canonical import canonical_json
from dataward.evidence.replay import TrustedState, names_key

#: tables whose integrity is the log's own (leaves, signatures, the signed checkpoint), not a projection
LOG_TABLES = frozenset({"log_entries", "log_nodes", "checkpoints"})

#: columns no gate or decision reads; each says why. Everything else in a projected table is compared.
NON_DECISION: Mapping[str, Mapping[str, str]] = {
    "schema_version": {
        "*": "migration bookkeeping: a wrong row makes `upgrade` re-run or refuse, it grants nothing",
    },
    "principals": {"created_at": "display; a principal's existence and roles come from the log"},
    "role_grants": {
        "id": "surrogate key",
        "granted_at": "display; grants take effect at their log entry's time",
        "granted_by": "display; the log entry's signer is the granter",
    },
    "keys": {},
    "sources": {"created_at": "display; the source.add entry's time"},
    "batches": {
        "byte_count": "display; the signed manifest's file sizes are what verification re-hashes",
        "created_at": "display; the batch.acquire entry's time",
        "updated_at": "display; transitions are dated by their log entries",
    },
    "batch_files": {},
    "attestations": {
        "id": "surrogate key",
        "created_at": "display; signatures are judged at their log entry's time",
    },
    "screening_reports": {
        "id": "surrogate key",
        "created_at": "display; the batch.screen entry's time",
    },
    "audits": {
        "id": "surrogate key",
        "report_id": "a link to the screening report row; the log links audit and report by batch",
        "created_at": "display",
        "completed_at": "display; the signed audit attestation and its log entry carry the time",
    },
    "audit_items": {
        "draw": "display order only",
        "file_position": "a locator, re-derived from the signed manifest when records are read",
        "file_record": "a locator, re-derived from the signed manifest when records are read",
    },
    "audit_decisions": {
        "id": "surrogate key",
        "note": "free text shown to people, decides nothing",
        "decided_at": "display; the audit.decide entry's time",
    },
    "approvals": {"id": "surrogate key", "created_at": "display; the batch.approve entry's time"},
    "datasets": {"created_at": "display"},
    "dataset_versions": {"created_at": "display; the release entry's time"},
    "version_batches": {},
    "runs": {"started_at": "display", "finished_at": "display"},
    "run_inputs": {"ref": "a name shown to people; the input is identified by its sha256"},
    "run_outputs": {"name": "a file name shown to people", "size": "display; the sha256 identifies the model"},
    "tokens": {"created_at": "display; the token.create entry's time"},
    "redteam_results": {
        "model": "the model's specification as typed, display",
        "accuracy": "display; `passed` is the verdict",
        "failures": "a count shown to people; `passed` is the verdict",
        "created_at": "display",
    },
    "incidents": {
        "summary": "free text shown to people",
        "top_batch": "display; the signed report names the implicated batches",
        "top_source": "display",
        "opened_at": "display",
        "resolved_at": "display",
    },
    "intel_feeds": {"added_at": "display"},
    "admin_changes": {},
    "admin_signatures": {"signed_at": "display; a signature counts by its log entry's time"},
    "meta": {},
}

#: time columns compared with the log entry's time within this tolerance: the row is written in the same
#: transaction just before the entry is appended (milliseconds apart); a tampered time that matters (to
#: move a revocation or expiry) moves it by far more
TIME_TOLERANCE_SECONDS = 60.0
TIME_COLUMNS = frozenset({"retired_at", "revoked_at@tokens", "created_at@keys"})


@dataclass(frozen=True)
class Divergence:
    """A catalog row or cell that the signed log does not support."""

    table: str
    row: str
    column: str | None
    detail: str

    def line(self) -> str:
        """The divergence as one line of text."""
        col = f", column {self.column}" if self.column else ""
        return f"table {self.table}, row {self.row}{col}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        """The divergence as JSON."""
        return {"table": self.table, "row": self.row, "column": self.column, "detail": self.detail}


#: table -> its natural key columns (the row identity the log knows)
KEYS: Mapping[str, tuple[str, ...]] = {
    "principals": ("name",),
    "role_grants": ("principal", "role", "source"),
    "keys": ("keyid",),
    "sources": ("name",),
    "batches": ("id",),
    "batch_files": ("batch_id", "position"),
    "attestations": ("envelope_digest",),
    "screening_reports": ("envelope_digest",),
    "audits": ("batch_id",),
    "audit_items": ("batch_id", "record"),
    "audit_decisions": ("batch_id", "record", "reviewer", "n"),  # n: the reviewer's earlier decisions on it
    "approvals": ("batch_id", "principal"),
    "datasets": ("name",),
    "dataset_versions": ("dataset", "number"),
    "version_batches": ("dataset", "number", "batch_id"),
    "runs": ("id",),
    "run_inputs": ("run_id", "position"),
    "run_outputs": ("run_id", "position"),
    "tokens": ("id",),
    "redteam_results": ("id",),
    "incidents": ("id",),
    "intel_feeds": ("feed_id", "version"),
    "admin_changes": ("id",),
    "admin_signatures": ("change_id", "principal"),
    "meta": ("key",),
}

Rows = dict[tuple[Any, ...], dict[str, Any]]


def _first_attestation(d: Mapping[str, Any]) -> str | None:
    for a in d.get("attestations") or []:
        if isinstance(a, dict) and isinstance(a.get("sha256"), str):
            return str(a["sha256"])
    return None


def _name(subject: str, prefix: str) -> str:
    return subject[len(prefix) :] if subject.startswith(prefix) else subject


def expected(
    st: TrustedState, *, origin: str, manifests: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Rows]:
    """table -> natural key -> decision columns, as the signed log says they must be.

    ``manifests``: batch manifest digest -> the signed manifest's predicate (for ``batch_files``); batches
    whose manifest is absent are reported by the caller, their files are not projected.
    """
    out: dict[str, Rows] = {t: {} for t in KEYS}
    out["meta"][("workspace_id",)] = {"value": st.workspace_id}
    out["meta"][("log_origin",)] = {"value": origin}
    for name, by in st.principals.items():
        out["principals"][(name,)] = {"created_by": by, "disabled": False}
    for p, role, src in st.grants:
        out["role_grants"][(p, role, src)] = {}
    for k in st.keys.values():
        out["keys"][(k.keyid,)] = {
            "principal": k.principal,
            "status": k.status,
            "expires_at": k.expires_at,
            "retired_at": k.retired_at,
            "revoked_at": k.revoked_at,
            "revocation_reason": k.revocation_reason,
            "created_at": k.created_at,
            "public_key": ("sha256", k.keyid),
        }
    for name, s in st.sources.items():
        out["sources"][(name,)] = {
            c: s.get(c)
            for c in ("kind", "origin", "license", "license_status", "supplier", "supplier_key", "update_frequency")
        } | {"created_by": s.get("created_by")}
    manifests = manifests or {}
    for b in st.batches.values():
        out["batches"][(b.id,)] = {
            "source": b.source,
            "state": b.state,
            "manifest_digest": b.manifest,
            "merkle_root": b.merkle_root,
            "record_count": b.records,
            "file_count": b.files,
            "created_by": b.acquirer,
        }
        m = manifests.get(b.manifest)
        if m is not None:
            for i, f in enumerate(m.get("files") or []):
                if isinstance(f, dict):
                    out["batch_files"][(b.id, i)] = {
                        "name": f.get("name"),
                        "sha256": f.get("sha256"),
                        "size": f.get("size"),
                        "format": f.get("format"),
                        "record_count": f.get("records"),
                        "records_digest": f.get("records_digest"),
                        "merkle_root": f.get("merkle_root"),
                    }
        for a in b.approvals:
            out["approvals"][(b.id, a.approver)] = {
                "keyid": a.keyid,
                "envelope_digest": a.envelope,
                "policy_digest": a.policy,
            }
    for digest, att in st.attestations.items():
        out["attestations"][(digest,)] = {
            "batch_id": att["batch_id"],
            "subject": att["subject"],
            "predicate_type": att["predicate_type"],
            "principal": att["principal"],
            "keyid": att["keyid"],
        }
    for ds, by in st.datasets.items():
        out["datasets"][(ds,)] = {"created_by": by}
    for (ds, n), v in st.versions.items():
        out["dataset_versions"][(ds, n)] = {
            "parent": v.parent,
            "kind": v.kind,
            "manifest_digest": v.manifest,
            "merkle_root": v.merkle_root,
            "record_count": v.records,
            "batch_count": len(v.batches),
            "created_by": v.created_by,
        }
        for i, bid in enumerate(v.batches):
            out["version_batches"][(ds, n, bid)] = {"position": i}
    for tid, tk in st.tokens.items():
        out["tokens"][(tid,)] = {
            "principal": tk.get("principal"),
            "expires_at": tk.get("expires_at"),
            "created_by": tk.get("created_by"),
            "revoked_at": tk.get("revoked_at"),
            "revoked_by": tk.get("revoked_by"),
        } | ({"token_hash": tk["token_hash"]} if isinstance(tk.get("token_hash"), str) else {})
    for cid, ch in st.changes.items():
        out["admin_changes"][(cid,)] = {
            "action": ch.action,
            "subject": ch.subject,
            "statement": canonical_json(ch.statement).decode("utf-8"),
            "status": ch.status,
            "proposed_by": ch.proposed_by,
            "proposed_at": ch.statement.get("proposed_at"),
        }
        for who, sig in ch.signatures.items():
            out["admin_signatures"][(cid, who)] = {"keyid": sig.keyid}
    _expected_from_entries(st, out)
    return out


def _expected_from_entries(st: TrustedState, out: dict[str, Rows]) -> None:
    """The tables whose rows one entry each describes (screening, audits, runs, red team, incidents, intel)."""
    decided: dict[tuple[Any, ...], int] = {}
    for e in st.entries:
        action, subject, d, who = e["action"], e["subject"], e["details"], e["principal"]
        bid = d.get("batch") if isinstance(d.get("batch"), str) else None
        if action == "batch.screen" and bid and _first_attestation(d) and "flagged" in d:
            out["screening_reports"][(_first_attestation(d),)] = {
                "batch_id": bid,
                "flagged_count": d.get("flagged"),
                "created_by": who,
            } | ({"flagged_digest": d["flagged_sha256"]} if "flagged_sha256" in d else {})
        elif action == "audit.sample" and bid:
            row = out["audits"].get((bid,))
            if row is None:
                row = out["audits"][(bid,)] = {
                    "seed": d.get("seed"),
                    "confidence": d.get("confidence"),
                    "status": "open",
                    "created_by": who,
                    "completed_by": None,
                    "envelope_digest": None,
                }
                if "population" in d:
                    row["population"] = d["population"]
                    row["flagged_population"] = d["flagged_population"]
            row["margin"] = d.get("margin")
            for r in d.get("moved") or []:
                item = out["audit_items"].get((bid, r))
                if item is not None:
                    item["stratum"] = "random"
            for rec in d.get("items") or []:
                if isinstance(rec, list) and len(rec) == 3:
                    out["audit_items"][(bid, rec[0])] = {"stratum": rec[1], "record_digest": rec[2]}
        elif action == "audit.decide" and bid:
            for rec in d.get("by_record") or []:
                if isinstance(rec, list) and len(rec) == 3:
                    n = decided.get((bid, rec[0], who), 0)
                    decided[(bid, rec[0], who)] = n + 1
                    out["audit_decisions"][(bid, rec[0], who, n)] = {"decision": rec[1], "new_label": rec[2]}
        elif action == "audit.complete" and bid and (bid,) in out["audits"]:
            out["audits"][(bid,)].update(
                {"status": "complete", "completed_by": who, "envelope_digest": _first_attestation(d)}
            )
        elif action == "run.record":
            rid = _name(subject, "run:")
            spec = str(d.get("version", ""))
            ds, _, number = spec.rpartition("@")
            out["runs"][(rid,)] = {
                "dataset": ds,
                "number": int(number) if number.isdigit() else None,
                "version_manifest": d.get("version_manifest"),
                "status": d.get("status"),
                "principal": who,
                "provenance_digest": d.get("provenance_sha256"),
            }
            out["run_inputs"][(rid, 0)] = {"kind": "version", "sha256": d.get("version_manifest")}
            if d.get("base_model"):
                out["run_inputs"][(rid, 1)] = {"kind": "base-model", "sha256": d.get("base_model")}
            for i, sha in enumerate(d.get("models") or []):
                out["run_outputs"][(rid, i)] = {"sha256": sha}
        elif action == "redteam.run" and isinstance(d.get("result"), str):
            out["redteam_results"][(d["result"],)] = {
                "model_sha256": d.get("model_sha256") or "",
                "data": d.get("data"),
                "passed": d.get("passed"),
                "principal": who,
                "report_digest": _first_attestation(d),
            }
        elif action == "incident.open":
            out["incidents"][(_name(subject, "incident:"),)] = {
                "status": "open",
                "model_sha256": d.get("model"),
                "opened_by": who,
                "resolved_by": None,
                "report_digest": _first_attestation(d),
            }
        elif action == "incident.resolve" and (_name(subject, "incident:"),) in out["incidents"]:
            out["incidents"][(_name(subject, "incident:"),)].update({"status": "resolved", "resolved_by": who})
        elif action == "intel.add" and isinstance(d.get("feed"), str):
            out["intel_feeds"][(d["feed"], d.get("version"))] = {
                "issuer": d.get("issuer"),
                "feed_digest": d.get("sha256"),
                "public_key": ("sha256", d.get("keyid")),
                "indicators": d.get("indicators"),
                "added_by": who,
            }


def _time(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _same(table: str, col: str, want: Any, have: Any) -> bool:
    if isinstance(want, tuple) and len(want) == 2 and want[0] == "sha256":
        # a public key column: the log pins it by its ID, the SHA-256 of the raw key
        try:
            raw = bytes.fromhex(str(have))
        except ValueError:
            return False
        return isinstance(want[1], str) and names_key(raw, want[1])
    if col in TIME_COLUMNS or f"{col}@{table}" in TIME_COLUMNS:
        if want is None or have is None:
            return want is None and have is None
        tw, th = _time(want), _time(have)
        return tw is not None and th is not None and abs((tw - th).total_seconds()) <= TIME_TOLERANCE_SECONDS
    if isinstance(want, bool) or isinstance(have, bool):
        return bool(want) == bool(have) and type(have) in (bool, int) and have in (0, 1)
    if isinstance(want, float) or isinstance(have, float):
        try:
            return want is not None and have is not None and abs(float(want) - float(have)) <= 1e-9
        except (TypeError, ValueError):
            return False
    if isinstance(want, str) and isinstance(have, str) and len(want) == len(have) == 64:
        return hmac.compare_digest(want.encode(), have.encode())
    return bool(want == have and type(want) is type(have)) or (want is None and have is None)


def _key_text(key: tuple[Any, ...]) -> str:
    return "/".join("*" if k is None else str(k) for k in key)


def compare(table: str, want: Rows, rows: Iterable[Mapping[str, Any]], *, strict_rows: bool = True) -> list[Divergence]:
    """Every divergence between the rows the log implies (``want``) and the catalog's ``rows``.

    ``strict_rows``: a catalog row the log does not know is a divergence (forged insert); the ``meta``
    table is not strict, since other features keep their own settings there.
    """
    out: list[Divergence] = []
    keycols = KEYS[table]
    seen: set[tuple[Any, ...]] = set()
    for r in rows:
        key = tuple(r.get(c) for c in keycols)
        if key in seen:
            out.append(Divergence(table, _key_text(key), None, "duplicate row (inserted)"))
            continue
        seen.add(key)
        exp = want.get(key)
        if exp is None:
            if strict_rows:
                out.append(
                    Divergence(table, _key_text(key), None, "no signed log entry accounts for this row (inserted)")
                )
            continue
        for col, val in exp.items():
            if not _same(table, col, val, r.get(col)):
                shown = val[1] if isinstance(val, tuple) else val
                out.append(
                    Divergence(table, _key_text(key), col, f"catalog has {r.get(col)!r}, the signed log says {shown!r}")
                )
    for key in want:
        if key not in seen:
            out.append(Divergence(table, _key_text(key), None, "row is missing (deleted); the signed log records it"))
    return out
