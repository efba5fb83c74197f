"""Mutated pickles against an oracle: whenever the static reader passes a pickle, a real unpickler that only
resolves allowed globals (to inert stand-ins) must never be asked for any other global."""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelscan_corpus import call_p0, call_p4, u

from dataward.modelscan import AllowList, scan_model

_ALLOW = AllowList()
SEEDS = [pickle.dumps(collections.OrderedDict(a=[1, 2.5], b={"c": (1, 2)}, d={3}), protocol=p) for p in range(6)] + [
    call_p0("os", "system"),
    call_p4("builtins", "eval"),
    b"\x80\x04"
    + u("os")
    + b"\x94"
    + u("system")
    + b"\x94"
    + u("collections")
    + u("OrderedDict")
    + b"00h\x00h\x01\x93"
    + u("id")
    + b"\x85R.",
    b"\x80\x04" + u("collections") + u("OrderedDict") + b"\x93)R" + u("builtins") + u("getattr") + b"\x930.",
]


class _Inert:
    """What an allowed global resolves to in the oracle: accepts any call or state, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass


class _Oracle(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.refused: list[str] = []

    def find_class(self, module: str, name: str) -> Any:
        if not _ALLOW.allows(module, name):
            self.refused.append(f"{module}.{name}")
            raise pickle.UnpicklingError(f"refused {module}.{name}")
        if (module, name) in (("builtins", "str"), ("__builtin__", "str")):
            return str
        return _Inert()

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def _oracle_refusals(data: bytes) -> list[str]:
    oracle = _Oracle(data)
    with contextlib.suppress(Exception):  # malformed mutants fail to load; only what was asked for matters
        oracle.load()
    return oracle.refused


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 3),
)
def test_a_passing_mutant_never_reaches_a_disallowed_global(
    seed: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    blob = bytes(data[: len(data) - cut] if cut else data)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "mutant.pkl"
        p.write_bytes(blob)
        res = scan_model(p)
    if res.passed:
        assert _oracle_refusals(blob) == [], [f.summary for f in res.findings]
    # and the reader never names fewer globals than the unpickler asks for
    assert set(_oracle_refusals(blob)) <= set(res.globals) or not res.passed


def test_the_seeds_behave() -> None:
    passed = []
    for s in SEEDS:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "seed.pkl"
            p.write_bytes(s)
            passed.append(scan_model(p).passed)
    assert passed == [True] * 6 + [False] * 4
    assert _oracle_refusals(SEEDS[6]) == ["os.system"]


_SEED_FILES = (
    "sk_forest_joblib_0.joblib",
    "sk_logreg_p5.pkl",
    "weights.npz",
    "torch_zip.pt",
    "torch_legacy.pt",
    "model.safetensors",
    "structured.npy",
    "skl2onnx_logreg.onnx",
    "joblib_arrays.joblib",
    "model.keras",
)


@pytest.mark.slow
def test_mutated_checkpoints_never_crash_the_scanner(corpus: tuple[Path, list[Any]], tmp_path: Path) -> None:
    """Bad input gets a verdict, never an exception: byte flips, truncations and splices of real files."""
    import random

    root, _ = corpus
    rng = random.Random(16)
    crashed = []
    for name in _SEED_FILES:
        src = (root / "pass" / name).read_bytes()
        for i in range(40):
            data = bytearray(src)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if i % 4 == 0:
                data = data[: rng.randrange(1, len(data))]
            p = tmp_path / f"{i}_{name}"
            p.write_bytes(bytes(data))
            try:
                scan_model(p)
            except Exception as exc:  # the assertion below lists them
                crashed.append(f"{name} mutant {i}: {type(exc).__name__}: {exc}")
            p.unlink()
    assert crashed == []
