"""Commands: init, key, principal, source."""

from __future__ import annotations

import click
from rich.table import Table

from dataward import principals as identity_admin
from dataward.cli._app import cli
from dataward.cli._util import acting, console, emit, emit_json, err_console, json_option, open_workspace, print_table
from dataward.model.keys import PublicKey
from dataward.sources import add_source, get_source, list_sources
from dataward.workspace import Workspace


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--admin", required=True, envvar="DATAWARD_PRINCIPAL", help="Name of the first principal (admin).")
@click.option(
    "--admin-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The admin's public key (PEM, OpenSSH or hex); default: generate one in your keyring.",
)
@click.option("--no-passphrase", is_flag=True, help="Do not encrypt the admin key generated in your keyring.")
@click.option("--catalog", default=None, help="Catalog URL (default: SQLite file in the workspace).")
@click.option("--objects", default=None, help="Object store URL or directory (default: DIR/objects).")
@click.option("--log-key-dir", default=None, help="Where the log's own key lives (default: DIR/keys).")
@click.option(
    "--admin-threshold",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Distinct admin signatures each admin change needs (k-of-n; `dataward admin`).",
)
@click.option("--encrypt-key", is_flag=True, hidden=True, help="Obsolete: keys are encrypted by default.")
@json_option
def init(
    directory: str,
    admin: str,
    admin_key: str | None,
    no_passphrase: bool,
    catalog: str | None,
    objects: str | None,
    log_key_dir: str | None,
    admin_threshold: int,
    encrypt_key: bool,
    as_json: bool,
) -> None:
    """Create a workspace in DIRECTORY with a first admin principal (key in your keyring, or --admin-key)."""
    from dataward.store.keyring import FileKeyring

    pub = read_public_key(admin_key, "admin public key") if admin_key else None
    passphrase = None if pub is not None else new_passphrase(admin, no_passphrase)
    ring = FileKeyring()
    ws = Workspace.init(
        directory,
        admin=admin,
        admin_key=pub,
        keyring=ring,
        catalog=catalog,
        objects=objects,
        log_key_dir=log_key_dir,
        passphrase=passphrase,
        admin_threshold=admin_threshold,
    )
    from dataward.log.witness import check_witness

    check_witness(ws)
    where = "your keyring" if pub is None else f"the holder of {admin_key}"
    emit(
        as_json,
        {
            "workspace": str(ws.path),
            "id": ws.id,
            "admin": admin,
            "log_origin": ws.origin,
            "admin_keyring": str(ring.path) if pub is None else None,
            "admin_threshold": admin_threshold,
        },
        lambda: console.print(
            f"Created workspace [bold]{ws.path}[/] ({ws.id}); admin principal [bold]{admin}[/] (key: {where})."
        ),
    )


def new_passphrase(name: str, no_passphrase: bool) -> bytes | None:
    """The passphrase for a new key of ``name``: none for services, else $DATAWARD_PASSPHRASE or a prompt."""
    import os
    import sys

    from dataward.errors import InputError
    from dataward.store.keyring import PASSPHRASE_ENV

    if no_passphrase:
        return None
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env.encode()
    if sys.stdin.isatty():
        p = click.prompt(f"Passphrase for {name}'s new key", hide_input=True, confirmation_prompt=True)
        return str(p).encode()
    raise InputError(
        f"the new key of {name} needs a passphrase and there is no terminal to ask for it",
        advice=f"Set {PASSPHRASE_ENV}, or pass --no-passphrase for a service's key.",
    )


def read_public_key(arg: str, what: str) -> PublicKey:
    """A public key (PEM, OpenSSH or hex) from FILE or ``@FILE``, or given inline; ``what`` names it in errors."""
    from pathlib import Path

    from dataward.errors import InputError

    path = Path(arg.removeprefix("@"))
    try:
        is_file = arg.startswith("@") or (len(arg) < 1024 and path.is_file())
    except OSError:
        is_file = False
    if not is_file:
        return PublicKey.parse(arg, what=what)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    return PublicKey.parse(text, what=f"{what} in {path}")


@cli.group()
def key() -> None:
    """Keys: generate (your keyring), export, add, rotate, revoke, list, migrate."""


@key.command("generate")
@click.argument("principal")
@click.option("--no-passphrase", is_flag=True, help="Store the key unencrypted (for a service, not a person).")
@click.option("--encrypt", is_flag=True, hidden=True, help="Obsolete: keys are encrypted by default.")
@json_option
def key_generate(principal: str, no_passphrase: bool, encrypt: bool, as_json: bool) -> None:
    """Generate a key pair for PRINCIPAL in YOUR keyring; print the public key (PEM) to hand to an admin.

    Needs no workspace: the private key never leaves this machine (DATAWARD_KEYRING overrides the keyring
    directory). An admin then registers the public key: `dataward principal add NAME --role R --key FILE`.
    """
    from dataward.store.keyring import FileKeyring
    from dataward.workspace import check_name

    check_name(principal, "principal")
    passphrase = new_passphrase(principal, no_passphrase)
    ring = FileKeyring()
    entry, pub = ring.generate(principal, passphrase)
    info = {
        "principal": principal,
        "keyid": pub.keyid,
        "public_key": pub.pem(),
        "keyring": str(ring.path),
        "encrypted": passphrase is not None,
    }
    if as_json:
        emit_json(info)
        return
    click.echo(pub.pem(), nl=False)
    err_console.print(
        f"Key {pub.keyid[:16]} for {principal} in {entry.path} (mode 0600"
        f"{', encrypted' if passphrase else ', NOT encrypted'}). Give the public key above to an admin."
    )


@key.command("export")
@click.argument("principal")
@click.option("--format", "fmt", type=click.Choice(["pem", "openssh", "hex"]), default="pem", show_default=True)
@click.option("--keyid", default=None, help="A specific key (default: the principal's active key).")
@json_option
@click.pass_context
def key_export(ctx: click.Context, principal: str, fmt: str, keyid: str | None, as_json: bool) -> None:
    """Print the public key registered for PRINCIPAL in the workspace."""
    from dataward.errors import NotFoundError

    ws = open_workspace(ctx)
    k = identity_admin.registered_key(ws, principal, keyid)
    if k is None:
        raise NotFoundError(f"{principal} has no {'such' if keyid else 'active'} registered key")
    if fmt == "pem":
        text = k.public_key.pem()
    elif fmt == "openssh":
        text = k.public_key.openssh(principal) + "\n"
    else:
        text = k.public_key.hex() + "\n"
    if as_json:
        emit_json({"principal": principal, "keyid": k.keyid, "status": k.status, "public_key": text})
    else:
        click.echo(text, nl=False)


@key.command("add")
@click.argument("principal")
@click.option("--key", "key_file", required=True, help="The principal's public key: FILE (PEM, OpenSSH or hex).")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Key lifetime in days.")
@json_option
@click.pass_context
def key_add(ctx: click.Context, principal: str, key_file: str, expires_days: int | None, as_json: bool) -> None:
    """Register a public key for PRINCIPAL (created if new, no roles). Admins only."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    pub = read_public_key(key_file, "public key")
    info = identity_admin.add_key(ws, actor, principal, pub, expires_days=expires_days)
    emit(as_json, info, lambda: console.print(f"Key [bold]{info['keyid'][:16]}[/] registered for {principal}."))


@key.command("migrate")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False), help="Directory to hand over.")
@json_option
@click.pass_context
def key_migrate(ctx: click.Context, dest: str, as_json: bool) -> None:
    """Move every principal's private key out of an old workspace's keys/ into DEST/NAME/ keyrings.

    Hand each DEST/NAME directory to its owner (it is a keyring: point DATAWARD_KEYRING at it). The log's
    own key stays. Admins only.
    """
    from pathlib import Path

    ws = open_workspace(ctx)
    moved = identity_admin.migrate_keys(ws, acting(ctx, ws), Path(dest))

    def human() -> None:
        for m in moved:
            console.print(f"{m['principal']}: key {m['keyid'][:16]} -> {m['keyring']}")
        console.print(f"Moved {len(moved)} private key(s) out of the workspace.")

    emit(as_json, moved, human)


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
@click.option(
    "--supplier-key", default=None, help="Supplier's Ed25519 public key (PEM, OpenSSH or hex), or @FILE holding it."
)
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
    if supplier_key:
        supplier_key = read_public_key(supplier_key, "supplier key").hex()
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
@click.option(
    "--key", "key_file", default=None, help="The new public key (FILE); default for your own: new key in your keyring."
)
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None)
@click.option("--no-passphrase", is_flag=True, help="Do not encrypt a key generated in your keyring.")
@click.option("--encrypt", is_flag=True, hidden=True, help="Obsolete: keys are encrypted by default.")
@json_option
@click.pass_context
def key_rotate(
    ctx: click.Context,
    principal: str,
    key_file: str | None,
    expires_days: int | None,
    no_passphrase: bool,
    encrypt: bool,
    as_json: bool,
) -> None:
    """Register a new key for PRINCIPAL and retire the old one (old signatures stay valid)."""
    from dataward.errors import InputError

    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    pub = read_public_key(key_file, "public key") if key_file else None
    if pub is None and actor.name != principal:
        raise InputError(
            f"rotating {principal}'s key needs their new public key (--key FILE)",
            advice=f"{principal} runs `dataward key generate {principal}` and hands you the public key; or "
            f"{principal} rotates their own key with `dataward --as {principal} key rotate {principal}`.",
        )
    passphrase = new_passphrase(principal, no_passphrase) if pub is None else None
    info = identity_admin.rotate_key(ws, actor, principal, pub, expires_days=expires_days, passphrase=passphrase)
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
    "--key", "key_file", required=True, help="NAME's public key: FILE (PEM, OpenSSH or hex) from `key generate`."
)
@click.option(
    "--expires-days", type=click.IntRange(1, 3650), default=None, help="Lifetime of the principal's first key."
)
@json_option
@click.pass_context
def principal_add(
    ctx: click.Context, name: str, roles: tuple[str, ...], key_file: str, expires_days: int | None, as_json: bool
) -> None:
    """Add principal NAME with roles and its public key (one transaction)."""
    ws = open_workspace(ctx)
    actor = acting(ctx, ws)
    grants = [identity_admin.parse_grant(r) for r in roles]
    pub = read_public_key(key_file, "public key")
    info = identity_admin.add_principal(ws, actor, name, grants, pub, expires_days=expires_days)
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
@click.option("--fix", is_flag=True, help="Remove unreferenced objects and stale temporary files (admin; logged).")
@click.option(
    "--grace",
    "grace_seconds",
    type=click.IntRange(0, None),
    default=3600,
    show_default=True,
    help="Only files older than SECONDS count as stale (a running command may still use younger ones).",
)
@json_option
@click.pass_context
def doctor(ctx: click.Context, rotate_days: int | None, fix: bool, grace_seconds: int, as_json: bool) -> None:
    """Health checks: keys due for rotation, unreferenced objects and stale temporary files (--fix removes)."""
    ws = open_workspace(ctx)
    from dataward.maintenance import collect_garbage
    from dataward.workflow.approval_policy import rotation_max_age_days

    days = rotate_days or rotation_max_age_days(ws)
    due = identity_admin.keys_due_for_rotation(ws, days)
    garbage = collect_garbage(ws, acting(ctx, ws) if fix else None, grace_seconds=grace_seconds, fix=fix)
    result = {"rotation_max_age_days": days, "keys_due_for_rotation": due, "storage": garbage}

    def human() -> None:
        if not due:
            console.print(f"[green]OK[/] no key older than {days} days or expiring within a week")
        for k in due:
            why = "expires soon" if k["expiring_soon"] else f"{k['age_days']} days old"
            console.print(
                f"[yellow]rotate[/] {k['principal']} key {k['keyid'][:16]} ({why}): "
                f"dataward key rotate {k['principal']}"
            )
        n_obj, n_tmp = len(garbage["unreferenced_objects"]), len(garbage["stale_temp_files"])
        verb = "removed" if fix else "found"
        if not n_obj and not n_tmp:
            console.print(f"[green]OK[/] no unreferenced object, no temporary file older than {grace_seconds} s")
        else:
            console.print(
                f"[yellow]storage[/] {verb} {n_obj} unreferenced object(s), {n_tmp} stale temporary file(s), "
                f"{garbage['bytes']} bytes" + ("" if fix else ": dataward doctor --fix")
            )

    emit(as_json, result, human)
