"""Checkpoints are scanned without loading, then acquired as batches of a checkpoint source (lineage)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataward.errors import InputError, IntegrityError
from dataward.lineage.queries import lineage
from dataward.log.query import show_entries
from dataward.sources import add_source
from dataward.workflow.model_checkpoints import register_checkpoint


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("echo pwned",))


def test_benign_checkpoint_becomes_a_quarantined_batch_in_lineage(flow: Any, tmp_path: Path) -> None:
    add_source(flow.ws, flow.actor("admin"), "hub", kind="checkpoint", origin="https://hub.example/m", license="MIT")
    ckpt = tmp_path / "weights.npy"
    np.save(ckpt, np.arange(12, dtype=np.float32).reshape(3, 4))
    _, batch = register_checkpoint(flow.ws, flow.actor("ingrid"), "hub", ckpt)
    assert batch.state == "quarantined" and batch.record_count == 1
    assert show_entries(flow.ws, action="model.scan")[0].details["passed"] is True
    import hashlib

    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    down = lineage(flow.ws, batch.id)["downstream"]
    assert [n["id"] for n in down] == [f"model:{digest}"]
    # and from the model's side, the checkpoint leads back to its source
    up = {n["id"] for n in lineage(flow.ws, digest)["upstream"]}
    assert {f"batch:{batch.id}", "source:hub"} <= up


def test_malicious_checkpoint_is_refused_and_logged(flow: Any, tmp_path: Path) -> None:
    add_source(flow.ws, flow.actor("admin"), "hub", kind="checkpoint", origin="https://hub.example/m", license="MIT")
    bad = tmp_path / "model.bin"  # a renamed extension does not hide a pickle
    bad.write_bytes(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(IntegrityError, match="refused by the model scan"):
        register_checkpoint(flow.ws, flow.actor("ingrid"), "hub", bad)
    assert show_entries(flow.ws, action="batch.refuse")[0].details["reason"] == "checkpoint fails the model scan"
    with pytest.raises(InputError, match="not a checkpoint source"):
        register_checkpoint(flow.ws, flow.actor("ingrid"), "vendor", bad)
