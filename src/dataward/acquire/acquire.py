"""Acquire a delivery: copy into quarantine, fingerprint files and records, check the supplier, sign."""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataward.access import require
from dataward.acquire.inputs import InputFile, collect_inputs, parse_sha256sums, safe_relative_name
from dataward.batches import get_batch
from dataward.core import dsse
from dataward.errors import AuthorizationError, ConflictError, Error, InputError, IntegrityError, SignatureError
from dataward.identity import Actor
from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.model.subject import Subject
from dataward.records.leaves import (
    FORMATS,
    LINE_FORMATS,
    RecordDigests,
    detect_format,
    implied_leaf_list,
    record_digests,
)
from dataward.scale.merkle_parts import merkle_root
from dataward.scale.processes import ProcessExecutor, usable_cpus
from dataward.sources import get_source
from dataward.store.batches import insert_batch
from dataward.store.catalog import referenced_file_digests, write_transaction
from dataward.store.objects import ObjectStore, ObjectWriter
from dataward.timeutil import now, now_iso
from dataward.workspace import Workspace

if TYPE_CHECKING:
    from dataward.scale.ingest import Ingested, IngestedDigests
    from dataward.scale.interface import Executor

Progress = Callable[[str, int], None]  # (what, bytes done) callback for progress bars

#: threads that fsync and rename objects (they wait on the disk, not the CPU)
IO_THREADS = 16
#: copying threads, at most (and at least, when a file is written around the page cache: each such thread
#: waits for its 4 MiB write to reach the device, so the device needs several in flight whatever the CPU
#: count; 805 MB of 4 MiB files on 2 CPUs: 1.14 s on 2 threads, 0.92 s on 8, ADR 0100)
COPY_THREADS = 8
#: line-format bytes from which record hashing moves to a process pool (when more than one CPU is usable)
POOL_MIN_BYTES = 24 << 20
#: a line file from which a given executor of several workers copies and hashes it by byte ranges; below it
#: the ranges' two maps cost more wall time than the driver's streamed copy (53 MB on Dask: 3.2-3.6 s vs 1.8-2.2 s)
INGEST_MIN_BYTES = 128 << 20


@dataclass(frozen=True)
class StoredFile:
    """One input file as stored in quarantine: its name, SHA-256 and size."""

    name: str
    sha256: str
    size: int


def _copy_unsynced(
    store: ObjectStore, item: InputFile, progress: Progress | None, direct: bool = False
) -> tuple[StoredFile, ObjectWriter]:
    """Stream ``item`` into a temporary object, hashing as it goes; the caller commits (fsync + rename) it.
    ``direct``: around the page cache (for a file whose bytes are not read again to hash its records)."""
    try:
        f = open(item.path, "rb")  # noqa: SIM115 - closed below; fstat needs the descriptor
    except PermissionError:
        raise InputError(f"{item.path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{item.path}: cannot read ({exc.strerror})") from None
    w = store.open_writer()
    try:
        with f:
            before = os.fstat(f.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise InputError(f"{item.path}: not a regular file")
            on_chunk = (lambda n: progress(item.name, n)) if progress else None
            try:
                w.copy_from(f, direct=direct, on_chunk=on_chunk)
            except OSError as exc:  # write errors come as storage errors: this is the read side
                raise InputError(f"{item.path}: read failed ({exc.strerror})") from None
            after = os.fstat(f.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or after.st_size != w.size:
            raise InputError(
                f"{item.path}: changed while it was read ({before.st_size} -> {after.st_size} bytes)",
                advice="Acquire deliveries only after the supplier has finished writing them.",
            )
    except BaseException:
        w.abort()
        raise
    return StoredFile(item.name, w.hexdigest(), w.size), w


def _commit(w: ObjectWriter, area: str = "quarantine") -> str:
    """fsync the temporary object and rename it into place (durable before anything names it)."""
    try:
        return w.commit(area)
    finally:
        w.abort()  # no-op once committed; removes the temporary file otherwise


def copy_into_quarantine(store: ObjectStore, item: InputFile, progress: Progress | None = None) -> StoredFile:
    """Stream ``item`` into the quarantine area, hashing as it goes; refuse a file that changes meanwhile."""
    s, w = _copy_unsynced(store, item, progress)
    _commit(w)
    return s


def _copy_all(
    store: ObjectStore,
    inputs: Sequence[InputFile],
    workers: int,
    progress: Progress | None,
    created: list[str] | None = None,
    fmt: str | None = None,
) -> list[StoredFile]:
    """Copy ``inputs`` on ``workers`` hashing threads; fsync + rename run on a separate pool of I/O threads, so
    a hashing thread never waits for the disk, and the device sees many flushes at once (ext4 and most
    filesystems group concurrent fsyncs into one journal commit). Every object is durable on return.

    A file of format ``file`` (``fmt``, else by its name) is one opaque record: nothing reads it again
    during the acquire, so it is written around the page cache (ADR 0058); a record format keeps its bytes
    cached for the record hashing that reads them next."""
    with ThreadPoolExecutor(IO_THREADS) as io, ThreadPoolExecutor(workers) as pool:

        def commit(w: ObjectWriter) -> str:
            digest = _commit(w)
            if w.created and created is not None:
                created.append(digest)  # list.append is atomic; read only after both pools have shut down
            return digest

        def one(item: InputFile) -> tuple[StoredFile, Future[str]]:
            s, w = _copy_unsynced(store, item, progress, (fmt or detect_format(item.name)) == "file")
            return s, io.submit(commit, w)

        copied = list(pool.map(one, inputs))
        for _s, fut in copied:
            fut.result()
    return [s for s, _fut in copied]


def _expected_from_signed(path: Path, supplier_key_hex: str | None, source: str) -> tuple[dict[str, str], str]:
    if not supplier_key_hex:
        raise SignatureError(
            f"source {source!r} has no supplier key to check {path} against",
            advice="Register the supplier public key on a source (`dataward source add ... --supplier-key HEX`).",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        env = dsse.Envelope.from_bytes(data)
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc.message}", advice="The supplier manifest is damaged.") from None
    pub = dsse.public_key_from_hex(supplier_key_hex)
    try:
        dsse.verify_envelope(env, {dsse.key_id(pub): pub})
    except SignatureError as exc:
        raise SignatureError(
            f"{path}: {exc.message}", advice="The delivery does not come from the registered supplier key."
        ) from None
    try:
        st = dsse.parse_statement(env)
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc.message}", advice="Ask the supplier to sign the delivery again.") from None
    out: dict[str, str] = {}
    for name, digest in st.subjects:
        n = safe_relative_name(name, str(path))
        if n in out:
            raise InputError(f"{path}: subject {n!r} is listed twice")
        out[n] = digest.lower()
    if not out:
        raise InputError(f"{path}: the signed manifest lists no files")
    return out, dsse.key_id(pub)


def _compare_expected(expected: dict[str, str], stored: Sequence[StoredFile], where: str) -> None:
    have = {s.name: s.sha256 for s in stored}
    for name, digest in expected.items():
        if name not in have:
            raise IntegrityError(f"{where}: lists {name!r}, which is not in the delivery")
        # both are public digests; compare_digest keeps the habit
        import hmac

        if not hmac.compare_digest(have[name], digest):
            raise IntegrityError(
                f"{name}: SHA-256 {have[name][:16]}... does not match the supplier's {digest[:16]}... ({where})"
            )
    extra = sorted(set(have) - set(expected))
    if extra:
        raise IntegrityError(
            f"{extra[0]}: delivered but not listed in {where}"
            + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
        )


def _manifest_in(paths: Sequence[str | os.PathLike[str]]) -> Path | None:
    """The supplier manifest shipped inside a delivered directory, if there is exactly one."""
    from dataward.acquire.supplier import MANIFEST_NAME

    found = [Path(p) / MANIFEST_NAME for p in paths if Path(p).is_dir() and (Path(p) / MANIFEST_NAME).is_file()]
    return found[0] if len(found) == 1 else None


def new_batch_id() -> str:
    """A fresh batch ID: ``b-``, today's date and random hex."""
    return f"b-{now().strftime('%Y%m%d')}-{secrets.token_hex(4)}"


def acquire(
    ws: Workspace,
    actor: Actor,
    source: str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    expect: str | os.PathLike[str] | None = None,
    expect_signed: str | os.PathLike[str] | None = None,
    format: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    allow_unsigned: bool = False,
    reason: str | None = None,
) -> Batch:
    """Acquire ``paths`` from ``source`` into a new quarantined batch; refuse the whole batch on any mismatch.

    A source with a registered supplier key accepts only deliveries with a valid signed manifest
    (``expect_signed``, or a ``delivery.dsse.json`` in a delivered directory), unless ``allow_unsigned``
    with a ``reason``, which the batch's log entry records.
    """
    src = get_source(ws, source)
    with ws.engine.connect() as conn:
        grants = ws.grants(conn, actor.name)
    try:
        require(actor.name, grants, "batch.acquire", source)
    except AuthorizationError as exc:
        ws.record_denial(actor.name, "batch.acquire", Subject.source(source), str(exc))
        raise
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    if expect and expect_signed:
        raise InputError("give --expect or --expect-signed, not both")
    if allow_unsigned and not (reason or "").strip():
        raise InputError("accepting an unsigned delivery needs a reason (--reason TEXT); it is logged")
    created: list[str] = []  # quarantine objects this attempt made; removed again unless the batch is committed
    created_meta: list[str] = []  # likewise its record-digest lists and manifest
    try:
        if expect_signed is None and expect is None and src.supplier_key and not allow_unsigned:
            expect_signed = _manifest_in(paths)
        inputs = collect_inputs(paths)
        if expect_signed is not None:  # the manifest shipped inside the delivery is not part of the data
            manifest = Path(expect_signed).resolve()
            inputs = [i for i in inputs if i.path.resolve() != manifest]
            if not inputs:
                raise InputError(f"{expect_signed}: the delivery holds no file besides its manifest")
        expected: dict[str, str] | None = None
        verification: dict[str, Any] = {"method": "none"}
        if src.supplier_key and expect_signed is None:
            if not allow_unsigned:
                raise SignatureError(
                    f"source {source!r} has a supplier key, and this delivery has no signed manifest",
                    advice="Ask the supplier for `delivery.dsse.json` (`dataward sign-delivery DIR --key KEY`) and "
                    "pass --expect-signed FILE; or accept it knowingly: --allow-unsigned --reason TEXT.",
                )
            verification = {"method": "none", "unsigned_allowed": True, "reason": str(reason).strip()}
        if expect is not None:
            p = Path(expect)
            try:
                expected = parse_sha256sums(p.read_bytes(), str(p))
            except OSError as exc:
                raise InputError(f"{p}: cannot read ({exc.strerror})") from None
            verification = {**verification, "method": "sha256sums", "file": p.name}
        elif expect_signed is not None:
            p = Path(expect_signed)
            expected, kid = _expected_from_signed(p, src.supplier_key, source)
            verification = {"method": "dsse", "file": p.name, "supplier_keyid": kid}
        n_workers = workers or _copy_threads(inputs, format)
        ingested = _ingest_large(ws, inputs, format, executor, progress, created, created_meta)
        copied = iter(
            _copy_all(
                ws.objects, [x for i, x in enumerate(inputs) if i not in ingested], n_workers, progress, created, format
            )
        )
        stored = [
            StoredFile(x.name, ingested[i].sha256, ingested[i].size) if i in ingested else next(copied)
            for i, x in enumerate(inputs)
        ]
        crash_point("acquire.after-copy")
        if expected is not None:
            _compare_expected(expected, stored, verification["file"])
        warnings: list[str] = []
        seen: dict[str, str] = {}
        for s in stored:
            if s.size == 0:
                warnings.append(f"{s.name}: empty file")
            if s.sha256 in seen:
                warnings.append(f"{s.name}: same content as {seen[s.sha256]}")
            seen.setdefault(s.sha256, s.name)
        own: Executor | None = None
        if executor is None and _wants_pool(stored, format):
            executor = own = ProcessExecutor(min(8, usable_cpus()))
        try:
            done = {i: d for i, g in ingested.items() if (d := g.digests) is not None}
            digests = _record_digests_all(ws, stored, format, executor, warnings, done)
        except BaseException:
            if own is not None:
                own.close()
            raise
    except (InputError, IntegrityError) as exc:
        _discard_unreferenced(ws, created)
        _discard_unreferenced(ws, created_meta, "meta")
        _record_refusal(ws, actor, source, paths, exc)
        raise
    except BaseException:
        _discard_unreferenced(ws, created)
        _discard_unreferenced(ws, created_meta, "meta")
        raise
    try:
        batch = _create_batch(ws, actor, src.name, stored, digests, verification, warnings, executor, created_meta)
        crash_point("acquire.after-commit")
        return batch
    except BaseException:
        _discard_unreferenced(ws, created)
        _discard_unreferenced(ws, created_meta, "meta")
        raise
    finally:
        if own is not None:
            own.close()


#: named points where ``DATAWARD_CRASH_AT`` kills the process (crash-injection tests; see docs/records.md)
CRASH_POINTS = ("acquire.after-copy", "acquire.before-commit", "acquire.after-commit")


def crash_point(name: str) -> None:
    """Die at once, as SIGKILL would (no clean-up, no finally), when ``DATAWARD_CRASH_AT`` names this point."""
    from dataward.store.crash import crash_point as die_at

    die_at(name)


def _discard_unreferenced(ws: Workspace, created: Sequence[str], area: str = "quarantine") -> None:
    """Remove the quarantine objects a failed attempt created, except those a batch names meanwhile.

    Runs inside a write transaction, so it is serialized against another acquire's catalog transaction, which
    re-checks that its objects exist (``_create_batch``): a shared object is never deleted under a batch.
    Best effort: a failure here leaves an unreferenced object for ``dataward doctor --fix``, never a broken batch.
    """
    if not created:
        return
    try:
        with write_transaction(ws.engine) as conn:
            keep = referenced_file_digests(conn, created)
            for digest in set(created) - keep:
                ws.objects.remove(area, digest)
    except Exception:  # the original error is the one to report; doctor cleans up the rest
        return


def _copy_threads(inputs: Sequence[InputFile], fmt: str | None) -> int:
    """Threads for ``_copy_all``: one a CPU (2 to ``COPY_THREADS``) for files it hashes from the page cache,
    ``COPY_THREADS`` as soon as one file is written around it (opaque files: the wait is the device's)."""
    if any((fmt or detect_format(i.name)) == "file" for i in inputs):
        return COPY_THREADS
    return max(2, min(COPY_THREADS, usable_cpus()))


def _wants_pool(stored: Sequence[StoredFile], fmt: str | None) -> bool:
    """Whether record hashing is worth a process pool: enough line-format bytes and more than one CPU."""
    if usable_cpus() < 2:
        return False
    line_bytes = sum(s.size for s in stored if (fmt or detect_format(s.name)) in LINE_FORMATS)
    return line_bytes >= POOL_MIN_BYTES


def _ingest_large(
    ws: Workspace,
    inputs: Sequence[InputFile],
    fmt: str | None,
    executor: Executor | None,
    progress: Progress | None,
    created: list[str],
    created_meta: list[str],
) -> dict[int, Ingested]:
    """Copy (and, for plain CSV/TSV, hash) each large line file by byte ranges on a given executor of several
    workers, so that the driver never streams it (``dataward.scale.ingest``); the rest is copied here."""
    if executor is None or not ws.objects.is_local or executor.workers < 2:
        return {}
    from dataward.scale.ingest import ingest_file

    out: dict[int, Ingested] = {}
    for i, item in enumerate(inputs):
        f = fmt or detect_format(item.name)
        try:
            size = item.path.stat().st_size
        except OSError:
            continue  # the streamed copy reports it
        if f not in LINE_FORMATS or size < INGEST_MIN_BYTES:
            continue
        got = ingest_file(executor, ws.objects, item.path, item.name, f)
        if got is None:
            continue  # the workers do not share this file system: it is streamed here
        if got.created:
            created.append(got.sha256)
        if got.digests is not None and got.digests.records_created:
            created_meta.append(got.digests.records_digest)
        if progress:
            progress(item.name, got.size)
        out[i] = got
    return out


def _record_digests_all(
    ws: Workspace,
    stored: Sequence[StoredFile],
    fmt: str | None,
    executor: Executor | None,
    warnings: list[str],
    done: dict[int, IngestedDigests] | None = None,
) -> list[RecordDigests | IngestedDigests]:
    done = done or {}
    todo = [i for i in range(len(stored)) if i not in done]
    got: dict[int, RecordDigests | IngestedDigests] = dict(done)
    if executor is not None and todo:  # record leaves in partitions on the executor (identical results)
        from dataward.scale.records import FileRef, partitioned_record_digests

        refs = [
            FileRef(stored[i].name, stored[i].sha256, stored[i].size, fmt or detect_format(stored[i].name))
            for i in todo
        ]
        got.update(zip(todo, partitioned_record_digests(executor, ws.objects, refs), strict=True))
    for i in todo:
        if i in got:
            continue
        s = stored[i]
        got[i] = record_digests(
            lambda s=s: ws.objects.open("quarantine", s.sha256),
            s.name,
            fmt or detect_format(s.name),
            file_sha256=s.sha256,
            strict=True,
        )
    digests = [got[i] for i in range(len(stored))]
    warnings.extend(w for rd in digests for w in rd.warnings)
    return digests


def _record_refusal(ws: Workspace, actor: Actor, source: str, paths: Sequence[Any], exc: Error) -> None:
    ws.record(
        actor,
        "batch.refuse",
        Subject.source(source),
        {"reason": exc.message, "paths": [str(p) for p in paths][:100]},
    )


def _create_batch(
    ws: Workspace,
    actor: Actor,
    source: str,
    stored: Sequence[StoredFile],
    digests: Sequence[RecordDigests | IngestedDigests],
    verification: dict[str, Any],
    warnings: list[str],
    executor: Executor | None = None,
    created_meta: list[str] | None = None,
) -> Batch:
    batch_id = new_batch_id()

    def put_meta(data: bytes) -> str:
        with ws.objects.open_writer() as w:
            w.write(data)
            digest = w.commit("meta")
        if w.created and created_meta is not None:
            created_meta.append(digest)  # list.append is atomic (called from the I/O threads too)
        return digest

    def leaves(rd: RecordDigests | IngestedDigests) -> bytes:
        # a file the workers hashed left its leaf list in the meta area, not here
        return rd.leaves if isinstance(rd, RecordDigests) else ws.objects.read_bytes("meta", rd.records_digest)

    def leaf_list_digest(s: StoredFile, rd: RecordDigests | IngestedDigests) -> Future[str] | str:
        if not isinstance(rd, RecordDigests):
            return rd.records_digest  # the workers stored it
        digest = hashlib.sha256(rd.leaves).hexdigest()
        if implied_leaf_list(s.sha256, digest) is not None:
            # an opaque file's list is its SHA-256's leaf, which the signed manifest names: readers derive it
            # and check it against this digest, so a durable object of it would cost an fsync per file and
            # assure nothing more (ADR 0100)
            return digest
        return io.submit(put_meta, rd.leaves)

    with ThreadPoolExecutor(IO_THREADS) as io:
        # record-digest lists are written (and fsynced) in parallel while the roots are computed here
        meta = [leaf_list_digest(s, rd) for s, rd in zip(stored, digests, strict=True)]
        file_roots = [merkle_root(executor, rd.leaves) if isinstance(rd, RecordDigests) else rd.root for rd in digests]
        if len(file_roots) == 1:
            root_bytes = file_roots[0]
        else:
            root_bytes = merkle_root(executor, b"".join(leaves(rd) for rd in digests))
        records_digests = [m if isinstance(m, str) else m.result() for m in meta]
    files: list[dict[str, Any]] = [
        {
            "name": s.name,
            "sha256": s.sha256,
            "size": s.size,
            "format": rd.format,
            "encoding": rd.encoding,
            "records": rd.count,
            "records_digest": records_digest,
            "merkle_root": file_root.hex(),
        }
        for s, rd, records_digest, file_root in zip(stored, digests, records_digests, file_roots, strict=True)
    ]
    record_count = sum(rd.count for rd in digests)
    root = root_bytes.hex()
    acquired_at = now_iso()
    predicate = {
        "batch": batch_id,
        "source": source,
        "acquired_by": actor.name,
        "acquired_at": acquired_at,
        "files": files,
        "record_count": record_count,
        "merkle_root": root,
        "record_digest": "rfc6962-leaf-sha256",
        "supplier_verification": verification,
        "warnings": warnings,
    }
    statement = dsse.make_statement([(f["name"], f["sha256"]) for f in files], dsse.PREDICATE_MANIFEST, predicate)
    envelope = dsse.sign_envelope(statement, actor.key)
    manifest_digest = put_meta(envelope.to_bytes())
    crash_point("acquire.before-commit")
    with ws.change(actor, "batch.acquire", Subject.batch(batch_id), source=source) as ch:
        # serialized with a failed concurrent attempt's clean-up: a shared object it removed must be re-delivered
        missing = sorted({s.name for s in stored if not ws.objects.exists("quarantine", s.sha256)})
        if missing:
            raise ConflictError(
                f"{', '.join(missing)[:200]}: removed from quarantine by a concurrent failed acquire",
                advice="Run the acquire again.",
            )
        insert_batch(
            ch.conn,
            Batch(
                batch_id,
                source,
                BatchState.QUARANTINED,
                manifest_digest,
                root,
                record_count,
                len(files),
                sum(f["size"] for f in files),
                acquired_at,
                actor.name,
                tuple(
                    BatchFile(
                        i,
                        f["name"],
                        f["sha256"],
                        f["size"],
                        f["format"],
                        f["records"],
                        f["records_digest"],
                        f["merkle_root"],
                    )
                    for i, f in enumerate(files)
                ),
            ),
        )
        ch.details.update(
            {
                "source": source,
                "manifest_sha256": manifest_digest,
                "merkle_root": root,
                "records": record_count,
                "files": len(files),
                "supplier_verification": verification["method"],
                "warnings": warnings[:20],
            }
        )
        if verification.get("unsigned_allowed"):
            ch.details["unsigned_allowed"] = {"reason": verification["reason"]}
    return get_batch(ws, batch_id)
