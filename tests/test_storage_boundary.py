"""The storage boundary (issue #13): a catalog failure reaches the Python API, the console and the CLI as one
:class:`CatalogError` (exit 7, HTTP 503), never as a raw SQLAlchemy/DBAPI exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dataward.batches import get_batch, list_batches
from dataward.errors import EXIT_STORAGE, CatalogError, StorageError
from dataward.model.batch import Batch, BatchState
from dataward.store.catalog import write_transaction


def test_a_broken_catalog_raises_catalog_error_through_the_api(
    tmp_path: Path, make_workspace: Callable[..., Any], catalog_url: str
) -> None:
    ws = make_workspace(tmp_path, catalog_url)
    assert list_batches(ws) == []
    with write_transaction(ws.engine) as conn:  # damage the catalog beneath the library: a table is gone
        conn.execute(text("DROP TABLE batch_files"))
        conn.execute(text("ALTER TABLE batches RENAME TO batches_gone"))
    with pytest.raises(CatalogError) as err:
        list_batches(ws)
    assert isinstance(err.value, StorageError) and err.value.exit_code == EXIT_STORAGE
    assert err.value.__cause__ is not None  # the driver's error is kept, chained
    assert "catalog failure" in err.value.message and "batches" in err.value.message
    assert "\n" not in err.value.message and err.value.advice
    assert not isinstance(err.value, SQLAlchemyError)


def test_a_broken_catalog_is_one_line_and_exit_7_in_the_cli(
    tmp_path: Path, make_workspace: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from dataward.cli import main

    ws = make_workspace(tmp_path)
    with write_transaction(ws.engine) as conn:
        conn.execute(text("ALTER TABLE batches RENAME TO batches_gone"))
    code = main(["--workspace", str(ws.path), "--as", "admin", "batch", "list"])
    err = capsys.readouterr().err
    assert code == EXIT_STORAGE, err
    assert err.startswith("error: catalog failure") and "batches" in err.splitlines()[0]
    assert "Traceback" not in err and "hint:" in err


def test_unknown_batch_is_still_not_found(tmp_path: Path, make_workspace: Callable[..., Any]) -> None:
    from dataward.errors import NotFoundError

    ws = make_workspace(tmp_path)
    with pytest.raises(NotFoundError, match="no batch 'b-nope'"):
        get_batch(ws, "b-nope")


def test_console_maps_storage_failures_to_503() -> None:
    from dataward.errors import NotFoundError
    from dataward.web._request_state import status_of

    assert status_of(CatalogError("catalog failure (x): gone")) == 503
    assert status_of(StorageError("disk full")) == 503
    assert status_of(NotFoundError("no batch")) == 404


def test_batch_values_are_frozen_model_values() -> None:
    import dataclasses

    from dataward import batches

    assert batches.Batch is Batch and batches.BatchState is BatchState
    b = Batch("b1", "s", BatchState.QUARANTINED, "d", "r", 1, 1, 1, "t", "p", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.state = BatchState.APPROVED  # type: ignore[misc]
