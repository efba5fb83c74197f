"""Two corpora for checkpoint scanning, built by this script (never committed as binaries).

``build(out_dir)`` writes every file and returns its :class:`Case` list: the expected verdict, and for a
malicious file the finding kind and the global (or member) its reason must name. Malicious files are
made from bytes, or with ``pickle.dumps`` of objects whose ``__reduce__`` names a dangerous callable:
dumping only writes the reference. Nothing here loads a pickle. Benign files are written by the real
libraries (scikit-learn, joblib, numpy, scipy, xgboost, lightgbm, skl2onnx, safetensors, h5py) or, for
PyTorch, to torch's published layouts (and by torch itself when it is installed).

Run as a script: ``python tests/modelscan/modelscan_corpus.py OUT_DIR`` writes both corpora and a ``cases.json``.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import importlib
import io
import json
import lzma
import marshal
import os
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One corpus file: ``expect`` is 'fail' or 'pass'; a failing file's reason has ``kind`` and ``names``."""

    name: str
    expect: str
    technique: str
    kind: str = ""
    names: str = ""  # a global (module.name) or member the reason must name
    source: str = ""  # where the technique was published, if anywhere

    def path(self, root: Path) -> Path:
        return root / self.expect / self.name


class Reduce:
    """An object whose pickle calls ``fn(*args)`` on load (dumping it runs nothing)."""

    def __init__(self, fn: object, args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.fn, self.args)


class _Named:
    """A stand-in for a callable we do not want to import: pickles as ``module.name`` by reference."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


def g0(module: str, name: str) -> bytes:
    """Protocol-0 GLOBAL opcode."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def u(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def call_p0(module: str, name: str, arg: str = "id") -> bytes:
    return g0(module, name) + b"(S'" + arg.encode() + b"'\ntR."


def call_p4(module: str, name: str, arg: str = "id") -> bytes:
    return b"\x80\x04" + u(module) + u(name) + b"\x93" + u(arg) + b"\x85R."


MAL = pickle.dumps(Reduce(os.system, ("id",)), protocol=2)
MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


def torch_data_pkl(storage_type: str = "FloatStorage", numel: int = 4) -> bytes:
    """OrderedDict({'w': _rebuild_tensor_v2(persistent('storage', torch.X, '0', 'cpu', n), 0, (2, 2), ...)})."""
    pid = b"(" + u("storage") + g0("torch", storage_type) + u("0") + u("cpu") + b"K" + bytes([numel]) + b"tQ"
    tensor = (
        g0("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + pid
        + b"K\x00K\x02K\x02\x86K\x02K\x01\x86\x89"
        + g0("collections", "OrderedDict")
        + b")RtR"
    )
    return b"\x80\x02" + g0("collections", "OrderedDict") + b")R" + u("w") + tensor + b"s."


def torch_zip(
    path: Path,
    *,
    data_pkl: bytes | None = None,
    name: str = "archive/data.pkl",
    extra: dict[str, bytes] | None = None,
    prefix: str = "archive",
) -> Path:
    """A zip in torch.save's published layout: data.pkl, data/0, version, byteorder, .data/serialization_id."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(name, torch_data_pkl() if data_pkl is None else data_pkl)
        zf.writestr(f"{prefix}/byteorder", "little")
        zf.writestr(f"{prefix}/data/0", np.arange(4, dtype=np.float32).tobytes())
        zf.writestr(f"{prefix}/version", "3\n")
        zf.writestr(f"{prefix}/.data/serialization_id", "1234567890123456789012345678901234567890\n")
        for k, v in (extra or {}).items():
            zf.writestr(k, v)
    return path


def torch_legacy(obj_pickle: bytes | None = None, *, trailing: bytes = b"") -> bytes:
    """Legacy (non-zip) torch.save: magic, protocol 1001, sys info, object, storage keys, then raw storages."""
    sys_info = pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2
    )
    obj = obj_pickle if obj_pickle is not None else torch_data_pkl()
    keys = pickle.dumps(["0"], protocol=2)
    raw = struct.pack("<q", 4) + np.arange(4, dtype=np.float32).tobytes()
    return MAGIC + pickle.dumps(1001, protocol=2) + sys_info + obj + keys + raw + trailing


def safetensors_bytes(tensors: dict[str, np.ndarray], patch: dict[str, Any] | None = None) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, pos = [], 0
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    for name, arr in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    header.update(patch or {})
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors_pickle_polyglot() -> bytes:
    """Valid safetensors whose first bytes also read as a complete protocol-0 pickle (SHORT_BINBYTES, NONE, STOP).

    The length's low byte is ``C`` (SHORT_BINBYTES) and the next its size, so the pickle swallows the
    length's zero bytes and the start of the JSON and resumes inside a metadata string at ``N.``.
    """
    prefix = '{"__metadata__":{"p":"'
    n = 8 + len(prefix) - 2  # the pickle resumes at byte 2 + n = where "N." sits
    length = 0x43 + n * 256
    body = np.arange(4, dtype=np.float32).tobytes()
    rest = prefix + 'N."},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    header = rest.encode().ljust(length, b" ")
    assert len(header) == length
    return struct.pack("<Q", length) + header + body


def npy_with_descr(arr: np.ndarray, descr: str) -> bytes:
    """``np.save`` output with the header's descr rewritten to another spelling numpy also accepts."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    raw = buf.getvalue()
    hlen = struct.unpack("<H", raw[8:10])[0]
    header = raw[10 : 10 + hlen].decode("latin-1")
    start = header.index("'descr': ") + len("'descr': ")
    end = header.index(", 'fortran_order'")
    new = (header[:start] + descr + header[end:]).rstrip("\n ")
    total = 10 + len(new) + 1
    new = new + " " * ((64 - total % 64) % 64) + "\n"
    return raw[:8] + struct.pack("<H", len(new)) + new.encode("latin-1") + raw[10 + hlen :]


def _zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for k, v in members.items():
            info = tarfile.TarInfo(k)
            info.size = len(v)
            tf.addfile(info, io.BytesIO(v))
    return buf.getvalue()


class _Unseekable(io.RawIOBase):
    """A write-only stream without tell(): joblib then writes arrays without its alignment byte (joblib <= 1.1)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.buf += bytes(b)
        return len(b)

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")

    def seekable(self) -> bool:
        return False


def keras_config(lambda_layer: bool = False, module: str = "keras.layers") -> dict[str, Any]:
    layers: list[dict[str, Any]] = [
        {"module": module, "class_name": "Dense", "config": {"name": "dense", "units": 2}, "registered_name": None}
    ]
    if lambda_layer:
        code = marshal.dumps(compile("lambda x: __import__('os').system('id') or x", "x", "eval"))
        import base64

        layers.append(
            {
                "module": "keras.layers",
                "class_name": "Lambda",
                "registered_name": None,
                "config": {
                    "name": "lambda",
                    "function": {
                        "class_name": "__lambda__",
                        "config": {"code": base64.b64encode(code).decode(), "defaults": None, "closure": None},
                    },
                },
            }
        )
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": layers}}


def _h5_bytes(attrs: dict[str, str]) -> bytes | None:
    try:
        import h5py
    except ImportError:
        return None
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        for k, v in attrs.items():
            h5.attrs[k] = v
        h5.create_dataset("layers/dense/vars/0", data=np.ones((2, 2), dtype=np.float32))
    return buf.getvalue()


def keras_zip(config: dict[str, Any]) -> bytes:
    members = {
        "metadata.json": json.dumps({"keras_version": "3.15.1", "date_saved": "2026-12-01"}).encode(),
        "config.json": json.dumps(config).encode(),
    }
    weights = _h5_bytes({})
    if weights is not None:
        members["model.weights.h5"] = weights
    return _zip_bytes(members, zipfile.ZIP_DEFLATED)


def onnx_with_external(location: str) -> bytes | None:
    try:
        from onnx import TensorProto, helper
    except ImportError:
        return None
    init = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    init.ClearField("float_data")
    init.data_location = TensorProto.EXTERNAL
    entry = init.external_data.add()
    entry.key, entry.value = "location", location
    node = helper.make_node("Identity", ["w"], ["y"])
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [init])
    return bytes(helper.make_model(graph).SerializeToString())


# --- the malicious corpus ------------------------------------------------------------------------------------


def malicious(d: Path) -> list[Case]:
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, data: bytes | None, technique: str, kind: str, names: str = "", source: str = "") -> None:
        if data is None:
            return
        (d / name).write_bytes(data)
        cases.append(Case(name, "fail", technique, kind, names, source))

    dg = "disallowed_global"
    put("os_system_p0.pkl", call_p0("os", "system"), "protocol-0 GLOBAL os.system", dg, "os.system")
    put("posix_system_p2.pkl", MAL, "__reduce__ to os.system (posix)", dg, "posix.system")
    put("nt_system_p0.pkl", call_p0("nt", "system"), "Windows os alias", dg, "nt.system")
    put(
        "eval_stack_global.pkl",
        pickle.dumps(Reduce(eval, ("1+1",)), protocol=4),
        "STACK_GLOBAL builtins.eval",
        dg,
        "builtins.eval",
    )
    put("builtin_alias_eval.pkl", call_p0("__builtin__", "eval", "1"), "py2 __builtin__ alias", dg, "__builtin__.eval")
    put(
        "exec_p5.pkl",
        pickle.dumps(Reduce(exec, ("import os",)), protocol=5),
        "builtins.exec, protocol 5",
        dg,
        "builtins.exec",
    )
    put(
        "import_module.pkl",
        pickle.dumps(Reduce(importlib.import_module, ("os",)), protocol=4),
        "importlib.import_module",
        dg,
        "importlib.import_module",
        "picklescan PR #74",
    )
    code = marshal.dumps(compile("print('pwned')", "x", "exec"))
    put(
        "marshal_loads.pkl",
        b"\x80\x03"
        + g0("types", "FunctionType")
        + g0("marshal", "loads")
        + b"B"
        + struct.pack("<I", len(code))
        + code
        + b"\x85R}\x86R.",
        "marshal.loads + FunctionType",
        dg,
        "marshal.loads",
        "picklescan PR #74",
    )
    put(
        "numpy_builtins_build.pkl",
        b"\x80\x02"
        + g0("numpy.core.multiarray", "_reconstruct")
        + b"}"
        + u("__builtins__")
        + g0("builtins", "eval")
        + b"sb.",
        "BUILD on an allowed function (__builtins__)",
        "build_on_global",
        "numpy.core.multiarray._reconstruct",
    )
    put(
        "numpy_runstring.pkl",
        g0("numpy.testing._private.utils", "runstring") + b"(S'import os'\n}tR.",
        "numpy's own exec helper",
        dg,
        "numpy.testing._private.utils.runstring",
    )
    put(
        "stack_global_memo.pkl",
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
        "STACK_GLOBAL operands through memo and POP",
        dg,
        "os.system",
        "picklescan #22",
    )
    # BINPUT and MEMOIZE mixed so a scanner that numbers MEMOIZE itself resolves memo[0] to the decoy
    put(
        "memo_binput_memoize.pkl",
        b"\x80\x04"
        + u("os")
        + b"q\x00"
        + u("system")
        + b"q\x01"
        + u("torch._utils")
        + b"\x94"
        + u("_rebuild_tensor_v2")
        + b"\x94"
        + b"00h\x00h\x01\x93"
        + u("id")
        + b"\x85R.",
        "memo confusion: BINPUT then MEMOIZE",
        dg,
        "os.system",
        "picklescan #14",
    )
    put(
        "stack_global_computed.pkl",
        b"\x80\x04" + g0("builtins", "str") + u("os") + b"\x85R" + u("system") + b"\x93" + u("id") + b"\x85R.",
        "STACK_GLOBAL of a name computed by str()",
        "unresolved_global",
    )
    put(
        "inst_opcode.pkl",
        b"(S'1+1'\ni" + b"builtins\neval\n.",
        "INST opcode (no GLOBAL)",
        dg,
        "builtins.eval",
        "picklescan #13",
    )
    put("obj_opcode.pkl", b"(" + g0("os", "system") + b"S'id'\no.", "OBJ opcode", dg, "os.system")
    put("ext_opcode.pkl", b"\x80\x02\x82\x01)R.", "EXT1: copyreg extension registry", "extension_opcode")
    put(
        "global_dotted_name.pkl",
        b"\x80\x04" + g0("collections", "OrderedDict.__init__.__globals__") + b".",
        "dotted name under an allowed module",
        dg,
        "collections.OrderedDict.__init__.__globals__",
    )
    put(
        "allowed_module_other_name.pkl",
        call_p4("torch._utils", "_rebuild_tensor_v2.__globals__"),
        "prefix allow-lists: torch._utils.* is not torch._utils._rebuild_tensor_v2",
        dg,
        "torch._utils._rebuild_tensor_v2.__globals__",
    )
    put("numpy_load.pkl", call_p0("numpy", "load", "x.npy"), "numpy.load(allow_pickle) inside", dg, "numpy.load")
    put(
        "torch_load_inside.pkl",
        call_p4("torch", "load", "inner.pt"),
        "torch.load of a second file inside",
        dg,
        "torch.load",
        "modelscan #263",
    )
    put(
        "torch_serialization_load.pkl",
        call_p4("torch.serialization", "load", "inner.pt"),
        "torch.serialization.load",
        dg,
        "torch.serialization.load",
    )
    for mod, name, src in [
        ("pip", "main", "picklescan advisories"),
        ("runpy", "_run_code", "picklescan advisories"),
        ("runpy", "run_path", ""),
        ("pydoc", "locate", "picklescan advisories"),
        ("pkgutil", "resolve_name", "GHSA-vvpj-8cmc-gx39"),
        ("operator", "attrgetter", "picklescan #66"),
        ("operator", "methodcaller", ""),
        ("functools", "partial", ""),
        ("importlib.util", "find_spec", "picklescan #66"),
        ("mailcap", "findmatch", "picklescan PR #69"),
        ("cProfile", "run", "modelscan PR #313"),
        ("profile", "run", "modelscan PR #313"),
        ("timeit", "timeit", "modelscan PR #313"),
        ("code", "InteractiveInterpreter", "modelscan PR #313"),
        ("ensurepip", "_run_pip", "modelscan PR #313"),
        ("idlelib.pyshell", "ModifiedInterpreter", ""),
        ("imaplib", "IMAP4_stream", "picklescan PR #69"),
        ("bdb", "Bdb", ""),
        ("pdb", "run", ""),
        ("_posixsubprocess", "fork_exec", ""),
        ("subprocess", "Popen", ""),
        ("pty", "spawn", ""),
        ("asyncio.unix_events", "_UnixSubprocessTransport", ""),
        ("shutil", "rmtree", ""),
        ("webbrowser", "open", ""),
        ("socket", "create_connection", ""),
        ("ctypes", "CDLL", ""),
        ("torch._dynamo.guards", "GuardBuilder.get", "modelscan PR #313"),
        ("torch.hub", "load", ""),
        ("numpy.f2py", "compile", ""),
        ("venv", "create", ""),
        ("builtins", "getattr", ""),
        ("builtins", "__import__", ""),
        ("sys", "exit", ""),
    ]:
        put(
            f"g_{mod}_{name}".replace(".", "_") + ".pkl",
            call_p4(mod, name),
            f"{mod}.{name} called on load",
            dg,
            f"{mod}.{name}",
            src,
        )
    put(
        "getattr_chain.pkl",
        b"\x80\x02"
        + g0("builtins", "getattr")
        + g0("importlib", "import_module")
        + u("os")
        + b"\x85R"
        + u("system")
        + b"\x86R"
        + u("id")
        + b"\x85R.",
        "builtins.getattr chain",
        dg,
        "builtins.getattr",
    )
    put(
        "hidden_second_pickle.pkl",
        pickle.dumps({"ok": 1}, protocol=4) + pickle.dumps(Reduce(os.system, ("id",)), protocol=4),
        "benign pickle, then a malicious one",
        dg,
        "posix.system",
    )
    put(
        "trailing_garbage.pkl",
        pickle.dumps({"ok": 1}, protocol=4) + b"\x00\x01garbage",
        "bytes after STOP",
        "trailing_data",
    )
    put("truncated.pkl", pickle.dumps({"a": list(range(100))}, protocol=4)[:-20], "truncated pickle", "unknown_format")
    put(
        "model.safetensors",
        pickle.dumps(Reduce(os.system, ("id",)), protocol=4),
        "pickle named .safetensors",
        dg,
        "posix.system",
    )
    put("weights.bin", MAL, "pickle named .bin", dg, "posix.system")
    # joblib: compressed malicious pickles and real joblib.dump containers holding one
    raw4 = pickle.dumps(Reduce(os.system, ("id",)), protocol=4)
    for comp, data in [
        ("zlib", zlib.compress(raw4)),
        ("gzip", gzip.compress(raw4)),
        ("bz2", bz2.compress(raw4)),
        ("xz", lzma.compress(raw4)),
        ("lzma", lzma.compress(raw4, format=lzma.FORMAT_ALONE)),
    ]:
        put(f"joblib_{comp}.joblib", data, f"{comp}-compressed malicious pickle", dg, "posix.system")
    import joblib

    payload = {"w": np.ones((3, 3)), "x": Reduce(os.system, ("id",)), "z": np.zeros(5, dtype=np.int32)}
    for comp in (0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)):
        tag = comp if isinstance(comp, int) else comp[0]
        joblib.dump(payload, d / f"joblib_dump_{tag}.joblib", compress=comp)
        cases.append(
            Case(
                f"joblib_dump_{tag}.joblib",
                "fail",
                f"joblib.dump (compress={tag}) with arrays and a payload",
                dg,
                "posix.system",
            )
        )
    joblib.dump(np.array([Reduce(os.system, ("id",))], dtype=object), d / "joblib_object_array.joblib")
    cases.append(
        Case("joblib_object_array.joblib", "fail", "payload in joblib's nested object-array pickle", dg, "posix.system")
    )
    # joblib <= 1.1 layout (no alignment byte): the raw array bytes are a pickle that pickle.load runs
    stream = _Unseekable()
    joblib.numpy_pickle.NumpyPickler(stream, protocol=4).dump(
        {"a": np.frombuffer(call_p0("os", "system"), dtype=np.uint8)}
    )
    put(
        "joblib_raw_segment_payload.joblib",
        bytes(stream.buf),
        "array bytes that pickle.load (not joblib) runs",
        dg,
        "os.system",
    )
    # NumPy
    obj = np.array([Reduce(os.system, ("id",))], dtype=object)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, obj, allow_pickle=True)
    put("object_array.npy", buf.getvalue(), "object .npy (descr '|O')", dg, "posix.system")
    put("object_spelled.npy", npy_with_descr(obj, "'object'"), "descr spelled 'object'", dg, "posix.system")
    st = np.array([(Reduce(os.system, ("id",)),)], dtype=[("a", "O")])
    put(
        "object_structured.npy",
        npy_with_descr(st, "[('a', 'object')]"),
        "structured [('a', 'object')]",
        dg,
        "posix.system",
    )
    nested = np.zeros(1, dtype=[("a", [("b", "O")])])
    nested["a"]["b"][0] = Reduce(os.system, ("id",))
    put(
        "object_nested.npy",
        npy_with_descr(nested, "[('a', [('b', 'O')])]"),
        "nested structured object field",
        dg,
        "posix.system",
    )
    sub = np.zeros(1, dtype=[("a", "O", (2,))])
    sub["a"][0, 0] = Reduce(os.system, ("id",))
    put("object_subarray.npy", npy_with_descr(sub, "[('a', 'O', (2,))]"), "object subarray field", dg, "posix.system")
    good = io.BytesIO()
    np.save(good, np.ones(3))
    put("npy_trailing_pickle.npy", good.getvalue() + MAL, "npy with a pickle appended", "malformed_npy")
    put(
        "npy_header_code.npy",
        b"\x93NUMPY\x01\x00" + struct.pack("<H", 54) + b"{'descr': __import__('os'), 'shape': (1,)}".ljust(54),
        "header that is code, not a literal",
        "malformed_npy",
    )
    npz = _zip_bytes({"a.npy": good.getvalue(), "b.npy": buf.getvalue()})
    put("object_in.npz", npz, "npz member with an object array", dg, "posix.system")
    # PyTorch
    torch_zip(d / "torch_malicious.pt", data_pkl=MAL)
    cases.append(Case("torch_malicious.pt", "fail", "torch zip, malicious data.pkl", dg, "posix.system"))
    torch_zip(d / "torch_odd_case.pt", data_pkl=MAL, name="archive/DATA.PKL")
    cases.append(Case("torch_odd_case.pt", "fail", "data.pkl in odd case", dg, "posix.system", "picklescan advisories"))
    torch_zip(d / "torch_hidden_member.pt", extra={"archive/extra/payload.bin": MAL})
    cases.append(
        Case(
            "torch_hidden_member.pt",
            "fail",
            "a pickle under a non-.pkl name",
            dg,
            "posix.system",
            "GHSA-769v-p64c-89pr",
        )
    )
    torch_zip(d / "torch_constants.pt", extra={"archive/constants.pkl": call_p0("os", "system")})
    cases.append(Case("torch_constants.pt", "fail", "second pickle member (constants.pkl)", dg, "os.system"))
    torch_zip(
        d / "torch_storage_type.pt", data_pkl=torch_data_pkl().replace(g0("torch", "FloatStorage"), g0("os", "system"))
    )
    cases.append(
        Case("torch_storage_type.pt", "fail", "persistent id naming os.system as storage type", dg, "os.system")
    )
    torch_zip(d / "torch_script_code.pt", extra={"archive/code/__torch__.py": b"import os\nos.system('id')\n"})
    cases.append(
        Case("torch_script_code.pt", "fail", "TorchScript code member", "torchscript_code", "code/__torch__.py")
    )
    raw = bytearray(torch_zip(d / "tmp.pt").read_bytes())
    i = raw.find(torch_data_pkl())
    raw[i + 5] ^= 1
    put("torch_crc.pt", bytes(raw), "CRC error in data.pkl (lenient loaders ignore CRCs)", "corrupt_member", "data.pkl")
    raw = bytearray((d / "tmp.pt").read_bytes())
    raw[6] |= 1  # general-purpose flag bit 0 (encrypted) on the first local header
    cdir = raw.rfind(b"PK\x01\x02", 0, raw.rfind(b"PK\x05\x06"))
    first_cd = raw.find(b"PK\x01\x02")
    raw[first_cd + 8] |= 1
    put(
        "torch_flag_bit.pt",
        bytes(raw),
        "encrypted flag bit that torch ignores",
        "corrupt_member",
        "data.pkl",
        "GHSA-w8jq-xcqf-f792",
    )
    del cdir
    raw = bytearray((d / "tmp.pt").read_bytes())
    j = raw.find(b"archive/data.pkl")
    raw[j : j + 16] = b"archive/data.pkx"
    put(
        "torch_name_mismatch.pt",
        bytes(raw),
        "local header name differs from the directory",
        "corrupt_member",
        "data.pkl",
        "GHSA-7q5r-7gvp-wc82",
    )
    (d / "tmp.pt").unlink()
    put(
        "torch_legacy_malicious.pt",
        torch_legacy(MAL),
        "legacy torch.save with a malicious object pickle",
        dg,
        "posix.system",
    )
    put(
        "torch_legacy_sixth.pt",
        torch_legacy(trailing=MAL),
        "legacy torch.save, pickle after the storages",
        "trailing_data",
    )
    sysinfo = b"\x80\x02}q\x00."
    name = (MAGIC + pickle.dumps(1001, protocol=2) + sysinfo + call_p0("os", "system")).decode("latin-1")
    tar = _tar_bytes(
        {
            "sys_info": pickle.dumps({}, protocol=2),
            "pickle": torch_data_pkl(),
            "storages": pickle.dumps(0, protocol=2),
            "tensors": pickle.dumps(0, protocol=2),
        }
    )
    tar_raw = bytearray(tar)
    tar_raw[0:100] = name.encode("latin-1").ljust(100, b"\x00")  # the first member's name holds the pickles
    tar_raw[148:156] = b"        "
    tar_raw[148:155] = f"{sum(tar_raw[:512]):06o}\x00".encode()
    put(
        "torch_tar_magic_name.tar",
        bytes(tar_raw),
        "legacy tar whose first member name is the legacy pickles",
        dg,
        "os.system",
    )
    put(
        "torch_tar_malicious.tar",
        _tar_bytes(
            {
                "sys_info": MAL,
                "pickle": torch_data_pkl(),
                "storages": pickle.dumps(0, protocol=2),
                "tensors": pickle.dumps(0, protocol=2),
            }
        ),
        "legacy tar, malicious sys_info",
        dg,
        "posix.system",
    )
    # polyglots
    npz_good = io.BytesIO()
    np.savez(npz_good, a=np.ones(2))
    put(
        "pickle_zip_polyglot.pt",
        call_p0("os", "system") + npz_good.getvalue(),
        "malicious pickle + an npz (zip readers see the npz; torch and numpy run the pickle)",
        dg,
        "os.system",
    )
    put(
        "safetensors_pickle_polyglot.safetensors",
        safetensors_pickle_polyglot(),
        "valid safetensors that also reads as a complete pickle",
        "polyglot",
    )
    # archives
    inner = torch_zip(d / "inner.pt", data_pkl=MAL).read_bytes()
    (d / "inner.pt").unlink()
    put(
        "zip_wraps_pt.zip",
        _zip_bytes({"model/inner.pt": inner}, zipfile.ZIP_DEFLATED),
        "zip wrapping a malicious .pt",
        dg,
        "posix.system",
    )
    put(
        "tar_wraps_pkl.tar",
        _tar_bytes({"weights.dat": MAL}),
        "tar wrapping a pickle under another name",
        dg,
        "posix.system",
    )
    deep = MAL
    for level in range(6):
        deep = _zip_bytes({f"l{level}.zip": deep})
    put("zip_nested_deep.zip", deep, "zips nested past the depth limit", "nesting_depth")
    bomb = bytearray(_zip_bytes({"big.bin": b"\x00" * 1024}, zipfile.ZIP_DEFLATED))
    cd = bomb.find(b"PK\x01\x02")
    bomb[cd + 24 : cd + 28] = struct.pack("<I", 0xFFFFFFF0)  # claims 4 GiB from a few bytes
    put("zip_bomb.zip", bytes(bomb), "zip member claiming 4 GiB from a few bytes", "zip_bomb", "big.bin")
    put(
        "bz2_bomb.joblib",
        bz2.compress(b"\x00" * (32 << 20), 9),
        "bz2 stream expanding past the ratio limit",
        "zip_bomb",
    )
    # Keras
    put(
        "lambda.keras",
        keras_zip(keras_config(lambda_layer=True)),
        "Keras 3 Lambda layer (marshalled code)",
        "lambda_layer",
        "config.json",
    )
    put(
        "module_inject.keras",
        keras_zip(keras_config(module="os")),
        "config.json importing module os",
        "foreign_module",
        "config.json",
        "CVE-2025-1550",
    )
    h5 = _h5_bytes({"model_config": json.dumps(keras_config(lambda_layer=True))})
    put("lambda.h5", h5, "Keras 2 .h5 with a Lambda layer", "lambda_layer", "model_config")
    # ONNX
    put(
        "external_traversal.onnx",
        onnx_with_external("../../../etc/passwd"),
        "external data path climbing out",
        "onnx_external_path",
        "../../../etc/passwd",
    )
    put(
        "external_absolute.onnx",
        onnx_with_external("/etc/shadow"),
        "absolute external data path",
        "onnx_external_path",
        "/etc/shadow",
    )
    # safetensors
    w = {"w": np.zeros(4, np.float32)}
    put(
        "bad_offsets.safetensors",
        safetensors_bytes(w, {"evil": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}),
        "offsets past the data",
        "malformed_safetensors",
    )
    put(
        "overlap.safetensors",
        safetensors_bytes(
            {"a": np.zeros(4, np.float32), "b": np.zeros(4, np.float32)},
            {"b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
        ),
        "two tensors on the same bytes",
        "malformed_safetensors",
    )
    put(
        "header_too_long.safetensors",
        struct.pack("<Q", 1 << 40) + b'{"a":1}',
        "header length past the file",
        "malformed_safetensors",
    )
    put("trailing.safetensors", safetensors_bytes(w) + MAL, "pickle after the last tensor", "malformed_safetensors")
    put("unknown.bin", os.urandom(256).replace(b"\x80", b"\x00"), "random bytes", "unknown_format")
    return cases


# --- the benign corpus ---------------------------------------------------------------------------------------


def benign(d: Path) -> list[Case]:
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def put(name: str, write: Callable[[Path], object], technique: str) -> None:
        write(d / name)
        cases.append(Case(name, "pass", technique))

    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    x, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    models: dict[str, Any] = {
        "logreg": LogisticRegression(max_iter=300).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y),
        "hist_gb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "gb": GradientBoostingClassifier(n_estimators=3).fit(x, y),
        "knn": KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "tree_str_labels": DecisionTreeRegressor(max_depth=3).fit(x, y),
        "forest_str_labels": RandomForestClassifier(n_estimators=2).fit(x, labels),
        "column_transformer": make_pipeline(
            ColumnTransformer([("cat", OneHotEncoder(), [0]), ("num", StandardScaler(), [1, 2])]),
            LogisticRegression(max_iter=300),
        ).fit(np.c_[np.array(["a", "b"] * 75, dtype=object), x[:, :2]], y),
    }
    for key, model in models.items():
        for proto in (2, 4, 5):
            put(
                f"sk_{key}_p{proto}.pkl",
                lambda p, m=model, pr=proto: p.write_bytes(pickle.dumps(m, protocol=pr)),
                f"scikit-learn {key}, pickle protocol {proto}",
            )
    for comp in (0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)):
        tag = comp if isinstance(comp, int) else comp[0]
        for key in ("forest", "pipeline", "forest_str_labels", "column_transformer"):
            put(
                f"sk_{key}_joblib_{tag}.joblib",
                lambda p, m=models[key], c=comp: joblib.dump(m, p, compress=c),
                f"joblib.dump {key}, compress={tag}",
            )
    put(
        "joblib_arrays.joblib",
        lambda p: joblib.dump(
            {
                "a": np.ones((5, 5)),
                "b": np.arange(7, dtype=">i4"),
                "c": np.zeros((2, 3), order="F"),
                "s": np.array(["x", "yy"]),
                "o": np.array([1, "a", None], dtype=object),
                "e": np.zeros((0, 3)),
                "scalar": np.float32(2.5),
            },
            p,
        ),
        "joblib: C/F order, big-endian, str, object, empty",
    )
    stream = _Unseekable()
    joblib.numpy_pickle.NumpyPickler(stream, protocol=4).dump({"a": np.arange(10.0)})
    put(
        "joblib_unaligned.joblib",
        lambda p: p.write_bytes(bytes(stream.buf)),
        "joblib <= 1.1 layout (no alignment byte)",
    )
    # numpy
    put("array_p2.pkl", lambda p: p.write_bytes(pickle.dumps(np.arange(6.0), protocol=2)), "ndarray, protocol 2")
    put(
        "array_p5.pkl",
        lambda p: p.write_bytes(pickle.dumps({"w": np.ones((2, 2)), "i": np.int64(3)}, protocol=5)),
        "ndarrays and scalars, protocol 5 (_frombuffer)",
    )
    put(
        "random_state.pkl",
        lambda p: p.write_bytes(pickle.dumps([np.random.RandomState(0), np.random.default_rng(0)], protocol=4)),
        "numpy random states",
    )
    put(
        "masked.pkl",
        lambda p: p.write_bytes(pickle.dumps(np.ma.masked_array([1, 2], mask=[0, 1]), protocol=4)),
        "numpy masked array",
    )
    put(
        "structured.pkl",
        lambda p: p.write_bytes(pickle.dumps(np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8", (2,))]), protocol=4)),
        "structured dtype pickle",
    )
    put("weights.npy", lambda p: np.save(p, np.arange(12, dtype=np.float32).reshape(3, 4)), ".npy float32")
    put("fortran.npy", lambda p: np.save(p, np.asfortranarray(np.ones((3, 2)))), ".npy Fortran order")
    put(
        "structured.npy",
        lambda p: np.save(p, np.zeros(3, dtype=[("x", "<f8"), ("y", "<i2", (2,))])),
        ".npy structured, no objects",
    )
    put("weights.npz", lambda p: np.savez(p, a=np.ones(3), b=np.zeros((2, 2), dtype=np.int64)), ".npz")
    put("compressed.npz", lambda p: np.savez_compressed(p, a=np.zeros((300, 300))), ".npz compressed zeros")
    import scipy.sparse as sp

    put(
        "sparse.pkl",
        lambda p: p.write_bytes(pickle.dumps([sp.csr_matrix(np.eye(3)), sp.coo_array(np.eye(2))], protocol=5)),
        "scipy sparse matrices",
    )
    put(
        "state.pkl",
        lambda p: p.write_bytes(
            pickle.dumps(
                collections.OrderedDict(
                    a=[1.0, 2.0], b={"c": (1, 2)}, d={1, 2}, e=frozenset({3}), f=collections.defaultdict(list)
                ),
                protocol=2,
            )
        ),
        "collections, protocol 2",
    )
    put(
        "state_p0.pkl",
        lambda p: p.write_bytes(pickle.dumps({"a": [1, 2.5, "x"], "b": None}, protocol=0)),
        "plain data, protocol 0",
    )
    # boosters
    try:
        import xgboost as xgb

        clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
        put(
            "xgb_classifier.pkl", lambda p: p.write_bytes(pickle.dumps(clf, protocol=5)), "xgboost XGBClassifier pickle"
        )
        put("xgb_booster.joblib", lambda p: joblib.dump(clf.get_booster(), p, compress=3), "xgboost Booster, joblib")
        put("xgb_model.json", lambda p: clf.save_model(p), "xgboost native JSON")
    except ImportError:
        pass
    try:
        import lightgbm as lgb

        lclf = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y)
        put("lgbm_classifier.pkl", lambda p: p.write_bytes(pickle.dumps(lclf, protocol=5)), "lightgbm LGBMClassifier")
        put("lgbm_booster.joblib", lambda p: joblib.dump(lclf.booster_, p), "lightgbm Booster, joblib")
        put("lgbm_model.txt", lambda p: lclf.booster_.save_model(str(p)), "lightgbm native text model")
    except ImportError:
        pass
    # ONNX
    try:
        from skl2onnx import to_onnx

        for key in ("logreg", "forest", "pipeline"):
            put(
                f"skl2onnx_{key}.onnx",
                lambda p, k=key: p.write_bytes(
                    to_onnx(models[k], x[:1].astype(np.float32), target_opset=17).SerializeToString()
                ),
                f"skl2onnx {key}",
            )
        ext = onnx_with_external("w.bin")
        if ext is not None:
            put("external_inside.onnx", lambda p: p.write_bytes(ext), "external data beside the model")
    except ImportError:
        pass
    # safetensors
    try:
        from safetensors.numpy import save_file

        put(
            "model.safetensors",
            lambda p: save_file(
                {
                    "w": np.arange(6, dtype=np.float32).reshape(2, 3),
                    "b": np.zeros(3, dtype=np.float16),
                    "step": np.array([3]),
                },
                str(p),
                metadata={"format": "pt"},
            ),
            "safetensors (the reference writer)",
        )
        put("empty.safetensors", lambda p: save_file({}, str(p)), "safetensors without tensors")
    except ImportError:
        pass
    put(
        "handmade.safetensors",
        lambda p: p.write_bytes(safetensors_bytes({"w": np.ones(4, np.float32), "s": np.array([3], dtype=np.int64)})),
        "safetensors built to the spec",
    )
    # PyTorch, to the published layouts
    put("torch_zip.pt", lambda p: torch_zip(p), "torch zip layout (archive/data.pkl, data/0, version, byteorder)")
    put(
        "torch_zip_named.pth",
        lambda p: torch_zip(p, name="resnet/data.pkl", prefix="resnet"),
        "torch zip, archive named",
    )
    put("torch_legacy.pt", lambda p: p.write_bytes(torch_legacy()), "legacy torch.save layout (pickles + storages)")
    put(
        "torch_tar.tar",
        lambda p: p.write_bytes(
            _tar_bytes(
                {
                    "sys_info": pickle.dumps({"little_endian": True}, protocol=2),
                    "pickle": torch_data_pkl(),
                    "storages": pickle.dumps(1, protocol=2)
                    + b"\x80\x02("
                    + u("0")
                    + u("cpu")
                    + g0("torch", "FloatStorage")
                    + b"t."
                    + struct.pack("<q", 4)
                    + bytes(16),
                    "tensors": pickle.dumps(0, protocol=2),
                }
            )
        ),
        "legacy torch tar layout",
    )
    _real_torch(d, cases, put)
    # Keras
    put("model.keras", lambda p: p.write_bytes(keras_zip(keras_config())), "Keras 3 .keras without code")
    h5 = _h5_bytes({"model_config": json.dumps(keras_config())})
    if h5 is not None:
        put("model.h5", lambda p: p.write_bytes(h5), "Keras 2 .h5 without Lambda")
    put(
        "config.json",
        lambda p: p.write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 8})),
        "a Hugging Face config.json",
    )
    return cases


def _real_torch(d: Path, cases: list[Case], put: Callable[[str, Callable[[Path], object], str], None]) -> None:
    """Files written by torch itself, when torch is installed (the hand-built layouts above run everywhere)."""
    try:
        import torch
    except ImportError:
        return
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    put("torch_real_state_dict.pt", lambda p: torch.save(net.state_dict(), p), "torch.save(state_dict)")
    put(
        "torch_real_legacy.pt",
        lambda p: torch.save(net.state_dict(), p, _use_new_zipfile_serialization=False),
        "torch.save legacy format",
    )
    put(
        "torch_real_tensors.pt",
        lambda p: torch.save(
            {"a": torch.ones(2, dtype=torch.bfloat16), "b": torch.arange(3), "c": torch.nn.Parameter(torch.zeros(2))}, p
        ),
        "torch tensors and a Parameter",
    )


def build(root: Path) -> list[Case]:
    """Write both corpora under ``root/fail`` and ``root/pass``; the cases with their expected verdicts."""
    return malicious(root / "fail") + benign(root / "pass")


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "modelscan-corpus")
    built = build(out)
    (out / "cases.json").write_text(json.dumps([asdict(c) for c in built], indent=1))
    print(
        f"{sum(c.expect == 'fail' for c in built)} malicious, {sum(c.expect == 'pass' for c in built)} benign -> {out}"
    )
