"""Progress on stderr for long work: drawn on a terminal (a pty here), absent when piped; the library only
calls the :mod:`dataward.progress` protocol (no rich import), the CLI draws."""

from __future__ import annotations

import ast
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataward.progress import NullProgress, Progress, Recorder

SRC = Path(__file__).resolve().parents[1] / "src" / "dataward"
RUN = "import sys; from dataward.cli import run; sys.argv[0] = 'dataward'; run()"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAWARD_")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "100", "PYTHONPATH": str(SRC.parent)})
    env.pop("NO_COLOR", None)
    return env


def _run(args: list[str], *, tty: bool) -> tuple[int, bytes, bytes]:
    """Run the CLI with stdout piped and stderr on a pty (``tty``) or a pipe; returns (code, out, err)."""
    if not tty:
        r = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, env=_env(), timeout=600)
        return r.returncode, r.stdout, r.stderr
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    p = subprocess.Popen(
        [sys.executable, "-c", RUN, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=_env()
    )
    os.close(slave)
    out, _ = p.communicate(timeout=600)
    t.join(timeout=10)
    os.close(master)
    return p.returncode, out, b"".join(chunks)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["label"] = (x[:, 0] > 0).astype(int)
    p = tmp_path_factory.mktemp("progress") / "t.csv"
    frame.to_csv(p, index=False)
    return p


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cmd", "word"),
    [(["detect", "{p}", "--json", "--detectors", "label_issues"], b"detecting"),
     (["check", "{p}", "--json", "--checks", "duplicates"], b"screening")],
)  # fmt: skip
def test_progress_is_drawn_on_a_terminal_and_absent_when_piped(table: Path, cmd: list[str], word: bytes) -> None:
    args = [a.replace("{p}", str(table)) for a in cmd]
    code_t, out_t, err_t = _run(args, tty=True)
    code_p, out_p, err_p = _run(args, tty=False)
    assert code_t == code_p
    assert word in err_t, err_t[-500:]  # the bar's description reached the terminal
    assert word not in err_p and b"\x1b[" not in err_p  # nothing drawn into a pipe
    assert b"\x1b[" not in out_t and b"\x1b[" not in out_p  # stdout is data only, on a terminal or not
    assert out_t.startswith(b"{") and out_p.startswith(b"{")


@pytest.mark.slow
def test_the_library_draws_nothing_itself() -> None:
    """No library module imports rich; screen/detect/redteam report through the protocol."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if rel.parts[0] in ("cli", "web") or rel.name == "demo.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "rich" or n.startswith("rich.") for n in names):
                offenders.append(str(rel))
    assert offenders == []
    assert isinstance(Recorder(), Progress) and isinstance(NullProgress(), Progress)


def test_detect_reports_one_phase_per_run_through_the_protocol(table: Path) -> None:
    from dataward.detect.api import detect

    rec = Recorder()
    detect(table, detectors=["label_issues"], progress=rec)
    (task,) = rec.tasks
    assert task.description == "detecting" and task.total == 1 and task.completed == 1 and task.finished
