"""Parse untrusted data in a worker process with no network, resource limits and nothing of the workspace.

:func:`run_sandboxed` forks a worker that, before it calls the parsing function:

- closes every inherited file descriptor but stdio and its result pipe (no catalog handle, no key file);
- drops ``DATAWARD_*`` variables that name the workspace or principal from its environment;
- leaves the network: it unshares a network namespace where the OS allows it, and in every case replaces
  socket creation by a refusal, so a parser that tries to connect fails;
- sets resource limits: address space (``RLIMIT_AS``), CPU seconds, file size and open files.

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
import signal
import socket
import struct
import sys
from collections.abc import Callable
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


def _set_limits(lim: SandboxLimits) -> None:
    for which, value in (
        (resource.RLIMIT_AS, lim.memory_bytes),
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


def confine(lim: SandboxLimits, *, keep_fds: set[int] | None = None) -> None:
    """Confine the current process: close inherited descriptors (except ``keep_fds``), forget the workspace
    and secrets from the environment, leave the network and refuse sockets, apply ``lim``. One-way."""
    if keep_fds is not None:
        _close_fds(keep_fds)
    for var in ("DATAWARD_WORKSPACE", "DATAWARD_PRINCIPAL", "DATAWARD_PASSPHRASE", "DATAWARD_KEYRING"):
        os.environ.pop(var, None)
    _leave_network()
    _refuse_sockets()
    _set_limits(lim)


def _child(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wfd: int, lim: SandboxLimits) -> None:
    status = 0
    try:
        confine(lim, keep_fds={wfd})
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
    fn: Callable[..., T], *args: Any, where: str, limits: SandboxLimits | None = None, **kwargs: Any
) -> T:
    """Run ``fn(*args, **kwargs)`` in a sandboxed worker and return its result; ``where`` names the file
    for refusals. ``fn`` must be given only paths to data (never a workspace, catalog or key)."""
    if os.environ.get(ENV_DISABLE) == "0" or not hasattr(os, "fork"):
        return fn(*args, **kwargs)
    lim = limits or SandboxLimits.from_env()
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(rfd)
        _child(fn, args, kwargs, wfd, lim)
    os.close(wfd)
    try:
        data = _read_all(rfd)
    finally:
        os.close(rfd)
    _, status = os.waitpid(pid, 0)
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
