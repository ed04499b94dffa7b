"""``sealbox``: operator commands. Exit codes are listed in ``sealbox.cli.common``."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.table import Table

from sealbox.accounts.schemas import UserRead, UserUpdate
from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.cli.audit import audit_app
from sealbox.cli.client import install as install_client_commands
from sealbox.cli.common import (
    DatabaseUrl,
    DataDir,
    KeyringOpt,
    T,
    err,
    open_db,
    read_secret,
    run,
    settings_from,
)
from sealbox.cli.keys import keys_app
from sealbox.cli.output import console
from sealbox.cli.storage import storage_app
from sealbox.config import Settings
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.ids import UserId
from sealbox.logs import CONFIG_FILE as LOG_CONFIG_FILE
from sealbox.logs import configure_logging
from sealbox.runtime import Initialised, keyring_warning, open_runtime, prepare

app = typer.Typer(help="sealbox: share files, encrypted at rest.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(db_app, name="db")
app.add_typer(storage_app, name="storage")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
install_client_commands(app)


def announce(created: Initialised) -> None:
    where = created.keyring + (" (created now)" if created.keyring_created else "")
    lines = [
        "sealbox is initialised.",
        f"  admin user:      {created.admin_username}",
        f"  admin password:  {created.admin_password}",
        "  (shown only this once)",
        f"  keyring:         {where}",
        "",
        "  BACK UP THE KEYRING NOW and keep the copy apart from your data backups.",
        "  Without it, every stored file is unreadable; with it beside the data,",
        "  anyone holding a copy of the data can read it.",
    ]
    bar = "=" * 76
    print(f"{bar}\n" + "\n".join(lines) + f"\n{bar}", flush=True)


def _prepare(settings: Settings) -> None:
    created = run(prepare(settings))
    if created is not None:
        announce(created)
    warning = keyring_warning(settings)
    if warning:
        # This process becomes the server, whose stderr holds JSON lines only.
        structlog.get_logger().warning("keyring.placement", detail=warning)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (env: SEALBOX_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env: SEALBOX_PORT)")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (env: SEALBOX_WORKERS)")] = None,
    data_dir: DataDir = None,
    keyring: KeyringOpt = None,
    database_url: DatabaseUrl = None,
    max_upload_size: Annotated[
        str | None, typer.Option(help="Largest accepted file, e.g. 10G (env: SEALBOX_MAX_UPLOAD_SIZE)")
    ] = None,
) -> None:
    """Run the server (initialising a brand-new data directory on first start)."""
    settings = settings_from(
        host=host,
        port=port,
        workers=workers,
        data_dir=data_dir,
        keyring=keyring,
        database_url=database_url,
        max_upload_size=max_upload_size,
    )
    _prepare(settings)
    # Replace this process with a fresh uvicorn: the server then carries none of the CLI's
    # imports or the first start's memory, keeps this process id, and reads the same
    # settings from the environment (flags were written there above).
    # glibc gives each thread that allocates its own arena (up to 8 per core), and memory
    # freed in one stays there: the worker threads of file I/O, the database and
    # obstore then hold several MiB each. Two arenas measured best (docs/deploy.md).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    argv = [
        sys.executable, "-m", "sealbox.api.server", "sealbox.api.app:app_from_env", "--factory",
        "--host", settings.host, "--port", str(settings.port), "--workers", str(settings.workers),
        "--no-server-header",
        # Every line the server writes is JSON, uvicorn's own included (sealbox/logs.py).
        "--log-config", str(LOG_CONFIG_FILE), "--no-access-log",
        # Bounded request heads (size, header count, time) and idle keep-alive: docs/operations.md.
        "--http", "sealbox.api.protocol:LimitedHttpTools", "--timeout-keep-alive", "5",
        # X-Forwarded-For is believed only from the proxies named in the settings.
        *(["--proxy-headers", "--forwarded-allow-ips", settings.trusted_proxies]
          if settings.trusted_proxies else ["--no-proxy-headers"]),
    ]  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


@app.command()
def init(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """Initialise a new installation (keyring, database, admin account) without serving."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    created = run(prepare(settings))
    if created is None:
        err.print("sealbox is already initialised here; nothing was changed.")
        return
    announce(created)


def _read_password(from_stdin: bool) -> str:
    return read_secret(from_stdin, "Password", confirm=True)


def _user_id(user: UserRead) -> UserId:
    return UserId(uuid.UUID(user.id))


def _with_accounts(settings: Settings, action: Callable[[AccountService], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        db = await open_db(settings)
        try:
            return await action(AccountService(db, Audit(db), timedelta(days=settings.token_ttl_days)))
        finally:
            await db.dispose()

    return run(go())


Name = Annotated[str, typer.Argument(help="User name")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")]


@user_app.command("add")
def user_add(
    name: Name,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator")] = False,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    password = _read_password(password_stdin)
    _with_accounts(settings, lambda accounts: accounts.create_user(name, password, is_admin=admin))
    err.print(f"created user {name}" + (" (admin)" if admin else ""), highlight=False)


@user_app.command("list")
def user_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List user accounts."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    users = _with_accounts(settings, lambda accounts: accounts.users())
    table = Table("user", "admin", "active", "created")
    for user in users:
        admin, active = "yes" if user.is_admin else "", "yes" if user.is_active else "no"
        table.add_row(user.username, admin, active, f"{user.created_at:%Y-%m-%d %H:%M}")
    console().print(table)


def _set_active(name: str, active: bool, data_dir: Path | None, database_url: str | None) -> None:
    settings = settings_from(data_dir=data_dir, database_url=database_url)

    async def change(accounts: AccountService) -> None:
        user = await accounts.find(name)
        await accounts.update_user(_user_id(user), UserUpdate(is_active=active))

    _with_accounts(settings, change)
    err.print(f"user {name} {'enabled' if active else 'disabled (its tokens are revoked)'}", highlight=False)


@user_app.command("disable")
def user_disable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Disable an account: its tokens stop working at once and it cannot sign in."""
    _set_active(name, False, data_dir, database_url)


@user_app.command("enable")
def user_enable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Enable a disabled account again."""
    _set_active(name, True, data_dir, database_url)


@user_app.command("reset-password")
def user_reset_password(
    name: Name,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password for an account; all its tokens stop working."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    password = _read_password(password_stdin)

    async def reset(accounts: AccountService) -> None:
        user = await accounts.find(name)
        await accounts.reset_password(_user_id(user), password)

    _with_accounts(settings, reset)
    err.print(f"password of {name} reset", highlight=False)


@user_app.command("delete")
def user_delete(
    name: Name,
    keyring: KeyringOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete an account and all its files (unreadable at once: their keys go with them)."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def delete() -> None:
        runtime = await open_runtime(settings)
        try:
            user = await runtime.accounts.find(name)
            await runtime.delete_account(None, _user_id(user), Actor.operator())
        finally:
            await runtime.close()

    run(delete())
    err.print(f"user {name} and their files deleted", highlight=False)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Apply database migrations (the server also does this when it starts)."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)

    async def migrate() -> None:
        db = Database(settings.db_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    run(migrate())
    err.print("database schema is up to date")


def main() -> None:
    # Everything sealbox creates (database, WAL, blobs, keyring) is for its own user only.
    os.umask(0o077)
    # Commands print their own messages; their log events (each audit event, say) would
    # only clutter a terminal. The server, which `serve` starts, logs at INFO as JSON.
    configure_logging(logging.WARNING)
    app()
