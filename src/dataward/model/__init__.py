"""Frozen domain values shared by every layer: principals, keys, roles and grants, actions and subjects,
sources, batches, attestations, log rows, findings and severity. Pure: no I/O."""

from __future__ import annotations

from dataward.core.severity import Severity
from dataward.model.action import Action
from dataward.model.attestation import Attestation
from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.model.finding import Finding
from dataward.model.keys import Key, KeyRecord, PublicKey
from dataward.model.log_entry import RawEntry
from dataward.model.principal import Principal
from dataward.model.roles import Grant, Role
from dataward.model.source import Source, SourceKind
from dataward.model.subject import Subject

__all__ = [
    "Action",
    "Attestation",
    "Batch",
    "BatchFile",
    "BatchState",
    "Finding",
    "Grant",
    "Key",
    "KeyRecord",
    "Principal",
    "PublicKey",
    "RawEntry",
    "Role",
    "Severity",
    "Source",
    "SourceKind",
    "Subject",
]
