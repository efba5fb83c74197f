"""SLSA provenance v1 for training runs: an in-toto statement whose subjects are the model files.

The build is the training run; its resolved dependencies are the dataset version (digest: the SHA-256 of
the version's signed manifest envelope; the Merkle root over its records is an annotation) and the base
model, if any. Signed by the principal who recorded the run, in a DSSE envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PREDICATE_SLSA = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://dataward.dev/training-run/v1"


def provenance_predicate(
    *,
    workspace_id: str,
    run_id: str,
    principal: str,
    version: str,
    version_manifest: str,
    merkle_root: str,
    records: int,
    base_model: tuple[str, str] | None,
    outputs: Sequence[tuple[str, str]],
    started_at: str,
    finished_at: str,
    status: str,
) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of a training run: the version and base model in, the models out."""
    deps: list[dict[str, Any]] = [
        {
            "uri": f"dataward://{workspace_id}/datasets/{version}",
            "name": version,
            "digest": {"sha256": version_manifest},
            "annotations": {"merkle_root": merkle_root, "records": records, "kind": "dataset-version"},
        }
    ]
    if base_model is not None:
        name, digest = base_model
        deps.append({"name": name, "digest": {"sha256": digest}, "annotations": {"kind": "base-model"}})
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "dataset": version,
                "base_model": base_model[0] if base_model else None,
                "models": [n for n, _ in outputs],
            },
            "internalParameters": {"workspace": workspace_id, "status": status},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": f"https://dataward.dev/trainer/{principal}"},
            "metadata": {
                "invocationId": run_id,
                "startedOn": _rfc3339(started_at),
                "finishedOn": _rfc3339(finished_at),
            },
        },
    }


def _rfc3339(t: str) -> str:
    return t  # dataward times are already RFC 3339 UTC ("...Z")
