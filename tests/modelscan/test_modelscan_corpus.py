"""Done means: no malicious file passes, no benign file fails, and every failure names the member and global."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import pytest
from modelscan_corpus import Case

from dataward.modelscan import AllowList, parse_allow, read_pickle, scan_model


@pytest.mark.slow
def test_no_malicious_file_passes(corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    bad = [c for c in cases if c.expect == "fail"]
    passed = {c.name: scan_model(c.path(root)).to_dict() for c in bad if scan_model(c.path(root)).passed}
    assert passed == {}
    assert len(bad) >= 100  # every technique of issue 16 plus the published bypasses


@pytest.mark.slow
def test_no_benign_model_fails(corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    good = [c for c in cases if c.expect == "pass"]
    failed = {c.name: [f.summary for f in r.findings] for c in good if not (r := scan_model(c.path(root))).passed}
    assert failed == {}
    techniques = " ".join(c.technique for c in good)
    for writer in (
        "scikit-learn",
        "joblib",
        "ndarray",
        ".npz",
        "xgboost",
        "lightgbm",
        "skl2onnx",
        "safetensors",
        "torch zip",
        "legacy torch",
        "Keras",
    ):
        assert writer in techniques


def test_every_failure_names_its_reason_member_and_global(corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    unnamed = {}
    for c in (c for c in cases if c.expect == "fail"):
        res = scan_model(c.path(root))
        hits = [f for f in res.findings if f.kind == c.kind]
        if not hits or (c.names and not any(c.names in f.summary for f in hits)):
            unnamed[c.name] = (c.kind, c.names, [f.summary for f in res.findings])
        # every summary starts with the file (and member) it is about
        assert all(f.summary.startswith(c.name) for f in res.findings), c.name
    assert unnamed == {}


def test_member_is_named_inside_archives(corpus: tuple[Path, list[Case]]) -> None:
    root, _ = corpus
    res = scan_model(root / "fail" / "zip_wraps_pt.zip")
    assert any(
        f.summary.startswith("zip_wraps_pt.zip:model/inner.pt:archive/data.pkl: global posix.system")
        for f in res.findings
    ), [f.summary for f in res.findings]
    res = scan_model(root / "fail" / "torch_odd_case.pt")
    assert any("torch_odd_case.pt:archive/DATA.PKL" in f.summary for f in res.findings)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("torch_zip.pt", "torch-zip"),
        ("model.safetensors", "safetensors"),
        ("weights.npz", "npz"),
        ("torch_legacy.pt", "torch-legacy"),
        ("torch_tar.tar", "torch-legacy-tar"),
        ("skl2onnx_forest.onnx", "onnx"),
        ("model.keras", "keras"),
        ("sk_forest_joblib_gzip.joblib", "gzip:joblib"),
        ("sk_forest_joblib_0.joblib", "joblib"),
        ("lgbm_model.txt", "lightgbm-text"),
    ],
)
def test_benign_formats_are_told_by_their_bytes(corpus: tuple[Path, list[Case]], name: str, fmt: str) -> None:
    root, _ = corpus
    assert scan_model(root / "pass" / name).format == fmt


def test_polyglots_are_judged_as_each_format(corpus: tuple[Path, list[Case]]) -> None:
    root, _ = corpus
    res = scan_model(root / "fail" / "pickle_zip_polyglot.pt")
    kinds = {f.kind for f in res.findings}
    assert {"polyglot", "disallowed_global", "zip_prefix"} <= kinds
    res = scan_model(root / "fail" / "safetensors_pickle_polyglot.safetensors")
    assert any(f.kind == "polyglot" and "safetensors" in f.summary and "pickle" in f.summary for f in res.findings)
    res = scan_model(root / "fail" / "torch_tar_magic_name.tar")
    assert "os.system" in res.globals and not res.passed


def test_stack_global_through_memo_names_the_real_global(corpus: tuple[Path, list[Case]]) -> None:
    root, _ = corpus
    for name in ("stack_global_memo.pkl", "memo_binput_memoize.pkl"):
        reading = read_pickle((root / "fail" / name).read_bytes())
        assert [g.dotted for g in reading.globals] == ["os.system"], name


def test_joblib_arrays_are_skipped_by_their_exact_size() -> None:
    # array bytes that spell a pickle are data to joblib.load (skipped by size), code to pickle.load
    import io

    import joblib
    import numpy as np
    from modelscan_corpus import call_p0

    payload = np.frombuffer(call_p0("os", "system"), dtype=np.uint8)
    buf = io.BytesIO()
    joblib.dump({"a": payload, "b": np.arange(100.0)}, buf)
    data = buf.getvalue()
    reading = read_pickle(data, joblib=True)
    assert reading.complete and reading.joblib_arrays == 2
    assert "os.system" not in {g.dotted for g in reading.globals}
    cut = data.index(np.arange(100.0).tobytes()) + 8
    assert not read_pickle(data[:cut] + data[cut + 2 :], joblib=True).complete  # two bytes short: no STOP left


class _Custom:
    pass


_Custom.__module__, _Custom.__qualname__ = "mypkg.layers", "Custom"


def test_allow_list_extension_is_exact_and_named(tmp_path: Path) -> None:
    p = tmp_path / "custom.pkl"
    p.write_bytes(b"\x80\x04\x8c\x0cmypkg.layers\x8c\x06Custom\x93)\x81.")
    res = scan_model(p)
    assert not res.passed and "global mypkg.layers.Custom" in res.findings[0].summary
    allow = AllowList(parse_allow(["mypkg.layers.Custom"], "test"), "--allow")
    res = scan_model(p, allow=allow)
    assert res.passed and res.allowed_extra == ("mypkg.layers.Custom",) and res.to_dict()["allow_source"] == "--allow"
    # exact: the same module's other names stay out
    q = tmp_path / "other.pkl"
    q.write_bytes(b"\x80\x04\x8c\x0cmypkg.layers\x8c\x05Other\x93)\x81.")
    assert not scan_model(q, allow=allow).passed
    with pytest.raises(ValueError, match=r"MODULE\.NAME"):
        parse_allow(["mypkg.*"], "test")
    # defaults are not reported as added
    r = tmp_path / "od.pkl"
    r.write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    assert scan_model(r, allow=AllowList(parse_allow(["collections.OrderedDict"], "t"), "t")).allowed_extra == ()


def test_onnx_external_data_inside_the_model_dir_passes_but_a_link_out_fails(tmp_path: Path) -> None:
    from modelscan_corpus import onnx_with_external

    data = onnx_with_external("w.bin")
    assert data is not None
    model = tmp_path / "m.onnx"
    model.write_bytes(data)
    assert scan_model(model).passed
    (tmp_path / "w.bin").symlink_to("/etc/passwd")
    res = scan_model(model)
    assert not res.passed and any("through a link" in f.summary for f in res.findings)


def test_directory_scan(corpus: tuple[Path, list[Case]]) -> None:
    root, cases = corpus
    res = scan_model(root / "fail")
    assert not res.passed and len(res.files) == sum(c.expect == "fail" for c in cases)
    from dataward.screen._modelscan import to_report

    assert "os.system" in to_report(res).to_json()
