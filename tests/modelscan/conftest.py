"""The two checkpoint corpora, built once per session by modelscan_corpus.py (never committed as binaries)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from modelscan_corpus import Case, build


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("modelscan-corpus")
    return root, build(root)
