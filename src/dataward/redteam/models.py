"""Models under test: a Python callable, an HTTP endpoint or an ONNX file, behind one interface.

A model takes a batch of inputs (texts, or rows of numbers) and returns one output per input: a label, a
row of class probabilities (mapped to the most likely class), or a text. Outputs are compared as strings.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import ipaddress
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dataward.errors import Error, InputError

BATCH = 512


class ModelError(Error):
    """The model under test could not be loaded or failed on a batch."""

    default_advice = "Check the model specification (module:function, http(s)://host/path, or FILE.onnx)."


def file_sha256(path: Path) -> str:
    """The SHA-256 (hex) of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _as_outputs(raw: Any, n: int, name: str, classes: Sequence[Any] | None = None) -> list[str]:
    """One string per input: labels as they are, probability rows as their most likely class."""
    if isinstance(raw, dict) and "outputs" in raw:
        raw = raw["outputs"]
    arr = np.asarray(raw, dtype=object) if not isinstance(raw, np.ndarray) else raw
    if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2 and arr.shape[0] == n:
        idx = np.argmax(arr.astype(float), axis=1)
        names = list(classes) if classes is not None and len(classes) == arr.shape[1] else list(range(arr.shape[1]))
        return [str(names[int(i)]) for i in idx]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ModelError(f"model {name} returned {getattr(arr, 'shape', '?')} outputs for {n} inputs")
    return [_label(v) for v in arr.tolist()]


def _label(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class Model(ABC):
    """A model under test. ``sha256`` is the artifact's digest when there is one to take."""

    name: str
    kind: str
    sha256: str | None = None

    def predict(self, inputs: Sequence[Any]) -> list[str]:
        """The model's outputs for ``inputs`` as strings, asked for in chunks."""
        out: list[str] = []
        for start in range(0, len(inputs), BATCH):
            chunk = list(inputs[start : start + BATCH])
            out.extend(self._predict(chunk))
        return out

    @abstractmethod
    def _predict(self, inputs: list[Any]) -> list[str]: ...

    def describe(self) -> dict[str, Any]:
        """The model's name, kind and artifact digest (None when it has no file)."""
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256}


class CallableModel(Model):
    """``module:function`` or ``path/to/file.py:function``; the function takes a list and returns a list."""

    kind = "callable"

    def __init__(self, spec: str, fn: Callable[[list[Any]], Any] | None = None) -> None:
        self.name = spec
        if fn is not None:
            self.fn = fn
            return
        target, sep, attr = spec.rpartition(":")
        if not sep or not target or not attr:
            raise InputError(f"model {spec!r}: expected module:function", advice="e.g. mypkg.model:predict")
        path = Path(target)
        try:
            if target.endswith(".py"):
                if not path.is_file():
                    raise InputError(f"model {spec!r}: no such file {target}")
                modname = f"_dataward_model_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
                mspec = importlib.util.spec_from_file_location(modname, path)
                if mspec is None or mspec.loader is None:
                    raise InputError(f"model {spec!r}: cannot load {target}")
                module = importlib.util.module_from_spec(mspec)
                sys.modules[modname] = module
                mspec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
        except ImportError as exc:
            raise ModelError(f"model {spec!r}: cannot import {target}: {exc}") from None
        fn_obj = getattr(module, attr, None)
        if not callable(fn_obj):
            raise ModelError(f"model {spec!r}: {target} has no function {attr!r}")
        self.fn = fn_obj
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).is_file():
            self.sha256 = file_sha256(Path(origin))

    def _predict(self, inputs: list[Any]) -> list[str]:
        try:
            raw = self.fn(inputs)
        except Exception as exc:  # the model is user code: any failure is reported, never a traceback
            raise ModelError(
                f"model {self.name} failed on a batch of {len(inputs)}: {type(exc).__name__}: {exc}"
            ) from None
        return _as_outputs(raw, len(inputs), self.name)


class HttpModel(Model):
    """POST ``{"inputs": [...]}`` and read ``{"outputs": [...]}`` (or a bare list), with a timeout and retries.

    The artifact digest is taken from an ``X-Model-SHA256`` response header when the server sends one.
    """

    kind = "http"

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 2, loopback_only: bool = False) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError(f"model {url!r}: not an http(s) URL")
        if loopback_only and not _is_loopback(parsed.hostname):
            raise InputError(f"model {url!r}: only loopback endpoints are allowed here")
        self.name = url
        self.url = url
        self.timeout = timeout
        self.retries = retries

    def _predict(self, inputs: list[Any]) -> list[str]:
        body = json.dumps({"inputs": inputs}, default=_jsonable).encode("utf-8")
        last = ""
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(  # noqa: S310 (scheme checked: http or https)
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (scheme checked)
                    digest = resp.headers.get("X-Model-SHA256")
                    if digest and len(digest) == 64:
                        self.sha256 = digest.lower()
                    data = json.loads(resp.read())
                return _as_outputs(data, len(inputs), self.name)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except json.JSONDecodeError:
                last = "the response is not JSON"
                break
            if attempt < self.retries:
                time.sleep(min(2.0, 0.2 * 2**attempt))
        raise ModelError(
            f"model {self.url}: {last} (after {self.retries + 1} attempts)",
            advice="Check that the server is up; raise --timeout or --retries if it is slow.",
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot send {type(v).__name__} as JSON")


class OnnxModel(Model):
    """An ONNX file run with onnxruntime (CPU). Text models take a string tensor, others float32 rows."""

    kind = "onnx"

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"model {p}: no such ONNX file")
        try:
            import onnxruntime as ort  # type: ignore[import-untyped]
        except ImportError:
            raise ModelError(
                f"model {p}: ONNX models need onnxruntime", advice="pip install 'dataward[onnx]'"
            ) from None
        self.name = str(p)
        self.sha256 = file_sha256(p)
        try:
            self.session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"model {p}: onnxruntime cannot load it: {str(exc).splitlines()[0][:200]}") from None
        self.input = self.session.get_inputs()[0]
        self.output = self.session.get_outputs()[0].name

    def _predict(self, inputs: list[Any]) -> list[str]:
        if "string" in str(self.input.type):
            x: Any = np.array([str(v) for v in inputs], dtype=object).reshape(-1, 1)
        else:
            x = np.asarray(inputs, dtype=np.float32)
            if x.ndim == 1:
                x = x.reshape(-1, 1)
        try:
            raw = self.session.run([self.output], {self.input.name: x})[0]
        except Exception as exc:
            raise ModelError(f"model {self.name} failed on a batch of {len(inputs)}: {str(exc)[:200]}") from None
        return _as_outputs(raw, len(inputs), self.name)


def load_model(spec: str, *, timeout: float = 10.0, retries: int = 2) -> Model:
    """A model from its specification: ``http(s)://...``, ``FILE.onnx``, or ``module:function``."""
    if spec.startswith(("http://", "https://")):
        return HttpModel(spec, timeout=timeout, retries=retries)
    if spec.lower().endswith(".onnx"):
        return OnnxModel(spec)
    return CallableModel(spec)
