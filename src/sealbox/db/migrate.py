"""Apply Alembic migrations programmatically (on start and in ``sealbox db upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect
from sqlalchemy.exc import InterfaceError, OperationalError

from sealbox.db.session import Database
from sealbox.errors import Unavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision."""
    # Imported here: server workers never migrate, and alembic costs them ~9 MiB.
    from alembic import command

    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


async def is_initialised(db: Database) -> bool:
    """Whether the database already holds sealbox tables."""
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    except (OperationalError, InterfaceError) as exc:
        raise Unavailable("the database cannot be reached") from exc
    return "alembic_version" in names
