"""Parse untrusted data in a worker process with no network, resource limits and nothing of the workspace.

:func:`run_sandboxed` forks a worker that, before it calls the parsing function:

- closes every inherited file descriptor but stdio and its result pipe (no catalog handle, no key file);
- drops ``DATAWARD_*`` variables that name the workspace or principal from its environment;
- leaves the network: it unshares a network namespace where the OS allows it, and in every case replaces
  socket creation by a refusal, so a parser that tries to connect fails;
- sets resource limits: private memory (``RLIMIT_DATA``, with a wider address-space backstop
  ``RLIMIT_AS``), CPU seconds, file size and open files;
- sees only the data it parses: with Landlock (Linux 5.13+) it may read the files and directories it was
  given (and the targets of the links in them), Python's installation and the system libraries, and write
  only a private temporary directory; the catalog, key files and the rest of the workspace are out of
  reach. Where Landlock is unavailable a one-time warning says the worker is not confined to its files.

A crash (signal), limit hit, or unexpected exception in the worker is a :class:`SandboxError` naming the
file, never a dead CLI. The worker's result comes back through a restricted unpickler that only builds
dataward, numpy, pyarrow and builtin value types, so a subverted worker cannot make the parent run code.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import resource
import shutil
import signal
import socket
import struct
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dataward.errors import Error, InputError

T = TypeVar("T")

#: set to "0" to run parsers in-process (debugging only; documented in docs/records.md)
ENV_DISABLE = "DATAWARD_SANDBOX"


class SandboxError(InputError):
    """The worker parsing an untrusted file crashed, hit a resource limit or tried to reach the network."""

    default_advice = "The file is refused as hostile or broken; inspect it offline, or raise the sandbox limits."


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of the worker (environment: ``DATAWARD_SANDBOX_MEMORY_MB``, ``..._CPU_SECONDS``)."""

    memory_bytes: int = 4 << 30
    cpu_seconds: int = 600
    file_bytes: int = 1 << 30
    open_files: int = 256

    @classmethod
    def from_env(cls) -> SandboxLimits:
        """Defaults, overridden by ``DATAWARD_SANDBOX_MEMORY_MB`` and ``DATAWARD_SANDBOX_CPU_SECONDS``."""
        mem = os.environ.get("DATAWARD_SANDBOX_MEMORY_MB")
        cpu = os.environ.get("DATAWARD_SANDBOX_CPU_SECONDS")
        base = cls()
        try:
            return cls(
                memory_bytes=int(mem) << 20 if mem else base.memory_bytes,
                cpu_seconds=int(cpu) if cpu else base.cpu_seconds,
            )
        except ValueError:
            raise InputError("DATAWARD_SANDBOX_MEMORY_MB and DATAWARD_SANDBOX_CPU_SECONDS must be integers") from None


class NetworkRefused(OSError):
    """Raised in the sandbox worker for any attempt to create a socket."""


def _refuse_sockets() -> None:
    def refused(*_a: Any, **_k: Any) -> Any:
        raise NetworkRefused("network access is refused in the dataward sandbox")

    socket.socket = refused  # type: ignore[assignment,misc]
    socket.create_connection = refused
    socket.socketpair = refused
    socket.fromfd = refused
    with contextlib.suppress(ImportError):
        import _socket

        _socket.socket = refused  # type: ignore[assignment,misc]


def _leave_network() -> bool:
    """Unshare a network namespace (only loopback, down) where the OS allows it; True when done."""
    unshare = getattr(os, "unshare", None)
    flag = getattr(os, "CLONE_NEWNET", None)
    if unshare is None or flag is None:
        return False
    try:
        unshare(flag)
    except OSError:
        return False
    return True


def _close_fds(keep: set[int]) -> None:
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
    # a stream the parent had moved off its standard descriptor (a test runner capturing output) now names a
    # closed one: a library's warning printed there would crash the worker; it writes to fd 1 or 2 instead
    for name, std in (("stdout", 1), ("stderr", 2)):
        try:
            moved = getattr(sys, name).fileno() not in keep | {0, 1, 2}
        except (AttributeError, ValueError, OSError):
            moved = False  # no descriptor at all (an in-memory stream): nothing was closed under it
        if moved:
            setattr(sys, name, io.TextIOWrapper(io.FileIO(std, "w", closefd=False), line_buffering=True))


#: the address-space backstop is this many times the memory limit (see :func:`_set_limits`)
ADDRESS_SPACE_FACTOR = 4


def _set_limits(lim: SandboxLimits) -> None:
    # Memory is bounded by RLIMIT_DATA, the private writable mappings: every heap, numpy buffer and thread
    # stack, i.e. what can exhaust the host. RLIMIT_AS also counts address space that costs no memory (the
    # libraries' code, allocator arenas reserved per thread, BLAS buffers), so as the bound it refused
    # legitimate work far below the limit; it stays as a wide backstop for mappings RLIMIT_DATA ignores.
    for which, value in (
        (resource.RLIMIT_DATA, lim.memory_bytes),
        (resource.RLIMIT_AS, ADDRESS_SPACE_FACTOR * lim.memory_bytes),
        (resource.RLIMIT_CPU, lim.cpu_seconds),
        (resource.RLIMIT_FSIZE, lim.file_bytes),
        (resource.RLIMIT_NOFILE, lim.open_files),
    ):
        with contextlib.suppress(ValueError, OSError):
            _soft, hard = resource.getrlimit(which)
            new = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (new, hard))


_VALUE_MODULES = ("dataward", "numpy", "collections", "datetime", "decimal", "pathlib", "enum")
_ALLOWED_BUILTINS = frozenset(
    {"set", "frozenset", "tuple", "list", "dict", "bytes", "bytearray", "complex", "slice", "range", "object"}
)
#: functions (not classes) a result may need to be rebuilt: numpy's array reconstructors, copyreg's
_ALLOWED_FUNCTIONS = frozenset(
    {
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
    }
)


class _ResultUnpickler(pickle.Unpickler):
    """Builds only values: classes of dataward, numpy and the standard library's value modules, builtin
    containers, and numpy's array reconstructors; never a function that could run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_FUNCTIONS or (module == "builtins" and name in _ALLOWED_BUILTINS):
            return super().find_class(module, name)
        if module.split(".")[0] in _VALUE_MODULES:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} may not come out of the sandbox")


def load_values(data: bytes) -> Any:
    """Unpickle what a worker process sent back, building only values (see :class:`_ResultUnpickler`)."""
    return _ResultUnpickler(io.BytesIO(data)).load()


def read_all(fd: int) -> bytes:
    """Every byte from ``fd`` until its end (a worker's result pipe)."""
    return _read_all(fd)


def _error_class(module: str, qualname: str) -> type[Error]:
    """The dataward error class the worker raised (looked up among loaded subclasses, never imported)."""
    todo: list[type[Error]] = [Error]
    while todo:
        cls = todo.pop()
        if cls.__module__ == module and cls.__qualname__ == qualname:
            return cls
        todo.extend(cls.__subclasses__())
    return InputError


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        block = os.read(fd, 1 << 20)
        if not block:
            return b"".join(chunks)
        chunks.append(block)


#: system paths a Python worker may need to read after the fork: shared libraries (lazy imports of native
#: modules), time zones, locales, CPU topology and cgroup quotas (thread pools size themselves by them)
_SYSTEM_READ_EXEC = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache")
_SYSTEM_READ = (
    "/usr/share/zoneinfo",
    "/etc/localtime",
    "/usr/lib/locale",
    "/dev/urandom",
    "/dev/random",
    "/proc/self",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
)


def python_paths() -> list[str]:
    """Python's own installation: prefixes, standard library, site-packages and the dataward package's root
    (never the current directory or arbitrary ``PYTHONPATH`` entries, which may hold a workspace)."""
    import site

    import dataward

    out = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    out.update(v for k, v in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib"))
    with contextlib.suppress(AttributeError):
        out.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        out.add(site.getusersitepackages())
    out.update(p for p in sys.path if p and os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages"))
    out.add(os.path.dirname(os.path.dirname(os.path.abspath(dataward.__file__))))
    return sorted(p for p in out if p and os.path.isabs(p))


def data_paths(values: Iterable[Any]) -> list[str]:
    """The files and directories named among ``values`` (str or path-like, or lists of them) that exist,
    with the targets of the links in the directories (a batch is given as a directory of links to its
    objects): what a sandboxed parser is allowed to read."""
    out: set[str] = set()
    todo: list[Any] = list(values)
    while todo:
        v = todo.pop()
        if isinstance(v, list | tuple):
            todo.extend(x for x in v if isinstance(x, str | os.PathLike))
            continue
        if not isinstance(v, str | os.PathLike) or not str(v) or "\x00" in str(v):
            continue
        p = os.path.abspath(os.fspath(v))
        if not os.path.exists(p):
            continue
        out.add(p)
        out.add(os.path.realpath(p))
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                for name in dirs + files:
                    full = os.path.join(root, name)
                    if os.path.islink(full):
                        out.add(os.path.realpath(full))
    return sorted(out)


_warned_unconfined = False


def _warn_unconfined(why: str) -> None:
    global _warned_unconfined
    if not _warned_unconfined:
        _warned_unconfined = True
        sys.stderr.write(
            f"dataward: warning: the parsing sandbox is not confined to its files ({why}); "
            "it has no network, no inherited descriptors and resource limits, but can read what you can\n"
        )


def filesystem_confinement() -> str:
    """How the sandbox confines the filesystem here: ``landlock ABI <n>``, or why it cannot."""
    from dataward.records._landlock import abi_version

    abi = abi_version()
    return f"landlock ABI {abi}" if abi else "not confined: Landlock is not available in this kernel"


def confine(
    lim: SandboxLimits,
    *,
    keep_fds: set[int] | None = None,
    read_paths: Sequence[str] | None = None,
    scratch: str | None = None,
) -> bool:
    """Confine the current process: close inherited descriptors (except ``keep_fds``), forget the workspace
    and secrets from the environment, leave the network and refuse sockets, apply ``lim``; with
    ``read_paths``, restrict the filesystem (Landlock) to reading those paths, Python and the system
    libraries, and writing ``scratch``. One-way. Returns whether the filesystem is confined."""
    if keep_fds is not None:
        _close_fds(keep_fds)
    for var in ("DATAWARD_WORKSPACE", "DATAWARD_PRINCIPAL", "DATAWARD_PASSPHRASE", "DATAWARD_KEYRING"):
        os.environ.pop(var, None)
    _leave_network()
    _refuse_sockets()
    confined = False
    if read_paths is not None:
        from dataward.records._landlock import restrict

        if scratch:
            for var in ("TMPDIR", "TEMP", "TMP", "JOBLIB_TEMP_FOLDER"):
                os.environ[var] = scratch
            tempfile.tempdir = scratch
        # process pools cannot make their semaphores in a confined worker (no /dev/shm): run serial, quietly
        os.environ.setdefault("JOBLIB_MULTIPROCESSING", "0")
        try:
            restrict(
                [*read_paths, *_SYSTEM_READ],
                read_exec=[*python_paths(), *_SYSTEM_READ_EXEC],
                full=["/dev/null", *([scratch] if scratch else [])],
            )
            confined = True
        except OSError:
            confined = False
    _set_limits(lim)
    return confined


def _child(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    wfd: int,
    lim: SandboxLimits,
    read_paths: Sequence[str] | None,
    scratch: str | None,
) -> None:
    status = 0
    try:
        if not confine(lim, keep_fds={wfd}, read_paths=read_paths, scratch=scratch) and read_paths is not None:
            _warn_unconfined("Landlock refused the ruleset")
        try:
            payload = ("ok", fn(*args, **kwargs))
        except Error as exc:
            payload = ("error", (type(exc).__module__, type(exc).__qualname__, exc.message, exc.advice))
        except NetworkRefused as exc:
            payload = ("network", str(exc))
        except MemoryError:
            payload = ("memory", "")
        except RecursionError:
            payload = ("crash", "RecursionError")
        except Exception as exc:
            payload = ("crash", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        try:
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps(("crash", f"unpicklable result: {type(exc).__name__}"))
        with io.FileIO(wfd, "w", closefd=True) as out:
            out.write(struct.pack("<Q", len(data)))
            out.write(data)
    except BaseException:
        status = 70
    finally:
        os._exit(status)


def run_sandboxed(
    fn: Callable[..., T],
    *args: Any,
    where: str,
    limits: SandboxLimits | None = None,
    allow_read: Sequence[str | os.PathLike[str]] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a sandboxed worker and return its result; ``where`` names the file
    for refusals. ``fn`` must be given only paths to data (never a workspace, catalog or key).

    The worker may read ``allow_read`` (default: the existing paths among ``args`` and ``kwargs``, and the
    targets of the links in the directories among them), and nothing else of the filesystem but Python
    and the system libraries."""
    if os.environ.get(ENV_DISABLE) == "0" or not hasattr(os, "fork"):
        return fn(*args, **kwargs)
    lim = limits or SandboxLimits.from_env()
    read = data_paths(allow_read if allow_read is not None else [*args, *kwargs.values()])
    from dataward.records._landlock import abi_version

    scratch: str | None = None
    if abi_version() > 0:
        scratch = tempfile.mkdtemp(prefix="dataward-sandbox-")
    else:
        _warn_unconfined("Landlock is not available in this kernel")
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            os.close(rfd)
            _child(fn, args, kwargs, wfd, lim, read if scratch else None, scratch)
        os.close(wfd)
        try:
            data = _read_all(rfd)
        finally:
            os.close(rfd)
        _, status = os.waitpid(pid, 0)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = "CPU time limit" if sig == signal.SIGXCPU else f"crashed with {name}"
        raise SandboxError(f"{where}: the sandboxed parser {why}; the file is refused")
    if len(data) < 8:
        raise SandboxError(f"{where}: the sandboxed parser died without a result (exit {os.WEXITSTATUS(status)})")
    (n,) = struct.unpack("<Q", data[:8])
    try:
        kind, value = _ResultUnpickler(io.BytesIO(data[8 : 8 + n])).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise SandboxError(f"{where}: the sandboxed parser returned something that is not a result ({exc})") from None
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if kind == "error":
        module, qualname, message, advice = value
        raise _error_class(str(module), str(qualname))(str(message), advice=str(advice))
    if kind == "network":
        raise SandboxError(f"{where}: the parser tried to open a network socket; the file is refused")
    if kind == "memory":
        raise SandboxError(
            f"{where}: the sandboxed parser ran out of memory (limit {lim.memory_bytes >> 20} MiB); "
            "the file is refused",
            advice="Raise DATAWARD_SANDBOX_MEMORY_MB if the file is legitimate.",
        )
    raise SandboxError(f"{where}: the sandboxed parser failed ({value}); the file is refused")
