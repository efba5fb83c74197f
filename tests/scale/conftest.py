"""One local Dask cluster (2 worker processes) shared by the scale tests of a pytest process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def dask_executor() -> Iterator[Any]:
    pytest.importorskip("distributed")
    from dataward.scale.dask import DaskExecutor

    with DaskExecutor(workers=2) as ex:
        yield ex
