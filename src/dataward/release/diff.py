"""Record-level differences between two versions, from their signed record digests (no data is read)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from dataward.core import dsse
from dataward.errors import IntegrityError
from dataward.model.version import Version
from dataward.release.versions import entry_records, get_version, read_envelope, verify_version
from dataward.workspace import Workspace


@dataclass(frozen=True)
class RecordRef:
    """A record by leaf digest, batch, file and index within the file."""

    digest: str  # RFC 6962 leaf hash, hex
    batch: str
    file: str
    record: int  # index within the file

    def to_json(self) -> dict[str, Any]:
        """The JSON form `diff --json` prints."""
        return {"digest": self.digest, "batch": self.batch, "file": self.file, "record": self.record}


@dataclass(frozen=True)
class VersionDiff:
    """Records added and removed between versions ``a`` and ``b``, the batches that changed, the unchanged count."""

    a: str
    b: str
    added: tuple[RecordRef, ...]
    removed: tuple[RecordRef, ...]
    batches_added: tuple[str, ...]
    batches_removed: tuple[str, ...]
    unchanged: int

    def to_json(self) -> dict[str, Any]:
        """The JSON form `diff --json` prints."""
        return {
            "from": self.a,
            "to": self.b,
            "added": [r.to_json() for r in self.added],
            "removed": [r.to_json() for r in self.removed],
            "added_count": len(self.added),
            "removed_count": len(self.removed),
            "unchanged_count": self.unchanged,
            "batches_added": list(self.batches_added),
            "batches_removed": list(self.batches_removed),
        }


def version_records(ws: Workspace, v: Version) -> list[RecordRef]:
    """Every record ``v`` serves, in the version's defined order, from its signed manifest."""
    st = dsse.parse_statement(read_envelope(ws, v.manifest_digest, f"version {v.spec}"))
    pred = st.predicate if isinstance(st.predicate, dict) else {}
    out: list[RecordRef] = []
    for e in pred.get("batches", []):
        # the records the version serves (a record-level rollback's dropped records are not in it)
        out += [RecordRef(leaf.hex(), e["batch"], name, k) for name, k, leaf in entry_records(ws, e)]
    return out


def _subtract(x: list[RecordRef], y: list[RecordRef]) -> list[RecordRef]:
    """Records of ``x`` not matched by a record of ``y`` with the same digest (as multisets)."""
    left = Counter(r.digest for r in y)
    out: list[RecordRef] = []
    for r in x:
        if left[r.digest] > 0:
            left[r.digest] -= 1
        else:
            out.append(r)
    return out


def diff_versions(ws: Workspace, a: str, b: str) -> VersionDiff:
    """Records in ``b`` but not ``a`` (added) and in ``a`` but not ``b`` (removed), by record digest."""
    va, vb = get_version(ws, a), get_version(ws, b)
    for v in (va, vb):
        rep = verify_version(ws, v.spec, full=False)
        bad = rep.integrity_problems  # a diff may well look at revoked versions
        if bad:
            raise IntegrityError(f"{v.spec} fails verification: {bad[0]}")
    ra, rb = version_records(ws, va), version_records(ws, vb)
    added = _subtract(rb, ra)
    removed = _subtract(ra, rb)
    return VersionDiff(
        va.spec,
        vb.spec,
        tuple(added),
        tuple(removed),
        tuple(sorted(set(vb.batches) - set(va.batches))),
        tuple(sorted(set(va.batches) - set(vb.batches))),
        len(rb) - len(added),
    )
