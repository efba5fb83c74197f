"""The one format sniffer: a file's format from its name (and, for a directory, from what it holds).

Canonical format names: ``csv``, ``tsv``, ``jsonl``, ``json``, ``parquet``, ``arrow``, ``text``, ``images``
(a folder of images, ``ROOT/<label>/<file>``), ``npy``; anything else is ``file`` (one opaque record).
Older spellings are accepted as aliases (``txt`` for text, ``imagefolder`` for images).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from dataward.errors import InputError

#: formats a reader exists for (``file`` has no reader: it is one opaque record)
READ_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "arrow", "text", "images", "npy")
ALIASES = {"txt": "text", "imagefolder": "images", "ndjson": "jsonl", "pq": "parquet", "feather": "arrow"}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"})
SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".txt": "text",
    ".text": "text",
    ".npy": "npy",
}
#: metadata files a data directory may carry beside its data (never read as data)
METADATA_NAMES = frozenset({"dataset_info.json", "metadata.json", "dataset_infos.json", "state.json"})


def canonical_format(fmt: str) -> str:
    """``fmt`` under its canonical name; an unknown name is an :class:`InputError` listing the known ones."""
    name = ALIASES.get(fmt, fmt)
    if name not in READ_FORMATS:
        raise InputError(f"unknown format {fmt!r}", advice=f"Use one of: {', '.join(READ_FORMATS)}.")
    return name


def format_of_name(name: str) -> str:
    """The format a file name implies by its suffix, or ``file`` when it implies none."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return SUFFIX_FORMAT.get(suffix, "file")


def is_metadata(name: str) -> bool:
    """Whether a file in a data directory is metadata (README, YAML cards, croissant JSON-LD)."""
    low = PurePosixPath(name).name.lower()
    return (
        low.startswith(".")
        or PurePosixPath(low).suffix in (".md", ".yaml", ".yml")
        or "croissant" in low
        or low in METADATA_NAMES
    )


def filesystem(fs: Any = None) -> Any:
    """``fs``, or the local fsspec filesystem."""
    if fs is not None:
        return fs
    import fsspec

    return fsspec.filesystem("file")


def sniff(path: str, fs: Any = None) -> str:
    """The format of ``path`` on filesystem ``fs`` (fsspec; local by default): by suffix for a file; for a
    directory, the format of its first data file, else ``images`` when it holds images."""
    fs = filesystem(fs)
    if fs.isdir(path):
        names = sorted(str(p) for p in fs.find(path))
        for p in names:
            fmt = format_of_name(p)
            if fmt in SUFFIX_FORMAT.values() and fmt != "text" and not is_metadata(p):
                return fmt
        if any(format_of_name(p) == "image" for p in names):
            return "images"
        raise InputError(f"{path}: no data files or images found in this directory")
    fmt = format_of_name(path)
    if fmt == "image":
        return "images"
    if fmt == "file":
        raise InputError(
            f"{path}: cannot tell the format from the name {PurePosixPath(path).name!r}",
            advice=f"Pass --format, one of: {', '.join(READ_FORMATS)}.",
        )
    return fmt
