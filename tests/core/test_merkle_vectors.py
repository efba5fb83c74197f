"""Every RFC 6962 inclusion and consistency test vector of the transparency-dev ``merkle`` project.

The vectors live in ``../shared/testvectors/rfc6962`` (see its README): ``inclusion/<case>/*.json`` and
``consistency/<case>/*.json``, byte strings base64, ``proof`` possibly null. A correct verifier accepts every
file with ``wantErr: false`` and rejects every file with ``wantErr: true``. ``subtreeinclusion`` and
``subtreeconsistency`` are a later extension (not RFC 6962) and are not run here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dataward.core.merkle import InvalidProofError, verify_consistency, verify_inclusion
from dataward.errors import IntegrityError

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "testvectors" / "rfc6962"
KINDS = ("inclusion", "consistency")

needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"test vectors not present at {VECTORS}")


def _files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json")) if VECTORS.is_dir() else []


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(h) for h in value or []]


def _check_inclusion(v: dict[str, Any]) -> None:
    verify_inclusion(_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v["proof"]), _b64(v["root"]))


def _check_consistency(v: dict[str, Any]) -> None:
    verify_consistency(v["size1"], v["size2"], _b64(v["root1"]), _b64(v["root2"]), _proof(v["proof"]))


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "inclusion": _check_inclusion,
    "consistency": _check_consistency,
}


def _run(kind: str, path: Path) -> tuple[bool, str]:
    """Return (matches wantErr, description); the verifier may raise only InvalidProofError."""
    vector = json.loads(path.read_text(encoding="utf-8"))
    try:
        CHECKS[kind](vector)
    except InvalidProofError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg, f"{path}: reason must be one non-empty line, got {msg!r}"
        return vector["wantErr"] is True, f"{vector['desc']}: rejected ({msg})"
    return vector["wantErr"] is False, f"{vector['desc']}: accepted"


CASES = [(kind, path) for kind in KINDS for path in _files(kind)]


@needs_vectors
@pytest.mark.parametrize(("kind", "path"), CASES, ids=[str(p.relative_to(VECTORS)) for _, p in CASES])
def test_vector(kind: str, path: Path) -> None:
    ok, what = _run(kind, path)
    assert ok, f"{path.relative_to(VECTORS)}: {what}"


@needs_vectors
def test_all_vectors_checked_and_counted() -> None:
    """Runs every file again in one pass, counts them against what is on disk and prints the totals."""
    totals: dict[str, dict[str, int]] = {}
    wrong: list[str] = []
    for kind in KINDS:
        present = sum(1 for p in (VECTORS / kind).rglob("*") if p.is_file() and p.suffix == ".json")
        counts = {"present": present, "checked": 0, "accepted": 0, "rejected": 0}
        for path in _files(kind):
            want_err = json.loads(path.read_text(encoding="utf-8"))["wantErr"]
            ok, what = _run(kind, path)
            counts["checked"] += 1
            counts["rejected" if want_err else "accepted"] += ok
            if not ok:
                wrong.append(f"{path.relative_to(VECTORS)}: {what}")
        totals[kind] = counts
        assert counts["checked"] == present > 0, f"{kind}: checked {counts['checked']} of {present} files"
        assert counts["accepted"] + counts["rejected"] == present
    assert not wrong, "\n".join(wrong)
    for kind, c in totals.items():
        print(
            f"rfc6962 {kind} vectors: {c['checked']} of {c['present']} files checked, "
            f"{c['accepted']} valid accepted, {c['rejected']} invalid rejected"
        )


def test_invalid_proof_error_is_an_integrity_error() -> None:
    assert issubclass(InvalidProofError, IntegrityError)
    with pytest.raises(IntegrityError, match="out of range"):
        verify_inclusion(b"\x00" * 32, 5, 5, [], b"\x00" * 32)
