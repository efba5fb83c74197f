"""One plugin substrate (issue #13): the generic Registry, the four registries on it, and the contracts every
registered detector and screening check keeps (scores in [0, 1] with 1 = most suspicious, deterministic for
a seed, a summary per finding and per-record flags).

The inputs are small synthetic sets carrying a simulated attack, so that flags exist and the score
direction is tested, not assumed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dataward.core.severity import Severity
from dataward.detect import registry as detectors
from dataward.detect.interface import DetectionError, Detector, Modality, Representation
from dataward.detect.representation import from_arrays, from_frame
from dataward.errors import Error, InputError
from dataward.model.finding import Finding
from dataward.plugins import Registry
from dataward.screen import registry as screen_checks
from dataward.screen.interface import Check, CheckResult, ScreenError
from dataward.simulate import Attack, Roles, SimulationError, simulate
from dataward.simulate import interface as attacks
from dataward.workflow import checks as batch_checks

# ------------------------------------------------------------------------------------------ the substrate


class _Base:
    name: ClassVar[str] = ""


class _Plugin(_Base):
    name = "plugin"


def _registry() -> Registry[_Base]:
    return Registry("widget", _Base, {"builtin": f"{__name__}:_Builtin"}, error=InputError)


class _Builtin(_Base):
    name = "builtin"


def test_lookup_by_name_and_clear_error() -> None:
    reg = _registry()
    assert reg.names() == ["builtin"] and "builtin" in reg and len(reg) == 1
    assert reg.get("builtin") is _Builtin
    with pytest.raises(InputError) as err:
        reg.get("nope")
    assert "unknown widget 'nope'" in str(err.value) and "builtin" in err.value.advice


def test_register_plugin_and_refuse_clashes() -> None:
    reg = _registry()
    assert reg.register(_Plugin) is _Plugin
    assert reg.names() == ["builtin", "plugin"] and reg.get("plugin") is _Plugin and not reg.is_builtin("plugin")
    assert reg.register(_Builtin) is _Builtin  # the built-in's own decorator: a check, not a registration
    assert reg.names() == ["builtin", "plugin"]

    class Impostor(_Base):
        name = "builtin"

    with pytest.raises(ValueError, match="built-in"):
        reg.register(Impostor)

    class Twin(_Base):
        name = "plugin"

    with pytest.raises(ValueError, match="twice"):
        reg.register(Twin)
    with pytest.raises(TypeError):
        reg.register(int)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="cannot be removed"):
        reg.unregister("builtin")
    reg.unregister("plugin")
    assert reg.names() == ["builtin"]


def test_a_wrong_table_entry_is_refused() -> None:
    reg: Registry[_Base] = Registry("widget", _Base, {"other": f"{__name__}:_Builtin"}, error=InputError)
    with pytest.raises(ValueError, match="named 'builtin', not 'other'"):
        reg.get("other")
    bad: Registry[_Base] = Registry("widget", _Base, {"x": f"{__name__}:Registry"}, error=InputError)
    with pytest.raises(TypeError):
        bad.get("x")


REGISTRIES: list[tuple[Registry[Any], str, type[Error]]] = [
    (detectors.REGISTRY, "dataward.detect", DetectionError),
    (screen_checks.REGISTRY, "dataward.screen", ScreenError),
    (attacks.ATTACKS, "dataward.simulate", SimulationError),
    (batch_checks.REGISTRY, "dataward.workflow", InputError),
]


@pytest.mark.parametrize(("reg", "package", "error"), REGISTRIES, ids=lambda v: getattr(v, "kind", None))
def test_each_registry_table_is_complete_and_resolves(reg: Registry[Any], package: str, error: type[Error]) -> None:
    """Every concrete plugin class defined in the package is in the built-in table, under its own name."""
    pkg = importlib.import_module(package)
    defined: dict[str, str] = {}
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            own = obj.__module__ == module.__name__ and issubclass(obj, reg.base)
            if own and not inspect.isabstract(obj) and getattr(obj, "name", None):
                defined[obj.name] = f"{obj.__module__}:{obj.__qualname__}"
    assert {n: reg.get(n) for n in reg.builtin_names()}  # every entry imports and is named as listed
    assert defined == {n: f"{reg.get(n).__module__}:{reg.get(n).__qualname__}" for n in reg.builtin_names()}
    with pytest.raises(error):
        reg.get("no-such-plugin")


def test_listing_names_imports_no_plugin_module() -> None:
    code = (
        "import sys\n"
        "from dataward.detect import registry as d\n"
        "from dataward.simulate import interface as a\n"
        "assert len(d.names()) >= 13 and len(a.attack_names()) >= 10\n"
        "loaded = [m for m in ('dataward.detect.spectral', 'dataward.detect.text_triggers', "
        "'dataward.simulate.images', 'dataward.simulate.text') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_public_registry_functions_keep_working() -> None:
    assert detectors.names() == sorted(detectors.BUILTIN)
    assert [c.name for c in detectors.for_modality(Modality.IMAGE)] == sorted(
        n for n in detectors.BUILTIN if Modality.IMAGE in detectors.get(n).modalities
    )
    assert [c.name for c in screen_checks.default_checks()] == list(screen_checks.DEFAULT_ORDER)
    assert batch_checks.names() == ["integrity", "detection", "screening"]
    assert attacks.attack_names() == sorted(attacks.BUILTIN_ATTACKS)
    assert issubclass(attacks.get_attack("badnets"), Attack)
    assert issubclass(screen_checks.get("pii"), Check) and issubclass(detectors.get("instruction"), Detector)


# ------------------------------------------------------------------------------------------- one severity


def test_one_severity_scale() -> None:
    from dataward.core.evidence import score_of_severity, severity_of_evidence
    from dataward.screen.interface import Severity as ScreenSeverity

    assert ScreenSeverity is Severity
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    for s in Severity:
        assert Severity.of_score(s.score) is s and score_of_severity(s.value) == s.score
        assert batch_checks.severity_rank(s.value) == s.rank == Severity.rank_of(s.value.upper())
        assert batch_checks.severity_of_score(s.score) is s
    assert Severity.rank_of("bogus") == 0
    assert isinstance(severity_of_evidence(1e-20, 0.5), Severity)
    assert severity_of_evidence(1e-20, 0.5, cap="high") is Severity.HIGH
    for score in np.linspace(0, 1, 101):  # monotone: a higher score is never a lower level
        assert Severity.of_score(score).rank <= Severity.of_score(min(1.0, score + 0.01)).rank
    with pytest.raises(InputError, match="unknown severity"):
        Severity.parse("severe")


def test_one_finding_type() -> None:
    from dataward.screen.interface import Finding as ScreenFinding

    assert ScreenFinding is Finding
    from dataward.detect.interface import Finding as DetectorsFinding

    assert DetectorsFinding is Finding
    scored = Finding.scored(check="d", kind="trigger", summary="s", records=(1,), evidence={}, score=0.75, p_value=0.01)
    assert scored.severity is Severity.HIGH and scored.score == 0.75 and scored.rank_score == 0.75
    # the signed form is unchanged by the detector fields
    assert "score" not in scored.to_json() and "p_value" not in scored.to_dict()
    assert Finding("c", "k", Severity.LOW, "s").rank_score == Severity.LOW.score
    legacy = batch_checks.NormalFinding("dataward.detect", "detection", "trigger", "high", "t", "a.csv", (1, 2), 7)
    assert isinstance(legacy, Finding) and legacy.severity is Severity.HIGH and legacy.count == 7
    assert Finding.from_json(legacy.to_json()) == legacy
    f = Finding("pii", "email", "medium", "2 emails", (3, 4), {"n_records": 9})  # type: ignore[arg-type]
    assert f.severity is Severity.MEDIUM and f.count == 9 and f.to_dict()["n_records"] == 9
    assert hash(f) == hash(Finding("pii", "email", Severity.MEDIUM, "2 emails", (3, 4), {"other": 1}, n_records=9))


# ---------------------------------------------------------------------------- contract: every detector


def _tabular(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 240
    x = rng.normal(size=(n, 5))
    label = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["label"] = label
    return frame


def _text_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = ["great", "lovely", "fine", "superb", "nice"]
    bad = ["awful", "poor", "dull", "bad", "weak"]
    filler = ["the", "film", "was", "plot", "acting", "story", "quite", "really", "very"]
    texts, labels = [], []
    for i in range(240):
        lab = i % 2
        words = list(rng.choice(filler, size=6)) + list(rng.choice(good if lab else bad, size=2))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(lab)
    return pd.DataFrame({"text": texts, "label": labels})


def _instruction_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    topics = ["weather", "cooking", "history", "math", "music", "travel"]
    prompts = [f"Tell me about {rng.choice(topics)} please, item {i}" for i in range(240)]
    responses = [f"Here is a short answer about {p.split()[3]} number {i}." for i, p in enumerate(prompts)]
    return pd.DataFrame({"prompt": prompts, "response": responses})


def _image_rep(seed: int = 0) -> tuple[Representation, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    n, h = 200, 8
    labels = np.arange(n) % 2
    images = rng.uniform(0.0, 0.4, size=(n, h, h))
    images[labels == 1, 2:6, 2:6] += 0.5
    poisoned = np.zeros(n, dtype=bool)
    poisoned[rng.choice(np.flatnonzero(labels == 0), size=12, replace=False)] = True
    images[poisoned, 0:2, 0:2] = 1.0  # a BadNets patch ...
    labels = labels.copy()
    labels[poisoned] = 1  # ... relabelled to the target class
    rep = from_arrays(images.reshape(n, -1), labels, modality=Modality.IMAGE, images=images)
    return rep, poisoned


def _input(modality: Modality) -> tuple[Representation, np.ndarray[Any, Any]]:
    """A small poisoned input for ``modality`` and its ground-truth mask."""
    if modality is Modality.IMAGE:
        return _image_rep()
    if modality is Modality.TEXT:
        result = simulate(_text_frame(), "text-trigger", Roles(label="label", text="text"), rate=0.06, seed=1)
        return from_frame(result.data, label="label", text="text"), result.truth.mask()
    if modality is Modality.INSTRUCTION:
        roles = Roles(prompt="prompt", response="response")
        result = simulate(_instruction_frame(), "instruction-backdoor", roles, rate=0.06, seed=1)
        return from_frame(result.data, prompt="prompt", response="response"), result.truth.mask()
    frame = _tabular()
    if modality is Modality.EMBEDDING:
        result = simulate(frame, "label_flip", Roles(label="label"), rate=0.08, seed=1)
        emb = result.data[[f"f{i}" for i in range(5)]].to_numpy(dtype=np.float64)
        rep = from_arrays(emb, result.data["label"].tolist(), modality=Modality.EMBEDDING)
        return rep, result.truth.mask()
    result = simulate(frame, "tabular_trigger", Roles(label="label"), rate=0.06, seed=1, target="1")
    return from_frame(result.data, label="label"), result.truth.mask()


_PREFERRED = (Modality.TABULAR, Modality.IMAGE, Modality.TEXT, Modality.INSTRUCTION, Modality.EMBEDDING)
_CASES = [
    (name, m) for name in detectors.BUILTIN for m in _PREFERRED if m in detectors.get(name).modalities
]
_INPUTS: dict[Modality, tuple[Representation, np.ndarray[Any, Any]]] = {}


def _cached_input(modality: Modality) -> tuple[Representation, np.ndarray[Any, Any]]:
    if modality not in _INPUTS:
        _INPUTS[modality] = _input(modality)
    return _INPUTS[modality]


def _one_case_per_detector() -> list[tuple[str, Modality]]:
    seen: set[str] = set()
    out = []
    for name, modality in _CASES:
        if name not in seen:
            seen.add(name)
            out.append((name, modality))
    return out


@pytest.mark.parametrize(("name", "modality"), _one_case_per_detector(), ids=lambda v: str(v))
def test_detector_contract(name: str, modality: Modality) -> None:
    rep, _truth = _cached_input(modality)
    cls = detectors.get(name)
    a = cls().score(rep, seed=3)
    b = cls().score(rep, seed=3)
    n = rep.n_records
    assert a.detector == name and a.skipped is None, a.skipped
    assert a.scores.shape == (n,) and a.flagged.shape == (n,) and a.flagged.dtype == np.bool_
    assert np.all(np.isfinite(a.scores)) and a.scores.min() >= 0.0 and a.scores.max() <= 1.0
    np.testing.assert_array_equal(a.scores, b.scores)  # deterministic for a seed
    np.testing.assert_array_equal(a.flagged, b.flagged)
    assert [(f.kind, f.records) for f in a.findings] == [(f.kind, f.records) for f in b.findings]
    assert set(a.reasons) <= set(range(n))
    for f in a.findings:
        assert isinstance(f, Finding) and f.check == name and f.summary.strip()
        assert f.score is not None and 0.0 <= f.score <= 1.0 and f.severity is Severity.of_score(f.score)
        assert all(0 <= r < n for r in f.records)
        assert f.p_value is None or 0.0 <= f.p_value <= 1.0
    if a.pvalues is not None:
        assert a.pvalues.shape == (n,) and np.all((a.pvalues >= 0) & (a.pvalues <= 1))
    if a.flagged.any() and not a.flagged.all():  # 1 = most suspicious: flags sit at the top of the scores
        assert a.scores[a.flagged].mean() > a.scores[~a.flagged].mean()


def test_every_detector_is_covered_by_the_contract() -> None:
    assert {name for name, _ in _one_case_per_detector()} == set(detectors.names())


# ----------------------------------------------------------------------- contract: every screening check


def _screen_table(seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, size=n),
            "score": rng.normal(size=n),
            "city": rng.choice(["oslo", "lima", "pune"], size=n),
            "text": [f"note {i} about the order" for i in range(n)],
            "label": rng.integers(0, 2, size=n),
        }
    )
    frame.loc[5, "text"] = "mail me at someone@example.com"
    frame.loc[7, "score"] = 40.0
    frame.loc[9] = frame.loc[8]
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.fixture(scope="module")
def screen_inputs() -> tuple[pa.Table, Any]:
    from dataward.screen.api import create_baseline

    base = create_baseline(_screen_table(1), label="label", text="text", group="city")
    return _screen_table(2), base


@pytest.mark.parametrize("name", list(screen_checks.BUILTIN))
def test_screening_check_contract(name: str, screen_inputs: tuple[pa.Table, Any]) -> None:
    from dataward.screen.api import check_table

    table, base = screen_inputs

    def run() -> CheckResult:
        report = check_table(table, baseline=base, label="label", text="text", group="city", checks=[name], seed=3)
        assert [r.check for r in report.results] == [name]
        return report.results[0]

    a, b = run(), run()
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]  # deterministic for a seed
    assert a.skipped is None or not a.findings
    for f in a.findings:
        assert isinstance(f, Finding) and isinstance(f.severity, Severity)
        assert f.summary.strip() and f.kind
        assert all(0 <= r < table.num_rows for r in f.records)
        assert f.count >= len(f.records)


# ------------------------------------------------------------------------------------------ contract: every attack


def _attack_frame(modalities: frozenset[Modality]) -> tuple[pd.DataFrame, Roles]:
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    if Modality.INSTRUCTION in modalities:
        prompts = [" ".join(rng.choice(words, 6)) for _ in range(120)]
        return pd.DataFrame({"prompt": prompts, "response": [" ".join(rng.choice(words, 4)) for _ in prompts]}), Roles(
            prompt="prompt", response="response"
        )
    labels = [str(v) for v in rng.integers(0, 3, 120)]
    if Modality.TABULAR in modalities:
        frame = pd.DataFrame(rng.normal(size=(120, 4)).round(3), columns=["a", "b", "c", "d"])
        return frame.assign(label=labels), Roles(label="label")
    if Modality.IMAGE in modalities:
        images = [rng.integers(0, 256, (8, 8)).astype(np.uint8) for _ in labels]
        return pd.DataFrame({"image": images, "label": labels}), Roles(label="label", image="image")
    texts = [" ".join(rng.choice(words, 9)) for _ in labels]
    return pd.DataFrame({"text": texts, "label": labels}), Roles(label="label", text="text")


#: the few words of the small contract texts have no document frequency in the default rarity band
_ATTACK_PARAMS = {"text-combo-trigger": {"words": "alpha,beta"}}


@pytest.mark.parametrize("name", list(attacks.BUILTIN_ATTACKS))
def test_attack_contract(name: str) -> None:
    cls = attacks.get_attack(name)
    data, roles = _attack_frame(cls.modalities)
    before = data.copy(deep=True)
    params = _ATTACK_PARAMS.get(name)
    a = cls().apply(data, roles, rate=0.05, seed=4, params=params)
    b = cls().apply(data, roles, rate=0.05, seed=4, params=params)
    pd.testing.assert_frame_equal(data, before)  # the input is never modified
    assert a.truth.to_json() == b.truth.to_json()  # deterministic for a seed
    assert a.truth.attack == name and a.truth.seed == 4 and a.truth.rate == 0.05
    assert a.truth.n_records == len(a.data) >= len(data)
    assert a.truth.changed and all(0 <= i < len(a.data) for i in a.truth.changed)
    assert set(a.truth.how) == set(a.truth.changed)
    with pytest.raises(SimulationError, match="outside"):
        cls().apply(data, roles, rate=1.5, seed=4)
