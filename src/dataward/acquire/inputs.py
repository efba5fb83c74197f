"""Collecting the files of a delivery safely, and reading suppliers' declared digests."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dataward.errors import InputError

_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(frozen=True)
class InputFile:
    """One file to acquire: where it is read from and the name it is recorded under."""

    name: str  # relative POSIX name inside the batch
    path: Path  # where to read it


def safe_relative_name(name: str, where: str) -> str:
    """Refuse absolute names, '..' components, backslashes, NUL and control characters."""
    if not name or "\x00" in name or any(ord(c) < 32 for c in name):
        raise InputError(f"{where}: file name {name!r} has control characters")
    if "\\" in name:
        raise InputError(f"{where}: file name {name!r} contains a backslash")
    p = PurePosixPath(name)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise InputError(
            f"{where}: file name {name!r} is absolute", advice="Supplier manifests must use relative names."
        )
    if any(part == ".." for part in p.parts):
        raise InputError(f"{where}: file name {name!r} climbs out with '..'", advice="Refusing a path traversal.")
    norm = str(p)
    if norm in ("", "."):
        raise InputError(f"{where}: empty file name")
    return norm


def collect_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[InputFile]:
    """Files named directly, and regular files below named directories (sorted by name).

    Symlinks inside a directory must resolve inside it; anything else (devices, FIFOs, sockets,
    symlinks escaping the directory) is refused. Two files with the same batch name are refused.
    """
    if not paths:
        raise InputError("no files given to acquire")
    out: dict[str, InputFile] = {}

    def add(name: str, path: Path, where: str) -> None:
        if name in out:
            raise InputError(
                f"{where}: two files would both be named {name!r} in the batch",
                advice="Acquire them in separate batches or rename one.",
            )
        out[name] = InputFile(name, path)

    for arg in paths:
        p = Path(arg)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise InputError(f"{p}: no such file or directory") from None
        except PermissionError:
            raise InputError(f"{p}: permission denied") from None
        if stat.S_ISDIR(st.st_mode):
            root = p.resolve()
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for d in list(dirnames):
                    full = Path(dirpath) / d
                    if full.is_symlink():
                        _check_inside(full, root)
                        dirnames.remove(d)  # a linked directory inside the tree is walked once, via its real path
                for fn in sorted(filenames):
                    full = Path(dirpath) / fn
                    if full.is_symlink():
                        _check_inside(full, root)
                    fst = full.stat()
                    if not stat.S_ISREG(fst.st_mode):
                        raise InputError(f"{full}: not a regular file")
                    rel = full.relative_to(p).as_posix()
                    add(safe_relative_name(rel, str(full)), full, str(full))
        elif stat.S_ISREG(st.st_mode):
            add(safe_relative_name(p.name, str(p)), p, str(p))
        else:
            raise InputError(f"{p}: not a regular file or directory")
    return [out[k] for k in sorted(out)]


def _check_inside(link: Path, root: Path) -> None:
    target = link.resolve()
    if target != root and root not in target.parents:
        raise InputError(
            f"{link}: symlink points outside {root} (to {target})",
            advice="Copy the file into the delivery directory, or acquire its real path explicitly.",
        )


def parse_sha256sums(text: bytes, where: str) -> dict[str, str]:
    """Parse a ``sha256sum`` output file into name -> lowercase hex digest."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text") from None
    out: dict[str, str] = {}
    for n, line in enumerate(s.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SUM_LINE.match(line)
        if not m:
            raise InputError(f"{where} line {n}: not a sha256sum line ('<64 hex>  <name>')")
        name = safe_relative_name(m.group(2), f"{where} line {n}")
        if name in out:
            raise InputError(f"{where} line {n}: {name!r} is listed twice")
        out[name] = m.group(1).lower()
    if not out:
        raise InputError(f"{where}: lists no files")
    return out
