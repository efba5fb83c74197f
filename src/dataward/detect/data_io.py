"""Detection's view of the records layer, and writing the files simulation makes (no detector logic here).

Tables (CSV, TSV, JSON Lines, Parquet, .npy), read by :mod:`dataward.records`, become pandas
DataFrames. An image folder ``ROOT/<label>/<file>``
becomes a DataFrame with the columns ``path`` (relative, POSIX), ``label`` and ``image`` (a decoded uint8
array, or ``None`` for an image that could not be decoded), sorted by relative path. Image columns of a
table may hold encoded bytes, ``{"bytes": ..., "path": ...}`` dicts (Hugging Face style), paths relative
to the table's folder, or ``data:`` / ``base64:`` strings; :func:`decode_image_cell` reads any of them.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dataward import records
from dataward.errors import InputError
from dataward.records.sniff import IMAGE_SUFFIXES as _IMAGE_SUFFIXES
from dataward.records.sniff import format_of_name

FORMATS = ("csv", "tsv", "jsonl", "parquet", "imagefolder", "npy")
IMAGE_SUFFIXES = _IMAGE_SUFFIXES

UInt8Array = npt.NDArray[np.uint8]


def infer_format(path: Path, fmt: str | None) -> str:
    """The format named by ``fmt``, or the one the records layer's sniffer gives (``imagefolder`` for a folder)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r} for {path}", advice=f"Use one of: {', '.join(FORMATS)}.")
        return fmt
    if path.is_dir():
        return "imagefolder"
    found = format_of_name(path.name)
    if found not in FORMATS:
        raise InputError(
            f"cannot tell the format of {path} from its name",
            advice=f"Pass --format ({', '.join(FORMATS)}).",
        )
    return found


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/Parquet/.npy file through the records layer (strict: invalid UTF-8 or JSON is an
    :class:`InputError` naming the file and line)."""
    if not path.exists():
        raise InputError(f"{path} does not exist", advice="Check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a {fmt} file", advice="Use --format imagefolder for folders.")
    table = records.read_table(str(path), fmt, errors="strict")
    frame: pd.DataFrame = table.to_pandas()
    if len(frame) == 0:
        raise InputError(f"{path} has no records", advice="Detection needs at least a few records.")
    return frame


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write ``frame`` atomically (temp file + rename) in ``fmt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if fmt == "csv":
        frame.to_csv(tmp, index=False)
    elif fmt == "tsv":
        frame.to_csv(tmp, sep="\t", index=False)
    elif fmt == "jsonl":
        with tmp.open("w", encoding="utf-8") as handle:
            for row in frame.to_dict(orient="records"):
                handle.write(json.dumps(_jsonable(row), ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        frame.to_parquet(tmp, index=False)
    else:
        raise InputError(f"cannot write {fmt} as a table", advice="Use csv, tsv, jsonl or parquet.")
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, bytes):
        return "base64:" + base64.b64encode(value).decode("ascii")
    return value


# --------------------------------------------------------------------------------------------- images


def decode_image_bytes(data: bytes) -> UInt8Array | None:
    """Decode encoded image bytes to a uint8 array (H, W) or (H, W, 3); ``None`` when corrupt."""
    from PIL import Image, UnidentifiedImageError

    limit = records.Limits.from_env().max_image_pixels
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as img:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if img.width * img.height > limit:
                return None  # over the max_image_pixels limit: not decoded (a decompression bomb)
            img.load()
            if img.mode in ("L", "1", "I", "I;16", "F"):
                arr = np.asarray(img.convert("L"), dtype=np.uint8)
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        MemoryError,
    ):
        return None
    return arr


def encode_png(image: UInt8Array) -> bytes:
    """The image as PNG bytes (lossless, so a decoded copy is pixel-identical)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def decode_image_cell(value: Any, base: Path) -> UInt8Array | None:
    """Decode one image cell of a table (bytes, HF dict, relative path, data URI); ``None`` when unreadable."""
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3):
        return value
    if isinstance(value, Mapping):
        raw = value.get("bytes")
        if isinstance(raw, bytes | bytearray) and raw:
            return decode_image_bytes(bytes(raw))
        value = value.get("path")
    if isinstance(value, bytes | bytearray):
        return decode_image_bytes(bytes(value))
    if isinstance(value, str) and value:
        text = value.strip()
        for prefix in ("base64:", "data:"):
            if text.startswith(prefix):
                payload = text.split(",", 1)[1] if prefix == "data:" and "," in text else text[len(prefix) :]
                try:
                    return decode_image_bytes(base64.b64decode(payload, validate=True))
                except (binascii.Error, ValueError):
                    return None
        candidate = Path(text)
        if not candidate.is_absolute():
            candidate = base / candidate
        try:
            return decode_image_bytes(candidate.read_bytes())
        except OSError:
            return None
    return None


def read_imagefolder(root: Path) -> pd.DataFrame:
    """Read ``ROOT/<label>/<file>`` through the records layer into a frame (path, label, image), sorted by
    relative path; files directly under ROOT carry no label and are skipped."""
    if not root.is_dir():
        raise InputError(f"{root} is not a directory", advice="An image folder is ROOT/<label>/<image files>.")
    paths: list[str] = []
    labels: list[str] = []
    images: list[UInt8Array | None] = []
    for batch in records.read(str(root), "images"):
        for rel, blob, label in zip(*(batch.column(c).to_pylist() for c in ("path", "image", "label")), strict=True):
            if label is None:
                continue
            paths.append(rel)
            labels.append(label)
            images.append(None if blob is None else decode_image_bytes(blob))
    if not paths:
        raise InputError(
            f"{root} holds no images in label folders",
            advice="Lay the images out as ROOT/<label>/<file>.png (png, jpg, bmp, gif, tiff, webp).",
        )
    return pd.DataFrame({"path": paths, "label": labels, "image": images})


def write_imagefolder(frame: pd.DataFrame, root: Path, *, image: str = "image") -> None:
    """Write each image of a (path, image) frame to ``ROOT/<path>`` as PNG (paths are ``<label>/<file>.png``)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, img in zip(frame["path"], frame[image], strict=True):
        target = root / str(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if img is None:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(encode_png(np.asarray(img, dtype=np.uint8)))
        tmp.replace(target)
