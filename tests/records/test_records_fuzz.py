"""Fuzzing the records layer and the CLI with mutated files of every format (bounded: a few seconds each).

A mutated file must give records or a dataward error; a traceback or a crash of the parsing worker (which
the sandbox turns into a SandboxError) fails the test. Crashes found are kept in corpus/."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fuzzing import FORMATS, SUFFIX, mutate, seed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataward import records
from dataward.errors import EXIT_CODES, Error
from dataward.records.sandbox import SandboxError, run_sandboxed

pytestmark = pytest.mark.slow  # every test here is long: `make test` runs them, `make check` does not

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_both(path: str, fmt: str) -> str:
    for errors in ("strict", "replace"):
        try:
            for _ in records.read(path, fmt, errors=errors):
                pass
        except Error as exc:
            assert exc.message and "\n" not in exc.message
            return "refused"
    return "read"


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_files_read_or_refuse(fmt: str, rnd: random.Random, tmp_path: Path) -> None:
    path = tmp_path / f"m{SUFFIX[fmt]}"
    path.write_bytes(mutate(seed(fmt), rnd))
    try:
        run_sandboxed(_read_both, str(path), fmt, where=path.name)
    except SandboxError as exc:  # a traceback or a crash in the reader
        pytest.fail(f"{fmt}: {exc.message}")
    except Error:
        pass


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "text"])
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rnd=st.randoms(use_true_random=False))
def test_mutated_files_through_check_and_detect(
    fmt: str, rnd: random.Random, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataward.cli import main

    path = tmp_path / f"m{SUFFIX[fmt]}"
    path.write_bytes(mutate(seed(fmt), rnd))
    for argv in (["check", str(path), "--quiet"], ["detect", str(path), "--quiet"]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code in EXIT_CODES and "Traceback" not in err, (argv, code, err[-400:])
