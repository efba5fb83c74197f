"""Exact readers for the non-pickle formats: NumPy headers, safetensors headers, ONNX protobuf, Keras configs."""

from __future__ import annotations

import ast
import json
import math
import struct
from collections.abc import Iterator
from typing import Any

NPY_MAGIC = b"\x93NUMPY"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
                      "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8}  # fmt: skip
#: the largest safetensors header the reference implementation accepts
SAFETENSORS_MAX_HEADER = 100_000_000


class FormatError(ValueError):
    """The bytes do not follow the format exactly (the message says where)."""


def npy_header(data: bytes) -> tuple[Any, tuple[int, ...], int]:
    """(dtype resolved by numpy, shape, offset of the data) of a ``.npy``; the header is a literal, never eval'd."""
    import numpy as np

    if bytes(data[:6]) != NPY_MAGIC or len(data) < 10:
        raise FormatError("truncated .npy header")
    major = data[6]
    if major == 1:
        hlen, hstart = struct.unpack("<H", data[8:10])[0], 10
    elif major in (2, 3):
        hlen, hstart = struct.unpack("<I", data[8:12])[0], 12
    else:
        raise FormatError(f"unknown .npy version {major}")
    if hstart + hlen > len(data) or hlen > 1 << 20:
        raise FormatError("the .npy header runs past the file")
    raw = bytes(data[hstart : hstart + hlen]).decode("utf-8" if major == 3 else "latin-1")
    try:
        header = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise FormatError(f"the .npy header is not a literal dict ({type(exc).__name__})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError("the .npy header must hold exactly descr, fortran_order and shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise FormatError(f"the .npy shape {str(shape)[:40]} is not a tuple of sizes")
    try:
        # numpy's own rule for a header descr (what np.load does), so 'object', [('a', 'O')] and nested all resolve
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError) as exc:
        raise FormatError(f"dtype {str(header['descr'])[:40]!r} is not valid: {exc}") from None
    return dtype, shape, hstart + hlen


def npy_data_size(dtype: Any, shape: tuple[int, ...]) -> int:
    return int(dtype.itemsize) * math.prod(shape)


def safetensors_header_length(data: bytes) -> int | None:
    """The declared header length when the bytes could be safetensors (``{`` right after it), else None."""
    if len(data) < 10 or data[8:9] != b"{":
        return None
    n = int(struct.unpack("<Q", data[:8])[0])
    return n


def validate_safetensors(data: bytes) -> dict[str, Any]:
    """The parsed header; raises FormatError unless offsets tile the data exactly (no gap, overlap or tail)."""
    size = len(data)
    if size < 8:
        raise FormatError("shorter than the 8-byte header length")
    n = int(struct.unpack("<Q", data[:8])[0])
    if n > min(SAFETENSORS_MAX_HEADER, size - 8):
        raise FormatError(f"header length {n} exceeds the file or {SAFETENSORS_MAX_HEADER:,} bytes")
    raw = bytes(data[8 : 8 + n])
    if not raw.startswith(b"{"):
        raise FormatError("header is not a JSON object")

    def no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8").rstrip(" "), object_pairs_hook=no_dups)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError("header is not a JSON object")
    data_len = size - 8 - n
    spans = []
    for key, meta in header.items():
        if key == "__metadata__":
            if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
                raise FormatError("__metadata__ must map strings to strings")
            continue
        if not isinstance(meta, dict) or set(meta) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"tensor {key[:60]!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offs = meta["dtype"], meta["shape"], meta["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise FormatError(f"tensor {key[:60]!r} has unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise FormatError(f"tensor {key[:60]!r} has a malformed shape")
        if (
            not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
            or not 0 <= offs[0] <= offs[1] <= data_len
        ):
            raise FormatError(f"tensor {key[:60]!r} has data offsets outside the data")
        if offs[1] - offs[0] != math.prod(shape) * SAFETENSORS_DTYPES[dtype]:
            raise FormatError(f"tensor {key[:60]!r}: offsets do not match its shape and dtype")
        spans.append((offs[0], offs[1], key))
    spans.sort()
    pos = 0
    for begin, end, key in spans:
        if begin != pos:
            raise FormatError(f"tensor {key[:60]!r} overlaps another or leaves a gap at byte {pos}")
        pos = end
    if pos != data_len:
        raise FormatError(f"{data_len - pos} bytes after the last tensor")
    return header


# --- ONNX: a protobuf wire-format walk of exactly the messages that can hold tensors ------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise FormatError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message; raises FormatError unless it parses exactly."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise FormatError("field number 0")
        if wire == 0:
            v, pos = _varint(data, pos)
            yield num, wire, v
        elif wire == 1:
            if pos + 8 > len(data):
                raise FormatError("truncated fixed64")
            yield num, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 2:
            n, pos = _varint(data, pos)
            if pos + n > len(data):
                raise FormatError("a length-delimited field runs past its message")
            yield num, wire, data[pos : pos + n]
            pos += n
        elif wire == 5:
            if pos + 4 > len(data):
                raise FormatError("truncated fixed32")
            yield num, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise FormatError(f"wire type {wire} is not used by ONNX")


# message -> {field: submessage kind} for the fields that can reach a TensorProto
_ONNX_SCHEMA: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function", 20: "training"},
    "training": {1: "graph", 3: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}


def onnx_external_locations(data: bytes) -> tuple[dict[str, Any], list[str]]:
    """(ModelProto summary, every external-data ``location``); raises FormatError unless it is an ONNX model."""
    summary: dict[str, Any] = {}
    locations: list[str] = []
    top = list(_fields(data))
    nums = {n for n, _, _ in top}
    if 1 not in nums or 7 not in nums:
        raise FormatError("not an ONNX ModelProto (no ir_version and graph)")
    for n, w, v in top:
        if n == 1 and w == 0:
            summary["ir_version"] = v
        elif n == 2 and w == 2:
            summary["producer"] = bytes(v).decode("utf-8", "replace")[:80]

    def walk(kind: str, msg: bytes, depth: int) -> None:
        if depth > 64:
            raise FormatError("ONNX graphs nested too deep")
        if kind == "tensor":
            external = False
            for n, w, v in _fields(msg):
                if n == 14 and w == 0 and v == 1:
                    external = True
                if n == 13 and w == 2:
                    entry = {k: bytes(val) for k, _, val in _fields(v) if k in (1, 2)}
                    if entry.get(1) == b"location":
                        locations.append(entry.get(2, b"").decode("utf-8", "replace"))
            if external and not locations:
                raise FormatError("a tensor stored externally names no location")
            return
        sub = _ONNX_SCHEMA.get(kind, {})
        for n, w, v in _fields(msg):
            if n in sub and w == 2:
                walk(sub[n], v, depth + 1)
            elif n in sub:
                raise FormatError(f"{kind} field {n} has the wrong wire type")

    walk("model", data, 0)
    return summary, locations


# --- Keras: configs that carry code ---------------------------------------------------------------------------

_KERAS_CODE_CLASSES = frozenset({"Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"})
_KERAS_MODULE_PREFIXES = ("keras", "keras_hub", "keras_nlp", "keras_cv", "tf_keras")


def keras_code_findings(config: Any) -> list[tuple[str, str]]:
    """(kind, detail) for every place a Keras config would run code or import a foreign module."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str, depth: int) -> None:
        if depth > 200:
            found.append(("keras_config_depth", f"config nested past 200 levels at {path}"))
            return
        if isinstance(node, dict):
            cls = node.get("class_name")
            name = node.get("config", {}).get("name") if isinstance(node.get("config"), dict) else None
            if isinstance(cls, str) and cls in _KERAS_CODE_CLASSES:
                found.append(
                    ("lambda_layer", f"{cls} layer {name or path!s} carries Python code (marshalled bytecode)")
                )
            module = node.get("module")
            if isinstance(module, str) and module.split(".")[0] not in _KERAS_MODULE_PREFIXES and module != "":
                found.append(("foreign_module", f"{path}: imports module {module!r} ({cls or 'object'})"))
            if cls == "function" and isinstance(node.get("config"), str):
                found.append(("keras_function", f"{path}: deserialises function {node.get('config')!r}"))
            for k, v in node.items():
                walk(v, f"{path}.{k}", depth + 1)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]", depth + 1)

    walk(config, "$", 0)
    return found
