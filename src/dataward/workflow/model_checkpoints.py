"""Public model checkpoints as deliveries: scanned without loading, then acquired as a batch of a
`checkpoint` source, so that they sit in quarantine, go through the gate, and appear in lineage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataward.batches import Batch
from dataward.errors import InputError, IntegrityError
from dataward.identity import Actor
from dataward.sources import get_source
from dataward.workspace import Workspace

if TYPE_CHECKING:
    from dataward.modelscan import AllowList, ModelScanResult


def register_checkpoint(
    ws: Workspace, actor: Actor, source: str, path: str | Path, *, allow: AllowList | None = None
) -> tuple[ModelScanResult, Batch]:
    """Scan ``path``; refuse it (and log the refusal) unless every pickle global is allowed; else acquire it.

    ``allow`` (a :class:`dataward.modelscan.AllowList`) defaults to the defaults plus the policy's
    ``[modelscan] allow``; the globals passed only by an added name are logged with the scan.
    """
    from dataward.acquire.acquire import acquire
    from dataward.modelscan import AllowList, parse_allow, scan_model
    from dataward.workflow.approval_policy import load_policy

    src = get_source(ws, source)
    if src.kind != "checkpoint":
        raise InputError(
            f"source {source!r} is {src.kind}, not a checkpoint source",
            advice=f"Register checkpoints under a source added with --kind checkpoint (not {source!r}).",
        )
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if allow is None:
        extra = load_policy(ws).modelscan_allow
        allow = AllowList(parse_allow(extra, "policy"), "policy [modelscan] allow" if extra else "")
    result = scan_model(p, allow=allow)
    findings = [f.summary for f in result.findings][:20]
    summary: dict[str, Any] = {
        "path": str(p),
        "passed": bool(result.passed),
        "findings": findings,
        "allowed_by_extra": list(result.allowed_extra),
        "allow_source": result.allow_source,
    }
    if not result.passed:
        ws.record(
            actor, "batch.refuse", f"source:{source}", {"reason": "checkpoint fails the model scan", "scan": summary}
        )
        first = findings[0] if findings else "see `dataward scan-model`"
        raise IntegrityError(
            f"{p}: checkpoint refused by the model scan: {first}",
            advice="Never load this file. Ask the publisher for a safetensors export.",
        )
    batch = acquire(ws, actor, source, [p], format="file")
    ws.record(actor, "model.scan", f"batch:{batch.id}", summary)
    return result, batch
