"""Checkpoint scanning without loading: pickle opcodes judged against dataward's own allow-list.

Formats are told by their bytes, never by the file name (a renamed extension is itself a finding): pickle
(any protocol, several in a row as in legacy ``torch.save``), PyTorch zip checkpoints (every ``.pkl`` member
and every member that parses as a pickle, except tensor storages under ``data/``), NumPy ``.npy`` (object
arrays carry a pickle) and ``.npz``, joblib (raw or zlib/gzip/bz2/xz/lzma-compressed pickles), and
safetensors (header validated: sizes, dtypes, shapes, offsets that tile the data exactly).

The pickle reader (:func:`analyse_pickle`) walks :func:`pickletools.genops` with a shadow stack and memo, so
``STACK_GLOBAL`` operands are resolved even through memo and ``POP`` tricks; anything it cannot resolve
fails. Every imported global must be on :data:`ALLOWED_GLOBALS` (exact names, no prefixes); besides that
``BUILD`` on a bare global (attribute injection, the ``__builtins__`` trick), dunder attribute names,
extension-registry opcodes, trailing data, CRC errors and malformed data all fail. picklescan runs as a
second opinion: any global it reports that is not allowed fails too, whatever its own verdict.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import math
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataward.screen.interface import CheckResult, Finding, ScreenReport, Severity

_STORAGES = ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool", "ComplexFloat",
             "ComplexDouble", "Untyped", "QInt8", "QUInt8", "QInt32")  # fmt: skip
_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
                 "complex64", "complex128", "half", "float", "double", "long", "int")  # fmt: skip

#: the only globals a checkpoint pickle may import (module, name)
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch", "Size"),
        ("torch", "Tensor"),
        ("torch.nn.parameter", "Parameter"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("_codecs", "encode"),  # numpy arrays pickled at protocol 2 carry their bytes as _codecs.encode(str, 'latin1')
    }
    | {("torch", f"{s}Storage") for s in _STORAGES}
    | {("torch", d) for d in _TORCH_DTYPES}
)

_DANGEROUS_MODULES = ("os", "posix", "nt", "subprocess", "builtins", "__builtin__", "importlib", "marshal", "types",
                      "runpy", "pty", "socket", "webbrowser", "shutil", "sys", "pickle", "_pickle", "code", "codeop",
                      "ctypes", "operator", "functools", "bdb", "pdb", "timeit", "asyncio", "requests", "urllib",
                      "httplib", "http", "ssl", "numpy.testing", "torch.hub", "torch.jit")  # fmt: skip
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DUNDER = re.compile(r"^__\w+__$")
_MAX_DECOMPRESSED = 8 << 30
_SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                       "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}  # fmt: skip
CHECK = "modelscan"


@dataclass(frozen=True)
class ModelScanResult:
    """The scan of one file (or directory): ``passed`` only when nothing failed."""

    path: str
    format: str
    passed: bool
    findings: tuple[Finding, ...]
    globals: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    sha256: str = ""
    files: tuple[ModelScanResult, ...] = ()

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict,
            "sha256": self.sha256,
            "globals": list(self.globals),
            "members": list(self.members),
            "findings": [f.to_dict() for f in self.findings],
            "files": [f.to_dict() for f in self.files],
        }

    def to_report(self) -> ScreenReport:
        return ScreenReport(
            subject=self.path,
            n_records=max(len(self.files), 1),
            columns=(),
            results=(
                CheckResult(
                    CHECK,
                    self.findings,
                    {"verdict": self.verdict, "format": self.format, "globals": list(self.globals)},
                ),
            ),
            params={"allow_list_size": len(ALLOWED_GLOBALS)},
        )


class _Unknown:
    __slots__ = ()


class _Mark:
    __slots__ = ()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


_UNKNOWN, _MARK = _Unknown(), _Mark()


@dataclass
class PickleAnalysis:
    globals: list[tuple[str, str]] = field(default_factory=list)
    problems: list[tuple[str, Severity, str]] = field(default_factory=list)  # (kind, severity, detail)
    end: int = 0  # offset just after STOP
    first_value: Any = None  # the value of a one-opcode pickle (for torch's legacy magic number)


def analyse_pickle(data: bytes, start: int = 0) -> PickleAnalysis:
    """Statically read one pickle starting at ``start``: imported globals and problems; never loads it."""
    out = PickleAnalysis()
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    stream = io.BytesIO(data)
    stream.seek(start)

    def pop() -> Any:
        if not stack:
            raise ValueError("stack underflow")
        return stack.pop()

    def pop_mark() -> None:
        while True:
            if pop() is _MARK:
                return

    n_ops = 0
    try:
        for opcode, arg, pos in pickletools.genops(stream):
            n_ops += 1
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                module, _, gname = str(arg).partition(" ")
                out.globals.append((module, gname))
                if name == "INST":
                    pop_mark()
                    stack.append(_UNKNOWN)
                else:
                    stack.append(_Global(module, gname))
                continue
            if name == "STACK_GLOBAL":
                gname, module = pop(), pop()
                if not isinstance(gname, str) or not isinstance(module, str):
                    out.problems.append(
                        (
                            "unresolved_global",
                            Severity.CRITICAL,
                            f"STACK_GLOBAL at byte {pos} takes operands that are not string constants",
                        )
                    )
                    stack.append(_UNKNOWN)
                else:
                    out.globals.append((module, gname))
                    stack.append(_Global(module, gname))
                continue
            if name in ("EXT1", "EXT2", "EXT4"):
                out.problems.append(
                    (
                        "extension_opcode",
                        Severity.HIGH,
                        f"{name} at byte {pos} imports through the copyreg extension registry",
                    )
                )
                stack.append(_UNKNOWN)
                continue
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if not stack:
                    raise ValueError("memo store from an empty stack")
                memo[int(arg) if isinstance(arg, int) else -1] = stack[-1]
                continue
            if name == "MEMOIZE":
                if not stack:
                    raise ValueError("memo store from an empty stack")
                memo[len(memo)] = stack[-1]
                continue
            if name in ("GET", "BINGET", "LONG_BINGET"):
                key = int(arg) if isinstance(arg, int) else -1
                if key not in memo:
                    raise ValueError(f"memo key {arg} read before it was stored")
                stack.append(memo[key])
                continue
            if name in (
                "SHORT_BINUNICODE",
                "BINUNICODE",
                "BINUNICODE8",
                "UNICODE",
                "STRING",
                "BINSTRING",
                "SHORT_BINSTRING",
            ):
                text = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                if _DUNDER.match(text):
                    out.problems.append(
                        (
                            "dunder_name",
                            Severity.CRITICAL,
                            f"string {text!r} at byte {pos}: dunder attributes have no place in weights",
                        )
                    )
                stack.append(text)
                continue
            if name == "BUILD":
                pop()  # state
                if stack and isinstance(stack[-1], _Global):
                    g = stack[-1]
                    out.problems.append(
                        (
                            "build_on_global",
                            Severity.CRITICAL,
                            f"BUILD at byte {pos} sets attributes of {g.module}.{g.name} itself",
                        )
                    )
                continue
            if name == "STOP":
                out.end = stream.tell()
                if n_ops == 2 and len(stack) == 1:
                    out.first_value = stack[0]
                break
            # generic stack effect
            before = opcode.stack_before
            if pickletools.stackslice in before:
                pop_mark()
                rest = before[: before.index(pickletools.markobject)]
                for _ in rest:
                    pop()
            else:
                for _ in before:
                    pop()
            for item in opcode.stack_after:
                if item is pickletools.markobject:
                    stack.append(_MARK)
                elif name in ("LONG1", "LONG4", "INT", "BININT", "BININT1", "BININT2", "LONG"):
                    stack.append(arg)
                else:
                    stack.append(_UNKNOWN)
        else:
            raise ValueError("pickle ends without STOP")
    except (ValueError, EOFError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        out.problems.append(("malformed_pickle", Severity.HIGH, f"pickle at byte {start} is malformed: {exc}"))
        out.end = len(data)
    return out


def _judge_globals(globs: list[tuple[str, str]], where: str) -> list[Finding]:
    out = []
    for module, name in sorted(set(globs)):
        if (module, name) in ALLOWED_GLOBALS:
            continue
        dangerous = module.split(".")[0] in _DANGEROUS_MODULES or module in _DANGEROUS_MODULES
        out.append(
            Finding(
                CHECK,
                "disallowed_global",
                Severity.CRITICAL if dangerous else Severity.HIGH,
                f"{where} imports {module}.{name}"
                + (" (can execute code)" if dangerous else " (not on the allow-list)"),
                evidence={"global": f"{module}.{name}", "where": where},
            )
        )
    return out


def _second_opinion(data: bytes, where: str) -> list[tuple[str, str]]:
    """Globals picklescan sees (its verdict is ignored: only the allow-list decides)."""
    try:
        from picklescan.scanner import scan_pickle_bytes

        res = scan_pickle_bytes(io.BytesIO(data), where)
    except Exception:  # a failing second opinion must not hide the first
        return []
    return [(str(g.module), str(g.name)) for g in getattr(res, "globals", [])]


def scan_pickle_stream(data: bytes, where: str, *, allow_trailing: bool = False) -> tuple[list[Finding], list[str]]:
    """Scan every pickle in ``data`` (one after the other); findings and the globals seen."""
    findings: list[Finding] = []
    globs: list[tuple[str, str]] = []
    pos, count = 0, 0
    legacy_torch = False
    while pos < len(data):
        res = analyse_pickle(data, pos)
        count += 1
        globs.extend(res.globals)
        for kind, sev, detail in res.problems:
            findings.append(Finding(CHECK, kind, sev, f"{where}: {detail}", evidence={"where": where}))
        if any(k == "malformed_pickle" for k, _, _ in res.problems):
            break
        if count == 1 and res.first_value == _TORCH_LEGACY_MAGIC:
            legacy_torch = True
        pos = res.end
        if legacy_torch and count >= 5:
            break  # legacy torch.save: magic, protocol, sys info, object, storage keys; then raw storages
        if pos < len(data) and data[pos : pos + 1] != b"\x80" and not allow_trailing:
            if data[pos:].strip(b"\x00\n\r\t ") == b"":
                break
            findings.append(
                Finding(
                    CHECK,
                    "trailing_data",
                    Severity.HIGH,
                    f"{where}: {len(data) - pos} bytes of non-pickle data after the pickle at {pos}",
                    evidence={"where": where, "offset": pos},
                )
            )
            break
        if allow_trailing and data[pos : pos + 1] != b"\x80":
            break
    extra = [g for g in _second_opinion(data, where) if g not in globs]
    globs.extend(extra)
    findings.extend(_judge_globals(globs, where))
    return findings, sorted({f"{m}.{n}" for m, n in globs})


def _is_pickle_start(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _looks_like_pickle(data: bytes) -> bool:
    if _is_pickle_start(data):
        return True
    res = analyse_pickle(data[: 1 << 20] if len(data) > 1 << 20 else data, 0)
    return not any(k == "malformed_pickle" for k, _, _ in res.problems) and res.end > 1


def _npy(data: bytes, where: str) -> tuple[list[Finding], list[str]]:
    if len(data) < 10:
        return [Finding(CHECK, "malformed_npy", Severity.HIGH, f"{where}: truncated .npy header")], []
    major = data[6]
    if major == 1:
        hlen, hstart = struct.unpack("<H", data[8:10])[0], 10
    elif major in (2, 3):
        hlen, hstart = struct.unpack("<I", data[8:12])[0], 12
    else:
        return [Finding(CHECK, "malformed_npy", Severity.HIGH, f"{where}: unknown .npy version {major}")], []
    import ast

    try:
        header = ast.literal_eval(data[hstart : hstart + hlen].decode("latin-1"))
        descr, shape = header["descr"], header["shape"]
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError):
        return [Finding(CHECK, "malformed_npy", Severity.HIGH, f"{where}: the .npy header is not a literal dict")], []
    body = data[hstart + hlen :]
    if "O" in str(descr):
        findings, globs = scan_pickle_stream(body, f"{where} (object array)")
        findings.append(
            Finding(
                CHECK,
                "object_array",
                Severity.LOW,
                f"{where}: object-dtype array stored as a pickle (scanned)",
                evidence={"where": where},
            )
        )
        return findings, globs
    try:
        import numpy as np

        itemsize = np.dtype(descr).itemsize
        expected = itemsize * math.prod(int(s) for s in shape)
    except (TypeError, ValueError):
        return [Finding(CHECK, "malformed_npy", Severity.HIGH, f"{where}: dtype {str(descr)[:40]!r} is not valid")], []
    if expected != len(body):
        return [
            Finding(
                CHECK,
                "malformed_npy",
                Severity.HIGH,
                f"{where}: header says {expected} data bytes, the file has {len(body)}",
            )
        ], []
    return [], []


def validate_safetensors(data_head: bytes, size: int, where: str) -> list[Finding]:
    """Header checks; ``data_head`` holds at least the first 8 + header-length bytes."""

    def bad(detail: str) -> list[Finding]:
        return [Finding(CHECK, "malformed_safetensors", Severity.HIGH, f"{where}: {detail}")]

    if size < 8:
        return bad("shorter than the 8-byte header length")
    n = struct.unpack("<Q", data_head[:8])[0]
    if n > min(100 << 20, size - 8):
        return bad(f"header length {n} exceeds the file or 100 MiB")
    raw = data_head[8 : 8 + n]
    if not raw.startswith(b"{"):
        return bad("header is not a JSON object")

    def no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_dups)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        return bad(f"header is not valid JSON: {exc}")
    if not isinstance(header, dict):
        return bad("header is not a JSON object")
    data_len = size - 8 - n
    spans = []
    for key, meta in header.items():
        if key == "__metadata__":
            if not isinstance(meta, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in meta.items()
            ):
                return bad("__metadata__ must map strings to strings")
            continue
        if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "data_offsets"}:
            return bad(f"tensor {key[:60]!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offs = meta["dtype"], meta["shape"], meta["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            return bad(f"tensor {key[:60]!r} has unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            return bad(f"tensor {key[:60]!r} has a malformed shape")
        if (
            not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
            or not 0 <= offs[0] <= offs[1] <= data_len
        ):
            return bad(f"tensor {key[:60]!r} has data offsets outside the data")
        if offs[1] - offs[0] != math.prod(shape) * _SAFETENSORS_DTYPES[dtype]:
            return bad(f"tensor {key[:60]!r}: offsets do not match its shape and dtype")
        spans.append((offs[0], offs[1], key))
    spans.sort()
    pos = 0
    for begin, end, key in spans:
        if begin != pos:
            return bad(f"tensor {key[:60]!r} overlaps another or leaves a gap at byte {pos}")
        pos = end
    if pos != data_len:
        return bad(f"{data_len - pos} bytes after the last tensor")
    return []


def _decompress(data: bytes) -> tuple[str, bytes] | None:
    """A joblib-style compressed pickle, decompressed with a size cap; None when not compressed."""
    fh: Any
    if data.startswith(b"\x1f\x8b"):
        name, fh = "gzip", gzip.GzipFile(fileobj=io.BytesIO(data))
    elif data.startswith(b"BZh"):
        name, fh = "bz2", bz2.BZ2File(io.BytesIO(data))
    elif data.startswith(b"\xfd7zXZ\x00"):
        name, fh = "xz", lzma.LZMAFile(io.BytesIO(data))  # noqa: SIM115 - closed below
    elif data.startswith(b"]\x00\x00"):
        name, fh = "lzma", lzma.LZMAFile(io.BytesIO(data), format=lzma.FORMAT_ALONE)  # noqa: SIM115
    else:
        fh = None
    if fh is not None:
        with fh:
            return name, fh.read(_MAX_DECOMPRESSED + 1)
    if data[:1] == b"\x78" and data[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
        d = zlib.decompressobj()
        out = d.decompress(data, _MAX_DECOMPRESSED + 1)
        return "zlib", out
    return None


def _scan_zip(path: Path, where: str) -> tuple[str, list[Finding], list[str], list[str]]:
    findings: list[Finding] = []
    globs: list[str] = []
    members: list[str] = []
    fmt = "zip"
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return fmt, [Finding(CHECK, "malformed_zip", Severity.HIGH, f"{where}: not a readable zip: {exc}")], [], []
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        members = names
        if any(n.endswith("data.pkl") for n in names):
            fmt = "torch-zip"
        elif names and all(n.endswith(".npy") for n in names):
            fmt = "npz"
        if len(names) != len(set(names)):
            findings.append(
                Finding(
                    CHECK,
                    "duplicate_members",
                    Severity.HIGH,
                    f"{where}: the zip holds two members of the same name (a loader may take either)",
                )
            )
        for info in infos:
            member = f"{where}:{info.filename}"
            if info.file_size > _MAX_DECOMPRESSED or (
                info.compress_size and info.file_size / info.compress_size > 1000
            ):
                findings.append(Finding(CHECK, "zip_bomb", Severity.HIGH, f"{member}: implausible size or ratio"))
                continue
            is_storage = "/data/" in f"/{info.filename}" and not info.filename.endswith(".pkl")
            try:
                with zf.open(info) as fh:
                    blob = fh.read() if not is_storage else b""
                    if is_storage:
                        while fh.read(1 << 20):  # read through to check the CRC
                            pass
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError, NotImplementedError) as exc:
                findings.append(
                    Finding(
                        CHECK,
                        "corrupt_member",
                        Severity.HIGH,
                        f"{member}: cannot be read intact ({exc}); a loader that ignores CRCs may still run it",
                        evidence={"where": member},
                    )
                )
                continue
            if is_storage:
                continue
            if info.filename.endswith(".npy") or blob.startswith(b"\x93NUMPY"):
                f2, g2 = _npy(blob, member)
            elif info.filename.endswith((".pkl", ".pickle")) or _is_pickle_start(blob):
                f2, g2 = scan_pickle_stream(blob, member)
            else:
                continue
            findings.extend(f2)
            globs.extend(g2)
    return fmt, findings, globs, members


def scan_model(path: str | Path) -> ModelScanResult:
    """Scan a checkpoint file (or every file under a directory) without loading it."""
    p = Path(path)
    if p.is_dir():
        results = tuple(scan_model(f) for f in sorted(x for x in p.rglob("*") if x.is_file()))
        return ModelScanResult(
            str(p),
            "directory",
            all(r.passed for r in results),
            tuple(f for r in results for f in r.findings),
            tuple(sorted({g for r in results for g in r.globals})),
            (),
            "",
            results,
        )
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        f = Finding(CHECK, "unreadable", Severity.HIGH, f"{p}: cannot be read: {exc.strerror}")
        return ModelScanResult(str(p), "unknown", False, (f,))
    where = p.name
    ext = p.suffix.lower()
    findings: list[Finding] = []
    globs: list[str] = []
    members: list[str] = []
    sha = hashlib.sha256()
    with open(p, "rb") as fh:
        while block := fh.read(1 << 20):
            sha.update(block)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        fmt, findings, globs, members = _scan_zip(p, where)
    elif head.startswith(b"\x93NUMPY"):
        fmt = "npy"
        findings, globs = _npy(p.read_bytes(), where)
    elif size >= 9 and head[8:9] == b"{" and not _is_pickle_start(head):
        fmt = "safetensors"
        n = struct.unpack("<Q", head[:8])[0]
        with open(p, "rb") as fh:
            data_head = fh.read(8 + min(n, 100 << 20))
        findings = validate_safetensors(data_head, size, where)
    else:
        data = p.read_bytes()
        try:
            dec = _decompress(data)
        except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
            dec = None
            findings.append(Finding(CHECK, "malformed_compression", Severity.HIGH, f"{where}: {exc}"))
        if dec is not None:
            fmt = f"joblib-{dec[0]}"
            if len(dec[1]) > _MAX_DECOMPRESSED:
                findings.append(Finding(CHECK, "zip_bomb", Severity.HIGH, f"{where}: decompresses past 8 GiB"))
            else:
                f2, globs = scan_pickle_stream(dec[1], f"{where} ({dec[0]})")
                findings.extend(f2)
        elif _looks_like_pickle(data):
            fmt = "pickle"
            findings, globs = scan_pickle_stream(data, where)
        elif not findings:
            fmt = "unknown"
            findings.append(
                Finding(
                    CHECK,
                    "unknown_format",
                    Severity.HIGH,
                    f"{where}: not a pickle, zip, npy, joblib or safetensors file; not verified",
                )
            )
    if ext == ".safetensors" and fmt != "safetensors":
        findings.append(
            Finding(
                CHECK,
                "renamed_extension",
                Severity.HIGH,
                f"{where}: named .safetensors but the content is {fmt}",
                evidence={"format": fmt},
            )
        )
    if ext in (".npy", ".npz") and fmt not in ("npy", "npz"):
        findings.append(
            Finding(
                CHECK,
                "renamed_extension",
                Severity.HIGH,
                f"{where}: named {ext} but the content is {fmt}",
                evidence={"format": fmt},
            )
        )
    failing = [f for f in findings if f.severity.rank >= Severity.MEDIUM.rank]
    return ModelScanResult(str(p), fmt, not failing, tuple(findings), tuple(globs), tuple(members), sha.hexdigest())


def iter_results(result: ModelScanResult) -> Iterator[ModelScanResult]:
    yield result
    for r in result.files:
        yield from iter_results(r)
