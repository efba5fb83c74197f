"""The root click group and the options every command shares."""

from __future__ import annotations

import click

from dataward import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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
