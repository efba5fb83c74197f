"""A pending admin change's statement: its type, and the ID that names it. Pure (no I/O)."""

from __future__ import annotations

import hashlib
from typing import Any

from dataward.core.canonical import canonical_json

#: the statement type of an admin change proposed under the k-of-n admin threshold (:mod:`dataward.admin`)
ADMIN_STATEMENT_TYPE = "https://dataward.dev/admin-change/v1"


def change_id_of(statement: Any) -> str:
    """The CHANGE id of a pending admin change: the SHA-256 of its statement's canonical JSON."""
    return hashlib.sha256(canonical_json(statement)).hexdigest()
