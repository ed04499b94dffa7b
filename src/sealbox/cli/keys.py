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
    """List the master keys, how many files and name keys each one wraps, and any key that is missing."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    status = _with_keys(settings, lambda service: service.status())
    table = Table("key id", "primary", "created", "files", "name keys")
    for key in status.keys:
        table.add_row(key.id, "yes" if key.primary else "", key.created_at, str(key.files), str(key.name_keys))
    console().print(table)
    if status.processes:
        processes = Table("server process", "primary", "holds", "lacks (of this keyring)", "last report")
        ring = {key.id for key in status.keys}
        for holder in status.processes:
            lacks = sorted((ring - holder.key_ids) | holder.missing)
            processes.add_row(
                holder.name,
                holder.primary,
                ", ".join(sorted(holder.key_ids)),
                ", ".join(lacks),
                f"{holder.seen_at:%Y-%m-%d %H:%M:%S}Z",
            )
        console().print(processes)
        for holder in status.processes:
            lacks = sorted((ring - holder.key_ids) | holder.missing)
            if lacks:
                err.print(labelled("warning:", "yellow", f"{holder.name} lacks {', '.join(lacks)}"))
    else:
        err.print("no running server process has reported its keys", highlight=False)
    if status.unused:
        err.print(f"keys wrapping no file and no name key: {', '.join(status.unused)}", highlight=False)
    if status.missing or status.missing_name_keys:
        ids = sorted(set(status.missing) | set(status.missing_name_keys))
        missing = ", ".join(
            f"{key_id} ({status.missing.get(key_id, 0)} files, {status.missing_name_keys.get(key_id, 0)} name keys)"
            for key_id in ids
        )
        err.print(labelled("error:", "red", f"keys used by stored data but missing from the keyring: {missing}"))
        raise typer.Exit(EXIT_CONFIG)


Wait = Annotated[
    float,
    typer.Option(min=0, max=3600, help="Seconds to wait for running servers to report the key"),
]


@keys_app.command("rotate")
def keys_rotate(
    wait: Wait = 30, data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None
) -> None:
    """Add a new key and make it primary once every running server holds it (one keyring file).

    If a server with its own keyring copy does not report the new key in time, the key is left
    staged (added, not primary): copy it there, then run 'sealbox keys promote'.
    """
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def rotate(service: KeyService) -> str:
        return (await service.rotate(wait)).id

    key_id = _with_keys(settings, rotate)
    err.print(
        f"new primary key {key_id}. Back the keyring up now; then 'sealbox keys rewrap' moves existing files to it.",
        highlight=False,
    )


@keys_app.command("stage")
def keys_stage(data_dir: DataDir = None, keyring: KeyringOpt = None, database_url: DatabaseUrl = None) -> None:
    """Add a new key that is not primary yet (step 1 of a rotation across hosts)."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def stage(service: KeyService) -> str:
        return (await service.stage()).id

    key_id = _with_keys(settings, stage)
    console().print(key_id, highlight=False)
    err.print(
        f"staged key {key_id} (not primary). Copy it to every host's keyring ('sealbox keys export', "
        f"'sealbox keys import'), then run 'sealbox keys promote {key_id}' on each host.",
        highlight=False,
    )


@keys_app.command("promote")
def keys_promote(
    key_id: Annotated[str, typer.Argument(help="The staged key to make primary")],
    wait: Wait = 30,
    data_dir: DataDir = None,
    keyring: KeyringOpt = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a staged key primary; refused while a running server lacks it (step 2 of a rotation)."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)
    _with_keys(settings, lambda service: service.promote(key_id, wait))
    err.print(f"key {key_id} is the primary key of this keyring; new uploads here use it", highlight=False)


@keys_app.command("rewrap")
def keys_rewrap(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction")] = 100,
    data_dir: DataDir = None,
    keyring: KeyringOpt = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-wrap every file key and name key under the primary key. Blobs are not touched; safe to stop and run again."""
    settings = settings_from(data_dir=data_dir, keyring=keyring, database_url=database_url)

    async def rewrap(service: KeyService) -> int:
        total = await service.pending()
        moved = 0
        with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err) as progress:
            task = progress.add_task("re-wrapping keys", total=total)
            async for count in service.rewrap(batch):
                moved += count
                progress.advance(task, count)
        return moved

    moved = _with_keys(settings, rewrap)
    err.print(f"{moved} keys (files' and name keys) re-wrapped under the primary key", highlight=False)


RETIRE_HELP = (
    "Remove a key that no file, upload or name key uses any more.\n\n"
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
