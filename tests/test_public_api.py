"""The public API is what `dataward.__all__` names; this pins it so that changes are deliberate."""

from __future__ import annotations

import dataward

EXPECTED = {
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
}


def test_public_api_is_pinned() -> None:
    assert set(dataward.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in dataward.__all__:
        assert getattr(dataward, name) is not None, name
    assert callable(dataward.detect) and callable(dataward.open) and dataward.open is dataward.open_dataset


def test_errors_share_one_base_with_advice() -> None:
    for name in dataward.__all__:
        obj = getattr(dataward, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, dataward.Error)
            assert obj("x").advice or obj is dataward.Error
