"""A static pickle reader: :func:`pickletools.genops` with a shadow stack and memo, never a load.

The shadow machine keeps just enough of each value to judge the pickle: string and number constants,
tuples, lists and dicts of shadow values, the globals it imports, and the calls it would make (``REDUCE``,
``NEWOBJ``, ``OBJ``, ``INST``) with their arguments and ``BUILD`` state. That is what lets ``STACK_GLOBAL``
operands be resolved through memo and ``POP`` tricks, the persistent ids of torch storages be read, and
joblib's ``NumpyArrayWrapper`` segments (raw array bytes between opcodes) be skipped by their exact size.
"""

from __future__ import annotations

import io
import math
import pickletools
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

#: opcodes a pickle may hold before the reader gives up (a bound on time, far above any real checkpoint)
MAX_OPCODES = 50_000_000
_DUNDER = re.compile(r"^__\w+__$")
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_NUMBER_OPS = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"})
_BYTES_OPS = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"})


class Unknown:
    """A value the shadow machine does not model (it can never name a global)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "?"


class _Mark:
    __slots__ = ()


UNKNOWN, _MARK = Unknown(), _Mark()


@dataclass(frozen=True)
class Global:
    """A global the pickle imports: ``module.name`` at byte ``offset``."""

    module: str
    name: str
    offset: int

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """The object a call opcode would create: ``func(*args)`` and, after ``BUILD``, its state."""

    func: Any
    args: Any
    state: Any = None


@dataclass
class Problem:
    """One reason a pickle cannot pass: ``kind`` (stable) and a sentence naming the byte offset."""

    kind: str
    detail: str


@dataclass
class PickleReading:
    """What the static reader saw in one pickle (``end``: offset just after its STOP)."""

    globals: list[Global] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    end: int = 0
    complete: bool = False
    value: Any = UNKNOWN
    persistent_ids: list[Any] = field(default_factory=list)
    joblib_arrays: int = 0
    nested: list[PickleReading] = field(default_factory=list)

    def all_globals(self) -> list[Global]:
        out = list(self.globals)
        for n in self.nested:
            out.extend(n.all_globals())
        return out

    def all_problems(self) -> list[Problem]:
        out = list(self.problems)
        for n in self.nested:
            out.extend(n.all_problems())
        return out


class BufferReader(io.RawIOBase):
    """A seekable read-only file over a buffer (bytes or mmap) that never copies the whole of it."""

    def __init__(self, data: Any) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._find = getattr(data, "find", None)  # bytes and mmap search in C
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        out = bytes(self._view[self._pos : end])
        self._pos = max(self._pos, end)
        return out

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def readline(self, size: int | None = -1) -> bytes:
        limit = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        if self._find is not None:
            hit = self._find(b"\n", self._pos, limit)
            end = limit if hit < 0 else hit + 1
        else:
            end = self._pos
            while end < limit and self._view[end] != 0x0A:
                end += 1
            end = min(end + 1, limit)
        return self.read(end - self._pos)

    def close(self) -> None:
        self._view.release()
        super().close()


class _Malformed(Exception):
    pass


def _is_global(v: Any, ref: tuple[str, str]) -> bool:
    return isinstance(v, Global) and (v.module, v.name) == ref


def shadow_dtype(value: Any) -> Any:
    """The numpy dtype a shadow ``numpy.dtype(...)`` call (with its BUILD state) stands for, by numpy's rules.

    Raises ValueError when it cannot be resolved exactly (then the caller fails closed).
    """
    import numpy as np

    if not (isinstance(value, Call) and isinstance(value.func, Global) and value.func.name == "dtype"):
        raise ValueError("not a numpy dtype")
    if value.func.module not in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
        raise ValueError(f"dtype built by {value.func.dotted}")
    args = value.args
    if not isinstance(args, tuple) or not args or not isinstance(args[0], str):
        raise ValueError("dtype arguments are not a type code")
    base = np.dtype(args[0])
    state = value.state
    if state is None:
        return base
    if not isinstance(state, tuple) or len(state) < 8:
        raise ValueError("dtype state is not numpy's 8-tuple")
    _version, order, subarray, names, fields, elsize, _align, _flags = state[:8]
    if subarray is not None:
        if not (isinstance(subarray, tuple) and len(subarray) == 2):
            raise ValueError("malformed subarray")
        sub = shadow_dtype(subarray[0])
        shape = subarray[1]
        if not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape):
            raise ValueError("malformed subarray shape")
        return np.dtype((sub, shape))
    if names is not None:
        if not isinstance(names, tuple) or not isinstance(fields, dict) or not isinstance(elsize, int):
            raise ValueError("malformed structured dtype")
        formats, offsets = [], []
        for n in names:
            entry = fields.get(n)
            if not isinstance(entry, tuple) or len(entry) < 2 or not isinstance(entry[1], int):
                raise ValueError(f"malformed field {n!r}")
            formats.append(shadow_dtype(entry[0]))
            offsets.append(entry[1])
        return np.dtype({"names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize})
    if isinstance(order, str) and order in "<>|=" and base.itemsize > 1:
        return base.newbyteorder(cast(Any, order))
    return base


_STR_TYPES = (("builtins", "str"), ("__builtin__", "str"))


def _may_be_str(v: Any) -> bool:
    """Whether a shadow value could be a ``str`` when the pickle is really loaded (a computed name)."""
    if isinstance(v, str | Unknown):
        return True
    if not isinstance(v, Call):
        return False  # numbers, tuples, lists, dicts, globals, marks: never a str
    if isinstance(v.func, Call | Unknown):
        return True
    if any(_is_global(v.func, t) for t in _STR_TYPES):
        return True
    if _is_global(v.func, ("copyreg", "_reconstructor")) and isinstance(v.args, tuple) and v.args:
        return any(_is_global(v.args[0], t) for t in _STR_TYPES) or isinstance(v.args[0], Call | Unknown)
    return False  # any other call builds an instance of the class it names, or fails the allow-list itself


def _is_joblib_wrapper(call: Call) -> bool:
    # protocol 2+: NEWOBJ(NumpyArrayWrapper); protocols 0-1: copyreg._reconstructor(NumpyArrayWrapper, ...)
    if _is_global(call.func, _JOBLIB_WRAPPER):
        return True
    return (
        _is_global(call.func, ("copyreg", "_reconstructor"))
        and isinstance(call.args, tuple)
        and bool(call.args)
        and _is_global(call.args[0], _JOBLIB_WRAPPER)
    )


def _joblib_array_size(wrapper: Call) -> tuple[bool, int, bool]:
    """(has object dtype, raw byte count, alignment byte present) of a NumpyArrayWrapper's state."""
    state = wrapper.state
    if not isinstance(state, dict):
        raise ValueError("NumpyArrayWrapper state is not a dict")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise ValueError("NumpyArrayWrapper shape is not a tuple of sizes")
    dtype = shadow_dtype(state.get("dtype"))
    aligned = state.get("numpy_array_alignment_bytes", None) is not None
    count = math.prod(shape) if shape else 1
    return bool(dtype.hasobject), count * int(dtype.itemsize), aligned


def read_pickle(
    data: bytes,
    start: int = 0,
    *,
    joblib: bool = False,
    on_nested: Callable[[bytes, int], PickleReading] | None = None,
    depth: int = 0,
) -> PickleReading:
    """Statically read one pickle from ``data[start:]``; never loads it.

    With ``joblib`` the reader follows joblib's unpickler: after ``BUILD`` of a ``NumpyArrayWrapper`` it
    skips the padding and exactly the raw array bytes (or reads the nested object-array pickle).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pickletools on odd STRING escapes
        return _read(data, start, joblib=joblib, on_nested=on_nested, depth=depth)


def _read(
    data: bytes,
    start: int = 0,
    *,
    joblib: bool = False,
    on_nested: Callable[[bytes, int], PickleReading] | None = None,
    depth: int = 0,
) -> PickleReading:
    """The reader behind :func:`read_pickle`."""
    out = PickleReading()
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    stream = BufferReader(data)
    stream.seek(start)

    def problem(kind: str, detail: str) -> None:
        out.problems.append(Problem(kind, detail))

    def pop() -> Any:
        if not stack:
            raise _Malformed("stack underflow")
        return stack.pop()

    def pop_mark() -> list[Any]:
        items: list[Any] = []
        while True:
            v = pop()
            if v is _MARK:
                items.reverse()
                return items
            items.append(v)

    def top() -> Any:
        if not stack:
            raise _Malformed("stack underflow")
        return stack[-1]

    n_ops = 0
    pos = start
    try:
        for opcode, arg, pos_ in pickletools.genops(cast(IO[bytes], stream)):
            pos = int(pos_) if pos_ is not None else pos
            n_ops += 1
            if n_ops > MAX_OPCODES:
                problem("too_many_opcodes", f"more than {MAX_OPCODES:,} opcodes from byte {start}")
                return out
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, gname = str(arg).partition(" ")
                g = Global(module, gname, pos)
                out.globals.append(g)
                if name == "INST":
                    stack.append(Call(g, tuple(pop_mark())))
                else:
                    stack.append(g)
            elif name == "STACK_GLOBAL":
                gname, module = pop(), pop()
                if not isinstance(gname, str) or not isinstance(module, str):
                    if not all(_may_be_str(v) for v in (gname, module)):
                        # tuples, numbers, globals...: never a string at load time, so pickle.load raises here
                        raise _Malformed(f"STACK_GLOBAL at byte {pos} on operands that are not strings")
                    problem(
                        "unresolved_global",
                        f"STACK_GLOBAL at byte {pos} imports a name computed at load time (not a string constant)",
                    )
                    stack.append(UNKNOWN)
                else:
                    g = Global(module, gname, pos)
                    out.globals.append(g)
                    stack.append(g)
            elif name in ("EXT1", "EXT2", "EXT4"):
                problem("extension_opcode", f"{name} at byte {pos} imports through the copyreg extension registry")
                stack.append(UNKNOWN)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, arg)] = top()
            elif name == "MEMOIZE":
                memo[len(memo)] = top()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if cast(int, arg) not in memo:
                    raise _Malformed(f"memo key {arg} read before it was stored")
                stack.append(memo[cast(int, arg)])
            elif name in _STRING_OPS:
                text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                if _DUNDER.match(text):
                    problem("dunder_name", f"string {text!r} at byte {pos}: dunder attributes have no place in weights")
                stack.append(text)
            elif name in _NUMBER_OPS:
                stack.append(arg)
            elif name in _BYTES_OPS:
                stack.append(bytes(arg) if arg is not None else UNKNOWN)
            elif name in ("NONE",):
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("EMPTY_TUPLE",):
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                items = [pop() for _ in range(k)][::-1]
                stack.append(tuple(items))
            elif name == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "LIST":
                stack.append(pop_mark())
            elif name == "APPEND":
                v = pop()
                lst = top()
                if isinstance(lst, list):
                    lst.append(v)
            elif name == "APPENDS":
                items = pop_mark()
                lst = top()
                if isinstance(lst, list):
                    lst.extend(items)
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "DICT":
                items = pop_mark()
                stack.append(_to_dict(items))
            elif name == "SETITEM":
                v, k = pop(), pop()
                d = top()
                if isinstance(d, dict):
                    _set(d, k, v)
            elif name == "SETITEMS":
                items = pop_mark()
                d = top()
                if isinstance(d, dict):
                    for k, v in zip(items[::2], items[1::2], strict=False):
                        _set(d, k, v)
            elif name in ("REDUCE", "NEWOBJ"):
                args, func = pop(), pop()
                stack.append(Call(func, args))
            elif name == "NEWOBJ_EX":
                _kwargs, args, func = pop(), pop(), pop()
                stack.append(Call(func, args))
            elif name == "OBJ":
                items = pop_mark()
                if not items:
                    raise _Malformed("OBJ without a class")
                stack.append(Call(items[0], tuple(items[1:])))
            elif name == "BUILD":
                state = pop()
                target = top()
                if isinstance(target, Global):
                    problem("build_on_global", f"BUILD at byte {pos} sets attributes of {target.dotted} itself")
                elif isinstance(target, Call):
                    target.state = state
                    if joblib and _is_joblib_wrapper(target):
                        _skip_joblib_array(data, stream, target, out, on_nested, depth)
                        stack[-1] = UNKNOWN
            elif name in ("PERSID", "BINPERSID"):
                pid = arg if name == "PERSID" else pop()
                out.persistent_ids.append(pid)
                stack.append(Call("persistent_load", (pid,)))
            elif name == "STOP":
                out.end = stream.tell()
                out.complete = True
                out.value = pop() if stack else UNKNOWN
                return out
            else:  # generic stack effect: POP, DUP, MARK, POP_MARK, FRAME, PROTO, ADDITEMS, FROZENSET...
                _generic(opcode, stack, pop, pop_mark)
        raise _Malformed("the pickle ends without STOP")
    except _Malformed as exc:
        problem("malformed_pickle", f"pickle from byte {start} is malformed at byte {pos}: {exc}")
    except (ValueError, EOFError, struct.error, UnicodeDecodeError, OverflowError, MemoryError, RecursionError,
            TypeError, KeyError, IndexError) as exc:  # fmt: skip
        problem("malformed_pickle", f"pickle from byte {start} is malformed after byte {pos}: {exc}")
    out.end = stream.tell()
    return out


def _to_dict(items: list[Any]) -> dict[Any, Any]:
    d: dict[Any, Any] = {}
    for k, v in zip(items[::2], items[1::2], strict=False):
        _set(d, k, v)
    return d


def _set(d: dict[Any, Any], k: Any, v: Any) -> None:
    if isinstance(k, str | int | float | bool | bytes) or k is None:
        d[k] = v


def _generic(
    opcode: pickletools.OpcodeInfo, stack: list[Any], pop: Callable[[], Any], pop_mark: Callable[[], Any]
) -> None:
    before = opcode.stack_before
    if pickletools.stackslice in before:
        pop_mark()
        for _ in before[: before.index(pickletools.markobject)]:
            pop()
    else:
        for _ in before:
            pop()
    if opcode.name == "DUP":
        stack.append(stack[-1] if stack else UNKNOWN)
        if len(stack) == 1:
            raise _Malformed("DUP on an empty stack")
        return
    for item in opcode.stack_after:
        stack.append(_MARK if item is pickletools.markobject else UNKNOWN)


def _skip_joblib_array(
    data: bytes,
    stream: BufferReader,
    wrapper: Call,
    out: PickleReading,
    on_nested: Callable[[bytes, int], PickleReading] | None,
    depth: int,
) -> None:
    at = stream.tell()
    try:
        has_object, nbytes, aligned = _joblib_array_size(wrapper)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:  # numpy's refusals of a dtype
        raise _Malformed(f"joblib array at byte {at} cannot be sized exactly ({exc})") from None
    out.joblib_arrays += 1
    if has_object:
        if depth > 8:
            raise _Malformed("joblib object arrays nested too deep")
        nested = (on_nested or (lambda b, s: read_pickle(b, s, joblib=False)))(data, at)
        out.nested.append(nested)
        if not nested.complete:
            raise _Malformed(f"the object-array pickle at byte {at} is not complete")
        stream.seek(nested.end)
        return
    pos = at
    if aligned:
        if pos >= len(data):
            raise _Malformed("joblib alignment byte missing")
        pad = data[pos]
        if pad > 16:
            raise _Malformed(f"joblib alignment padding {pad} exceeds 16 bytes at byte {pos}")
        if data[pos + 1 : pos + 1 + pad] != b"\xff" * pad:
            raise _Malformed(f"joblib alignment padding at byte {pos} is not joblib's")
        pos += 1 + pad
    if pos + nbytes > len(data):
        raise _Malformed(f"joblib array at byte {pos} needs {nbytes} bytes; the data ends first")
    stream.seek(pos + nbytes)
