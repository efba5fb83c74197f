"""The only way training code reads data: :func:`open_dataset` and :func:`export_version`.

Both verify the whole version first (release log entry in the signed log, version and batch manifest
signatures, approvals, states, every file and record digest, the version's Merkle root), then read each
released object re-hashing the very bytes they hand out. Anything unapproved, revoked, unreleased or
failing verification is refused with an :class:`~dataward.errors.IntegrityError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataward.acquire.inputs import safe_relative_name
from dataward.core.canonical import canonical_json
from dataward.errors import Error, InputError, IntegrityError, WorkspaceError
from dataward.identity import Actor
from dataward.model.subject import Subject
from dataward.model.version import Version
from dataward.progress import Progress
from dataward.release.versions import check_may, dropped_of, leaf_bytes, require_verified
from dataward.workspace import Workspace

FORMATS_OUT = ("arrow", "pandas", "polars", "paths")
#: provenance columns added to every table
COLUMNS = ("_batch", "_file", "_record", "_record_digest")


def resolve_workspace(workspace: Workspace | str | os.PathLike[str] | None) -> Workspace:
    """``workspace`` opened (a path, or ``DATAWARD_WORKSPACE``, or the current directory), its witness checked."""
    if isinstance(workspace, Workspace):
        return workspace
    path = workspace if workspace is not None else os.environ.get("DATAWARD_WORKSPACE", ".")
    ws = Workspace.open(os.fspath(path))
    from dataward.log.witness import check_witness

    check_witness(ws)
    return ws


def resolve_actor(ws: Workspace, principal: str | Actor | None) -> Actor:
    """``principal`` as an Actor of ``ws`` (a name, or ``DATAWARD_PRINCIPAL`` when None)."""
    if isinstance(principal, Actor):
        return principal
    return ws.actor(principal or os.environ.get("DATAWARD_PRINCIPAL"))


VERIFY_LEVELS = ("full", "quick")


def _authorized_read(
    ws: Workspace, actor: Actor, spec: str, how: str, verify: str, progress: Progress | None = None
) -> tuple[Version, dict[str, Any]]:
    """Authorize (data.read, before anything is touched), verify, and log the read or the refusal."""
    if verify not in VERIFY_LEVELS:
        raise InputError(f"verify={verify!r} is not one of {', '.join(VERIFY_LEVELS)}")
    check_may(ws, actor, "data.read", Subject.version(spec))
    try:
        v, pred = require_verified(ws, spec, full=verify == "full", progress=progress)
    except IntegrityError as exc:
        ws.record(actor, "data.read", Subject.version(spec), {"how": how, "refused": exc.message})
        raise
    details = {"how": how, "verify": verify, "manifest_sha256": v.manifest_digest, "merkle_root": v.merkle_root}
    ws.record(actor, "data.read", Subject.version(v.spec), details)
    return v, pred


def _released_bytes(ws: Workspace, f: dict[str, Any], where: str) -> bytes:
    try:
        data = ws.objects.read_bytes("released", str(f["sha256"]), verify=False)
    except Error as exc:
        raise IntegrityError(f"{where}: {exc.message}") from None
    if not hmac.compare_digest(hashlib.sha256(data).hexdigest().encode(), str(f["sha256"]).encode()):
        raise IntegrityError(f"{where}: the released object does not match its signed SHA-256")
    return data


def _copy_released(ws: Workspace, f: dict[str, Any], target: Path | None, where: str) -> int:
    """Stream a released object to ``target`` (or nowhere), hashing it; refuse it unless it is the signed one."""
    h = hashlib.sha256()
    n = 0
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(open(target, "xb")) if target is not None else None
            for chunk in ws.objects.iter_chunks("released", str(f["sha256"])):
                h.update(chunk)
                n += len(chunk)
                if out is not None:
                    out.write(chunk)
    except Error as exc:
        raise IntegrityError(f"{where}: {exc.message}") from None
    if not hmac.compare_digest(h.hexdigest().encode(), str(f["sha256"]).encode()):
        raise IntegrityError(f"{where}: the released object does not match its signed SHA-256")
    return n


def iter_files(ws: Workspace, pred: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(batch id, file entry) of every file a version manifest's predicate lists, in manifest order."""
    for e in pred["batches"]:
        for f in e["files"]:
            yield e["batch"], f


def dropped_in(pred: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    """(batch, file) -> the record indices a verified version leaves out (record-level rollback)."""
    out: dict[tuple[str, str], set[int]] = {}
    for e in pred["batches"]:
        for name, k in dropped_of(e):
            out.setdefault((e["batch"], name), set()).add(k)
    return out


def _file_table(data: bytes, f: dict[str, Any], where: str) -> Any:
    """A released file's records as a table, read by the records layer from the verified bytes in memory."""
    import fsspec
    import pyarrow as pa

    from dataward.records import read_table

    fmt = f["format"]
    if fmt not in ("parquet", "csv", "tsv", "jsonl", "text"):
        return pa.table({"content": pa.array([data], pa.binary())})
    fs = fsspec.filesystem("memory")
    tmp = f"/dataward-release-{secrets.token_hex(8)}"
    fs.pipe_file(tmp, data)
    try:
        table = read_table(tmp, fmt, fs=fs, errors="strict")
        if fmt == "jsonl" and table.column_names == ["value"]:
            # JSON lines that are not objects: one JSON text per row, as released
            table = pa.table({"value": pa.array([_json_text(v) for v in table.column(0).to_pylist()], pa.string())})
        return table
    except InputError as exc:
        raise InputError(
            f"{where}: cannot be read as {fmt}: {exc.message.replace(tmp, 'the file')}",
            advice="Read it with as_='paths' and parse it yourself.",
        ) from None
    finally:
        fs.rm_file(tmp)


def _json_text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _to_table(ws: Workspace, pred: dict[str, Any]) -> Any:
    import pyarrow as pa

    tables = []
    dropped = dropped_in(pred)
    for batch_id, f in iter_files(ws, pred):
        where = f"batch {batch_id} file {f['name']}"
        data = _released_bytes(ws, f, where)
        t = _file_table(data, f, where)
        raw = leaf_bytes(ws, f["sha256"], f["records_digest"], where)
        n = len(raw) // 32
        if t.num_rows != n:
            raise IntegrityError(f"{where}: {t.num_rows} rows read, {n} records signed")
        t = t.append_column("_batch", pa.array([batch_id] * n, pa.string()))
        t = t.append_column("_file", pa.array([f["name"]] * n, pa.string()))
        t = t.append_column("_record", pa.array(np.arange(n, dtype=np.int64)))
        # 64-character hex digests without a Python loop: fixed-width ASCII bytes, viewed as strings
        hexed = np.frombuffer(raw.hex().encode("ascii"), dtype="S64")
        t = t.append_column("_record_digest", pa.array(hexed, pa.binary()).cast(pa.string()))
        gone = dropped.get((batch_id, f["name"]))
        if gone:  # records a rollback dropped: never handed out
            keep = np.ones(n, dtype=bool)
            keep[sorted(gone)] = False
            t = t.filter(pa.array(keep))
        tables.append(t)
    if not tables:
        return pa.table({c: pa.array([], pa.int64() if c == "_record" else pa.string()) for c in COLUMNS})
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(
            f"the files of {pred['dataset']}@{pred['version']} do not share a schema: {str(exc).splitlines()[0]}",
            advice="Read them with as_='paths', or export the version and parse each file.",
        ) from None


def open_dataset(
    spec: str,
    *,
    as_: str = "arrow",
    workspace: Workspace | str | os.PathLike[str] | None = None,
    principal: str | Actor | None = None,
    verify: str = "full",
) -> Any:
    """Read a released dataset version, verified: ``"DATASET@VERSION"``.

    ``as_``: ``"arrow"`` (a pyarrow Table), ``"pandas"``, ``"polars"`` (DataFrames), or ``"paths"`` (the
    verified, read-only released objects: a list of ``(name, path)`` pairs, name being ``BATCH/FILE``).
    Every row carries its provenance: ``_batch``, ``_file``, ``_record`` (index in the file) and
    ``_record_digest`` (the RFC 6962 leaf hash the version's Merkle root covers).
    The workspace defaults to ``$DATAWARD_WORKSPACE`` (or ``.``), the principal to ``$DATAWARD_PRINCIPAL``.
    ``verify="full"`` (the default) re-derives every record digest from the data before reading;
    ``"quick"`` checks the log entry, every signature, approval and state, the record-digest lists and the
    Merkle root, and still re-hashes every byte it hands out against the signed file digests.
    """
    if as_ not in FORMATS_OUT:
        raise InputError(f"as_={as_!r} is not one of {', '.join(FORMATS_OUT)}")
    ws = resolve_workspace(workspace)
    actor = resolve_actor(ws, principal)
    _v, pred = _authorized_read(ws, actor, spec, as_, verify)
    if as_ == "paths":
        out: list[tuple[str, Path]] = []
        dropped = dropped_in(pred)
        for batch_id, f in iter_files(ws, pred):
            if (batch_id, f["name"]) in dropped:
                raise InputError(
                    f"{spec}: file {batch_id}/{f['name']} holds {len(dropped[(batch_id, f['name'])])} record(s) "
                    "a rollback dropped; its raw bytes cannot be handed out",
                    advice="Read the version as a table (as_='arrow', 'pandas' or 'polars'), or export it.",
                )
            _copy_released(ws, f, None, f"batch {batch_id} file {f['name']}")
            p = ws.objects.local_path("released", f["sha256"])
            if p is None:
                raise WorkspaceError("as_='paths' needs a local object store", advice="Use export() instead.")
            out.append((f"{batch_id}/{f['name']}", Path(p)))
        return out
    table = _to_table(ws, pred)
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    try:
        import polars as pl
    except ImportError:
        raise InputError("as_='polars' needs polars installed", advice="pip install polars") from None
    return pl.from_arrow(table)


def export_version(
    spec: str,
    dest: str | os.PathLike[str],
    *,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    principal: str | Actor | None = None,
    verify: str = "full",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a verified version to ``dest``, ready for other tools:

    - ``data/train-00000-of-00001.parquet``: the records the version serves (as :func:`open_dataset`
      reads them, with provenance columns), which ``datasets.load_dataset(dest)`` loads;
    - ``BATCH/FILE``: each released file as signed (a file with records a rollback dropped is left out:
      its bytes would hand them out);
    - ``README.md`` (a Hugging Face dataset card: licence, sources, versions, digests, Merkle roots, how to
      verify), ``croissant.json`` (Croissant 1.0), ``SHA256SUMS`` and, under ``dataward/``, the signed
      version manifest.

    ``dest`` must not exist or be an empty directory; the export appears there atomically (renamed in).
    ``verify`` as for :func:`open_dataset`; ``progress`` is told each file as it is written.
    """
    from dataward.release import _card as card

    ws = resolve_workspace(workspace)
    actor = resolve_actor(ws, principal)
    out = Path(dest)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty directory", advice="Export into a new directory.")
    v, pred = _authorized_read(ws, actor, spec, "export", verify, progress)
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{out.name}.dataward-{secrets.token_hex(6)}"
    tmp.mkdir()
    sums: list[str] = []
    raw: list[card.ExportedFile] = []
    withheld: list[tuple[str, int]] = []
    total = 0
    dropped = dropped_in(pred)
    files = list(iter_files(ws, pred))
    task = progress.start(f"exporting {v.spec}", len(files) + 1, unit="files") if progress else None
    try:
        for batch_id, f in files:
            name = safe_relative_name(f"{batch_id}/{f['name']}", f"manifest of {v.spec}")
            gone = dropped.get((batch_id, f["name"]))
            if gone:
                withheld.append((name, len(gone)))
            else:
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                size = _copy_released(ws, f, target, f"batch {batch_id} file {f['name']}")
                total += size
                sums.append(f"{f['sha256']}  {name}")
                raw.append(card.ExportedFile(name, str(f["sha256"]), size, str(f["format"])))
            if task:
                task.advance(1)
        data, columns = _write_data(ws, pred, tmp)
        if data is not None:
            sums.insert(0, f"{data.sha256}  {data.path}")
        if task:
            task.advance(1)
        side = tmp / card.SIDE_DIR
        side.mkdir()
        envelope = ws.objects.read_bytes("meta", v.manifest_digest)
        (side / "version.dsse.json").write_bytes(envelope)
        info = {"version": v.spec, "manifest_sha256": v.manifest_digest, "merkle_root": v.merkle_root}
        (side / "version.json").write_bytes(canonical_json(info) + b"\n")
        sources = _sources(ws, pred)
        (tmp / "README.md").write_text(
            card.dataset_card(pred, v.manifest_digest, sources, data, raw, withheld), encoding="utf-8"
        )
        cr = card.croissant(pred, v.manifest_digest, sources, data, columns, raw)
        (tmp / "croissant.json").write_bytes(card.croissant_bytes(cr))
        (tmp / "SHA256SUMS").write_text("".join(s + "\n" for s in sums), encoding="utf-8")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if task:
            task.done()
    return {
        "version": v.spec,
        "dir": str(out),
        "files": len(raw),
        "bytes": total,
        "records": v.record_count,
        "data": data.path if data is not None else None,
        "withheld": [n for n, _ in withheld],
        "merkle_root": v.merkle_root,
        "manifest_sha256": v.manifest_digest,
    }


def _write_data(ws: Workspace, pred: dict[str, Any], tmp: Path) -> tuple[Any, list[tuple[str, str]]]:
    """The served records as one Parquet file under ``data/`` (None when the files share no schema)."""
    import pyarrow.parquet as pq

    from dataward.release import _card as card

    try:
        table = _to_table(ws, pred)
    except InputError:
        return None, []
    target = tmp / card.DATA_FILE
    target.parent.mkdir(parents=True)
    pq.write_table(table, target)
    h = hashlib.sha256()
    with open(target, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    columns = [(f.name, str(f.type)) for f in table.schema]
    return card.ExportedFile(card.DATA_FILE, h.hexdigest(), target.stat().st_size, "parquet"), columns


def _sources(ws: Workspace, pred: dict[str, Any]) -> list[Any]:
    from dataward.release._card import SourceInfo
    from dataward.sources import get_source

    by: dict[str, list[str]] = {}
    for e in pred["batches"]:
        by.setdefault(str(e["source"]), []).append(str(e["batch"]))
    out = []
    for name, batches in sorted(by.items()):
        src = get_source(ws, name)
        out.append(SourceInfo(name, str(src.kind), src.license, tuple(batches)))
    return out
