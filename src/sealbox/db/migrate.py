"""Apply Alembic migrations programmatically (on start and in ``sealbox db upgrade``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import InterfaceError, OperationalError

from sealbox.db.session import Database
from sealbox.errors import Unavailable

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x5EA1B0


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
        if not db.is_sqlite:
            # Servers starting together take turns: the lock lasts until this commit.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


async def is_initialised(db: Database) -> bool:
    """Whether the database already holds sealbox tables."""
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    except (OperationalError, InterfaceError) as exc:
        raise Unavailable("the database cannot be reached") from exc
    return "alembic_version" in names


async def holds_data(db: Database) -> bool:
    """Whether the database holds any account or file (a schema alone is not data)."""
    if not await is_initialised(db):
        return False
    async with db.read() as session:
        found = await session.execute(text("SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM files)"))
        return bool(found.scalar_one())
