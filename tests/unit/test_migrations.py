"""The hand-written migrations produce exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

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


def test_existing_tokens_get_the_kind_the_code_that_made_them_gave(tmp_path: Path) -> None:
    """Migration 0006: a row is a web session (cookie only) or a sign-in token only if it
    has everything that code gave them; a personal token that happens to share a name
    stays personal, so a script using it keeps working."""
    from alembic import command

    from sealbox.db.migrate import _config

    rows = {
        "session": ("web session", "full", "2030-01-01 00:00:00"),
        "login": ("login", "full", "2030-01-01 00:00:00"),
        "personal named like a session": ("web session", "read", None),
        "personal named like a sign-in": ("login", "full", None),
        "personal": ("backup script", "full", None),
    }

    async def run() -> dict[str, str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0005"))
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, is_admin, is_active, created_at) "
                        "VALUES ('00000000000000000000000000000001', 'u', 'h', 0, 1, '2026-01-01 00:00:00')"
                    )
                )
                for i, (name, scope, expires) in enumerate(rows.values()):
                    await conn.execute(
                        text(
                            "INSERT INTO api_tokens (id, user_id, token_hash, name, scope, created_at, expires_at) "
                            "VALUES (:id, '00000000000000000000000000000001', :hash, :name, :scope, "
                            "'2026-01-01 00:00:00', :expires)"
                        ),
                        {"id": f"{i + 1:032x}", "hash": f"{i:064x}", "name": name, "scope": scope, "expires": expires},
                    )
            await upgrade(db)
            async with db.engine.connect() as conn:
                found = (await conn.execute(text("SELECT id, kind FROM api_tokens ORDER BY id"))).all()
            return {label: kind for label, (_, kind) in zip(rows, found, strict=True)}
        finally:
            await db.dispose()

    assert asyncio.run(run()) == {
        "session": "session",
        "login": "login",
        "personal named like a session": "personal",
        "personal named like a sign-in": "personal",
        "personal": "personal",
    }
