"""Intel feeds: hostile nesting is a one-line refusal, never a RecursionError or a crash; the fast YAML
path builds exactly what PyYAML's safe loader builds (PyYAML is the oracle)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from intel_feedgen import feed, feed_json, feed_yaml, stix_bundle

from dataward.cli import main
from dataward.errors import EXIT_CODES
from dataward.screen.intel import IntelError, _yaml_load, load_feed_bytes, parse_feed, sign_feed
from dataward.screen.intel import load_feed as load_feed_file

DEEP = {
    "yaml-block-mapping": "".join("  " * i + "k:\n" for i in range(5000)),
    "yaml-block-sequence": "".join("  " * i + "- \n" for i in range(5000)),
    "yaml-flow": "[" * 5000 + "]" * 5000,
    "json-objects": '{"a":' * 5000 + "1" + "}" * 5000,
    "yaml-under-feed": "format: dataward.intel-feed/v1\nindicators:\n"
    + "".join("  " * (i + 1) + "- \n" for i in range(5000)),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_feed_nested_5000_levels_is_a_one_line_refusal(name: str) -> None:
    with pytest.raises(IntelError) as info:
        load_feed_bytes(DEEP[name].encode(), where=f"{name}.yaml", allow_unsigned=True)
    msg = info.value.message
    assert f"{name}.yaml" in msg and "max_depth=256" in msg and "\n" not in msg
    assert "DATAWARD_MAX_DEPTH" in info.value.advice


@pytest.mark.slow
def test_deep_feed_through_the_cli_exits_with_a_documented_code(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("id,text\n1,hello\n")
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP["yaml-block-mapping"])
    argv = ["check", str(data), "--intel", str(path), "--allow-unsigned-intel", "--quiet"]
    cmd = [sys.executable, "-c", "from dataward.cli import run; run()", *argv]
    got = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert got.returncode in EXIT_CODES and got.returncode not in (0, 1), got.stderr
    assert "Traceback" not in got.stderr and "RecursionError" not in got.stderr
    assert "deep.yaml" in got.stderr and "max_depth" in got.stderr


def test_the_depth_limit_can_be_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join("  " * i + "k:\n" for i in range(300)).encode()
    with pytest.raises(IntelError, match="max_depth=256"):
        load_feed_bytes(text, where="f.yaml", allow_unsigned=True)
    monkeypatch.setenv("DATAWARD_MAX_DEPTH", "1024")
    with pytest.raises(IntelError, match=r"a feed is a mapping|format must be"):  # parsed, then validated
        load_feed_bytes(text, where="f.yaml", allow_unsigned=True)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "~", "0x1f", "0o17", "1_000", "2026-01-01", "1e3", ".inf", "<<", "=", ""]),
)
_keys = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.sampled_from(["yes", "null", "1.5"]))
_docs = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4), max_leaves=25
)


def _typed(v: Any) -> Any:
    """A value with every type made explicit (True is not 1, 1.0 is not 1), mappings order-free."""
    if isinstance(v, dict):
        return ("dict", sorted((repr(_typed(k)), _typed(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    return (type(v).__name__, repr(v))


def _same(a: Any, b: Any) -> bool:
    return bool(_typed(a) == _typed(b))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(doc=_docs, flow=st.sampled_from([None, True, False]), quote=st.booleans())
def test_fast_yaml_path_equals_pyyaml_safe_load(doc: Any, flow: bool | None, quote: bool) -> None:
    text = yaml.safe_dump(doc, default_flow_style=flow, default_style='"' if quote else None, allow_unicode=True)
    assert _same(_yaml_load(text, "t", 256), yaml.safe_load(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2]\nb: *x\n",  # anchors and aliases
        "base: &b {k: 1}\nderived:\n  <<: *b\n  j: 2\n",  # merge keys
        "a: !!str 3\nb: !!float 1\nc: !!binary aGVsbG8=\n",  # explicit tags
        "? [1, 2]\n: complex\n",  # a complex key (PyYAML refuses it)
        "a: 1\n---\nb: 2\n",  # two documents (refused)
        "a: 1\na: 2\n",  # a duplicated key: the last wins, as in PyYAML
        "",
        "# only a comment\n",
        "- 2026-11-25T20:00:00Z\n- 2026-11-25\n- 0b101\n- 1:20\n",
    ],
)
def test_fast_yaml_path_agrees_on_the_unusual(text: str) -> None:
    def outcome(fn: Any) -> Any:
        try:
            return ("ok", _typed(fn(text)))
        except yaml.YAMLError as exc:
            return ("error", type(exc).__name__)

    assert outcome(lambda t: _yaml_load(t, "t", 256)) == outcome(yaml.safe_load)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_realistic_feeds_load_with_every_indicator(fmt: str) -> None:
    data = (feed_yaml if fmt == "yaml" else feed_json)(200_000, seed=3)
    got = load_feed_bytes(data, where=f"feed.{fmt}", allow_unsigned=True)
    assert got.indicators == parse_feed(feed(200_000, seed=3)).indicators
    assert len(got.indicators) == 1000


def test_signed_realistic_feed_round_trips(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    parsed = parse_feed(feed(200_000, seed=4))
    path = tmp_path / "feed.dsse.json"
    path.write_bytes(sign_feed(parsed, key))
    got = load_feed_file(path, keys=[key.public_key()])
    assert got.indicators == parsed.indicators and got.signed_by


def test_stix_bundle_generator_gives_indicators() -> None:
    got = load_feed_bytes(stix_bundle(50_000, seed=1), where="b.json", allow_unsigned=True)
    assert len(got.indicators) == 50_000 // 330


def test_intel_verify_on_a_deep_feed_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataward.screen.intel import write_keypair

    write_keypair(tmp_path / "k", tmp_path / "k.pub")
    path = tmp_path / "deep.json"
    path.write_text(DEEP["json-objects"])
    code = main(["intel", "verify", str(path), "--key", str(tmp_path / "k.pub")])
    err = capsys.readouterr().err
    assert code in EXIT_CODES and code not in (0, 1) and "max_depth" in err and "deep.json" in err, err
