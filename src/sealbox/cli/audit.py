"""``sealbox audit``: read the audit trail and verify its hash chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from sealbox.audit.service import MAX_PAGE, Audit
from sealbox.cli.common import DatabaseUrl, DataDir, T, err, open_db, run, settings_from
from sealbox.cli.output import console, labelled
from sealbox.config import Settings

audit_app = typer.Typer(
    help="Read the audit trail and verify that no row was altered or removed.", no_args_is_help=True
)
EXIT_BROKEN = 3


def _with_audit(settings: Settings, action: Callable[[Audit], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        db = await open_db(settings)
        try:
            return await action(Audit(db))
        finally:
            await db.dispose()

    return run(go())


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE, help="How many events, newest first")] = 50,
    before: Annotated[int | None, typer.Option(min=1, help="Only events before this sequence number")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show the latest events of every account."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    page = _with_audit(settings, lambda audit: audit.events(None, before, limit))
    if as_json:
        for event in page.items:
            typer.echo(event.model_dump_json())
        return
    table = Table("seq", "at", "action", "actor", "client", "file", "target", "detail")
    for event in page.items:
        table.add_row(
            str(event.seq),
            event.at.isoformat(timespec="seconds"),
            event.action,
            event.actor,
            event.client or "",
            event.file_id or "",
            event.target or "",
            json.dumps(event.detail) if event.detail else "",
        )
    console().print(table)


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check the hash chain from the first row to the last; name the first broken row (exit 3)."""
    settings = settings_from(data_dir=data_dir, database_url=database_url)
    result = _with_audit(settings, lambda audit: audit.verify())
    if not result.ok:
        err.print(labelled("audit trail broken:", "red", result.reason))
        raise typer.Exit(EXIT_BROKEN)
    err.print(f"audit trail intact: {result.rows} rows", highlight=False)
