"""``sealbox keys``: status, rotation, re-wrapping, retirement, backup and restore."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from sealbox.cli.common import (
    EXIT_CONFIG,
    DatabaseUrl,
    DataDir,
    KeyringOpt,
    T,
    err,
    fail,
    open_db,
    read_secret,
    run,
    settings_from,
)
from sealbox.cli.output import console, labelled
from sealbox.config import Settings
from sealbox.crypto.backup import MAX_BACKUP_BYTES
from sealbox.errors import SealboxError, SetupError
from sealbox.keys.service import KeyService, export_keyring, import_keyring

keys_app = typer.Typer(help="Manage master keys (see docs/keys.md).", no_args_is_help=True)


PassphraseStdin = Annotated[bool, typer.Option("--passphrase-stdin", help="Read the passphrase from stdin")]


def _keyring_file(settings: Settings) -> Path:
    """The keyring file the commands manage; keys from the environment are not theirs to change."""
    if settings.master_keys is not None:
        fail(
            SetupError(
                "the master keys come from SEALBOX_MASTER_KEYS: manage them where that value is kept, "
                "or move them to a keyring file (SEALBOX_KEYRING)"
            ),
            EXIT_CONFIG,
        )
    return settings.keyring


def _with_keys(settings: Settings, action: Callable[[KeyService], Coroutine[Any, Any, T]]) -> T:
    path = _keyring_file(settings)

    async def go() -> T:
        db = await open_db(settings)  # refuses an uninitialised database
        try:
            return await action(KeyService(db, path))
        finally:
            await db.dispose()

    return run(go())


@keys_app.command("status")
def keys_status(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """List the master keys, how many files each one's wraps, and any key that is missing."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    status = _with_keys(settings, lambda service: service.status())
    table = Table("key id", "primary", "created", "files")
    for key in status.keys:
        table.add_row(key.id, "yes" if key.primary else "", key.created_at, str(key.files))
    console().print(table)
    if status.unused:
        err.print(f"keys wrapping no file: {', '.join(status.unused)}", highlight=False)
    if status.missing:
        missing = ", ".join(f"{key_id} ({n} files)" for key_id, n in status.missing.items())
        err.print(labelled("error:", "red", f"keys used by files but missing from the keyring: {missing}"))
        raise typer.Exit(EXIT_CONFIG)


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """Add a new primary key. New uploads use it at once, in every running server."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def rotate(service: KeyService) -> str:
        return (await service.rotate()).id

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
    passphrase_stdin: PassphraseStdin = False,
    keyring: KeyringOpt = None,
) -> None:
    """Write a passphrase-protected backup of the keyring (scrypt + AES-256-GCM)."""
    path = _keyring_file(settings_from(keyring=keyring))
    passphrase = read_secret(passphrase_stdin, "Backup passphrase", confirm=True)
    try:
        data = export_keyring(path, passphrase)
    except SealboxError as exc:
        fail(exc)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    err.print(f"keyring backup written to {output}; store it apart from data backups", highlight=False)


@keys_app.command("import")
def keys_import(
    backup: Annotated[Path, typer.Argument(help="Backup file made by 'sealbox keys export'")],
    passphrase_stdin: PassphraseStdin = False,
    keyring: KeyringOpt = None,
) -> None:
    """Restore keys from a backup into the keyring; never replaces a different key with the same id."""
    path = _keyring_file(settings_from(keyring=keyring))
    passphrase = read_secret(passphrase_stdin, "Backup passphrase", confirm=False)
    try:
        with backup.open("rb") as f:
            data = f.read(MAX_BACKUP_BYTES + 1)  # enough to tell a backup from anything larger
        added = import_keyring(path, data, passphrase)
    except (SealboxError, OSError) as exc:
        fail(exc)
    err.print(f"imported keys: {', '.join(added) or 'none (all were present)'}", highlight=False)
