"""Import the outputs a DVC repository tracks, without DVC: ``*.dvc`` files and ``dvc.lock``.

Each tracked output (``outs: - md5: ..., path: ...``) becomes one quarantined batch of an ``internal``
source. Data comes from the DVC cache (DVC 3: ``.dvc/cache/files/md5/ab/cdef...``; DVC 2:
``.dvc/cache/ab/cdef...``; a ``[cache] dir`` in ``.dvc/config`` is honoured), or from the working tree
when the cache lacks it. DVC records only MD5, so every byte is checked against its MD5 while it is copied
to a private staging directory, then acquired (fingerprinted with SHA-256) as usual. An object whose MD5
does not match is refused. Directories are ``.dir`` objects: a JSON list of ``{"md5", "relpath"}``.
DVC 2 hashed text files after converting CRLF to LF; for DVC 2 entries that form is accepted too.
By default the working tree's tracked outputs are imported; with git revisions (``--rev``), the outputs
their ``.dvc`` / ``dvc.lock`` files tracked (read with ``git show``; data from the DVC cache only).
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dataward.acquire.acquire import acquire
from dataward.acquire.inputs import safe_relative_name
from dataward.core import dsse
from dataward.errors import InputError, IntegrityError
from dataward.identity import Actor
from dataward.lifecycle import attest
from dataward.model.source import SourceKind
from dataward.model.subject import Subject
from dataward.sources import get_source
from dataward.workspace import Workspace

PREDICATE_DVC_IMPORT = dsse.PREDICATE_PREFIX + "dvc-import/v1"
_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_SKIP_DIRS = {".git", ".dvc"}


@dataclass(frozen=True)
class Tracked:
    path: str  # the output's path relative to the repository root (POSIX)
    md5: str  # as DVC recorded it ("...".dir for directories)
    tracked_in: str  # the .dvc file or dvc.lock (relative to the root; @COMMIT for a git revision)
    legacy: bool  # DVC 2 entry (no "hash: md5"): text may have been hashed after CRLF -> LF
    rev: str | None = None  # the git commit it was read from; None: the working tree

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


def _parse_yaml(text: bytes, where: str) -> Any:
    try:
        return yaml.safe_load(text.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{where}: not readable YAML ({str(exc).splitlines()[0]})") from None


def _out(entry: Any, base: PurePosixPath, where: str, rev: str | None) -> Tracked | None:
    if not isinstance(entry, dict) or "path" not in entry:
        raise InputError(f"{where}: an `outs` entry has no path")
    md5 = entry.get("md5")
    if md5 is None:
        return None  # not cached by DVC (e.g. metrics with cache: false and no hash)
    md5 = str(md5).lower()
    if not _MD5.match(md5):
        raise InputError(f"{where}: {entry['path']!r} has md5 {md5!r}, not an MD5 digest")
    rel = safe_relative_name(str(base / str(entry["path"])), where)
    return Tracked(rel, md5, where, legacy=entry.get("hash") != "md5", rev=rev)


def _is_tracking_file(rel: PurePosixPath) -> bool:
    return not any(part in _SKIP_DIRS for part in rel.parts[:-1]) and (rel.suffix == ".dvc" or rel.name == "dvc.lock")


def tracked_from(files: list[tuple[str, bytes]], rev: str | None = None) -> list[Tracked]:
    """Outputs named by ``.dvc`` and ``dvc.lock`` files given as (relative path, content), sorted by path."""
    found: dict[str, Tracked] = {}
    for name, content in sorted(files):
        rel = PurePosixPath(name)
        where = name if rev is None else f"{name}@{rev[:12]}"
        doc = _parse_yaml(content, where)
        outs: list[Any] = []
        if rel.suffix == ".dvc":
            outs = (doc.get("outs") or []) if isinstance(doc, dict) else []
        else:
            stages = (doc.get("stages") or {}) if isinstance(doc, dict) else {}
            for stage in stages.values() if isinstance(stages, dict) else []:
                if isinstance(stage, dict):
                    outs.extend(stage.get("outs") or [])
        for o in outs:
            t = _out(o, PurePosixPath(rel.parent.as_posix()), where, rev)
            if t is not None:
                found.setdefault(t.path, t)
    return [found[k] for k in sorted(found)]


def find_tracked(root: Path) -> list[Tracked]:
    """Every output tracked by a ``*.dvc`` file or a ``dvc.lock`` in the working tree below ``root``."""
    files: list[tuple[str, bytes]] = []
    for p in sorted(root.rglob("*")):
        rel = PurePosixPath(p.relative_to(root).as_posix())
        if _is_tracking_file(rel) and p.is_file():
            try:
                files.append((str(rel), p.read_bytes()))
            except OSError as exc:
                raise InputError(f"{rel}: cannot read ({exc.strerror})") from None
    return tracked_from(files)


def _git(root: Path, *args: str) -> bytes:
    git = shutil.which("git")
    if git is None:
        raise InputError("importing a git revision needs git on PATH")
    r = subprocess.run([git, "-C", str(root), *args], capture_output=True, check=False)  # noqa: S603
    if r.returncode != 0:
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"git {args[0]} failed in {root}: {msg[-1] if msg else r.returncode}")
    return r.stdout


def find_tracked_at(root: Path, rev: str) -> tuple[str, list[Tracked]]:
    """The commit ``rev`` names, and the outputs its ``.dvc`` / ``dvc.lock`` files track."""
    if rev.startswith("-"):
        raise InputError(f"revision {rev!r} looks like an option")
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    names = [n for n in _git(root, "ls-tree", "-r", "-z", "--name-only", commit).decode().split("\0") if n]
    files = [(n, _git(root, "show", f"{commit}:{n}")) for n in names if _is_tracking_file(PurePosixPath(n))]
    return commit, tracked_from(files, commit)


def cache_dirs(root: Path) -> list[Path]:
    dirs = [root / ".dvc" / "cache"]
    cfg = root / ".dvc" / "config"
    if cfg.is_file():
        cp = configparser.ConfigParser()
        try:
            cp.read(cfg, encoding="utf-8")
            d = cp.get("cache", "dir", fallback=None)
        except (configparser.Error, UnicodeDecodeError):
            d = None
        if d:
            dirs.insert(0, (root / ".dvc" / d).resolve())
    return dirs


def _candidates(root: Path, md5: str, legacy: bool) -> list[Path]:
    v3 = [c / "files" / "md5" / md5[:2] / md5[2:] for c in cache_dirs(root)]
    v2 = [c / md5[:2] / md5[2:] for c in cache_dirs(root)]
    return v2 + v3 if legacy else v3 + v2


def _looks_text(head: bytes) -> bool:
    return b"\x00" not in head


def _copy_checked(src: Path, dest: Path | None, md5: str, legacy: bool, what: str) -> bytes:
    """Copy ``src`` to ``dest`` (if given), checking its MD5 on the way; returns the bytes if dest is None."""
    raw = hashlib.md5(usedforsecurity=False)
    d2u = hashlib.md5(usedforsecurity=False)
    keep: list[bytes] = []
    carry = b""
    head = b""
    try:
        with open(src, "rb") as f, open(dest, "xb") if dest is not None else _NullWriter() as out:
            while chunk := f.read(1 << 20):
                if len(head) < 8000:
                    head += chunk[: 8000 - len(head)]
                raw.update(chunk)
                buf = carry + chunk
                carry = b"\r" if buf.endswith(b"\r") else b""
                d2u.update((buf[:-1] if carry else buf).replace(b"\r\n", b"\n"))
                out.write(chunk)
                if dest is None:
                    keep.append(chunk)
            d2u.update(carry)
    except OSError as exc:
        raise InputError(f"{src}: cannot read ({exc.strerror})") from None
    want = md5.removesuffix(".dir")
    ok = hmac.compare_digest(raw.hexdigest(), want) or (
        legacy and _looks_text(head) and hmac.compare_digest(d2u.hexdigest(), want)
    )
    if not ok:
        if dest is not None:
            dest.unlink(missing_ok=True)
        raise IntegrityError(
            f"{what}: {src} has MD5 {raw.hexdigest()}, DVC recorded {want}",
            advice="The DVC cache object was altered or corrupted; refusing it. Re-fetch it (`dvc pull`).",
        )
    return b"".join(keep)


class _NullWriter:
    def write(self, _b: bytes) -> int:
        return 0

    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _fetch(root: Path, md5: str, legacy: bool, fallback: Path | None, dest: Path | None, what: str) -> bytes:
    for c in _candidates(root, md5, legacy):
        if c.is_file():
            return _copy_checked(c, dest, md5, legacy, what)
    if fallback is not None and fallback.is_file():
        return _copy_checked(fallback, dest, md5, legacy, what)
    raise InputError(
        f"{what}: object {md5} is neither in the DVC cache nor in the working tree",
        advice="Run `dvc pull` (or `dvc checkout`) in the repository first.",
    )


def stage_output(root: Path, t: Tracked, staging: Path) -> dict[str, str]:
    """Copy output ``t`` into ``staging`` (under its repository path), MD5-checked; returns name -> md5."""
    md5s: dict[str, str] = {}
    if not t.is_dir:
        dest = staging / t.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(root, t.md5, t.legacy, root / t.path if t.rev is None else None, dest, f"{t.tracked_in}: {t.path}")
        md5s[t.path] = t.md5
        return md5s
    listing = _fetch(root, t.md5, t.legacy, None, None, f"{t.tracked_in}: {t.path} (.dir listing)")
    try:
        entries = json.loads(listing)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{t.tracked_in}: the .dir listing of {t.path} is not JSON") from None
    if not isinstance(entries, list):
        raise InputError(f"{t.tracked_in}: the .dir listing of {t.path} is not a list")
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("relpath"), str) or not isinstance(e.get("md5"), str):
            raise InputError(f"{t.tracked_in}: malformed entry in the .dir listing of {t.path}")
        rel = safe_relative_name(f"{t.path}/{e['relpath']}", f"{t.tracked_in} ({t.path}.dir)")
        md5 = e["md5"].lower()
        if not _MD5.match(md5) or md5.endswith(".dir"):
            raise InputError(f"{t.tracked_in}: {rel} has md5 {md5!r}, not an MD5 digest")
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(root, md5, t.legacy, root / rel if t.rev is None else None, dest, f"{t.tracked_in}: {rel}")
        md5s[rel] = md5
    if not md5s:
        raise InputError(f"{t.tracked_in}: directory {t.path} is empty")
    return md5s


def import_dvc(
    ws: Workspace, actor: Actor, repo: Path, source: str, *, revs: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Import every output tracked in ``repo`` as a batch of the internal ``source``; one dict per batch.

    With ``revs``, the outputs tracked at each of those git revisions (from the DVC cache only) instead of
    the working tree's; an output whose path and MD5 repeat across revisions is imported once.
    """
    src = get_source(ws, source)
    if src.kind != SourceKind.INTERNAL:
        raise InputError(
            f"source {source!r} is {src.kind}; DVC repositories are imported into an internal source",
            advice="Add one with `dataward source add NAME --kind internal ...`.",
        )
    root = Path(repo).resolve()
    if revs:
        seen: set[tuple[str, str]] = set()
        tracked = []
        for rev in revs:
            _commit, ts = find_tracked_at(root, rev)
            for t in ts:
                if (t.path, t.md5) not in seen:
                    seen.add((t.path, t.md5))
                    tracked.append(t)
    else:
        tracked = find_tracked(root)
    if not tracked:
        raise InputError(f"{repo}: no .dvc files or dvc.lock outputs found", advice="Point at a DVC repository root.")
    out: list[dict[str, Any]] = []
    from dataward.workflow._common import authorize

    authorize(ws, actor, "batch.acquire", Subject.source(source), source)  # before anything, a repeat included
    done = _imported(ws, source, root)
    for t in tracked:
        earlier = done.get((t.path, t.md5))
        if earlier is not None:  # the same output, same content: importing it again would duplicate records
            out.append(
                {
                    "path": t.path,
                    "tracked_in": t.tracked_in,
                    "git_commit": t.rev,
                    "dvc_md5": t.md5,
                    "batch": earlier.id,
                    "files": earlier.file_count,
                    "records": earlier.record_count,
                    "already_imported": True,
                }
            )
            continue
        with tempfile.TemporaryDirectory(prefix="dataward-dvc-") as tmp:
            staging = Path(tmp) / "stage"
            staging.mkdir()
            md5s = stage_output(root, t, staging)
            batch = acquire(ws, actor, source, [staging])
        by_name = {f.name: f for f in batch.files}
        mapping = [{"name": n, "md5": m, "sha256": by_name[n].sha256} for n, m in sorted(md5s.items()) if n in by_name]
        predicate = {
            "batch": batch.id,
            "repository": str(root),
            "tracked_in": t.tracked_in,
            "git_commit": t.rev,
            "path": t.path,
            "dvc_md5": t.md5,
            "files": mapping,
        }
        with ws.change(actor, "batch.acquire", f"dvc-import:{batch.id}", source=source) as ch:
            attest(
                ws, ch, [(m["name"], m["sha256"]) for m in mapping], PREDICATE_DVC_IMPORT, predicate, batch_id=batch.id
            )
            ch.details.update(
                {
                    "batch": batch.id,
                    "tracked_in": t.tracked_in,
                    "path": t.path,
                    "dvc_md5": t.md5,
                    "repository": str(root),
                }
            )
        out.append(
            {
                "path": t.path,
                "tracked_in": t.tracked_in,
                "git_commit": t.rev,
                "dvc_md5": t.md5,
                "batch": batch.id,
                "files": batch.file_count,
                "records": batch.record_count,
                "already_imported": False,
            }
        )
    return out


def _imported(ws: Workspace, source: str, root: Path) -> dict[tuple[str, str], Any]:
    """(path, DVC md5) -> the batch an earlier import of ``root`` into ``source`` made (from the signed log);
    a batch rejected or revoked since does not count, so a fixed re-import is possible."""
    from dataward.batches import get_batch
    from dataward.errors import NotFoundError
    from dataward.log.query import show_entries

    out: dict[tuple[str, str], Any] = {}
    for e in show_entries(ws, action="batch.acquire", subject="dvc-import:*", limit=1_000_000, newest_first=False):
        d = e.details
        if d.get("repository", str(root)) != str(root) or "dvc_md5" not in d:
            continue
        try:
            b = get_batch(ws, str(d["batch"]))
        except NotFoundError:
            continue
        if b.source == source and str(b.state) not in ("rejected", "revoked"):
            out[(str(d["path"]), str(d["dvc_md5"]))] = b
    return out
