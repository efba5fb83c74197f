"""Synthesize a batch from a generator, and prove it by regenerating it bit for bit."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dataward.acquire.acquire import acquire
from dataward.batches import Batch, get_batch
from dataward.core import dsse
from dataward.core.merkle import root_from_leaf_hashes
from dataward.errors import InputError, IntegrityError, NotFoundError, SignatureError
from dataward.identity import Actor
from dataward.lifecycle import PREDICATE_GENERATION as GENERATION_PREDICATE
from dataward.lifecycle import attest, attestations_for
from dataward.model.source import SourceKind
from dataward.model.subject import Subject
from dataward.records.leaves import leaf_list, record_digests
from dataward.sources import get_source
from dataward.synthetic._generation import (
    GenerationStatement,
    GeneratorSpec,
    RegenerationResult,
    first_difference,
)
from dataward.synthetic._runner import GeneratorRun, run_generator
from dataward.workspace import Workspace


def _parse_params(params: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(params, Mapping):
        return {str(k): str(v) for k, v in params.items()}
    out: dict[str, str] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise InputError(f"parameter {p!r} is not K=V", advice="For example: --param rows=1000")
        out[k] = v
    return out


def _artifact_digests(paths: Sequence[str | os.PathLike[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in map(Path, paths):
        h = hashlib.sha256()
        try:
            with p.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise InputError(f"{p}: cannot read the model artifact ({exc.strerror})") from None
        out[p.name] = h.hexdigest()
    return out


@dataclass(frozen=True)
class ConditioningInput:
    """A released version a generator is conditioned on, read verified: its spec, Merkle root and records."""

    spec: str
    merkle_root: str
    table: Any  # a pyarrow.Table


class VersionReader(Protocol):
    """Reads one released version verified, logging the read as ``data.read``. The release layer sits above
    this one, so the caller passes the reader in (the CLI's reads through :mod:`dataward.release.reader`)."""

    def __call__(self, spec: str) -> ConditioningInput:
        """The version ``spec`` (``DATASET@N``), verified."""
        ...


def _inputs(
    read_version: VersionReader | None, specs: Sequence[str], tmp: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """Read each conditioned-on version verified (logged as data.read) into a Parquet file for the worker."""
    import pyarrow.parquet as pq

    if specs and read_version is None:
        raise InputError(
            f"conditioning on {', '.join(specs)} needs a reader of released versions",
            advice="Pass read_version= (a VersionReader), or use `dataward synthesize --conditioned-on`.",
        )
    paths: dict[str, Path] = {}
    roots: dict[str, str] = {}
    for spec in specs:
        assert read_version is not None
        v = read_version(spec)
        p = tmp / f"input-{len(paths)}.parquet"
        pq.write_table(v.table, p)
        paths[v.spec] = p
        roots[v.spec] = v.merkle_root
    return paths, roots


def _leaves_of(path: Path) -> bytes:
    data = path.read_bytes()
    return record_digests(
        lambda: io.BytesIO(data), path.name, "jsonl", file_sha256=hashlib.sha256(data).hexdigest(), strict=True
    ).leaves


def synthesize(
    ws: Workspace,
    actor: Actor,
    source: str,
    generator: str,
    *,
    seed: int,
    params: Mapping[str, str] | Sequence[str] = (),
    conditioned_on: Sequence[str] = (),
    artifacts: Sequence[str | os.PathLike[str]] = (),
    search_path: str | None = None,
    read_version: VersionReader | None = None,
) -> tuple[Batch, GenerationStatement]:
    """Run ``generator`` in the sandbox, acquire its output as a quarantined batch of the synthetic
    ``source`` and sign a generation statement for it (in-toto, :data:`GENERATION_PREDICATE`).

    ``conditioned_on`` names released versions the generator reads; ``read_version`` reads each verified."""
    src = get_source(ws, source)
    if src.kind != SourceKind.SYNTHETIC:
        raise InputError(
            f"source {source!r} is {src.kind}, not synthetic",
            advice="Register generators as `dataward source add NAME --kind synthetic`.",
        )
    spec = GeneratorSpec.parse(generator)
    parsed = _parse_params(params)
    with tempfile.TemporaryDirectory(prefix="dataward-synth-") as tmp_s:
        tmp = Path(tmp_s)
        input_paths, input_roots = _inputs(read_version, conditioned_on, tmp)
        run = run_generator(
            spec.ref, seed=seed, params=parsed, inputs=input_paths, out_dir=tmp, search_path=search_path
        )
        batch = acquire(ws, actor, source, [run.output], format="jsonl")
    stmt = GenerationStatement(
        GeneratorSpec(spec.module, spec.function, run.code_sha256),
        seed,
        parsed,
        _artifact_digests(artifacts),
        input_roots,
        dict(run.libraries),
        batch.files[0].name,
        batch.merkle_root,
        batch.record_count,
    )
    with ws.change(actor, "batch.generation", Subject.batch(batch.id), source=source) as ch:
        subjects = [(Subject.batch(batch.id), batch.manifest_digest)]
        attest(ws, ch, subjects, GENERATION_PREDICATE, stmt.to_predicate(), batch_id=batch.id)
        ch.details.update(
            {
                "batch": batch.id,
                "source": source,
                "generator": spec.ref,
                "seed": seed,
                "conditioned_on": sorted(input_roots),
            }
        )
    return batch, stmt


def generation_statement(ws: Workspace, batch_id: str) -> GenerationStatement:
    """The batch's generation statement, its signature verified against the key registered for its signer."""
    rows = attestations_for(ws, batch_id, GENERATION_PREDICATE)
    if not rows:
        raise NotFoundError(
            f"batch {batch_id} carries no generation statement",
            advice="Only batches made by `dataward synthesize` can be regenerated.",
        )
    row = rows[-1]
    env = dsse.Envelope.from_bytes(ws.objects.read_bytes("meta", row.envelope_digest))
    with ws.engine.connect() as conn:
        keys = ws.public_keys(conn)
    key = keys.get(row.keyid)
    if key is None:
        raise SignatureError(f"generation statement of {batch_id}: signing key {row.keyid[:16]} is not registered")
    dsse.verify_envelope(env, {row.keyid: dsse.public_key_from_hex(key.public_key)})
    st = dsse.parse_statement(env)
    if st.predicate_type != GENERATION_PREDICATE:
        raise SignatureError(f"generation statement of {batch_id} has predicate type {st.predicate_type!r}")
    return GenerationStatement.from_predicate(st.predicate)


def regenerate(
    ws: Workspace,
    actor: Actor,
    batch_id: str,
    *,
    search_path: str | None = None,
    statement: GenerationStatement | None = None,
    read_version: VersionReader | None = None,
) -> RegenerationResult:
    """Re-run the batch's generator from its signed statement and compare Merkle roots.

    Problems are named: a changed generator (code digest), changed library versions, a conditioned-on
    version whose root changed, and the first record that differs. ``statement`` overrides the signed one
    (for what-if checks; the result then says nothing about the batch's own claim). ``read_version`` reads
    the conditioned-on versions verified (needed only when the statement names some).
    """
    batch = get_batch(ws, batch_id)
    stmt = statement or generation_statement(ws, batch_id)
    problems: list[str] = []
    if stmt.output_merkle_root != batch.merkle_root:
        problems.append(f"statement names root {stmt.output_merkle_root[:16]}, the batch has {batch.merkle_root[:16]}")
    with tempfile.TemporaryDirectory(prefix="dataward-regen-") as tmp_s:
        tmp = Path(tmp_s)
        input_paths, roots = _inputs(read_version, list(stmt.inputs), tmp)
        for spec, root in stmt.inputs.items():
            if roots.get(spec) != root:
                problems.append(f"input {spec} has root {str(roots.get(spec))[:16]}, the statement names {root[:16]}")
        run: GeneratorRun = run_generator(
            stmt.generator.ref,
            seed=stmt.seed,
            params=stmt.params,
            inputs=input_paths,
            out_dir=tmp,
            search_path=search_path,
        )
        if run.code_sha256 != stmt.generator.code_sha256:
            problems.append(
                f"generator {stmt.generator.ref} changed: code SHA-256 {run.code_sha256[:16]}, "
                f"the statement names {stmt.generator.code_sha256[:16]}"
            )
        for lib, ver in stmt.libraries.items():
            if run.libraries.get(lib) != ver:
                problems.append(f"library {lib} is {run.libraries.get(lib)}, the generator ran with {ver}")
        got = _leaves_of(run.output)
    expected = _stored_leaves(ws, batch)
    regenerated_root = root_from_leaf_hashes([got[i : i + 32] for i in range(0, len(got), 32)]).hex() if got else None
    diff = first_difference(expected, got)
    if diff is not None:
        problems.append(
            f"record {diff} differs (regenerated {len(got) // 32} records, the batch has {len(expected) // 32})"
        )
    ok = diff is None and regenerated_root == batch.merkle_root and not any("changed" in p for p in problems)
    return RegenerationResult(batch_id, ok, batch.merkle_root, regenerated_root, tuple(problems), diff)


def _stored_leaves(ws: Workspace, batch: Batch) -> bytes:
    if len(batch.files) != 1 or batch.files[0].records_digest is None:
        raise IntegrityError(f"batch {batch.id} is not a single-file synthetic batch")
    raw = leaf_list(ws.objects, batch.files[0].sha256, batch.files[0].records_digest)
    if hashlib.sha256(raw).hexdigest() != batch.files[0].records_digest:
        raise IntegrityError(f"batch {batch.id}: the stored record-digest list does not match its digest")
    return raw


def regenerate_json(result: RegenerationResult) -> dict[str, Any]:
    """The regeneration result as JSON."""
    return result.to_json()


def regeneration_evidence(ws: Workspace, source: str | None = None) -> tuple[set[str], set[str]]:
    """From the signed log, replayed (:func:`dataward.evidence.load.trusted_state`): (batches with a valid
    signed generation statement, batches whose regeneration verified).

    Only a valid signed ``batch.verify`` entry with ``regenerated: true`` recorded *after* the batch's
    generation statement counts: a row written into the log table by SQL, without a valid signature by a
    principal holding a role, counts for nothing. ``source`` limits both sets to that source's batches.
    """
    st = ws.trusted_state()
    generated = {b for b, g in st.generations.items() if source is None or g.source == source}
    verified = {b for b in generated if st.regenerated(b)}
    return generated, verified
