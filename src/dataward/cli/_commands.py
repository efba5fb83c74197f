"""Imports every command module so that each registers its commands on the root group."""

from __future__ import annotations

from dataward.cli import _detect  # noqa: F401
