"""Reading and writing the data files detection and simulation work on (no detector logic here).

Tables (CSV, TSV, JSON Lines, Parquet) become pandas DataFrames. An image folder ``ROOT/<label>/<file>``
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dataward.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "imagefolder")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

UInt8Array = npt.NDArray[np.uint8]


def infer_format(path: Path, fmt: str | None) -> str:
    """The format named by ``fmt``, or the one the path's suffix (or being a directory) implies."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r} for {path}", advice=f"Use one of: {', '.join(FORMATS)}.")
        return fmt
    if path.is_dir():
        return "imagefolder"
    found = _SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {path} from its name",
            advice=f"Pass --format ({', '.join(FORMATS)}).",
        )
    return found


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/Parquet file; every failure is an :class:`InputError` naming the file."""
    if not path.exists():
        raise InputError(f"{path} does not exist", advice="Check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a {fmt} file", advice="Use --format imagefolder for folders.")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, keep_default_na=True)
        elif fmt == "tsv":
            frame = pd.read_csv(path, sep="\t", keep_default_na=True, quoting=3)
        elif fmt == "jsonl":
            frame = _read_jsonl(path)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:  # pragma: no cover - guarded by infer_format
            raise InputError(f"{fmt} is not a table format", advice="Use csv, tsv, jsonl or parquet.")
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, ImportError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read {path} as {fmt}: {first}", advice="Check the file and --format.") from None
    except Exception as exc:  # pyarrow raises its own exception types
        if type(exc).__module__.startswith("pyarrow"):
            raise InputError(f"cannot read {path} as {fmt}: {exc}", advice="Check the file and --format.") from None
        raise
    if len(frame) == 0:
        raise InputError(f"{path} has no records", advice="Detection needs at least a few records.")
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})", advice="Fix that line.") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: a record must be a JSON object", advice="Fix that line.")
            rows.append(value)
    return pd.DataFrame(rows)


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

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("L", "1", "I", "I;16", "F"):
                arr = np.asarray(img.convert("L"), dtype=np.uint8)
            else:
                arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return arr


def encode_png(image: UInt8Array) -> bytes:
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
    """Read ``ROOT/<label>/<file>`` into a frame (path, label, image), sorted by relative path."""
    if not root.is_dir():
        raise InputError(f"{root} is not a directory", advice="An image folder is ROOT/<label>/<image files>.")
    paths: list[str] = []
    labels: list[str] = []
    images: list[UInt8Array | None] = []
    entries = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
    for rel in entries:
        parts = rel.split("/")
        if len(parts) < 2:
            continue  # files directly under ROOT carry no label
        paths.append(rel)
        labels.append(parts[0])
        try:
            data = (root / rel).read_bytes()
        except OSError:
            images.append(None)
            continue
        images.append(decode_image_bytes(data))
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
