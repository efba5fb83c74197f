"""OpenLineage run events validated against the OpenLineage schemas with jsonschema.

openlineage-python (a dev dependency) does not ship the spec's JSON files; it ships the spec compiled into
attrs classes (openlineage.client.generated), each with its schema URL. If the package carries
``OpenLineage.json`` we validate against it; otherwise we turn those generated classes back into JSON
Schema (required fields, types, enums, nested objects; stricter than the spec: no unknown keys on the core
objects) and validate with jsonschema, then also build the client's own objects from our events, which
runs its validators (UUID run ids, ISO-8601 event times) and checks the standard facets' schema URLs.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dataward.lineage.openlineage import events, run_events
from dataward.lineage.runs import get_run, record_run
from dataward.release.versions import release

if TYPE_CHECKING:
    from release_helpers import Env

attr = pytest.importorskip("attr")
jsonschema = pytest.importorskip("jsonschema")
ol_base = pytest.importorskip("openlineage.client.generated.base")
ol_version = pytest.importorskip("openlineage.client.generated.dataset_version_dataset")
ol_jobtype = pytest.importorskip("openlineage.client.generated.job_type_job")

CORE = {"RunEvent", "Run", "Job", "InputDataset", "OutputDataset"}
ALWAYS = {"producer", "schemaURL", "_producer", "_schemaURL"}


def _packaged_spec() -> dict[str, Any] | None:
    import openlineage

    for root in openlineage.__path__:
        for p in Path(root).rglob("OpenLineage.json"):
            return json.loads(p.read_text())
    return None


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if tp is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema(a, defs) for a in typing.get_args(tp)]}
    if tp is type(None):
        return {"type": "null"}
    if origin is list:
        return {"type": "array", "items": _schema(typing.get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1], defs)}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if attr.has(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}
            hints = typing.get_type_hints(tp, vars(__import__(tp.__module__, fromlist=["x"])))
            props: dict[str, Any] = {}
            required: list[str] = []
            for f in attr.fields(tp):
                props[f.name] = _schema(hints[f.name], defs)
                if (f.default is attr.NOTHING and f.init) or f.name in ALWAYS:
                    required.append(f.name)
            defs[name] = {
                "type": "object",
                "properties": props,
                "required": sorted(required),
                "additionalProperties": name not in CORE,
            }
        return {"$ref": f"#/$defs/{name}"}
    raise AssertionError(f"unmapped type {tp!r}")


def run_event_schema() -> dict[str, Any]:
    spec = _packaged_spec()
    if spec is not None:
        return {**spec, "$ref": "#/$defs/RunEvent"}
    defs: dict[str, Any] = {}
    ref = _schema(ol_base.RunEvent, defs)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs, **ref}


def _client_event(e: dict[str, Any]) -> Any:
    """Build openlineage-python's own RunEvent from ours (runs its validators)."""

    def ds(cls: Any, d: dict[str, Any]) -> Any:
        return cls(namespace=d["namespace"], name=d["name"])

    return ol_base.RunEvent(
        eventType=ol_base.EventType(e["eventType"]),
        eventTime=e["eventTime"],
        run=ol_base.Run(runId=e["run"]["runId"]),
        job=ol_base.Job(namespace=e["job"]["namespace"], name=e["job"]["name"]),
        producer=e["producer"],
        inputs=[ds(ol_base.InputDataset, d) for d in e["inputs"]],
        outputs=[ds(ol_base.OutputDataset, d) for d in e["outputs"]],
    )


def _make_runs(env: Env) -> list[str]:
    b = env.approved("t\na\nb\n")
    release(env.ws, env.actor("alice"), "train", [b])
    base = env.path / "base.bin"
    base.write_bytes(b"base weights")
    m1 = env.path / "m1.bin"
    m1.write_bytes(b"model one")
    r1 = record_run(env.ws, env.actor("tom"), "train@1", [m1], base_model=base)
    m2 = env.path / "m2.bin"
    m2.write_bytes(b"model two")
    r2 = record_run(env.ws, env.actor("tom"), "train@1", [m2], base_model=m1)
    return [r1.id, r2.id]


@pytest.mark.slow
def test_run_events_validate_against_the_openlineage_schema(env: Env) -> None:
    ids = _make_runs(env)
    evs = events(env.ws)
    assert [e["run"]["runId"] for e in evs] == [ids[0], ids[0], ids[1], ids[1]]
    assert [e["eventType"] for e in evs] == ["START", "COMPLETE", "START", "COMPLETE"]
    schema = run_event_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for e in evs:
        errors = sorted(validator.iter_errors(e), key=lambda x: list(x.path))
        assert not errors, [f"{list(x.path)}: {x.message}" for x in errors]
        client = _client_event(e)  # the client's own validators accept it
        assert client.run.runId == e["run"]["runId"]
    # the standard facets carry the schema URLs the client generates for them, and their fields
    end = evs[1]
    version_facet = end["inputs"][0]["facets"]["version"]
    assert version_facet["_schemaURL"] == ol_version.DatasetVersionDatasetFacet._get_schema()
    assert version_facet["datasetVersion"] == "1"
    job_type = end["job"]["facets"]["jobType"]
    assert job_type["_schemaURL"] == ol_jobtype.JobTypeJobFacet._get_schema()
    ol_jobtype.JobTypeJobFacet(
        processingType=job_type["processingType"], integration=job_type["integration"], jobType=job_type["jobType"]
    )
    assert end["schemaURL"] == ol_base.RunEvent._get_schema()
    # the outputs are the models, by digest; the base model is an input
    assert end["outputs"][0]["name"].startswith("sha256:") and len(end["inputs"]) == 2


def test_the_schema_check_catches_bad_events(env: Env) -> None:
    _make_runs(env)
    e = events(env.ws)[1]
    validator = jsonschema.Draft202012Validator(run_event_schema())
    bad = [
        {**e, "eventType": "FINISHED"},
        {k: v for k, v in e.items() if k != "eventTime"},
        {**e, "run": {"runid": e["run"]["runId"]}},
        {**e, "job": {"namespace": "x"}},
        {**e, "inputs": [{"namespace": "x"}]},
    ]
    for b in bad:
        assert list(validator.iter_errors(b)), b
    with pytest.raises(ValueError):
        _client_event({**e, "run": {"runId": "not-a-uuid"}})


@pytest.mark.slow
def test_cli_writes_openlineage_for_a_lineage_and_for_one_run(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _make_runs(env)
    out = env.path / "ol.json"
    assert env.cli("lineage", "--openlineage", str(out), "--json") == 0
    assert len(json.loads(out.read_text())) == 4
    capsys.readouterr()
    m2 = env.path / "m2.bin"
    assert env.cli("lineage", str(m2), "--openlineage", str(out), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["openlineage"]["events"] == 4  # m2 comes from run 2, whose base model came from run 1
    one = env.path / "one.json"
    assert env.cli("run", "provenance", ids[0], "--openlineage", "-o", str(one)) == 0
    assert json.loads(one.read_text()) == run_events(env.ws, get_run(env.ws, ids[0]))
