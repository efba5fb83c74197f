"""Sources: where data comes from, who supplies it, under which licence. Pure (no I/O)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from dataward.core.dsse import key_id, public_key_from_hex


class SourceKind(enum.StrEnum):
    """What kind of origin a source is (risk scoring and the licence rules depend on it)."""

    INTERNAL = "internal"
    THIRD_PARTY = "third-party"
    WEB_SCRAPED = "web-scraped"
    SYNTHETIC = "synthetic"
    CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Source:
    """A registered source: its kind, origin, licence (and whether it is SPDX), supplier and supplier key."""

    name: str
    kind: SourceKind
    origin: str
    license: str | None
    license_status: str  # spdx | non-spdx | missing
    supplier: str | None
    supplier_key: str | None  # the supplier's public key, 64 hex characters
    update_frequency: str | None
    created_at: str
    created_by: str

    @property
    def supplier_keyid(self) -> str | None:
        """The key ID of the supplier's key (None: deliveries are not supplier-signed)."""
        return key_id(public_key_from_hex(self.supplier_key)) if self.supplier_key else None

    def to_json(self) -> dict[str, Any]:
        """The source as JSON (the supplier key by its ID)."""
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
