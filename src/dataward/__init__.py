"""dataward: defend ML training and fine-tuning data against poisoning.

The public API is what this module exports (``__all__``); everything else is private and may change.
Heavy parts (detection, reading datasets, lineage) are imported on first use, so that the CLI and
``import dataward`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dataward.detect.api import detect as detect_poison
    from dataward.lineage.runs import training_run
    from dataward.release.reader import export_version as export
    from dataward.release.reader import open_dataset

    open = open_dataset

_LAZY: dict[str, tuple[str, str]] = {
    "detect_poison": ("dataward.detect.api", "detect"),
    "training_run": ("dataward.lineage.runs", "training_run"),
    "export": ("dataward.release.reader", "export_version"),
    "open_dataset": ("dataward.release.reader", "open_dataset"),
    "open": ("dataward.release.reader", "open_dataset"),  # shadows the builtin only in this namespace
}


def __getattr__(name: str) -> Any:
    if name == "detect":  # the package (callable, deprecated: see dataward.detect._CallablePackage)
        return importlib.import_module("dataward.detect")
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'dataward' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


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
    "detect_poison",
    "export",
    "open",
    "open_dataset",
    "training_run",
]
