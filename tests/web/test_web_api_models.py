"""Every /api/v1 endpoint declares a pydantic response model (issue #13), and the models carry the library's
JSON through unchanged: what the API returns is what the CLI prints with --json."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from dataward.model.batch import Batch, BatchFile, BatchState
from dataward.model.version import Version
from dataward.release.diff import RecordRef, VersionDiff
from dataward.web import _api_models as api_models
from dataward.web import _routes_api as routes_api


def _model_of(route: APIRoute) -> type[BaseModel]:
    model = route.response_model
    args = getattr(model, "__args__", None)
    inner = args[0] if args else model  # list[Model]
    assert isinstance(inner, type) and issubclass(inner, BaseModel), f"{route.path}: {model!r}"
    return inner


def test_every_api_route_declares_a_response_model() -> None:
    routes = [r for r in routes_api.router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 20
    for route in routes:
        assert issubclass(_model_of(route), api_models.ApiModel), route.path


def test_the_openapi_document_describes_every_response() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(routes_api.router)
    spec = app.openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert schema != {}, f"{method.upper()} {path} has no response schema"


def _batch() -> Batch:
    f = BatchFile(0, "a.csv", "1" * 64, 10, "csv", 3, None, "2" * 64)
    return Batch("b-1", "lab", BatchState.SCREENED, "3" * 64, "4" * 64, 3, 1, 10, "t0", "ada", (f,))


def test_models_carry_the_library_json_unchanged() -> None:
    v = Version("train", 2, 1, "release", "5" * 64, "6" * 64, 3, ("b-1",), "t1", "rita")
    ref = RecordRef("7" * 64, "b-1", "a.csv", 0)
    diff = VersionDiff("train@1", "train@2", (ref,), (), ("b-1",), (), 5)
    cases: list[tuple[type[BaseModel], dict[str, object]]] = [
        (api_models.BatchOut, _batch().to_json()),
        (api_models.VersionOut, v.to_json()),
        (api_models.VersionCheckOut, {**v.to_json(), "verified": True, "problems": []}),
        (api_models.DiffOut, diff.to_json()),
    ]
    for model, data in cases:
        assert model.model_validate(data).model_dump(mode="json", by_alias=True) == data, model.__name__


def test_a_response_that_breaks_its_model_is_refused() -> None:
    data = _batch().to_json()
    data["records"] = "many"
    with pytest.raises(ValidationError, match="records"):
        api_models.BatchOut.model_validate(data)
    del data["records"]
    with pytest.raises(ValidationError, match="records"):
        api_models.BatchOut.model_validate(data)
