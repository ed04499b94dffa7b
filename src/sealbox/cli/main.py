"""``sealbox``: operator commands (serve, init, user, db).

Exit codes: 0 success, 1 a request was refused (bad input, conflict), 2 usage error,
78 the installation cannot run as configured (keys missing or unsafe; EX_CONFIG).
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from sealbox.accounts.service import AccountService
from sealbox.config import Settings
from sealbox.db.migrate import is_initialised, upgrade
from sealbox.db.session import Database
from sealbox.errors import SealboxError, SetupError, Unavailable
from sealbox.files.migrate import count as migrate_count
from sealbox.files.migrate import migrate
from sealbox.keys.service import KeyService
from sealbox.runtime import Initialised, build_store, keyring_warning, prepare
from sealbox.storage.base import StorageUnavailable

T = TypeVar("T")


class StorageKind(enum.StrEnum):
    local = "local"
    s3 = "s3"


EXIT_REFUSED = 1
EXIT_CONFIG = 78

app = typer.Typer(help="sealbox: share files, encrypted at rest.", no_args_is_help=True, add_completion=False)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
app.add_typer(user_app, name="user")
storage_app = typer.Typer(help="Manage blob storage.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(storage_app, name="storage")
keys_app = typer.Typer(help="Manage master keys (see docs/keys.md).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
# soft_wrap: messages are single lines that logs and tests can match, not wrapped at 80.
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[Path | None, typer.Option(help="Data directory (env: SEALBOX_DATA_DIR)")]
KeyringOpt = Annotated[Path | None, typer.Option(help="Keyring file (env: SEALBOX_KEYRING)")]
DatabaseUrl = Annotated[str | None, typer.Option(help="Database URL (env: SEALBOX_DATABASE_URL)")]


def settings_from(**flags: Any) -> Settings:
    """Settings from ``SEALBOX_*`` variables, overridden by the flags given.

    Flags are written back to the environment so that server worker processes, which
    build their own settings, see the same values.
    """
    for name, value in flags.items():
        if value is not None:
            os.environ[f"SEALBOX_{name.upper()}"] = str(value)
    try:
        return Settings()
    except ValueError as exc:
        err.print(f"[red]error:[/] invalid setting: {exc}")
        raise typer.Exit(2) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, turning sealbox errors into a message and an exit code."""
    try:
        return asyncio.run(coro)
    except SetupError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None
    except SealboxError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None


def announce(created: Initialised) -> None:
    where = created.keyring_path or "SEALBOX_MASTER_KEYS"
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
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


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
    argv = [
        sys.executable, "-m", "uvicorn", "sealbox.api.app:app_from_env", "--factory",
        "--host", settings.host, "--port", str(settings.port), "--workers", str(settings.workers),
        "--log-level", "warning", "--no-server-header",
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


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def add() -> None:
        db = await _open_db(settings)
        try:
            await AccountService(db, timedelta(days=settings.token_ttl_days)).create_user(
                name, password, is_admin=admin
            )
        finally:
            await db.dispose()

    run(add())
    err.print(f"created user {name}" + (" (admin)" if admin else ""), highlight=False)


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


MIGRATE_HELP = (
    "Copy every blob to the other store, as ciphertext; verified, and resumable by running it again.\n\n"
    "The source is left as it is. Afterwards set SEALBOX_STORAGE to the new store and restart; "
    "remove the old blobs once the server runs on the new ones."
)


@storage_app.command("migrate", help=MIGRATE_HELP)
def storage_migrate(
    to: Annotated[StorageKind, typer.Option("--to", help="Where the blobs go: local or s3")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    if settings.storage == to.value:
        err.print(f"[red]error:[/] blobs are already configured on {to.value} (SEALBOX_STORAGE)", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    source = build_store(settings)
    target = build_store(settings.model_copy(update={"storage": to.value}))

    async def go() -> tuple[int, int]:
        for name, store in (("source", source), ("target", target)):
            try:
                await store.check()
            except StorageUnavailable as exc:
                raise SetupError(f"the {name} store cannot be used: {exc}") from None
        db = await _open_db(settings)
        copied = skipped = 0
        try:
            total = await migrate_count(db)
            with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err) as progress:
                task = progress.add_task(f"copying blobs to {to.value}", total=total)
                async for step in migrate(db, source, target):
                    copied += step.copied
                    skipped += not step.copied
                    progress.advance(task)
        finally:
            await db.dispose()
        return copied, skipped

    copied, skipped = run(go())
    err.print(
        f"{copied} blobs copied and verified, {skipped} already there. "
        f"Next: set SEALBOX_STORAGE={to.value} and restart; the source blobs are untouched.",
        highlight=False,
    )


def _key_service(settings: Settings) -> KeyService:
    if settings.master_keys is not None:
        raise SetupError(
            "the master keys come from SEALBOX_MASTER_KEYS: manage them where that value is kept, "
            "or move them to a keyring file (SEALBOX_KEYRING)"
        )
    return KeyService(Database(settings.db_url), settings.keyring)


def _with_keys(settings: Settings, action: Callable[[KeyService], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        service = _key_service(settings)
        await (await _open_db(settings)).dispose()  # refuses an uninitialised database
        try:
            return await action(service)
        finally:
            await service.db.dispose()

    return run(go())


def _passphrase(from_stdin: bool, confirm: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


@keys_app.command("status")
def keys_status(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """List the master keys, how many files each one's wraps, and any key that is missing."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    status = _with_keys(settings, lambda service: service.status())
    table = Table("key id", "primary", "created", "files")
    for key in status.keys:
        table.add_row(key.id, "yes" if key.primary else "", key.created_at, str(key.files))
    Console().print(table)
    if status.unused:
        err.print(f"keys wrapping no file: {', '.join(status.unused)}", highlight=False)
    if status.missing:
        missing = ", ".join(f"{key_id} ({n} files)" for key_id, n in status.missing.items())
        err.print(f"[red]error:[/] keys used by files but missing from the keyring: {missing}", highlight=False)
        raise typer.Exit(EXIT_CONFIG)


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """Add a new primary key. New uploads use it at once, in every running server."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def rotate(service: KeyService) -> str:
        return service.rotate().id

    key_id = _with_keys(settings, rotate)
    err.print(
        f"new primary key {key_id}. Back the keyring up now; then 'sealbox keys rewrap' moves existing files to it.",
        highlight=False,
    )


@keys_app.command("rewrap")
def keys_rewrap(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction")] = 100,
    data_dir: DataDir = None,
    keyring: KeyringOpt = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-wrap every file key under the primary key. Blobs are not touched; safe to stop and run again."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def rewrap(service: KeyService) -> int:
        total = await service.pending()
        moved = 0
        with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err) as progress:
            task = progress.add_task("re-wrapping file keys", total=total)
            async for count in service.rewrap(batch):
                moved += count
                progress.advance(task, count)
        return moved

    moved = _with_keys(settings, rewrap)
    err.print(f"{moved} file keys re-wrapped under the primary key", highlight=False)


RETIRE_HELP = (
    "Remove a key that no file uses any more.\n\n"
    "Destroy the retired key's backups only after the data backups that need it have aged out: "
    "from then on, files deleted before the rewrap cannot be recovered from any backup."
)


@keys_app.command("retire", help=RETIRE_HELP)
def keys_retire(
    key_id: Annotated[str, typer.Argument(help="The key to remove")],
    data_dir: DataDir = None,
    keyring: KeyringOpt = None,
    database_url: DatabaseUrl = None,
) -> None:
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    _with_keys(settings, lambda service: service.retire(key_id))
    err.print(f"key {key_id} removed from the keyring", highlight=False)


@keys_app.command("export")
def keys_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Backup file to create")],
    passphrase_stdin: Annotated[
        bool, typer.Option("--passphrase-stdin", help="Read the passphrase from stdin")
    ] = False,
    keyring: KeyringOpt = None,
) -> None:
    """Write a passphrase-protected backup of the keyring (scrypt + AES-256-GCM)."""
    settings = settings_from(keyring=keyring)
    service = _key_service(settings)
    passphrase = _passphrase(passphrase_stdin, confirm=True)
    try:
        data = service.export(passphrase)
    except SealboxError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    err.print(f"keyring backup written to {output}; store it apart from data backups", highlight=False)


@keys_app.command("import")
def keys_import(
    backup: Annotated[Path, typer.Argument(help="Backup file made by 'sealbox keys export'")],
    passphrase_stdin: Annotated[
        bool, typer.Option("--passphrase-stdin", help="Read the passphrase from stdin")
    ] = False,
    keyring: KeyringOpt = None,
) -> None:
    """Restore keys from a backup into the keyring; never replaces a different key with the same id."""
    settings = settings_from(keyring=keyring)
    service = _key_service(settings)
    passphrase = _passphrase(passphrase_stdin, confirm=False)
    try:
        added = service.import_(backup.read_bytes(), passphrase)
    except (SealboxError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    err.print(f"imported keys: {', '.join(added) or 'none (all were present)'}", highlight=False)


async def _open_db(settings: Settings) -> Database:
    db = Database(settings.db_url)
    try:
        ready = await is_initialised(db)
    except Unavailable:
        ready = False
    if not ready:
        await db.dispose()
        raise SetupError(f"no sealbox database at {settings.db_url}; run 'sealbox init' first")
    return db


def main() -> None:
    # Everything sealbox creates (database, WAL, blobs, keyring) is for its own user only.
    os.umask(0o077)
    app()
