"""OpenLineage run events (spec 2-0-2) for recorded training runs: a START and a COMPLETE (or FAIL) event.

Job: ``dataward://WORKSPACE`` / ``train/DATASET``. Inputs: the dataset version (with the standard
``version`` facet and a ``dataward`` facet carrying the manifest digest and Merkle root) and the base model;
outputs: the models, named by digest. The run id is the run's UUID.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dataward import __version__
from dataward.lineage.runs import list_runs
from dataward.model.training import Run
from dataward.release.versions import get_version
from dataward.workspace import Workspace

PRODUCER = f"https://dataward.dev/dataward/{__version__}"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
VERSION_FACET = (
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
)
JOB_TYPE_FACET = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
OWN_FACET = "https://dataward.dev/spec/facets/1-0-0/DatawardFacet.json#/$defs/DatawardFacet"


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **fields}


def _version_input(ws: Workspace, run: Run) -> dict[str, Any]:
    v = get_version(ws, run.version)
    return {
        "namespace": f"dataward://{ws.id}",
        "name": run.version,
        "facets": {
            "version": _facet(VERSION_FACET, datasetVersion=str(v.number)),
            "dataward": _facet(
                OWN_FACET, manifest_sha256=v.manifest_digest, merkle_root=v.merkle_root, records=v.record_count
            ),
        },
    }


def _model(ws: Workspace, name: str, sha256: str, size: int | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"path": name, "sha256": sha256}
    if size is not None:
        extra["size"] = size
    return {
        "namespace": f"dataward://{ws.id}/models",
        "name": f"sha256:{sha256}",
        "facets": {"dataward": _facet(OWN_FACET, **extra)},
    }


def run_events(ws: Workspace, run: Run) -> list[dict[str, Any]]:
    """The OpenLineage START and COMPLETE (or FAIL) events of ``run``: inputs, job and output models."""
    inputs = [_version_input(ws, run)]
    if run.base_model:
        inputs.append(_model(ws, run.base_model.name, run.base_model.sha256, None))
    job = {
        "namespace": f"dataward://{ws.id}",
        "name": f"train/{run.dataset}",
        "facets": {
            "jobType": _facet(JOB_TYPE_FACET, processingType="BATCH", integration="DATAWARD", jobType="TRAINING")
        },
    }
    run_obj = {
        "runId": run.id,
        "facets": {
            "dataward": _facet(
                OWN_FACET, principal=run.principal, status=run.status, provenance_sha256=run.provenance_digest
            )
        },
    }
    base = {"producer": PRODUCER, "schemaURL": f"{SPEC}#/$defs/RunEvent", "job": job, "run": run_obj}
    start = {**base, "eventType": "START", "eventTime": run.started_at, "inputs": inputs, "outputs": []}
    end = {
        **base,
        "eventType": "COMPLETE" if run.status == "completed" else "FAIL",
        "eventTime": run.finished_at,
        "inputs": inputs,
        "outputs": [_model(ws, a.name, a.sha256, a.size) for a in run.outputs],
    }
    return [start, end]


def events(ws: Workspace, run_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Events of the given runs (all runs when None), in run order."""
    wanted = None if run_ids is None else set(run_ids)
    out: list[dict[str, Any]] = []
    for r in list_runs(ws):
        if wanted is None or r.id in wanted:
            out.extend(run_events(ws, r))
    return out
