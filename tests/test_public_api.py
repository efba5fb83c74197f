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
    "detect_poison",
    "export",
    "open",
    "open_dataset",
    "training_run",
}


#: every package's ``__all__`` (issue #13): a change to a package's public surface is deliberate
PACKAGES: dict[str, set[str]] = {
    "dataward.acquire": set(),
    "dataward.cli": {"cli", "main", "run"},
    "dataward.core": set(),
    "dataward.detect": {
        "DetectionError",
        "DetectionReport",
        "Detector",
        "DetectorResult",
        "Finding",
        "Modality",
        "Reason",
        "Representation",
        "detect",
        "from_arrays",
        "from_frame",
        "load_records",
        "register",
    },
    "dataward.evidence": set(),
    "dataward.federated": {
        "Coordinator",
        "ForkError",
        "Node",
        "NodeIdentity",
        "NodeRank",
        "PeerView",
        "RewindError",
        "RoundRecord",
        "UpdateStatement",
        "WitnessError",
    },
    "dataward.incident": {
        "Incident",
        "PREDICATE_INCIDENT",
        "TraceResult",
        "get_incident",
        "list_incidents",
        "open_incident",
        "resolve_incident",
        "story",
        "trace",
    },
    "dataward.lineage": set(),
    "dataward.log": set(),
    "dataward.model": {
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
    },
    "dataward.modelscan": {
        "AllowList",
        "CHECK",
        "DEFAULT_GLOBALS",
        "Global",
        "Limits",
        "ModelScanResult",
        "PickleReading",
        "iter_results",
        "parse_allow",
        "read_pickle",
        "scan_model",
    },
    "dataward.records": {
        "LimitError",
        "Limits",
        "READ_FORMATS",
        "ReadStats",
        "canonical_format",
        "load_npy",
        "read",
        "read_table",
        "sniff",
    },
    "dataward.redteam": {
        "CallableModel",
        "Check",
        "DEFAULTS",
        "HttpModel",
        "Model",
        "ModelError",
        "OnnxModel",
        "PREDICATE_REDTEAM",
        "RedteamReport",
        "load_model",
        "model_lineage",
        "redteam",
        "results_for",
        "run_gate",
    },
    "dataward.release": set(),
    "dataward.scale": set(),
    "dataward.screen": set(),
    "dataward.simulate": {
        "Attack",
        "GroundTruth",
        "PoisonResult",
        "Roles",
        "SimulationError",
        "attack_names",
        "get_attack",
        "register_attack",
        "simulate",
    },
    "dataward.store": set(),
    "dataward.synthetic": {
        "ConditioningInput",
        "CoverageReport",
        "GENERATION_PREDICATE",
        "GenerationStatement",
        "GeneratorSpec",
        "RegenerationResult",
        "VersionReader",
        "coverage",
        "regenerate",
        "synthesize",
    },
    "dataward.web": set(),
    "dataward.workflow": {
        "approve",
        "approve_with_statement",
        "assess",
        "assess_all",
        "complete_audit",
        "draw_sample",
        "estimate",
        "evaluate",
        "latest_report",
        "load_policy",
        "prepare_statement",
        "record_decisions",
        "reject",
        "sample_items",
        "screen_batch",
        "set_policy",
        "sign_statement",
    },
}


def test_public_api_is_pinned() -> None:
    assert set(dataward.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in dataward.__all__:
        assert getattr(dataward, name) is not None, name
    assert callable(dataward.detect_poison) and callable(dataward.open) and dataward.open is dataward.open_dataset


def test_errors_share_one_base_with_advice() -> None:
    for name in dataward.__all__:
        obj = getattr(dataward, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, dataward.Error)
            assert obj("x").advice or obj is dataward.Error


def test_every_package_declares_and_pins_its_public_surface() -> None:
    import importlib
    import pkgutil

    found = {}
    for info in pkgutil.iter_modules(dataward.__path__, "dataward."):
        if info.ispkg:
            module = importlib.import_module(info.name)
            assert isinstance(getattr(module, "__all__", None), list), f"{info.name} has no __all__"
            found[info.name] = set(module.__all__)
            for name in module.__all__:
                assert getattr(module, name, None) is not None, f"{info.name}.{name} does not resolve"
    assert found == PACKAGES


def test_no_private_name_is_used_outside_its_package() -> None:
    """``from dataward.X.Y import _name`` (or from a private module ``_y``) only inside package X."""
    import ast
    from pathlib import Path

    src = Path(dataward.__file__).parent
    found = set()
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        own = ".".join(parts[:2])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dataward."):
                if ".".join(node.module.split(".")[:2]) == own:
                    continue
                for alias in node.names:
                    segments = [*node.module.split(".")[2:], alias.name]
                    if any(s.startswith("_") and not s.startswith("__") for s in segments):
                        found.add(f"{module} -> {node.module}.{alias.name}")
    new = sorted(found - PRIVATE_USES_ALLOWED)
    stale = sorted(PRIVATE_USES_ALLOWED - found)
    assert not new, f"private names used across packages (give them a public home): {new}"
    assert not stale, f"no longer used, remove from PRIVATE_USES_ALLOWED (it only shrinks): {stale}"


#: issue #13: private names still used across packages (each wants a public home)
PRIVATE_USES_ALLOWED = frozenset(
    {
        "dataward.cli._detect -> dataward.detect._io.FORMATS",
        "dataward.cli._synthetic -> dataward.synthetic._coverage.coverage_html",
        "dataward.release.dvc -> dataward.workflow._common.authorize",
        "dataward.simulate.io -> dataward.detect._io.decode_image_cell",
        "dataward.simulate.io -> dataward.detect._io.encode_png",
        "dataward.simulate.io -> dataward.detect._io.infer_format",
        "dataward.simulate.io -> dataward.detect._io.read_imagefolder",
        "dataward.simulate.io -> dataward.detect._io.read_table",
        "dataward.simulate.io -> dataward.detect._io.write_imagefolder",
        "dataward.simulate.io -> dataward.detect._io.write_table",
    }
)
