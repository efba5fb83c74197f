"""Sources: where data comes from, who supplies it, under which licence."""

from __future__ import annotations

from dataclasses import dataclass

from license_expression import ExpressionError, get_spdx_licensing

from dataward.errors import ConflictError, InputError, NotFoundError
from dataward.identity import Actor
from dataward.model.keys import PublicKey
from dataward.model.source import Source, SourceKind
from dataward.model.subject import Subject
from dataward.store import sources_repo
from dataward.timeutil import now_iso
from dataward.workspace import Workspace, admin_change, check_name

# Source and SourceKind are model values; they stay importable from here until workflow/risk.py (the last
# importer, owned elsewhere) imports them from dataward.model.source.
__all__ = [
    "UPDATE_FREQUENCIES",
    "LicenseCheck",
    "Source",
    "SourceKind",
    "add_source",
    "check_license",
    "get_source",
    "list_sources",
]
UPDATE_FREQUENCIES = ("once", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular")


@dataclass(frozen=True)
class LicenseCheck:
    """A licence expression as checked: normalized when it is SPDX, its status, the ids SPDX does not know."""

    expression: str | None
    status: str  # spdx | non-spdx | missing
    unknown_ids: tuple[str, ...] = ()


_licensing = None


def check_license(expression: str | None) -> LicenseCheck:
    """Validate an SPDX expression. Unknown ids (e.g. OpenRAIL-M) are kept but marked non-SPDX."""
    global _licensing
    if expression is None or not expression.strip():
        return LicenseCheck(None, "missing")
    if _licensing is None:
        _licensing = get_spdx_licensing()
    try:
        info = _licensing.validate(expression, strict=False)
    except ExpressionError as exc:
        raise InputError(f"licence expression {expression!r} is not valid: {exc}") from None
    unknown = tuple(sorted(str(s) for s in info.invalid_symbols if str(s).strip()))
    if info.errors and (not unknown or any("Invalid expression" in e for e in info.errors)):
        raise InputError(f"licence expression {expression!r} is not valid: {'; '.join(info.errors)}")
    normalized = info.normalized_expression or expression
    return LicenseCheck(normalized if not unknown else expression, "non-spdx" if unknown else "spdx", unknown)


def add_source(
    ws: Workspace,
    actor: Actor,
    name: str,
    *,
    kind: str,
    origin: str,
    license: str | None = None,
    supplier: str | None = None,
    supplier_key: str | None = None,
    update_frequency: str | None = None,
) -> Source:
    """Register source ``name`` (an admin change: proposed instead under an admin threshold above 1).

    ``license`` is an SPDX expression (unknown ids are kept, marked non-SPDX); ``supplier_key`` is the
    supplier's public key in any form :meth:`PublicKey.parse` reads, for supplier-signed deliveries.
    """
    check_name(name, "source")
    try:
        skind = SourceKind(kind)
    except ValueError:
        raise InputError(f"source kind {kind!r} is not one of {', '.join(k.value for k in SourceKind)}") from None
    if update_frequency is not None and update_frequency not in UPDATE_FREQUENCIES:
        raise InputError(f"update frequency {update_frequency!r} is not one of {', '.join(UPDATE_FREQUENCIES)}")
    lic = check_license(license)
    key_hex = PublicKey.parse(supplier_key, what=f"supplier key of source {name}").hex() if supplier_key else None
    call = {
        "op": "source.add",
        "args": {
            "name": name,
            "kind": skind.value,
            "origin": origin,
            "license": license,
            "supplier": supplier,
            "supplier_key": key_hex,
            "update_frequency": update_frequency,
        },
    }
    # an admin change: under an admin threshold above 1 it is proposed (dataward.admin)
    with admin_change(ws, actor, "source.add", Subject.source(name), call=call) as ch:
        if sources_repo.source_named(ch.conn, name) is not None:
            raise ConflictError(f"source {name!r} already exists")
        src = Source(
            name, skind, origin, lic.expression, lic.status, supplier, key_hex, update_frequency, now_iso(), actor.name
        )
        sources_repo.insert_source(ch.conn, src)
        ch.details.update(
            {
                "name": name,
                "kind": skind.value,
                "origin": origin,
                "license": lic.expression,
                "license_status": lic.status,
                "supplier": supplier,
                "supplier_key": key_hex,
                "update_frequency": update_frequency,
            }
        )
        if lic.unknown_ids:
            ch.details["license_unknown_ids"] = list(lic.unknown_ids)
    return get_source(ws, name)


def get_source(ws: Workspace, name: str) -> Source:
    """The source ``name`` (unknown: :class:`~dataward.errors.NotFoundError`)."""
    with ws.engine.connect() as conn:
        src = sources_repo.source_named(conn, name)
    if src is None:
        raise NotFoundError(f"no source named {name!r}", advice="List sources with `dataward source list`.")
    return src


def list_sources(ws: Workspace) -> list[Source]:
    """Every registered source, by name."""
    with ws.engine.connect() as conn:
        return sources_repo.all_sources(conn)
