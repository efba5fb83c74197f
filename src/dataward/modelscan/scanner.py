"""One verdict per file from every format its bytes can be read as.

Each reader either reads the whole file exactly (a *complete* reading) or stops where the bytes leave its
format (a *partial* reading). A file passes only when at least one reading is complete, no reading finds a
global off the allow-list or code, and no two formats claim it (a polyglot: writers never make one, and
loaders disagree about which format it is). Archives are read member by member, by content, never by name,
to a depth limit and within size and ratio budgets.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import lzma
import mmap
import posixpath
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from dataward.core.severity import Severity
from dataward.model.finding import Finding
from dataward.modelscan import _formats as fmt
from dataward.modelscan._pickle import BufferReader, Global, PickleReading, read_pickle
from dataward.modelscan.allowlist import AllowList

CHECK = "modelscan"
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001
_TORCH_ELEMENT_SIZE = {"Float": 4, "Double": 8, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2,
                       "Char": 1, "Byte": 1, "Bool": 1, "ComplexFloat": 8, "ComplexDouble": 16, "QInt8": 1,
                       "QUInt8": 1, "QInt32": 4, "Untyped": 1}  # fmt: skip
_TORCH_STORAGE_MEMBER = re.compile(r"^(?:[^/]+/)?data/\d+$")
_TORCH_TEXT_MEMBERS = {"version": r"\d+\n?", ".data/version": r"\d+\n?", "byteorder": r"(little|big)",
                       ".format_version": r"\d+\n?", ".storage_alignment": r"\d+\n?",
                       ".data/serialization_id": r"[0-9]+\n?"}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Bounds on nested archives: depth, bytes decompressed in all, and the ratio past which a member is a bomb.

    The ratio applies only to members above ``ratio_floor`` bytes: deflate tops out at 1032:1, so an
    all-zero tensor can legitimately reach it; 1100:1 over 16 MiB is not a weights file.
    """

    max_depth: int = 4
    max_total: int = 8 << 30
    max_ratio: float = 1100.0
    ratio_floor: int = 16 << 20


@dataclass
class _Scan:
    allow: AllowList
    limits: Limits
    base_dir: Path | None
    findings: list[Finding] = field(default_factory=list)
    globals: set[str] = field(default_factory=set)
    members: list[str] = field(default_factory=list)
    allowed_extra: set[str] = field(default_factory=set)
    budget: int = 0

    def add(self, kind: str, severity: Severity, where: str, detail: str, **evidence: Any) -> None:
        if any(f.kind == kind and f.summary == f"{where}: {detail}" for f in self.findings):
            return  # two readings of the same bytes saw the same thing
        self.findings.append(
            Finding(CHECK, kind, severity, f"{where}: {detail}", evidence={"where": where, **evidence})
        )

    def spend(self, n: int, where: str) -> bool:
        self.budget += n
        if self.budget > self.limits.max_total:
            self.add("zip_bomb", Severity.HIGH, where, f"more than {self.limits.max_total:,} bytes decompressed in all")
            return False
        return True


@dataclass
class _Reading:
    format: str
    complete: bool
    why: str = ""  # for a partial reading: where the bytes left the format


# --- pickles -------------------------------------------------------------------------------------------------


def _judge_pickle(scan: _Scan, reading: PickleReading, where: str, *, partial: bool) -> None:
    """Globals off the allow-list and code-shaped opcodes fail; in a partial reading malformation does not."""
    for g in reading.all_globals():
        _judge_global(scan, g, where)
    for p in reading.all_problems():
        if partial and p.kind == "malformed_pickle":
            continue
        sev = Severity.CRITICAL if p.kind in ("unresolved_global", "build_on_global", "dunder_name") else Severity.HIGH
        scan.add(p.kind, sev, where, p.detail)


def _judge_global(scan: _Scan, g: Global, where: str) -> None:
    scan.globals.add(g.dotted)
    if scan.allow.allows(g.module, g.name):
        if scan.allow.is_extra(g.module, g.name):
            scan.allowed_extra.add(g.dotted)
        return
    scan.add(
        "disallowed_global",
        Severity.CRITICAL,
        where,
        f"global {g.dotted} (byte {g.offset}) is not on the allow-list",
        globals=g.dotted,
    )


def _pickle_value(r: PickleReading) -> Any:
    return r.value


def _read_pickle_stream(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    """The pickle reading(s) of ``data``: joblib-aware, plain, and legacy torch; None if it is no pickle at all."""
    first = read_pickle(data, 0, joblib=True)
    if not first.complete and not first.globals:
        return None
    if not first.complete:
        _judge_pickle(scan, first, where, partial=True)  # code a loader would run before it hits the bad byte
        return _Reading("pickle", False, first.problems[-1].detail if first.problems else "incomplete")
    _judge_pickle(scan, first, where, partial=False)
    label = "joblib" if first.joblib_arrays else "pickle"
    if first.joblib_arrays:
        plain = read_pickle(data, 0, joblib=False)  # what pickle.load (not joblib.load) would run
        _judge_pickle(scan, plain, where, partial=True)
    pos = first.end
    if first.value == _TORCH_LEGACY_MAGIC:
        return _read_torch_legacy(scan, data, where, pos)
    count = 1
    while pos < len(data):
        nxt = read_pickle(data, pos, joblib=True)
        if not nxt.complete:
            if nxt.globals:
                _judge_pickle(scan, nxt, f"{where} (pickle #{count + 1} at byte {pos})", partial=True)
            scan.add(
                "trailing_data",
                Severity.HIGH,
                where,
                f"{len(data) - pos} bytes that are no pickle follow the pickle ending at byte {pos}",
                offset=pos,
            )
            return _Reading(label, True)
        count += 1
        _judge_pickle(scan, nxt, f"{where} (pickle #{count} at byte {pos})", partial=False)
        pos = nxt.end
    return _Reading(label if count == 1 else f"{label}-stream", True)


def _storage_element_size(pid: Any) -> tuple[str, int] | None:
    """(key, element size) of a torch storage persistent id ('storage', torch.XStorage, key, location, numel)."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        return None
    stype, key = pid[1], pid[2]
    if not isinstance(stype, Global) or stype.module != "torch" or not stype.name.endswith("Storage"):
        return None
    size = _TORCH_ELEMENT_SIZE.get(stype.name[: -len("Storage")])
    if size is None or not isinstance(key, str):
        return None
    return key, size


def _read_torch_legacy(scan: _Scan, data: bytes, where: str, pos: int) -> _Reading:
    """Legacy ``torch.save``: magic, protocol, sys info, the object, storage keys (all pickles), then storages."""
    readings: list[PickleReading] = []
    names = ("protocol version", "sys info", "object", "storage keys")
    for name in names:
        r = read_pickle(data, pos)
        w = f"{where} ({name} pickle at byte {pos})"
        _judge_pickle(scan, r, w, partial=False)
        if not r.complete:
            return _Reading("torch-legacy", False, f"the {name} pickle is incomplete")
        readings.append(r)
        pos = r.end
    if readings[0].value != _TORCH_PROTOCOL:
        scan.add("malformed_torch", Severity.HIGH, where, f"legacy protocol version {readings[0].value!r}, not 1001")
    sizes: dict[str, int] = {}
    for pid in readings[2].persistent_ids:
        s = _storage_element_size(pid)
        if s is None:
            scan.add("malformed_torch", Severity.HIGH, where, f"persistent id {str(pid)[:80]} is not a torch storage")
            return _Reading("torch-legacy", False, "unknown persistent id")
        sizes[s[0]] = s[1]
    keys = readings[3].value
    if not isinstance(keys, list) or not all(isinstance(k, str) and k in sizes for k in keys):
        scan.add("malformed_torch", Severity.HIGH, where, "the storage keys are not the storages the object names")
        return _Reading("torch-legacy", False, "storage keys")
    for key in keys:
        if pos + 8 > len(data):
            scan.add("malformed_torch", Severity.HIGH, where, f"storage {key} is truncated")
            return _Reading("torch-legacy", False, "truncated storage")
        numel = int(struct.unpack("<q", data[pos : pos + 8])[0])
        end = pos + 8 + numel * sizes[key]
        if numel < 0 or end > len(data):
            scan.add(
                "malformed_torch", Severity.HIGH, where, f"storage {key} claims {numel} elements past the file end"
            )
            return _Reading("torch-legacy", False, "storage size")
        pos = end
    if pos != len(data):
        scan.add("trailing_data", Severity.HIGH, where, f"{len(data) - pos} bytes after the last storage", offset=pos)
    return _Reading("torch-legacy", True)


# --- archives ------------------------------------------------------------------------------------------------


def _kind_of_zip(names: list[str]) -> str:
    lower = [n.lower() for n in names]
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in lower):
        return "torch-zip"
    if ("config.json" in lower and any(n.endswith(".h5") for n in lower)) or "metadata.json" in lower:
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def _read_zip(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    try:
        zf = zipfile.ZipFile(BufferReader(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError):
        return None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        kind = _kind_of_zip(names)
        if data[:4] != b"PK\x03\x04" and infos:
            scan.add(
                "zip_prefix",
                Severity.HIGH,
                where,
                "bytes before the first zip entry (a loader may read them as another format)",
            )
        folded = [n.lower() for n in names]
        if len(folded) != len(set(folded)):
            scan.add(
                "duplicate_members",
                Severity.HIGH,
                where,
                "two members share a name (case-insensitively); loaders may take either",
            )
        for info in infos:
            member = f"{where}:{info.filename}"
            scan.members.append(member)
            if info.is_dir():
                continue
            ratio = info.file_size / info.compress_size if info.compress_size else float(info.file_size > 0) * 1e9
            if info.file_size > scan.limits.ratio_floor and ratio > scan.limits.max_ratio:
                scan.add("zip_bomb", Severity.HIGH, member, f"expands {ratio:,.0f}:1 to {info.file_size:,} bytes")
                continue
            if not scan.spend(info.file_size, member):
                return _Reading(kind, False, "decompression budget")
            storage = kind == "torch-zip" and _TORCH_STORAGE_MEMBER.match(info.filename) is not None
            try:
                with zf.open(info) as fh:
                    if storage:
                        while fh.read(1 << 20):  # read through: the CRC check is the point
                            pass
                        continue
                    blob = fh.read(info.file_size + 1)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                zlib.error,
                ValueError,
                NotImplementedError,
                RuntimeError,
            ) as exc:
                scan.add(
                    "corrupt_member",
                    Severity.HIGH,
                    member,
                    f"cannot be read intact ({exc}); a lenient loader may still run it",
                )
                continue
            if len(blob) > info.file_size:
                scan.add("corrupt_member", Severity.HIGH, member, "holds more bytes than its directory entry says")
                continue
            if kind == "torch-zip":
                rel = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
                pattern = _TORCH_TEXT_MEMBERS.get(rel)
                if pattern is not None and re.fullmatch(pattern.encode(), blob):
                    continue
                if rel.startswith("code/") or rel.endswith(".py"):
                    scan.add(
                        "torchscript_code",
                        Severity.HIGH,
                        member,
                        "TorchScript code runs when the archive is loaded with torch.jit.load",
                    )
                    continue
            _scan_bytes(scan, blob, member, depth + 1)
    return _Reading(kind, True)


def _read_tar(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    if len(data) < 512 or data[257:262] not in (b"ustar",):
        return None
    try:
        tf = tarfile.open(fileobj=BufferReader(data), mode="r:")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, ValueError, EOFError):
        return None
    with tf:
        try:
            infos = tf.getmembers()
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            scan.add("corrupt_member", Severity.HIGH, where, f"tar directory unreadable: {exc}")
            return _Reading("tar", False, "corrupt")
        names = {i.name for i in infos}
        legacy = {"sys_info", "pickle", "storages", "tensors"} <= names
        kind = "torch-legacy-tar" if legacy else "tar"
        for info in infos:
            member = f"{where}:{info.name}"
            scan.members.append(member)
            if info.isdir():
                continue
            if not info.isfile():
                scan.add("tar_link", Severity.HIGH, member, "links and devices have no place in a checkpoint")
                continue
            if not scan.spend(info.size, member):
                return _Reading(kind, False, "budget")
            fh = tf.extractfile(info)
            blob = fh.read() if fh is not None else b""
            if legacy and info.name in ("storages", "tensors"):
                _read_legacy_tar_member(scan, blob, member, info.name)
            else:
                _scan_bytes(scan, blob, member, depth + 1)
    return _Reading(kind, True)


def _read_legacy_tar_member(scan: _Scan, blob: bytes, where: str, name: str) -> None:
    """``storages``: count, then per storage a pickle (key, location, type) and raw data; ``tensors`` alike."""
    count = read_pickle(blob, 0)
    _judge_pickle(scan, count, where, partial=False)
    if not count.complete or not isinstance(count.value, int):
        scan.add("malformed_torch", Severity.HIGH, where, "does not start with a pickled count")
        return
    pos = count.end
    for i in range(count.value):
        r = read_pickle(blob, pos)
        _judge_pickle(scan, r, f"{where} (record {i})", partial=False)
        if not r.complete:
            return
        pos = r.end
        try:
            if name == "storages":
                stype = r.value[2] if isinstance(r.value, tuple) and len(r.value) == 3 else None
                size = _TORCH_ELEMENT_SIZE.get(stype.name[:-7]) if isinstance(stype, Global) else None
                if size is None:
                    raise ValueError("unknown storage type")
                numel = struct.unpack("<q", blob[pos : pos + 8])[0]
                pos += 8 + numel * size
            else:
                ndim = struct.unpack("<i", blob[pos : pos + 4])[0]
                pos += 8 + 16 * ndim + 8
        except (struct.error, ValueError, TypeError, AttributeError) as exc:
            scan.add("malformed_torch", Severity.HIGH, where, f"record {i} is malformed: {exc}")
            return
        if pos > len(blob):
            scan.add("malformed_torch", Severity.HIGH, where, f"record {i} runs past the member")
            return
    if pos != len(blob):
        scan.add("trailing_data", Severity.HIGH, where, f"{len(blob) - pos} bytes after the last record", offset=pos)


def _decompressed(scan: _Scan, data: bytes, where: str) -> tuple[str, bytes] | None:
    """A gzip/bz2/xz/lzma/zlib stream (joblib's compressions), decompressed within the budget; None if none."""
    head = bytes(data[:6])
    cap = max(0, scan.limits.max_total - scan.budget) + 1
    try:
        if head.startswith(b"\x1f\x8b"):
            name, out = "gzip", _bounded(zlib.decompressobj(16 + zlib.MAX_WBITS), data, cap)
        elif head.startswith(b"BZh"):
            name, out = "bz2", _bounded(bz2.BZ2Decompressor(), data, cap)
        elif head.startswith(b"\xfd7zXZ\x00"):
            name, out = "xz", _bounded(lzma.LZMADecompressor(lzma.FORMAT_XZ), data, cap)
        elif head.startswith(b"]\x00\x00"):
            name, out = "lzma", _bounded(lzma.LZMADecompressor(lzma.FORMAT_ALONE), data, cap)
        elif head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
            name, out = "zlib", _bounded(zlib.decompressobj(), data, cap)
        else:
            return None
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        scan.add("malformed_compression", Severity.HIGH, where, f"compressed stream is corrupt: {exc}")
        return ("corrupt", b"")
    if not scan.spend(len(out), where):
        return ("bomb", b"")
    if len(out) > scan.limits.ratio_floor and len(out) / max(len(data), 1) > scan.limits.max_ratio:
        scan.add("zip_bomb", Severity.HIGH, where, f"expands {len(out) / len(data):,.0f}:1")
        return ("bomb", b"")
    return name, out


def _bounded(dec: Any, data: bytes, cap: int) -> bytes:
    out = dec.decompress(bytes(data), cap)
    if not dec.eof:
        raise ValueError("the stream is truncated or exceeds the decompression budget")
    if getattr(dec, "unused_data", b""):
        raise ValueError(f"{len(dec.unused_data)} bytes follow the compressed stream")
    return bytes(out)


# --- other formats -------------------------------------------------------------------------------------------


def _read_npy(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    if bytes(data[:6]) != fmt.NPY_MAGIC:
        return None
    try:
        dtype, shape, offset = fmt.npy_header(data)
    except fmt.FormatError as exc:
        scan.add("malformed_npy", Severity.HIGH, where, str(exc))
        return _Reading("npy", False, str(exc))
    if dtype.hasobject:
        body = read_pickle(data, offset)
        w = f"{where} (object array {dtype.str if not dtype.fields else 'structured'}, pickle at byte {offset})"
        _judge_pickle(scan, body, w, partial=False)
        if body.complete and body.end != len(data):
            scan.add(
                "trailing_data", Severity.HIGH, where, f"{len(data) - body.end} bytes after the object-array pickle"
            )
        return _Reading("npy-object", body.complete)
    expected = fmt.npy_data_size(dtype, shape)
    if offset + expected != len(data):
        scan.add(
            "malformed_npy",
            Severity.HIGH,
            where,
            f"header says {expected} data bytes, the file has {len(data) - offset}",
        )
        return _Reading("npy", False, "size")
    return _Reading("npy", True)


def _read_safetensors(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    if fmt.safetensors_header_length(data) is None:
        return None
    try:
        fmt.validate_safetensors(data)
    except fmt.FormatError as exc:
        scan.add("malformed_safetensors", Severity.HIGH, where, str(exc))
        return _Reading("safetensors", False, str(exc))
    return _Reading("safetensors", True)


def _read_onnx(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    if data[:1] != b"\x08":  # ModelProto starts with ir_version (field 1, varint) in every writer
        return None
    try:
        _summary, locations = fmt.onnx_external_locations(bytes(data))
    except fmt.FormatError:
        return None
    for loc in locations:
        bad = _unconfined(loc, scan.base_dir)
        if bad:
            scan.add("onnx_external_path", Severity.CRITICAL, where, f"external data location {loc!r} {bad}")
    return _Reading("onnx", True)


def _unconfined(location: str, base: Path | None) -> str:
    """Why an ONNX external-data path escapes the model's directory ('' when it stays inside)."""
    if not location or "\x00" in location:
        return "is empty or holds a NUL"
    if (
        PurePosixPath(location).is_absolute()
        or PureWindowsPath(location).is_absolute()
        or PureWindowsPath(location).drive
    ):
        return "is absolute"
    parts = re.split(r"[\\/]", location)
    if ".." in parts:
        return "climbs out of the model directory"
    if base is not None:
        target = (base / posixpath.normpath(location.replace("\\", "/"))).resolve()
        if not target.is_relative_to(base.resolve()):
            return "resolves (through a link) outside the model directory"
    return ""


def _read_hdf5(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    if bytes(data[:8]) != fmt.HDF5_MAGIC:
        return None
    try:
        import h5py
    except ImportError:
        scan.add("unverified_format", Severity.HIGH, where, "HDF5 needs h5py to be read exactly; install h5py")
        return _Reading("hdf5", False, "no h5py")
    configs: list[tuple[str, Any]] = []
    try:
        with h5py.File(io.BytesIO(bytes(data)), "r") as h5:
            for name in ("model_config", "training_config"):
                if name in h5.attrs:
                    raw = h5.attrs[name]
                    configs.append((name, json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))))
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        scan.add("malformed_hdf5", Severity.HIGH, where, f"cannot be read as HDF5: {exc}")
        return _Reading("hdf5", False, str(exc))
    for name, cfg in configs:
        for kind, detail in fmt.keras_code_findings(cfg):
            scan.add(kind, Severity.CRITICAL, f"{where} (attribute {name})", detail)
    return _Reading("keras-h5" if configs else "hdf5", True)


def _read_json(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    stripped = bytes(data[:1]).strip()
    if stripped not in (b"{", b"["):
        return None
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    for kind, detail in fmt.keras_code_findings(doc):
        scan.add(kind, Severity.CRITICAL, where, detail)
    return _Reading("json", True)


_LIGHTGBM_TEXT = re.compile(rb"\Atree\r?\nversion=v\d+\r?\n")


def _read_lightgbm_text(scan: _Scan, data: bytes, where: str, depth: int) -> _Reading | None:
    """LightGBM's own text model (``Booster.save_model``): numbers and names, nothing a loader runs."""
    if _LIGHTGBM_TEXT.match(bytes(data[:64])) is None:
        return None
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return _Reading("lightgbm-text", False, "not UTF-8 text")
    if b"\x00" in data:
        return _Reading("lightgbm-text", False, "holds NUL bytes")
    return _Reading("lightgbm-text", True)


_READERS = (_read_zip, _read_tar, _read_npy, _read_safetensors, _read_onnx, _read_hdf5, _read_json, _read_lightgbm_text)


def _scan_bytes(scan: _Scan, data: bytes, where: str, depth: int) -> str:
    """Judge ``data`` as every format it can be read as; returns the format label."""
    if depth > scan.limits.max_depth:
        scan.add("nesting_depth", Severity.HIGH, where, f"archives nested deeper than {scan.limits.max_depth}")
        return "nested"
    readings: list[_Reading] = []
    for reader in _READERS:
        r = reader(scan, data, where, depth)
        if r is not None:
            readings.append(r)
    dec = _decompressed(scan, data, where)
    if dec is not None:
        if dec[1]:
            inner = _scan_bytes(scan, dec[1], f"{where} ({dec[0]})", depth + 1)
            readings.append(_Reading(f"{dec[0]}:{inner}", inner != "unknown"))
        else:
            readings.append(_Reading(dec[0], False, "corrupt"))
    p = _read_pickle_stream(scan, data, where, depth)
    if p is not None:
        readings.append(p)
    complete = [r for r in readings if r.complete]
    if len(complete) > 1:
        names = ", ".join(r.format for r in complete)
        scan.add("polyglot", Severity.HIGH, where, f"reads completely as {names}; loaders disagree on which it is")
    if not complete:
        why = "; ".join(f"{r.format}: {r.why}" for r in readings) or "no known signature"
        scan.add(
            "unknown_format",
            Severity.HIGH,
            where,
            "not exactly a pickle, joblib, PyTorch, NumPy, safetensors, ONNX, Keras, HDF5, JSON, zip or tar file "
            f"({why}); not verified",
        )
        return "unknown"
    return "+".join(r.format for r in complete)


# --- public --------------------------------------------------------------------------------------------------


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
    allowed_extra: tuple[str, ...] = ()
    allow_source: str = ""

    @property
    def verdict(self) -> str:
        """``"pass"`` or ``"fail"``."""
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: verdict, format, globals seen, globals passed only by an added allow entry, findings."""
        return {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict,
            "sha256": self.sha256,
            "globals": list(self.globals),
            "allowed_by_extra": list(self.allowed_extra),
            "allow_source": self.allow_source,
            "members": list(self.members),
            "findings": [f.to_dict() for f in self.findings],
            "files": [f.to_dict() for f in self.files],
        }


def scan_model(
    path: str | Path,
    *,
    allow: AllowList | None = None,
    limits: Limits | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ModelScanResult:
    """Scan a checkpoint file (or every file under a directory) without loading or unpickling it.

    ``progress(name, bytes)`` is called after each file of a directory (for a progress bar).
    """
    allow = allow or AllowList()
    limits = limits or Limits()
    p = Path(path)
    if p.is_dir():
        done: list[ModelScanResult] = []
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            done.append(scan_model(f, allow=allow, limits=limits))
            if progress is not None:
                progress(f.name, f.stat().st_size)
        results = tuple(done)
        return ModelScanResult(
            str(p),
            "directory",
            all(r.passed for r in results),
            tuple(f for r in results for f in r.findings),
            tuple(sorted({g for r in results for g in r.globals})),
            files=results,
            allowed_extra=tuple(sorted({g for r in results for g in r.allowed_extra})),
            allow_source=allow.extra_source,
        )
    scan = _Scan(allow, limits, p.parent)
    try:
        with open(p, "rb") as fh:
            size = p.stat().st_size
            data: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as exc:
        unreadable = Finding(CHECK, "unreadable", Severity.HIGH, f"{p}: cannot be read: {exc.strerror}")
        return ModelScanResult(str(p), "unknown", False, (unreadable,))
    try:
        sha = hashlib.sha256(data).hexdigest()
        label = _scan_bytes(scan, data, p.name, 0) if size else "empty"
        if not size:
            scan.add("unknown_format", Severity.HIGH, p.name, "the file is empty")
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    ext = p.suffix.lower()
    expect = {".safetensors": "safetensors", ".npy": "npy", ".npz": "npz", ".onnx": "onnx", ".keras": "keras"}
    if ext in expect and not label.startswith(expect[ext]):
        scan.add("renamed_extension", Severity.HIGH, p.name, f"named {ext} but the content is {label}", format=label)
    failing = [f for f in scan.findings if f.severity.rank >= Severity.MEDIUM.rank]
    return ModelScanResult(
        str(p),
        label,
        not failing,
        tuple(scan.findings),
        tuple(sorted(scan.globals)),
        tuple(scan.members),
        sha,
        allowed_extra=tuple(sorted(scan.allowed_extra)),
        allow_source=allow.extra_source,
    )


def iter_results(result: ModelScanResult) -> Iterator[ModelScanResult]:
    """The result and, for a directory, every file's result, depth first."""
    yield result
    for r in result.files:
        yield from iter_results(r)
