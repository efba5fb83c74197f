"""Fixtures for the release side (helpers live in release_helpers.py, shared with tests/lineage)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from release_helpers import env  # noqa: F401
