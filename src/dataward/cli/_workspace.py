"""Commands: init, key, principal, source."""

from __future__ import annotations

import click
from rich.table import Table

from dataward import principals as identity_admin
from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, json_option, open_workspace, print_table
from dataward.sources import add_source, get_source, list_sources
from dataward.workspace import Workspace


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--admin", required=True, envvar="DATAWARD_PRINCIPAL", help="Name of the first principal (admin).")
@click.option("--catalog", default=None, help="Catalog URL (default: SQLite file in the workspace).")
@click.option("--objects", default=None, help="Object store URL or directory (default: DIR/objects).")
@click.option("--encrypt-key", is_flag=True, help="Encrypt the admin's private key with a passphrase.")
@json_option
def init(
    directory: str, admin: str, catalog: str | None, objects: str | None, encrypt_key: bool, as_json: bool
) -> None:
    """Create a workspace in DIRECTORY with a first admin principal."""
    passphrase = _ask_passphrase() if encrypt_key else None
    ws = Workspace.init(directory, admin=admin, catalog=catalog, objects=objects, passphrase=passphrase)
    from dataward.log.witness import check_witness

    check_witness(ws)
    emit(
        as_json,
        {"workspace": str(ws.path), "id": ws.id, "admin": admin, "log_origin": ws.origin},
        lambda: console.print(f"Created workspace [bold]{ws.path}[/] ({ws.id}); admin principal [bold]{admin}[/]."),
    )


def _ask_passphrase() -> bytes:
    p = click.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
    return str(p).encode()


@cli.group()
def key() -> None:
    """Principals' signing keys: generate, rotate, revoke, list."""


@key.command("generate")
@click.argument("principal")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Key lifetime in days.")
@click.option("--encrypt", is_flag=True, help="Encrypt the private key with a passphrase.")
@json_option
@click.pass_context
def key_generate(ctx: click.Context, principal: str, expires_days: int | None, encrypt: bool, as_json: bool) -> None:
    """Generate an Ed25519 key pair for PRINCIPAL (created if new). Admins only."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    passphrase = _ask_passphrase() if encrypt else None
    info = identity_admin.generate_key(ws, actor, principal, expires_days=expires_days, passphrase=passphrase)
    emit(
        as_json,
        info,
        lambda: console.print(
            f"Key [bold]{info['keyid'][:16]}[/] for {principal} (private key {info['private_key_file']}, mode 0600)."
        ),
    )


@cli.group()
def source() -> None:
    """Data sources: add, list, show."""


@source.command("add")
@click.argument("name")
@click.option(
    "--kind", required=True, type=click.Choice(["internal", "third-party", "web-scraped", "synthetic", "checkpoint"])
)
@click.option("--origin", required=True, help="Where the data comes from (URL or description).")
@click.option("--license", "license_", default=None, help="SPDX licence expression.")
@click.option("--supplier", default=None, help="Supplying organisation.")
@click.option("--supplier-key", default=None, help="Supplier's Ed25519 public key (64 hex chars) or @FILE holding it.")
@click.option(
    "--update-frequency",
    default=None,
    type=click.Choice(["once", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular"]),
)
@json_option
@click.pass_context
def source_add(
    ctx: click.Context,
    name: str,
    kind: str,
    origin: str,
    license_: str | None,
    supplier: str | None,
    supplier_key: str | None,
    update_frequency: str | None,
    as_json: bool,
) -> None:
    """Register a source NAME."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    if supplier_key and supplier_key.startswith("@"):
        from pathlib import Path

        from dataward.errors import InputError

        try:
            supplier_key = Path(supplier_key[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{supplier_key[1:]}: cannot read the supplier key ({exc})") from None
    s = add_source(
        ws,
        actor,
        name,
        kind=kind,
        origin=origin,
        license=license_,
        supplier=supplier,
        supplier_key=supplier_key,
        update_frequency=update_frequency,
    )
    note = "" if s.license_status == "spdx" else f" (licence {s.license_status})"
    emit(as_json, s.to_json(), lambda: console.print(f"Source [bold]{s.name}[/] added: {s.kind}, {s.origin}{note}."))


@source.command("list")
@click.option("--by-risk", is_flag=True, help="Order by risk score, with each score explained.")
@json_option
@click.pass_context
def source_list(ctx: click.Context, by_risk: bool, as_json: bool) -> None:
    """List sources."""
    ws = open_workspace(ctx)
    if by_risk:
        from dataward.cli._workflow import print_risk

        return print_risk(ws, as_json)
    items = list_sources(ws)

    def human() -> None:
        t = Table("name", "kind", "licence", "supplier", "origin")
        for s in items:
            lic = (s.license or "-") + ("" if s.license_status == "spdx" else f" [yellow]({s.license_status})[/]")
            t.add_row(s.name, str(s.kind), lic, s.supplier or "-", s.origin)
        print_table(t)

    emit(as_json, [s.to_json() for s in items], human)


@source.command("show")
@click.argument("name")
@json_option
@click.pass_context
def source_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one source."""
    ws = open_workspace(ctx)
    s = get_source(ws, name)

    def human() -> None:
        for k, v in s.to_json().items():
            console.print(f"[bold]{k:>16}[/] {v if v is not None else '-'}")

    emit(as_json, s.to_json(), human)


@key.command("rotate")
@click.argument("principal")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None)
@click.option("--encrypt", is_flag=True, help="Encrypt the new private key with a passphrase.")
@json_option
@click.pass_context
def key_rotate(ctx: click.Context, principal: str, expires_days: int | None, encrypt: bool, as_json: bool) -> None:
    """Issue a new key for PRINCIPAL and retire the old one (old signatures stay valid)."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    info = identity_admin.rotate_key(
        ws, actor, principal, expires_days=expires_days, passphrase=_ask_passphrase() if encrypt else None
    )
    emit(
        as_json,
        info,
        lambda: console.print(f"{principal}: new key {info['keyid'][:16]}, retired {info['retired'][:16]}."),
    )


@key.command("revoke")
@click.argument("keyid")
@click.option("--reason", required=True, help="Why the key is revoked (recorded in the log).")
@click.option("--at", "at", default=None, help="Revocation time (ISO-8601, default now): later signatures are invalid.")
@json_option
@click.pass_context
def key_revoke(ctx: click.Context, keyid: str, reason: str, at: str | None, as_json: bool) -> None:
    """Revoke a key (by key ID or a prefix of at least 8 hex characters)."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    info = identity_admin.revoke_key(ws, actor, keyid, reason=reason, at=at)
    emit(
        as_json,
        info,
        lambda: console.print(f"Revoked key {info['keyid'][:16]} of {info['principal']} from {info['revoked_at']}."),
    )


@key.command("list")
@click.option("--principal", default=None)
@json_option
@click.pass_context
def key_list(ctx: click.Context, principal: str | None, as_json: bool) -> None:
    """List keys and their status."""
    ws = open_workspace(ctx)
    keys = identity_admin.list_keys(ws, principal)

    def human() -> None:
        t = Table("key", "principal", "status", "created", "expires")
        for k in keys:
            t.add_row(k["keyid"][:16], k["principal"], k["status"], k["created_at"][:19], (k["expires_at"] or "-")[:19])
        print_table(t)

    emit(as_json, keys, human)


@cli.group()
def principal() -> None:
    """Principals and their roles."""


@principal.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="ROLE or ROLE@SOURCE (repeatable).")
@click.option(
    "--expires-days", type=click.IntRange(1, 3650), default=None, help="Lifetime of the principal's first key."
)
@json_option
@click.pass_context
def principal_add(
    ctx: click.Context, name: str, roles: tuple[str, ...], expires_days: int | None, as_json: bool
) -> None:
    """Add principal NAME with roles, and generate its first key."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    grants = [identity_admin.parse_grant(r) for r in roles]
    identity_admin.add_principal(ws, actor, name, grants)
    info = identity_admin.generate_key(ws, actor, name, expires_days=expires_days)
    emit(
        as_json,
        {**info, "roles": list(roles)},
        lambda: console.print(
            f"Principal [bold]{name}[/] ({', '.join(roles) or 'no roles'}), key {info['keyid'][:16]}."
        ),
    )


@principal.command("grant")
@click.argument("name")
@click.argument("roles", nargs=-1, required=True)
@click.pass_context
def principal_grant(ctx: click.Context, name: str, roles: tuple[str, ...]) -> None:
    """Grant ROLES (ROLE or ROLE@SOURCE) to principal NAME."""
    ws = open_workspace(ctx)
    identity_admin.grant_roles(ws, acting(ctx, ws), name, [identity_admin.parse_grant(r) for r in roles])
    console.print(f"Granted {', '.join(roles)} to {name}.")


@principal.command("revoke-role")
@click.argument("name")
@click.argument("roles", nargs=-1, required=True)
@click.pass_context
def principal_revoke_role(ctx: click.Context, name: str, roles: tuple[str, ...]) -> None:
    """Take ROLES away from principal NAME."""
    ws = open_workspace(ctx)
    identity_admin.revoke_roles(ws, acting(ctx, ws), name, [identity_admin.parse_grant(r) for r in roles])
    console.print(f"Revoked {', '.join(roles)} from {name}.")


@principal.command("list")
@json_option
@click.pass_context
def principal_list(ctx: click.Context, as_json: bool) -> None:
    """List principals and their roles."""
    ws = open_workspace(ctx)
    items = identity_admin.list_principals(ws)

    def human() -> None:
        t = Table("principal", "roles")
        for p in items:
            t.add_row(p["name"], ", ".join(p["roles"]) or "-")
        print_table(t)

    emit(as_json, items, human)


@cli.command()
@click.option(
    "--rotate-days",
    type=click.IntRange(1, 3650),
    default=None,
    help="Maximum key age (default: the policy's, else 90).",
)
@json_option
@click.pass_context
def doctor(ctx: click.Context, rotate_days: int | None, as_json: bool) -> None:
    """Health checks: keys due for rotation, key file permissions, the log's witness."""
    ws = open_workspace(ctx)
    from dataward.workflow.policy import rotation_max_age_days

    days = rotate_days or rotation_max_age_days(ws)
    due = identity_admin.keys_due_for_rotation(ws, days)
    result = {"rotation_max_age_days": days, "keys_due_for_rotation": due}

    def human() -> None:
        if not due:
            console.print(f"[green]OK[/] no key older than {days} days or expiring within a week")
        for k in due:
            why = "expires soon" if k["expiring_soon"] else f"{k['age_days']} days old"
            console.print(
                f"[yellow]rotate[/] {k['principal']} key {k['keyid'][:16]} ({why}): "
                f"dataward key rotate {k['principal']}"
            )

    emit(as_json, result, human)
