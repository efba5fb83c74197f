"""Training runs: which verified dataset version (and base model) went in, which model files came out.

A run is recorded only for a released version that verifies end to end; its inputs and outputs are kept
by digest, with the principal and times, and a signed SLSA provenance statement (subjects: the models).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from dataward.acquire.inputs import collect_inputs
from dataward.core import dsse
from dataward.errors import InputError
from dataward.identity import Actor
from dataward.lifecycle import attest
from dataward.lineage._slsa import PREDICATE_SLSA, provenance_predicate
from dataward.model.training import Artifact, Run
from dataward.model.version import Version
from dataward.release.reader import open_dataset, resolve_actor, resolve_workspace
from dataward.release.versions import check_may, read_envelope, require_verified
from dataward.store import lineage_repo
from dataward.store.catalog import Transaction
from dataward.timeutil import now_iso
from dataward.workspace import Workspace


def hash_file(path: Path) -> Artifact:
    """The file's name, SHA-256 and size (read in 1 MiB chunks); unreadable: :class:`InputError`."""
    h = hashlib.sha256()
    n = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                n += len(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return Artifact(str(path), h.hexdigest(), n)


def hash_model(path: str | os.PathLike[str]) -> list[Artifact]:
    """A model file, or every file of a model directory (named DIR/RELATIVE)."""
    p = Path(path)
    if p.is_dir():
        return [
            Artifact(f"{p.name}/{it.name}", a.sha256, a.size)
            for it in collect_inputs([p])
            for a in [hash_file(it.path)]
        ]
    if not p.is_file():
        raise InputError(f"{p}: no such model file or directory")
    return [hash_file(p)]


def record_run(
    ws: Workspace,
    actor: Actor,
    version: str,
    models: Sequence[str | os.PathLike[str]],
    *,
    base_model: str | os.PathLike[str] | None = None,
    started_at: str | None = None,
    status: str = "completed",
    run_id: str | None = None,
    full_verify: bool = True,
) -> Run:
    """Record a training run of ``version`` that produced ``models``; refuses unreleased or unverified input."""
    run_id = run_id or str(uuid.uuid4())
    check_may(ws, actor, "run.record", f"run:{run_id}")
    v, _pred = require_verified(ws, version, full=full_verify)
    outputs = [a for m in models for a in hash_model(m)]
    if status == "completed" and not outputs:
        raise InputError("a completed run needs at least one model", advice="Name the model files with --model.")
    base = hash_file(Path(base_model)) if base_model is not None else None
    finished_at = now_iso()
    started_at = started_at or finished_at
    predicate = provenance_predicate(
        workspace_id=ws.id,
        run_id=run_id,
        principal=actor.name,
        version=v.spec,
        version_manifest=v.manifest_digest,
        merkle_root=v.merkle_root,
        records=v.record_count,
        base_model=(base.name, base.sha256) if base else None,
        outputs=[(a.name, a.sha256) for a in outputs],
        started_at=started_at,
        finished_at=finished_at,
        status=status,
    )
    subjects = [(a.name, a.sha256) for a in outputs] or [(v.spec, v.manifest_digest)]
    with ws.change(actor, "run.record", f"run:{run_id}") as ch:
        digest = attest(ws, ch, subjects, PREDICATE_SLSA, predicate)
        run = Run(
            run_id, v.spec, v.manifest_digest, status, actor.name, started_at, finished_at, digest, base, tuple(outputs)
        )
        lineage_repo.insert_run(ch.conn, run, v.dataset, v.number)
        ch.details.update(
            {
                "version": v.spec,
                "version_manifest": v.manifest_digest,
                "base_model": base.sha256 if base else None,
                "models": [a.sha256 for a in outputs],
                "status": status,
                "provenance_sha256": digest,
            }
        )
    return get_run(ws, run_id)


def load_run(tx: Transaction, run_id: str) -> Run:
    """The run ``run_id`` read inside ``tx``; unknown: :class:`~dataward.errors.NotFoundError`."""
    return lineage_repo.load_run(tx, run_id)


def get_run(ws: Workspace, run_id: str) -> Run:
    """The recorded run ``run_id``; unknown: :class:`~dataward.errors.NotFoundError`."""
    with ws.engine.connect() as conn:
        return load_run(conn, run_id)


def list_runs(ws: Workspace) -> list[Run]:
    """Every recorded run, in the order they finished."""
    with ws.engine.connect() as conn:
        return [lineage_repo.load_run(conn, i) for i in lineage_repo.run_ids(conn)]


def provenance_envelope(ws: Workspace, run_id: str) -> dsse.Envelope:
    """The run's signed SLSA provenance (re-hashed; verify its signature with the signer's key)."""
    run = get_run(ws, run_id)
    return read_envelope(ws, run.provenance_digest, f"provenance of run {run_id}")


class TrainingRun:
    """``with dataward.training_run("DATASET@VERSION") as run: ...; run.add_model(path)``.

    Entering verifies the version end to end (and refuses it otherwise); leaving records the run with its
    models (status ``failed`` if the block raised). ``run.open(as_=...)`` reads the version.
    """

    def __init__(
        self,
        version: str,
        *,
        base_model: str | os.PathLike[str] | None = None,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        principal: str | Actor | None = None,
    ) -> None:
        self.spec = version
        self.base_model = base_model
        self._workspace = workspace
        self._principal = principal
        self.id = str(uuid.uuid4())
        self.models: list[str | os.PathLike[str]] = []
        self.run: Run | None = None
        self.version: Version | None = None

    def __enter__(self) -> TrainingRun:
        self.ws = resolve_workspace(self._workspace)
        self.actor = resolve_actor(self.ws, self._principal)
        check_may(self.ws, self.actor, "run.record", f"run:{self.id}")
        self.version, _ = require_verified(self.ws, self.spec)
        self.started_at = now_iso()
        return self

    def add_model(self, path: str | os.PathLike[str]) -> None:
        """Name a model file (or directory) the run produced; recorded when the block ends."""
        self.models.append(path)

    def open(self, as_: str = "pandas") -> Any:
        """The version's records, verified: a pandas DataFrame by default (what scikit-learn takes); ``as_``
        as for :func:`dataward.open` (``arrow``, ``polars``, ``paths``)."""
        assert self.version is not None, "use inside `with`"
        return open_dataset(self.version.spec, as_=as_, workspace=self.ws, principal=self.actor)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.version is not None
        status = "completed" if exc_type is None else "failed"
        models = self.models if exc_type is None else [m for m in self.models if Path(m).exists()]
        try:
            self.run = record_run(
                self.ws,
                self.actor,
                self.version.spec,
                models,
                base_model=self.base_model,
                started_at=self.started_at,
                status=status,
                run_id=self.id,
                full_verify=False,
            )
        except Exception:
            if exc_type is None:
                raise  # otherwise the block's own exception is the one to see


def training_run(
    version: str,
    *,
    base_model: str | os.PathLike[str] | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    principal: str | Actor | None = None,
) -> TrainingRun:
    """A context manager that verifies ``version`` on entry and records the run on exit (:class:`TrainingRun`)."""
    return TrainingRun(version, base_model=base_model, workspace=workspace, principal=principal)
