"""The hand-written migrations produce exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sealbox.db.base import Base
from sealbox.db.migrate import is_initialised, upgrade
from sealbox.db.session import Database
from sealbox.models import File  # noqa: F401  (registers every table)


def test_migrated_schema_matches_models(tmp_path: Path) -> None:
    async def run() -> list[object]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            assert not await is_initialised(db)
            await upgrade(db)
            await upgrade(db)  # idempotent
            assert await is_initialised(db)
            async with db.engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await db.dispose()

    assert asyncio.run(run()) == []
