"""Find private key material in a directory tree (used to show that no workspace holds a principal's key)."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

_PEM = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_MARKERS = (b"PRIVATE KEY", b"openssh-key-v1", b"OPENSSH PRIVATE")


def files_with_private_keys(root: Path, *, allow_log_key: bool = False) -> list[str]:
    """Every file under ``root`` holding private key material (PEM, OpenSSH or a catalog cell), as
    ``path: what``. With ``allow_log_key``, the workspace log's own key in ``keys/`` is allowed (it is the
    one private key a workspace may hold), but only if the catalog registers it as the log key."""
    log_pubs = _log_public_keys(root) if allow_log_key else set()
    found = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        data = f.read_bytes()
        if not any(m in data for m in _MARKERS):
            continue
        for block in _PEM.findall(data) or [b""]:
            pub = _public_of(block)
            if pub is not None and pub in log_pubs:
                continue
            found.append(f"{f.relative_to(root)}: private key material")
            break
    return found


def _public_of(pem: bytes) -> str | None:
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return None  # encrypted or malformed: counts as private key material
    if not isinstance(key, Ed25519PrivateKey):
        return None
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _log_public_keys(root: Path) -> set[str]:
    import sqlite3

    db = root / "catalog.db"
    if not db.exists():
        return set()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in con.execute("SELECT public_key FROM keys WHERE principal = '@workspace-log'")}
    finally:
        con.close()
