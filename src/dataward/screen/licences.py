"""Licences: declared per source (Hugging Face dataset card, Croissant metadata) and per record (a column).

Declarations are validated as SPDX expressions (``license-expression``), with the Hugging Face card ids
and common licence URLs (Creative Commons, SPDX, OSI, Apache) mapped to SPDX first. An expression passes
the allow-list when it can be satisfied with allowed licences only (``A OR B``: either; ``A AND B``:
both; ``A WITH exc``: A). Findings: missing (severity by ``ScreenPolicy.licence_missing``), unknown or
invalid, not on the allow-list, and conflicting declarations between sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from license_expression import AND, OR, ExpressionError, LicenseSymbol, LicenseWithExceptionSymbol, get_spdx_licensing

from dataward.screen._util import RecordSink, bool_mask, is_string, short
from dataward.screen.interface import Check, CheckResult, Finding, Severity
from dataward.screen.registry import register

_HF_ALIASES = {
    "odc-by": "ODC-By-1.0",
    "pddl": "PDDL-1.0",
    "odbl": "ODbL-1.0",
    "cc": "unknown",
    "gpl": "GPL-3.0-or-later",
    "lgpl": "LGPL-3.0-or-later",
    "bsd": "BSD-3-Clause",
    "apache": "Apache-2.0",
    "cdla-permissive-1.0": "CDLA-Permissive-1.0",
    "cdla-permissive-2.0": "CDLA-Permissive-2.0",
    "cdla-sharing-1.0": "CDLA-Sharing-1.0",
    "c-uda": "C-UDA-1.0",
    "public-domain": "PDDL-1.0",
}
_UNKNOWN = {"other", "unknown", "unlicensed", "proprietary", "none", "n/a", ""}
LICENCE_COLUMNS = ("license", "licence", "license_spdx", "licence_spdx", "spdx")


@lru_cache(maxsize=1)
def _licensing() -> Any:
    return get_spdx_licensing()


def from_url(url: str) -> str | None:
    """SPDX identifier of a Creative Commons, SPDX, OSI or Apache
    licence URL, or ``None`` if the URL is not recognised.
    """
    u = url.strip().lower().rstrip("/")
    m = re.search(r"creativecommons\.org/licenses/([a-z\-]+)/(\d\.\d)", u)
    if m:
        return f"CC-{m.group(1).upper()}-{m.group(2)}"
    if re.search(r"creativecommons\.org/publicdomain/zero/1\.0", u):
        return "CC0-1.0"
    m = re.search(r"spdx\.org/licenses/([A-Za-z0-9.\-+]+?)(?:\.html|\.json)?$", url.strip().rstrip("/"))
    if m:
        return m.group(1)
    m = re.search(r"opensource\.org/licenses?/([A-Za-z0-9.\-+]+)", url.strip())
    if m:
        return m.group(1)
    if "apache.org/licenses/license-2.0" in u:
        return "Apache-2.0"
    return None


def normalise(raw: str) -> tuple[str | None, str | None]:
    """(SPDX expression, problem): the expression when it is valid, else why not."""
    text = raw.strip()
    if text.lower() in _UNKNOWN:
        return None, f"licence {text!r} is not a licence identifier"
    if re.match(r"https?://", text):
        mapped = from_url(text)
        if mapped is None:
            return None, f"licence URL {short(text, 80)!r} is not one dataward can map to SPDX"
        text = mapped
    text = _HF_ALIASES.get(text.lower(), text)
    if text == "unknown":
        return None, f"licence {raw!r} is not specific"
    try:
        expr = _licensing().parse(text, validate=True, strict=False)
    except ExpressionError as exc:
        return None, f"licence {short(raw, 60)!r} is not a valid SPDX expression ({str(exc)[:80]})"
    if expr is None:
        return None, "empty licence"
    return str(expr), None


@lru_cache(maxsize=64)
def allow_list(allow: tuple[str, ...]) -> frozenset[str]:
    """The allow-list as the one set both screening and the approval policy match against (lower-case ids)."""
    return frozenset(a.lower() for a in allow)


@lru_cache(maxsize=4096)
def _parsed(expression: str, strict: bool) -> Any:
    return _licensing().parse(expression, strict=strict)


def _satisfiable(node: Any, allow: frozenset[str]) -> bool:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _satisfiable(node.license_symbol, allow)
    if isinstance(node, LicenseSymbol):
        return str(node.key).lower() in allow
    if isinstance(node, OR):
        return any(_satisfiable(a, allow) for a in node.args)
    if isinstance(node, AND):
        return all(_satisfiable(a, allow) for a in node.args)
    return False


def allowed(expression: str, allow: tuple[str, ...]) -> bool:
    """Whether ``expression`` can be satisfied with allowed licences only (``A OR B``: either; ``A AND B``:
    both; ``X WITH exception``: judged by X). The licensing, the parse and the allow-list are cached."""
    return _satisfiable(_parsed(expression, False), allow_list(tuple(allow)))


def judge(expression: str, allow: tuple[str, ...]) -> tuple[bool, str]:
    """The approval policy's form of :func:`allowed`: (passed, why); an expression that does not parse fails."""
    try:
        parsed = _parsed(expression, True)
    except ExpressionError as exc:
        return False, f"licence {expression!r} does not parse: {exc}"
    passed = _satisfiable(parsed, allow_list(tuple(allow)))
    return passed, f"licence {expression} is {'on' if passed else 'not on'} the allow-list"


def _front_matter(text: str) -> Mapping[str, Any] | None:
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return None
    return data if isinstance(data, Mapping) else None


def declarations(files: list[str]) -> list[dict[str, str]]:
    """Licence declarations found next to the data: dataset cards, Croissant and dataset-info JSON."""
    dirs: list[Path] = []
    for f in files:
        p = Path(f)
        base = p if p.is_dir() else p.parent
        for d in (base, *list(base.parents)[:2]):
            if d not in dirs:
                dirs.append(d)
    out: list[dict[str, str]] = []
    for d in dirs:
        card = d / "README.md"
        if card.is_file():
            try:
                fm = _front_matter(card.read_text(encoding="utf-8", errors="replace")[:200_000])
            except OSError:
                fm = None
            if fm is not None:
                lic = fm.get("license", fm.get("licence"))
                values = lic if isinstance(lic, list) else [lic] if lic is not None else []
                for v in values:
                    out.append({"source": str(card), "kind": "dataset-card", "value": str(v)})
                if not values:
                    out.append({"source": str(card), "kind": "dataset-card", "value": ""})
        for meta in sorted(d.glob("*.json")):
            name = meta.name.lower()
            if "croissant" not in name and name not in ("metadata.json", "dataset_info.json", "dataset_infos.json"):
                continue
            try:
                data = json.loads(meta.read_text(encoding="utf-8", errors="replace")[:5_000_000])
            except (OSError, ValueError, RecursionError):
                continue
            if not isinstance(data, Mapping):
                continue
            lic = data.get("license", data.get("licence"))
            if lic is None and name == "dataset_infos.json":
                lic = next((v.get("license") for v in data.values() if isinstance(v, Mapping)), None)
            kind = "croissant" if "@context" in data or "croissant" in name else "dataset-info"
            values = lic if isinstance(lic, list) else [lic] if lic is not None else []
            for v in values:
                if isinstance(v, Mapping):  # {"@id": url} or {"name": ...}
                    v = v.get("@id") or v.get("url") or v.get("name") or ""
                out.append({"source": str(meta), "kind": kind, "value": str(v)})
    return out


@register
class LicencesCheck(Check):
    """Checks the licence of each source (dataset card, Croissant) and of
    each record: SPDX validity, the allow-list and missing licences.
    """

    name = "licences"
    thread_safe = True  # its state is its own (ADR 0104)
    needs_batch_profile = False
    description = "licence per source (dataset card, Croissant) and per record: SPDX validity, allow-list, missing"

    def applies(self, ctx: Any) -> str | None:
        """Skip reason when there is neither a file, a licence column nor a declared source licence; else ``None``."""
        has_column = ctx.options.licence_column is not None or any(
            c.lower() in LICENCE_COLUMNS for c in ctx.schema.names
        )
        if not ctx.files and not has_column and not ctx.options.source_licence:
            return "an in-memory table has no licence metadata and no licence column"
        return None

    def begin(self, ctx: Any) -> None:
        """Pick the licence column (the named one, or the first with
        a known licence column name) and start its counters.
        """
        super().begin(ctx)
        col = ctx.options.licence_column
        if col is None:
            col = next((c for c in ctx.schema.names if c.lower() in LICENCE_COLUMNS), None)
        self._column = col
        self._counts: dict[str, int] = {}
        self._sinks: dict[str, RecordSink] = {}
        self._nulls = RecordSink()

    def update(self, batch: pa.RecordBatch, offset: int) -> None:
        """Count this batch's licence values and record the rows that have none."""
        if self._column is None or self._column not in batch.schema.names:
            return
        arr = batch.column(self._column)
        if not is_string(arr.type):
            arr = pc.cast(arr, pa.string())
        self._nulls.add_mask(bool_mask(pc.is_null(arr)), offset)
        vc = pc.value_counts(pc.drop_null(arr))
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            if v not in self._counts and len(self._counts) >= 1000:
                continue
            self._counts[v] = self._counts.get(v, 0) + int(c)
            sink = self._sinks.setdefault(v, RecordSink())
            if len(sink.records) < sink.cap:
                sink.add_mask(bool_mask(pc.equal(arr, v)), offset)
            else:
                sink.count += int(c)

    def finish(self) -> CheckResult:
        """Findings for unknown, not-allowed and conflicting licences among the source
        declarations and the per-record values, and for records without one.
        """
        ctx = self.context
        pol = ctx.policy
        findings: list[Finding] = []
        decls = declarations(list(ctx.files))
        if ctx.options.source_licence:
            decls.insert(0, {"source": "workspace source", "kind": "source", "value": ctx.options.source_licence})
        resolved: dict[str, list[str]] = {}
        for d in decls:
            expr, problem = normalise(d["value"])
            where = f"{d['kind']} {d['source']}"
            if problem:
                findings.append(
                    Finding(
                        self.name,
                        "unknown_licence",
                        Severity.HIGH,
                        f"{where}: {problem}",
                        evidence={"source": d["source"], "value": d["value"], "kind": d["kind"]},
                    )
                )
                continue
            assert expr is not None
            resolved.setdefault(expr, []).append(where)
            if not allowed(expr, pol.allowed_licences):
                findings.append(
                    Finding(
                        self.name,
                        "licence_not_allowed",
                        Severity.HIGH,
                        f"{where}: licence {expr} is not on the allow-list",
                        evidence={"source": d["source"], "licence": expr},
                    )
                )
        if len(resolved) > 1:
            findings.append(
                Finding(
                    self.name,
                    "licence_conflict",
                    Severity.MEDIUM,
                    f"sources declare different licences: {', '.join(sorted(resolved))}",
                    evidence={"declarations": resolved},
                )
            )
        per_record: dict[str, Any] = {}
        if self._column is not None:
            n = max(ctx.n_records, 1)
            for value, count in sorted(self._counts.items(), key=lambda kv: -kv[1]):
                expr, problem = normalise(value)
                sink = self._sinks[value]
                per_record[value] = {"records": count, "spdx": expr}
                if problem:
                    findings.append(
                        Finding(
                            self.name,
                            "unknown_licence",
                            Severity.HIGH,
                            f"{count} record(s): {problem}",
                            sink.tuple,
                            {"column": self._column, "value": short(value, 80), "n_records": count},
                        )
                    )
                elif expr is not None and not allowed(expr, pol.allowed_licences):
                    findings.append(
                        Finding(
                            self.name,
                            "licence_not_allowed",
                            Severity.HIGH,
                            f"{count} record(s) under {expr}, not on the allow-list",
                            sink.tuple,
                            {"column": self._column, "licence": expr, "n_records": count},
                        )
                    )
            if self._nulls.count:
                findings.append(
                    Finding(
                        self.name,
                        "missing_licence",
                        pol.licence_missing_severity,
                        f"{self._nulls.count} record(s) ({100 * self._nulls.count / n:.2f}%) carry "
                        f"no licence in {self._column!r}",
                        self._nulls.tuple,
                        {"column": self._column, "n_records": self._nulls.count},
                    )
                )
        if not decls and (self._column is None or not self._counts):
            findings.append(
                Finding(
                    self.name,
                    "missing_licence",
                    pol.licence_missing_severity,
                    "no licence found: no dataset card, Croissant metadata or licence column",
                    evidence={
                        "looked_for": [
                            "README.md front matter",
                            "*croissant*.json",
                            "metadata.json",
                            "dataset_info.json",
                            "column " + "/".join(LICENCE_COLUMNS),
                        ]
                    },
                )
            )
        return CheckResult(
            self.name,
            tuple(findings),
            {"declarations": decls, "per_record": per_record, "allow_list": list(pol.allowed_licences)},
        )
