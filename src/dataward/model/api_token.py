"""Console API tokens as domain values: what may be shown of a token (never its secret). Pure (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataward.timeutil import now, parse_iso

__all__ = ["TokenInfo"]


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of an API token: its id, principal, creator, times; never the secret."""

    id: str
    principal: str
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def status(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at:
            return "revoked"
        return "expired" if parse_iso(self.expires_at) <= now() else "active"

    def to_json(self) -> dict[str, Any]:
        """The JSON form `token list --json` prints."""
        return {
            "id": self.id,
            "principal": self.principal,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "status": self.status,
        }
