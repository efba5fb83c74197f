"""The root click group and the options every command shares."""

from __future__ import annotations

import importlib
from typing import ClassVar

import click

from dataward import __version__


class LazyGroup(click.Group):
    """A group whose commands are imported on first use: `dataward verify` does not pay for detection."""

    lazy: ClassVar[dict[str, str]] = {}  # command name -> module that registers it (filled by cli._commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="dataward")
@click.option(
    "--workspace",
    "-w",
    envvar="DATAWARD_WORKSPACE",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Workspace directory (or set DATAWARD_WORKSPACE).",
)
@click.option(
    "--as",
    "principal",
    envvar="DATAWARD_PRINCIPAL",
    default=None,
    help="Act as this principal (or set DATAWARD_PRINCIPAL).",
)
@click.pass_context
def cli(ctx: click.Context, workspace: str, principal: str | None) -> None:
    """dataward: defend ML training data against poisoning."""
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    ctx.obj["principal"] = principal
