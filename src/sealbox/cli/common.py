"""What every ``sealbox`` command shares: settings from flags, error reporting, exit codes.

Exit codes: 0 success, 1 a request was refused (bad input, conflict), 2 usage error,
78 the installation cannot run as configured (keys missing or unsafe; EX_CONFIG).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from sealbox.cli.output import console, labelled
from sealbox.config import Settings
from sealbox.db.migrate import is_initialised
from sealbox.db.session import Database, redacted
from sealbox.errors import SealboxError, SetupError, Unavailable

T = TypeVar("T")
EXIT_REFUSED = 1
EXIT_CONFIG = 78


err = console(stderr=True)

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
        err.print(labelled("error:", "red", f"invalid setting: {exc}"))
        raise typer.Exit(2) from None


def fail(exc: Exception, code: int = EXIT_REFUSED) -> NoReturn:
    """Print ``exc`` as the command's one error line and exit with ``code``."""
    err.print(labelled("error:", "red", str(exc)))
    raise typer.Exit(code) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``, turning sealbox errors into a message and an exit code."""
    try:
        return asyncio.run(coro)
    except SetupError as exc:
        fail(exc, EXIT_CONFIG)
    except SealboxError as exc:
        fail(exc)


def read_secret(from_stdin: bool, prompt: str, confirm: bool) -> str:
    """A password or passphrase: one line of stdin, or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


async def open_db(settings: Settings) -> Database:
    db = Database(settings.db_url)
    try:
        ready = await is_initialised(db)
    except Unavailable:
        ready = False
    if not ready:
        await db.dispose()
        raise SetupError(f"no sealbox database at {redacted(settings.db_url)}; run 'sealbox init' first")
    return db
