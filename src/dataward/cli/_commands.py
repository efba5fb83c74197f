"""Imports every command module so that each registers its commands on the root group.

One import per line, so that adding a command module is a one-line change.
"""

from __future__ import annotations

import dataward.cli._acquire
import dataward.cli._detect
import dataward.cli._log
import dataward.cli._release
import dataward.cli._screen
import dataward.cli._workflow
import dataward.cli._workspace  # noqa: F401
