"""Commands: serve (the web console), token create | list | revoke."""

from __future__ import annotations

import click
from rich.table import Table

from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, json_option, open_workspace, print_table


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--server-side-signing",
    is_flag=True,
    help="Sign workflow actions with the signed-in principal's key from the workspace key dir.",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Force the Secure cookie flag (default: when the request came over https, e.g. behind a TLS proxy).",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Trust X-Forwarded-Proto/For from these proxy addresses (comma-separated), so https is recognised.",
)
@click.pass_context
def serve_cmd(
    ctx: click.Context,
    host: str,
    port: int,
    server_side_signing: bool,
    secure_cookies: bool | None,
    forwarded_allow_ips: str | None,
) -> None:
    """Serve the web console and the /api/v1 HTTP API (FastAPI + uvicorn)."""
    import uvicorn

    from dataward.web.app import create_app

    ws = open_workspace(ctx)
    app = create_app(ws, server_side_signing=server_side_signing, secure_cookies=secure_cookies)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]Serving on {host}: put a TLS-terminating proxy in front (see docs/console.md).[/]")
    console.print(f"dataward console on http://{host}:{port}/ (API docs at /api/docs)")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )


@cli.group()
def token() -> None:
    """API tokens for the web console and /api/v1 (admins): create, list, revoke. Rotate = create + revoke."""


@token.command("create")
@click.argument("principal")
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 90m, 12h, 30d, 2w (at most 366d).")
@json_option
@click.pass_context
def token_create(ctx: click.Context, principal: str, expires: str, as_json: bool) -> None:
    """Create a token for PRINCIPAL; the secret is printed once and stored only as a SHA-256 hash."""
    from dataward.web.auth import create_token, parse_duration

    ws = open_workspace(ctx)
    info, secret = create_token(ws, acting(ctx, ws), principal, parse_duration(expires))

    def human() -> None:
        console.print(f"Token [bold]{info.id}[/] for {principal}, expires {info.expires_at}. Shown only once:")
        click.echo(secret)

    emit(as_json, {**info.to_json(), "token": secret}, human)


@token.command("list")
@click.option("--principal", default=None)
@json_option
@click.pass_context
def token_list(ctx: click.Context, principal: str | None, as_json: bool) -> None:
    """List tokens (ids, owners, expiry, status; never the secrets)."""
    from dataward.web.auth import list_tokens

    items = list_tokens(open_workspace(ctx), principal)

    def human() -> None:
        t = Table("id", "principal", "status", "expires", "created by")
        for i in items:
            t.add_row(i.id, i.principal, i.status, i.expires_at[:19], i.created_by)
        print_table(t)

    emit(as_json, [i.to_json() for i in items], human)


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@json_option
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str, as_json: bool) -> None:
    """Revoke token ID; browser sessions opened with it end at their next request."""
    from dataward.web.auth import revoke_token

    ws = open_workspace(ctx)
    info = revoke_token(ws, acting(ctx, ws), token_id)
    emit(as_json, info.to_json(), lambda: console.print(f"Token {token_id} of {info.principal} revoked."))
