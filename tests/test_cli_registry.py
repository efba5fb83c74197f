"""The lazy command map names every command each CLI module registers, and nothing else."""

from __future__ import annotations

import importlib
from pathlib import Path

import dataward.cli
from dataward.cli._app import cli
from dataward.cli._commands import COMMAND_MODULES


def test_command_map_is_complete_and_exact() -> None:
    modules = sorted(p.stem for p in Path(dataward.cli.__file__).parent.glob("_*.py"))
    registered: dict[str, str] = {}
    for m in modules:
        if m in ("__init__", "_app", "_commands", "_util"):
            continue
        before = set(cli.commands)
        mod = importlib.import_module(f"dataward.cli.{m}")
        for name in set(cli.commands) - before:
            registered[name] = mod.__name__
    # modules imported earlier (by other tests) registered before we looked: find their owners by callback
    for name, cmd in cli.commands.items():
        owner = cmd.callback.__module__ if cmd.callback is not None else None
        if owner and owner.startswith("dataward.cli."):
            registered.setdefault(name, owner)
    assert registered == COMMAND_MODULES


def test_help_lists_every_command() -> None:
    from click.testing import CliRunner

    dataward.cli._register_commands()
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMAND_MODULES:
        assert name in out
