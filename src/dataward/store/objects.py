"""Content-addressed object store over fsspec (a local directory through ``os`` directly).

Objects are named by the SHA-256 of their bytes, stored under an *area* (``quarantine`` for deliveries
not yet approved, ``released`` for data in a dataset version, ``meta`` for manifests and record-digest
lists). Writes go to a temporary name and are renamed into place; objects are made read-only once written
(on local disks). Readers re-hash what they read when integrity matters (``verify``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from dataward.errors import IntegrityError, NotFoundError, storage_error

if TYPE_CHECKING:
    import fsspec

AREAS = ("quarantine", "released", "meta")
#: URL schemes of a local directory (fsspec's names for it); a URL without a scheme is a local path too
LOCAL_SCHEMES = ("file", "local")
CHUNK = 1 << 20
#: a write at least this large starts its own writeback (smaller ones are left to the commit's fsync)
WRITEBACK_MIN = 256 << 10
#: chunk of :meth:`ObjectWriter.copy_from` when it writes around the page cache (a multiple of ALIGN)
DIRECT_CHUNK = 4 << 20
#: address and length alignment of an O_DIRECT write (the largest logical block size in common use)
ALIGN = 4096


@functools.cache
def _writeback_starter() -> Callable[[int, int], object] | None:
    """``start(fd, offset)``: ask the kernel to begin writing the file's dirty pages from ``offset`` on to the
    device, without waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``); None where the C library
    lacks it. Left alone, the pages of a large copy sit dirty in the page cache until the commit's fsync, so
    the disk idles during the copy and then every fsync writes its whole file; started chunk by chunk, the
    writeback overlaps the copy. It is only a head start: durability still comes from the fsync in
    :meth:`ObjectWriter.commit` (this call makes nothing durable and its failure is ignored)."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, ImportError):  # pragma: no cover - not Linux/glibc
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    sync_file_range_write = 2  # SYNC_FILE_RANGE_WRITE; nbytes 0 below: up to the end of the file
    return lambda fd, offset: fn(fd, offset, 0, sync_file_range_write)


def _check_digest(digest: str) -> str:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise NotFoundError(f"{digest[:70]!r} is not a SHA-256 object name")
    return digest


def _local_root(url: str) -> str | None:
    """The directory of a local store URL (a path, or ``file://``/``local://``), else None."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url
    elif scheme not in LOCAL_SCHEMES:
        return None
    return os.path.abspath(os.path.expanduser(rest)).rstrip("/") or "/"


class ObjectStore:
    """A content-addressed store rooted at an fsspec URL (a local directory by default).

    A local store does its reads and writes through ``os`` and fsspec is imported only when ``fs`` is first
    asked for (``dataward doctor``'s scan): its import was a tenth of an acquire's start-up (ADR 0100)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        local_root = None if storage_options else _local_root(url)
        self._fs: fsspec.AbstractFileSystem | None = None
        if local_root is None:
            import fsspec

            self._fs, root = fsspec.core.url_to_fs(url, **storage_options)
            protocol = self._fs.protocol
            self._local = "file" in (protocol if isinstance(protocol, tuple) else (protocol,))
            local_root = root.rstrip("/")
        else:
            self._local = True
        self.root: str = local_root
        self.url = url

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """The store's fsspec filesystem (for a local store, made on first use)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem("file")
        return self._fs

    # naming ---------------------------------------------------------------------------------------
    def path(self, area: str, digest: str) -> str:
        """Location of object ``digest`` in ``area`` (fanned out by the first two hex
        digits); raises ``ValueError`` on an unknown area or a malformed digest.
        """
        if area not in AREAS:
            raise ValueError(f"unknown object area {area!r}")
        d = _check_digest(digest)
        return f"{self.root}/{area}/{d[:2]}/{d}"

    def _tmp_path(self) -> str:
        return f"{self.root}/incoming/{secrets.token_hex(16)}"

    def exists(self, area: str, digest: str) -> bool:
        """True when an object named ``digest`` is stored in ``area``."""
        if self._local:
            return os.path.exists(self.path(area, digest))
        return bool(self.fs.exists(self.path(area, digest)))

    # writing --------------------------------------------------------------------------------------
    def open_writer(self) -> ObjectWriter:
        """A writer that hashes as it writes; ``commit(area)`` renames it into place under its digest."""
        return ObjectWriter(self)

    def put_bytes(self, area: str, data: bytes) -> str:
        """Store ``data`` in ``area`` and return its SHA-256 hex digest, which names it."""
        with self.open_writer() as w:
            w.write(data)
            return w.commit(area)

    def _publish(self, tmp: str, area: str, digest: str) -> bool:
        """Rename ``tmp`` into place; False when the object already existed (content-addressed: shared)."""
        final = self.path(area, digest)
        if not self._local:
            if self.fs.exists(final):
                self.fs.rm(tmp)
                return False
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(tmp, final)
            return True
        if os.path.exists(final):
            os.remove(tmp)
            return False
        os.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)  # atomic on one filesystem
        return True

    def remove(self, area: str, digest: str) -> None:
        """Delete an object (only for objects nothing references: the caller checks the catalog)."""
        with contextlib.suppress(FileNotFoundError):
            if self._local:
                os.remove(self.path(area, digest))
            else:
                self.fs.rm(self.path(area, digest))

    def copy(self, src_area: str, dst_area: str, digest: str) -> None:
        """Copy an object between areas, re-hashing it on the way (no unverified bytes move)."""
        with self.open_writer() as w:
            for chunk in self.iter_chunks(src_area, digest):
                w.write(chunk)
            got = w.commit(dst_area, expect=digest)
        assert got == digest

    # reading --------------------------------------------------------------------------------------
    def open(self, area: str, digest: str) -> IO[bytes]:
        """Open the object for binary reading; raises :class:`NotFoundError` if it is missing."""
        p = self.path(area, digest)
        try:
            f: IO[bytes] = open(p, "rb") if self._local else self.fs.open(p, "rb")  # noqa: SIM115 - the caller's
        except FileNotFoundError:
            raise NotFoundError(f"object {digest[:16]}... is missing from the {area} store") from None
        return f

    def iter_chunks(self, area: str, digest: str) -> Iterator[bytes]:
        """The object's bytes in chunks, for streaming without loading
        it whole; raises :class:`NotFoundError` if it is missing.
        """
        with self.open(area, digest) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def read_bytes(self, area: str, digest: str, *, verify: bool = True) -> bytes:
        """The whole object; with ``verify`` raises :class:`IntegrityError`
        if its content no longer matches its digest.
        """
        with self.open(area, digest) as f:
            data = f.read()
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"object {digest[:16]}... in the {area} store does not match its name")
        return data

    def local_path(self, area: str, digest: str) -> str | None:
        """The object's path on the local disk, if the store is local (for zero-copy readers)."""
        return self.path(area, digest) if self._local else None

    @property
    def is_local(self) -> bool:
        """Whether the store is a local directory (objects can be filled by byte range, ``pwrite``)."""
        return self._local

    def scratch_path(self) -> str:
        """A fresh temporary path under ``incoming/`` (local stores), for intermediate files of one write;
        the caller removes it (``dataward doctor --fix`` collects what a crash leaves)."""
        if not self._local:
            raise ValueError("scratch files need a local object store")
        tmp = self._tmp_path()
        os.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        return tmp

    def preallocate(self, size: int) -> PreallocatedObject:
        """A temporary object of ``size`` bytes that several processes fill by byte range (local stores)."""
        return PreallocatedObject(self, size)


_buffers = threading.local()


def _copy_buffer() -> memoryview:
    """This thread's copy buffer (DIRECT_CHUNK bytes, page-aligned), made once: fresh memory for every
    file would cost a page fault per page touched, more than the copy of those pages itself."""
    mem = getattr(_buffers, "mem", None)
    if mem is None:
        import mmap

        mem = _buffers.mem = mmap.mmap(-1, DIRECT_CHUNK)  # page-aligned, as O_DIRECT needs
    return memoryview(mem)


def _direct(fd: int, flags: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for ``fd`` (``flags``: its status flags without it); returns ``on``."""
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags)
    return on


class ObjectWriter:
    """Writes a temporary object while hashing it; nothing is visible under a digest before ``commit``."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._tmp = store._tmp_path()
        self._done = False
        try:
            if store._local:
                os.makedirs(self._tmp.rsplit("/", 1)[0], exist_ok=True)
                self._f: IO[bytes] = open(self._tmp, "wb")  # noqa: SIM115 - closed by commit or abort
            else:
                store.fs.makedirs(self._tmp.rsplit("/", 1)[0], exist_ok=True)
                self._f = store.fs.open(self._tmp, "wb")
        except OSError as exc:
            self._done = True
            raise storage_error(self._tmp.rsplit("/", 1)[0], exc, "write to the object store at") from None
        self._h = hashlib.sha256()
        self.size = 0
        self.created = False  # set by commit: this writer made the object (it did not exist before)
        self._writeback = _writeback_starter() if store._local else None

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` to the object and its running hash; on an OS error aborts and raises a storage error."""
        self._h.update(data)
        try:
            self._f.write(data)
        except OSError as exc:
            self.abort()
            raise storage_error(self._tmp.rsplit("/", 1)[0], exc, "write to the object store at") from None
        if self._writeback is not None and len(data) >= WRITEBACK_MIN:
            # a write this large bypassed the file object's buffer: its bytes are in the kernel now
            self._writeback(self._f.fileno(), self.size & ~0xFFF)
        self.size += len(data)

    def copy_from(
        self, src: IO[bytes], *, direct: bool = False, on_chunk: Callable[[int], object] | None = None
    ) -> None:
        """Append everything ``src`` reads to its end, hashing it on the way; ``on_chunk(n)`` after each chunk.

        With ``direct`` on a local store, the bytes go to the disk around the page cache (``O_DIRECT``): one
        copy fewer, and no dirty pages for the commit's fsync to write out (it still flushes the metadata and
        the device's cache: durability is unchanged). For objects nothing reads again soon (a later read
        comes from the disk); a file system that refuses ``O_DIRECT`` gets ordinary writes. A read error is
        raised as is (the caller words it); a write error aborts and raises a storage error.
        """
        fd = self._f.fileno() if self._store._local else -1
        view = _copy_buffer()
        try:
            if not direct or fd < 0 or not hasattr(os, "O_DIRECT"):
                while n := src.readinto(view):  # type: ignore[attr-defined]
                    with view[:n] as chunk:
                        self.write(chunk)
                    if on_chunk is not None:
                        on_chunk(n)
                return
            self._copy_direct(src, view, fd, on_chunk)
        finally:
            # a traceback may still hold a slice of it; the buffer itself stays for the thread's next copy
            with contextlib.suppress(BufferError):
                view.release()

    def _copy_direct(self, src: IO[bytes], view: memoryview, fd: int, on_chunk: Callable[[int], object] | None) -> None:
        import fcntl

        self._f.flush()  # nothing buffered: from here on the descriptor is written directly
        flags = fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT
        try:
            aligned = _direct(fd, flags, True)
        except OSError:  # the file system does not do O_DIRECT
            aligned = False
        while n := src.readinto(view):  # type: ignore[attr-defined]
            with view[:n] as chunk:
                self._h.update(chunk)
                if aligned and n % ALIGN:  # the tail: an O_DIRECT write must be whole blocks
                    aligned = _direct(fd, flags, False)
                aligned = self._write_all(fd, chunk, aligned, flags)
            self.size += n
            if on_chunk is not None:
                on_chunk(n)
        if aligned:
            _direct(fd, flags, False)

    def _write_all(self, fd: int, chunk: memoryview, aligned: bool, flags: int) -> bool:
        """Write all of ``chunk`` at the descriptor's offset; returns whether O_DIRECT is still on."""
        done = 0
        try:
            while done < len(chunk):
                try:
                    done += os.write(fd, chunk[done:])
                except OSError as exc:
                    if not aligned or exc.errno != errno.EINVAL:
                        raise
                    aligned = _direct(fd, flags, False)  # the device refused the alignment: write normally
                    continue
                if aligned and done % ALIGN:  # a short direct write: the rest is not aligned any more
                    aligned = _direct(fd, flags, False)
        except OSError as exc:
            self.abort()
            raise storage_error(self._tmp.rsplit("/", 1)[0], exc, "write to the object store at") from None
        return aligned

    def hexdigest(self) -> str:
        """SHA-256 hex of the bytes written so far."""
        return self._h.hexdigest()

    def commit(self, area: str, *, expect: str | None = None) -> str:
        """Flush, fsync (local stores) and publish the written bytes in ``area`` under their digest, which is returned;
        raises :class:`IntegrityError` if ``expect`` is given and differs, and a storage error if writing fails.
        """
        try:
            self._f.flush()
            if self._store._local:
                os.fsync(self._f.fileno())
            self._f.close()
        except OSError as exc:
            self.abort()
            raise storage_error(self._tmp.rsplit("/", 1)[0], exc, "write to the object store at") from None
        digest = self._h.hexdigest()
        if expect is not None and digest != expect:
            self.abort()
            raise IntegrityError(f"object {expect[:16]}... changed while it was copied (now {digest[:16]}...)")
        try:
            self.created = self._store._publish(self._tmp, area, digest)
        except OSError as exc:
            self.abort()
            raise storage_error(self._store.path(area, digest), exc, "publish the object") from None
        self._done = True
        return digest

    def abort(self) -> None:
        """Discard the partial object; safe to call more than once and after a failed write."""
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):  # a full disk can fail the close too; the rm must still run
                if not self._f.closed:
                    self._f.close()
            with contextlib.suppress(OSError):
                if self._store._local:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self._tmp)
                elif self._store.fs.exists(self._tmp):
                    self._store.fs.rm(self._tmp)

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class PreallocatedObject:
    """A temporary local object of a known size, filled by byte range (``os.pwrite``) from any process that
    reaches the path; nothing is visible under a digest before ``commit``. The writers hash what they wrote
    (the digest names the object): ``commit`` trusts the digest it is given, as the caller's workers do."""

    def __init__(self, store: ObjectStore, size: int) -> None:
        self._store = store
        self.path = store.scratch_path()
        self.size = size
        self.created = False
        self._done = False
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.ftruncate(fd, size)  # sparse: the writers' ranges fill it
            finally:
                os.close(fd)
        except OSError as exc:
            self._done = True
            with contextlib.suppress(OSError):
                os.remove(self.path)
            raise storage_error(self.path.rsplit("/", 1)[0], exc, "write to the object store at") from None

    def sync(self) -> None:
        """fsync what the writers have written so far (lets the disk work while they still hash)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error(self.path.rsplit("/", 1)[0], exc, "write to the object store at") from None

    def commit(self, area: str, digest: str) -> str:
        """fsync the filled object and publish it in ``area`` under ``digest`` (which is returned)."""
        _check_digest(digest)
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                if os.fstat(fd).st_size != self.size:
                    raise IntegrityError(f"a temporary object changed size ({self.size} bytes expected)")
                os.fsync(fd)
            finally:
                os.close(fd)
            self.created = self._store._publish(self.path, area, digest)
        except OSError as exc:
            self.abort()
            raise storage_error(self._store.path(area, digest), exc, "publish the object") from None
        except BaseException:
            self.abort()
            raise
        self._done = True
        return digest

    def abort(self) -> None:
        """Discard the temporary object; safe to call more than once and after ``commit``."""
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                os.remove(self.path)

    def __enter__(self) -> PreallocatedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
