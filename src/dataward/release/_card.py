"""What an export carries for other tools: a Hugging Face dataset card (README.md) and Croissant metadata.

Both are built from the verified version's signed manifest and are pure (no I/O): the card's YAML front
matter points ``datasets.load_dataset(DIR)`` at ``data/`` (the records the version serves, one Parquet
file), its body states licences, sources, versions, digests and Merkle roots and how to check them; the
Croissant JSON-LD (``croissant.json``, Croissant 1.0) describes the same files with their SHA-256 digests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

#: where the served records go (the only files the dataset card's ``configs`` names)
DATA_FILE = "data/train-00000-of-00001.parquet"
#: dataward's own files in an export (kept out of the data directory)
SIDE_DIR = "dataward"

CROISSANT_CONTEXT: Mapping[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_MEDIA = {
    "parquet": "application/x-parquet",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "jsonl": "application/jsonlines",
    "text": "text/plain",
}


@dataclass(frozen=True)
class SourceInfo:
    """A source of the exported version as the card and Croissant metadata describe it."""

    name: str
    kind: str
    licence: str | None
    batches: tuple[str, ...]


@dataclass(frozen=True)
class ExportedFile:
    """One file written into the export directory, with its SHA-256."""

    path: str  # relative to the export directory
    sha256: str
    size: int
    fmt: str


def hf_licence(sources: Sequence[SourceInfo]) -> str:
    """The card's ``license`` value: the one SPDX id all sources share (lower case, as the Hub writes it),
    else ``other`` (the body lists each source's expression)."""
    exprs = {s.licence for s in sources}
    if len(exprs) == 1:
        (only,) = exprs
        if only and all(c.isalnum() or c in ".-+" for c in only):
            return only.lower()
    return "other"


def licence_expression(sources: Sequence[SourceInfo]) -> str:
    """One SPDX expression for the whole version (each source's, joined by AND), or ``NOASSERTION``."""
    exprs = sorted({s.licence for s in sources if s.licence})
    if not exprs or any(s.licence is None for s in sources):
        return " AND ".join([*exprs, "NOASSERTION"]) if exprs else "NOASSERTION"
    return " AND ".join(f"({e})" if " " in e else e for e in exprs)


def dataset_card(
    pred: Mapping[str, Any],
    manifest_sha256: str,
    sources: Sequence[SourceInfo],
    data: ExportedFile | None,
    raw: Sequence[ExportedFile],
    withheld: Sequence[tuple[str, int]],
) -> str:
    """README.md: YAML front matter for the Hugging Face loader, then the card for people."""
    spec = f"{pred['dataset']}@{pred['version']}"
    front: dict[str, Any] = {"license": hf_licence(sources), "pretty_name": spec}
    if front["license"] == "other":
        front["license_name"] = licence_expression(sources)
    if data is not None:
        front["configs"] = [{"config_name": "default", "data_files": [{"split": "train", "path": data.path}]}]
    front["tags"] = ["dataward"]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# {spec}", ""]
    lines += [
        f"Version {pred['version']} of dataset `{pred['dataset']}` ({pred.get('kind')}, parent "
        f"{pred.get('parent') or '-'}), released by {pred.get('released_by')} at {pred.get('released_at')}, "
        "exported verified by dataward.",
        "",
        f"- records: {pred['record_count']}",
        f"- Merkle root (RFC 6962, over the records' leaf hashes in order): `{pred['merkle_root']}`",
        f"- signed version manifest (DSSE, SHA-256): `{manifest_sha256}`",
        f"- licence: {licence_expression(sources)}",
        "",
        "## Sources",
        "",
        "| source | kind | licence | batches |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s.name} | {s.kind} | {s.licence or 'none recorded'} | {len(s.batches)} |" for s in sources]
    lines += ["", "## Batches", "", "| batch | source | records | dropped | manifest SHA-256 | Merkle root |"]
    lines += ["|---|---|---|---|---|---|"]
    for e in pred["batches"]:
        dropped = len(e.get("dropped_records") or [])
        lines.append(
            f"| {e['batch']} | {e['source']} | {e['records']} | {dropped} | `{e['manifest_sha256']}` "
            f"| `{e['merkle_root']}` |"
        )
    drops = [(e["batch"], d) for e in pred["batches"] for d in e.get("dropped_records") or []]
    if drops:
        lines += ["", "## Dropped records", "", f"{len(drops)} record(s) were dropped by record-level rollbacks:", ""]
        lines += ["| batch | file | record | leaf digest | dropped by | reason |", "|---|---|---|---|---|---|"]
        for b, d in drops:
            why = str(d.get("reason") or d.get("by") or "").replace("|", "/")
            lines.append(f"| {b} | {d['file']} | {d['record']} | `{d['sha256']}` | {d.get('version')} | {why} |")
    lines += ["", "## Files", ""]
    if data is not None:
        lines.append(
            f"- `{data.path}`: the {pred['record_count']} records the version serves, with their provenance "
            "(`_batch`, `_file`, `_record`, `_record_digest`); `datasets.load_dataset(DIR)` reads it."
        )
    else:
        lines.append("- no `data/` file: the version's files share no table schema; read the raw files.")
    lines.append(f"- {len(raw)} raw file(s) as released, under `BATCH/FILE`.")
    for name, n in withheld:
        lines.append(f"- `{name}` is not exported raw: {n} of its records were dropped (its records are in `data/`).")
    lines += [
        f"- `{SIDE_DIR}/version.dsse.json`: the signed version manifest; `{SIDE_DIR}/version.json`: its digest "
        "and root.",
        "- `croissant.json`: Croissant 1.0 metadata (licence, sources, versions, SHA-256 digests).",
        "",
        "## How to verify",
        "",
        "1. `sha256sum -c SHA256SUMS` in this directory checks every data and raw file.",
        f"2. `sha256sum {SIDE_DIR}/version.dsse.json` must print `{manifest_sha256}`; its signature is checked "
        "against the releaser's public key with `dataward` or any DSSE verifier.",
        "3. The RFC 6962 Merkle root over the `_record_digest` column (hex leaf hashes, in file order) must equal "
        f"`{pred['merkle_root']}`, the root the manifest signs.",
        "",
    ]
    return "\n".join(lines)


def _datatype(arrow_type: str) -> str:
    t = arrow_type.lower()
    if t.startswith(("int", "uint")):
        return "sc:Integer"
    if t in ("float", "double", "halffloat") or t.startswith(("float", "double", "decimal")):
        return "sc:Float"
    if t == "bool":
        return "sc:Boolean"
    if t.startswith(("timestamp", "date")):
        return "sc:Date"
    return "sc:Text"


def croissant(
    pred: Mapping[str, Any],
    manifest_sha256: str,
    sources: Sequence[SourceInfo],
    data: ExportedFile | None,
    columns: Sequence[tuple[str, str]],
    raw: Sequence[ExportedFile],
) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD for an export: the data file and the raw files (with SHA-256) and, for the
    data file, a record set with one field per column."""
    spec = f"{pred['dataset']}@{pred['version']}"
    dist: list[dict[str, Any]] = []
    if data is not None:
        dist.append(
            {
                "@type": "cr:FileObject",
                "@id": "data",
                "name": "data",
                "description": "The records the version serves, with provenance columns.",
                "contentUrl": data.path,
                "contentSize": f"{data.size} B",
                "encodingFormat": _MEDIA["parquet"],
                "sha256": data.sha256,
            }
        )
    for f in raw:
        dist.append(
            {
                "@type": "cr:FileObject",
                "@id": f"raw/{f.path}",
                "name": f.path,
                "contentUrl": f.path,
                "contentSize": f"{f.size} B",
                "encodingFormat": _MEDIA.get(f.fmt, "application/octet-stream"),
                "sha256": f.sha256,
            }
        )
    doc: dict[str, Any] = {
        "@context": dict(CROISSANT_CONTEXT),
        "@type": "sc:Dataset",
        "name": str(pred["dataset"]),
        "description": (
            f"{spec}: {pred['record_count']} records from source(s) "
            + ", ".join(f"{s.name} ({s.licence or 'no licence recorded'})" for s in sources)
            + f". Signed version manifest sha256 {manifest_sha256}; Merkle root {pred['merkle_root']}."
        ),
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "license": licence_expression(sources),
        "url": f"dataward:{spec}",
        "version": f"{int(pred['version'])}.0.0",
        "datePublished": str(pred.get("released_at") or "")[:10] or None,
        "creator": {"@type": "sc:Person", "name": str(pred.get("released_by") or "")},
        "isBasedOn": [f"dataward-source:{s.name}" for s in sources],
        "distribution": dist,
    }
    if doc["datePublished"] is None:
        del doc["datePublished"]
    if data is not None:
        doc["recordSet"] = [
            {
                "@type": "cr:RecordSet",
                "@id": "records",
                "name": "records",
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"records/{name}",
                        "name": name,
                        "dataType": _datatype(typ),
                        "source": {"fileObject": {"@id": "data"}, "extract": {"column": name}},
                    }
                    for name, typ in columns
                ],
            }
        ]
    return doc


def croissant_bytes(doc: Mapping[str, Any]) -> bytes:
    """The Croissant document as the UTF-8 JSON bytes written to ``croissant.json``."""
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
