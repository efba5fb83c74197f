"""dataward: defend ML training and fine-tuning data against poisoning.

The public API is what this module exports (``__all__``); everything else is private and may change.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dataward.detect.api import detect
from dataward.errors import (
    AuthorizationError,
    ConflictError,
    Error,
    InputError,
    IntegrityError,
    NotFoundError,
    PolicyError,
    SignatureError,
    WorkspaceError,
)
from dataward.lineage.runs import training_run
from dataward.release.reader import export_version as export
from dataward.release.reader import open_dataset

open = open_dataset  # shadows the builtin only inside this module's namespace

__all__ = [
    "AuthorizationError",
    "ConflictError",
    "Error",
    "InputError",
    "IntegrityError",
    "NotFoundError",
    "PolicyError",
    "SignatureError",
    "WorkspaceError",
    "__version__",
    "detect",
    "export",
    "open",
    "open_dataset",
    "training_run",
]
