"""Checkpoint scanning: a corpus of malicious pickles (all must fail) and benign checkpoints (must pass).

Malicious files are built from bytes or with pickle.dumps of objects whose __reduce__ names a dangerous
callable (dumping only writes the reference; nothing here ever loads a pickle).
"""

from __future__ import annotations

import collections
import gzip
import importlib
import io
import json
import marshal
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from dataward.screen.modelscan import analyse_pickle, scan_model


class Reduce:
    def __init__(self, fn: object, args: tuple) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return (self.fn, self.args)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _unicode(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def benign_torch_zip(path: Path, *, data_pkl: bytes | None = None, corrupt_crc: bool = False) -> Path:
    """A torch.save-style zip built by hand: archive/data.pkl (protocol 2) + one float32 storage."""
    if data_pkl is None:
        # OrderedDict({"w": _rebuild_tensor_v2(persistent storage, 0, (2, 2), (2, 1), False, OrderedDict())})
        pid = (
            b"("
            + b"X\x07\x00\x00\x00storage"
            + _global("torch", "FloatStorage")
            + b"X\x01\x00\x00\x000"
            + b"X\x03\x00\x00\x00cpu"
            + b"K\x04"
            + b"tQ"
        )
        tensor = (
            _global("torch._utils", "_rebuild_tensor_v2")
            + b"("
            + pid
            + b"K\x00"
            + b"K\x02K\x02\x86"
            + b"K\x02K\x01\x86"
            + b"\x89"
            + _global("collections", "OrderedDict")
            + b")R"
            + b"tR"
        )
        data_pkl = b"\x80\x02" + _global("collections", "OrderedDict") + b")R" + b"X\x01\x00\x00\x00w" + tensor + b"s."
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/data/0", np.arange(4, dtype=np.float32).tobytes())
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/byteorder", "little")
    if corrupt_crc:
        raw = bytearray(path.read_bytes())
        i = raw.find(data_pkl)
        raw[i + len(data_pkl) - 3] ^= 0x01  # a byte inside data.pkl, not the header: the CRC no longer matches
        path.write_bytes(bytes(raw))
    return path


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], header_patch: dict | None = None) -> Path:
    header: dict = {"__metadata__": {"format": "pt"}}
    blobs, pos = [], 0
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    for name, arr in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    if header_patch:
        header.update(header_patch)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return path


def malicious_corpus(d: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        (d / name).write_bytes(data)
        out[name] = d / name

    put("os_system_p0.pkl", _global("os", "system") + b"(S'echo pwned'\ntR.")
    put("posix_system_p2.pkl", pickle.dumps(Reduce(os.system, ("echo pwned",)), protocol=2))
    put("eval_stack_global.pkl", pickle.dumps(Reduce(eval, ("1+1",)), protocol=4))
    put("import_module.pkl", pickle.dumps(Reduce(importlib.import_module, ("os",)), protocol=4))
    code = marshal.dumps(compile("print('pwned')", "x", "exec"))
    put(
        "marshal_loads.pkl",
        b"\x80\x03"
        + _global("types", "FunctionType")
        + _global("marshal", "loads")
        + b"B"
        + struct.pack("<I", len(code))
        + code
        + b"\x85R}\x86R.",
    )
    # numpy __builtins__ BUILD trick: attribute injection on an allowed function object
    put(
        "numpy_builtins_build.pkl",
        b"\x80\x02"
        + _global("numpy.core.multiarray", "_reconstruct")
        + b"}"
        + _unicode("__builtins__")
        + _global("builtins", "eval")
        + b"sb.",
    )
    put("numpy_runstring.pkl", _global("numpy.testing._private.utils", "runstring") + b"(S'import os'\n}tR.")
    # STACK_GLOBAL whose operands come through the memo after decoy pushes and POPs
    put(
        "stack_global_memo.pkl",
        b"\x80\x04"
        + _unicode("os")
        + b"\x94"
        + _unicode("system")
        + b"\x94"
        + _unicode("collections")
        + _unicode("OrderedDict")
        + b"00"
        + b"h\x00h\x01\x93"
        + _unicode("id")
        + b"\x85R.",
    )
    put("stack_global_computed.pkl", b"\x80\x04" + _global("builtins", "str") + b")R" + _unicode("system") + b"\x93.")
    put(
        "hidden_second_pickle.pkl",
        pickle.dumps({"ok": 1}, protocol=4) + pickle.dumps(Reduce(os.system, ("id",)), protocol=4),
    )
    put("model.safetensors", pickle.dumps(Reduce(os.system, ("id",)), protocol=4))  # renamed extension
    put("weights.bin", pickle.dumps(Reduce(os.system, ("id",)), protocol=2))
    put("runpy.pkl", pickle.dumps(Reduce(__import__("runpy")._run_code, ("1", {})), protocol=2))
    put("webbrowser.pkl", _global("webbrowser", "open") + b"(S'http://example.invalid'\ntR.")
    put(
        "getattr_chain.pkl",
        b"\x80\x02"
        + _global("builtins", "getattr")
        + _global("importlib", "import_module")
        + _unicode("os")
        + b"\x85R"
        + _unicode("system")
        + b"\x86R"
        + _unicode("id")
        + b"\x85R.",
    )
    put("ext_opcode.pkl", b"\x80\x02\x82\x01)R.")
    put("joblib_zlib.joblib", zlib.compress(pickle.dumps(Reduce(os.system, ("id",)), protocol=4)))
    put("joblib_gzip.joblib", gzip.compress(pickle.dumps(Reduce(os.system, ("id",)), protocol=4)))
    obj = np.array([Reduce(os.system, ("id",))], dtype=object)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, obj, allow_pickle=True)
    put("object_array.npy", buf.getvalue())
    put("truncated.pkl", pickle.dumps({"a": list(range(100))}, protocol=4)[:-20])
    mal_pkl = pickle.dumps(Reduce(os.system, ("id",)), protocol=2)
    out["torch_malicious.pt"] = benign_torch_zip(d / "torch_malicious.pt", data_pkl=mal_pkl)
    out["torch_crc.pt"] = benign_torch_zip(d / "torch_crc.pt", corrupt_crc=True)
    out["torch_crc_malicious.pt"] = benign_torch_zip(d / "torch_crc_malicious.pt", data_pkl=mal_pkl, corrupt_crc=True)
    with zipfile.ZipFile(d / "hidden_member.pt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(collections.OrderedDict(), protocol=2))
        zf.writestr("archive/extra/payload", mal_pkl)
    out["hidden_member.pt"] = d / "hidden_member.pt"
    out["bad_offsets.safetensors"] = write_safetensors(
        d / "bad_offsets.safetensors",
        {"w": np.zeros(4, np.float32)},
        {"evil": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}},
    )
    return out


def benign_corpus(d: Path) -> dict[str, Path]:
    out = {"torch.pt": benign_torch_zip(d / "torch.pt")}
    np.save(d / "weights.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    out["weights.npy"] = d / "weights.npy"
    np.savez(d / "weights.npz", a=np.ones(3), b=np.zeros((2, 2), dtype=np.int64))
    out["weights.npz"] = d / "weights.npz"
    (d / "array.pkl").write_bytes(pickle.dumps(np.arange(6, dtype=np.float64), protocol=2))
    out["array.pkl"] = d / "array.pkl"
    (d / "array4.pkl").write_bytes(pickle.dumps({"w": np.ones((2, 2)), "b": np.zeros(2)}, protocol=4))
    out["array4.pkl"] = d / "array4.pkl"
    (d / "state.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=[1.0, 2.0], b={"c": (1, 2)}), protocol=2))
    out["state.pkl"] = d / "state.pkl"
    out["model.safetensors"] = write_safetensors(
        d / "model.safetensors", {"w": np.arange(6, dtype=np.float32), "step": np.array([3], dtype=np.int64)}
    )
    return out


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Path]]:
    bad = tmp_path_factory.mktemp("bad")
    good = tmp_path_factory.mktemp("good")
    return malicious_corpus(bad), benign_corpus(good)


def test_every_malicious_file_fails(corpora) -> None:
    bad, _ = corpora
    passed = {name: scan_model(p).to_dict() for name, p in bad.items() if scan_model(p).passed}
    assert passed == {}
    assert len(bad) >= 25


def test_benign_checkpoints_pass(corpora) -> None:
    _, good = corpora
    for name, p in good.items():
        res = scan_model(p)
        assert res.passed, (name, [f.summary for f in res.findings])
    assert scan_model(good["torch.pt"]).format == "torch-zip"
    assert "torch._utils._rebuild_tensor_v2" in scan_model(good["torch.pt"]).globals
    assert scan_model(good["model.safetensors"]).format == "safetensors"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("os_system_p0.pkl", "disallowed_global"),
        ("stack_global_memo.pkl", "disallowed_global"),
        ("stack_global_computed.pkl", "unresolved_global"),
        ("numpy_builtins_build.pkl", "build_on_global"),
        ("numpy_builtins_build.pkl", "dunder_name"),
        ("model.safetensors", "renamed_extension"),
        ("torch_crc.pt", "corrupt_member"),
        ("hidden_second_pickle.pkl", "disallowed_global"),
        ("truncated.pkl", "malformed_pickle"),
        ("ext_opcode.pkl", "extension_opcode"),
        ("bad_offsets.safetensors", "malformed_safetensors"),
        ("hidden_member.pt", "disallowed_global"),
    ],
)
def test_failure_reasons(corpora, name: str, kind: str) -> None:
    bad, _ = corpora
    res = scan_model(bad[name])
    assert kind in {f.kind for f in res.findings}, [f.summary for f in res.findings]


def test_stack_global_through_memo_names_the_real_global(corpora) -> None:
    bad, _ = corpora
    res = analyse_pickle(bad["stack_global_memo.pkl"].read_bytes())
    assert ("os", "system") in res.globals


def test_directory_scan_and_report(corpora) -> None:
    bad, good = corpora
    assert scan_model(next(iter(good.values())).parent).passed
    res = scan_model(next(iter(bad.values())).parent)
    assert not res.passed and len(res.files) == len(bad)
    rep = res.to_report()
    assert rep.max_severity is not None and "os.system" in rep.to_json()
