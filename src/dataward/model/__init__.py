"""Frozen domain values shared by every layer (principals, keys, batches, findings, severity). Pure: no I/O."""

from __future__ import annotations

from dataward.core.severity import Severity
from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.model.finding import Finding
from dataward.model.keys import Key, PublicKey
from dataward.model.principal import Principal

__all__ = ["Batch", "BatchFile", "BatchState", "Finding", "Key", "Principal", "PublicKey", "Severity"]
