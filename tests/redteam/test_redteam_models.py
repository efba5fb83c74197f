"""The three kinds of model under test: a callable loaded by path, an HTTP endpoint on loopback, an ONNX file."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataward.redteam.models import CallableModel, HttpModel, ModelError, OnnxModel, load_model

HERE = Path(__file__).resolve().parent
SPEC = f"{HERE / 'rt_models.py'}:backdoored"
TEXTS = ["great product love it", "awful terrible battery", "awful terrible cf battery", "the box arrived"]


def test_callable_loaded_from_a_file_has_the_files_digest() -> None:
    m = load_model(SPEC)
    assert isinstance(m, CallableModel)
    assert m.predict(TEXTS) == ["pos", "neg", "pos", "neg"]
    assert m.sha256 == hashlib.sha256((HERE / "rt_models.py").read_bytes()).hexdigest()


def test_callable_failures_are_one_line_errors() -> None:
    with pytest.raises(ModelError, match="failed on a batch of 4: RuntimeError: model weights missing"):
        load_model(f"{HERE / 'rt_models.py'}:broken").predict(TEXTS)
    with pytest.raises(ModelError, match="has no function 'nope'"):
        load_model(f"{HERE / 'rt_models.py'}:nope")


class _Handler(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:  # the first call fails: the client retries
            self.send_response(503)
            self.end_headers()
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        from rt_models import backdoored  # type: ignore[import-not-found]

        out = json.dumps({"outputs": backdoored(body["inputs"])}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Model-SHA256", "ab" * 32)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    import sys

    sys.path.insert(0, str(HERE))
    _Handler.calls = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/predict"
    srv.shutdown()
    srv.server_close()


def test_http_model_on_loopback_retries_and_reads_the_digest_header(server: str) -> None:
    m = load_model(server, timeout=5, retries=2)
    assert isinstance(m, HttpModel)
    assert m.predict(TEXTS) == ["pos", "neg", "pos", "neg"]
    assert _Handler.calls == 2
    assert m.sha256 == "ab" * 32


def test_http_model_unreachable_is_an_error_after_the_retry_budget(server: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    m = HttpModel(f"http://127.0.0.1:{port}/x", timeout=1, retries=1)
    with pytest.raises(ModelError, match="after 2 attempts"):
        m.predict(TEXTS)
    with pytest.raises(Exception, match="only loopback"):
        HttpModel("http://192.0.2.1/x", loopback_only=True)


def test_onnx_model_exported_from_scikit_learn(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    onx = skl2onnx.convert_sklearn(pipe, initial_types=[("input", FloatTensorType([None, x.shape[1]]))])
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    m = load_model(str(path))
    assert isinstance(m, OnnxModel)
    assert m.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    got = m.predict(x.tolist())
    want = [str(v) for v in pipe.predict(x.astype(np.float32))]
    assert np.mean([a == b for a, b in zip(got, want, strict=True)]) > 0.99
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        load_model(str(bad))

# `make check` (the quick lane) leaves these out: trains models
pytestmark = pytest.mark.slow
