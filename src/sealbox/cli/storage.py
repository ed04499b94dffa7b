"""``sealbox storage``: move blobs between local disk and S3."""

from __future__ import annotations

import enum
from typing import Annotated

import typer
from rich.progress import MofNCompleteColumn, Progress

from sealbox.cli.common import EXIT_REFUSED, DatabaseUrl, DataDir, err, open_db, run, settings_from
from sealbox.cli.output import labelled
from sealbox.errors import SetupError
from sealbox.files.migrate import count as migrate_count
from sealbox.files.migrate import migrate
from sealbox.runtime import build_store
from sealbox.storage.base import StorageUnavailable

storage_app = typer.Typer(help="Manage blob storage.", no_args_is_help=True)


class StorageKind(enum.StrEnum):
    local = "local"
    s3 = "s3"


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
        err.print(labelled("error:", "red", f"blobs are already configured on {to.value} (SEALBOX_STORAGE)"))
        raise typer.Exit(EXIT_REFUSED)
    source = build_store(settings)
    target = build_store(settings.model_copy(update={"storage": to.value}))

    async def go() -> tuple[int, int]:
        for name, store in (("source", source), ("target", target)):
            try:
                await store.check()
            except StorageUnavailable as exc:
                raise SetupError(f"the {name} store cannot be used: {exc}") from None
        db = await open_db(settings)
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
