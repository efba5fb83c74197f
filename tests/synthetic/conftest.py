"""The synthetic tests reuse the release-side environment (one principal per role, lenient policy)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "versions"))

from release_helpers import env  # noqa: F401
