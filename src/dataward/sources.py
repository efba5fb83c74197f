"""Sources: where data comes from, who supplies it, under which licence."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing
from sqlalchemy import Connection, insert, select

from dataward.core.dsse import key_id, public_key_from_hex
from dataward.errors import ConflictError, InputError, NotFoundError
from dataward.identity import Actor
from dataward.model.keys import PublicKey
from dataward.store import schema
from dataward.timeutil import now_iso
from dataward.workspace import Workspace, admin_change, check_name


class SourceKind(enum.StrEnum):
    INTERNAL = "internal"
    THIRD_PARTY = "third-party"
    WEB_SCRAPED = "web-scraped"
    SYNTHETIC = "synthetic"
    CHECKPOINT = "checkpoint"


UPDATE_FREQUENCIES = ("once", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular")


@dataclass(frozen=True)
class LicenseCheck:
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


@dataclass(frozen=True)
class Source:
    name: str
    kind: SourceKind
    origin: str
    license: str | None
    license_status: str
    supplier: str | None
    supplier_key: str | None
    update_frequency: str | None
    created_at: str
    created_by: str

    @property
    def supplier_keyid(self) -> str | None:
        return key_id(public_key_from_hex(self.supplier_key)) if self.supplier_key else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": str(self.kind),
            "origin": self.origin,
            "license": self.license,
            "license_status": self.license_status,
            "supplier": self.supplier,
            "supplier_keyid": self.supplier_keyid,
            "update_frequency": self.update_frequency,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def _row_to_source(r: Any) -> Source:
    return Source(
        r.name,
        SourceKind(r.kind),
        r.origin,
        r.license,
        r.license_status,
        r.supplier,
        r.supplier_key,
        r.update_frequency,
        r.created_at,
        r.created_by,
    )


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
    with admin_change(ws, actor, "source.add", f"source:{name}", call=call) as ch:
        if get_source_row(ch.conn, name) is not None:
            raise ConflictError(f"source {name!r} already exists")
        values = {
            "name": name,
            "kind": skind.value,
            "origin": origin,
            "license": lic.expression,
            "license_status": lic.status,
            "supplier": supplier,
            "supplier_key": key_hex,
            "update_frequency": update_frequency,
            "created_at": now_iso(),
            "created_by": actor.name,
        }
        ch.conn.execute(insert(schema.sources).values(**values))
        ch.details.update({k: v for k, v in values.items() if k not in ("created_at", "created_by")})
        if lic.unknown_ids:
            ch.details["license_unknown_ids"] = list(lic.unknown_ids)
    return get_source(ws, name)


def get_source_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(schema.sources).where(schema.sources.c.name == name)).first()


def get_source(ws: Workspace, name: str) -> Source:
    with ws.engine.connect() as conn:
        r = get_source_row(conn, name)
    if r is None:
        raise NotFoundError(f"no source named {name!r}", advice="List sources with `dataward source list`.")
    return _row_to_source(r)


def list_sources(ws: Workspace) -> list[Source]:
    with ws.engine.connect() as conn:
        return [_row_to_source(r) for r in conn.execute(select(schema.sources).order_by(schema.sources.c.name))]
