"""The hand-written migrations produce exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import ForeignKeyConstraint, text

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

    assert _differences(asyncio.run(run())) == []


def test_folder_references_cascade(tmp_path: Path) -> None:
    async def run() -> set[tuple[str, str, str]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            await upgrade(db)
            found = set()
            async with db.engine.connect() as conn:
                for table in ("files", "shares", "upload_requests"):
                    rows = (await conn.execute(text(f"PRAGMA foreign_key_list({table})"))).all()
                    found |= {(table, row[3], row[6]) for row in rows if row[2] == "folders"}
            return found
        finally:
            await db.dispose()

    assert asyncio.run(run()) == {
        ("files", "folder_id", "CASCADE"),
        ("shares", "folder_id", "CASCADE"),
        ("upload_requests", "folder_id", "CASCADE"),
    }


def _fk_shape(fk: ForeignKeyConstraint) -> tuple[object, ...]:
    assert fk.table is not None
    return (fk.table.name, tuple(fk.column_keys), fk.referred_table.name)


def _differences(found: list[object]) -> list[object]:
    """``found`` without the one difference SQLite cannot avoid: a reference added to an
    existing table by ALTER TABLE (0011; a rebuild would cascade to every row that refers
    to the table) is an inline column constraint, whose name SQLite does not report.
    Its table, column and target must still match; ON DELETE, which SQLAlchemy does not
    read from an inline constraint either, is checked by ``test_folder_references_cascade``."""
    removed = {_fk_shape(d[1]) for d in found if isinstance(d, tuple) and d[0] == "remove_fk" and d[1].name is None}
    added = {_fk_shape(d[1]) for d in found if isinstance(d, tuple) and d[0] == "add_fk"}
    unnamed = removed & added
    return [
        d
        for d in found
        if not (isinstance(d, tuple) and d[0] in {"remove_fk", "add_fk"} and _fk_shape(d[1]) in unnamed)
    ]


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


def test_existing_files_and_parts_keep_their_format_through_0009(tmp_path: Path) -> None:
    """Migration 0009: every existing file is one blob (``segments`` 0), every stored
    part was sealed in 64 KiB chunks and stays with its upload (bound to the upload's own
    id); going back to 0008 keeps every row while no file is made of segments and is
    refused once one is (it would lose the file)."""
    import pytest
    from alembic import command

    from sealbox.db.migrate import _config

    ids = {"user": f"{1:032x}", "upload": f"{2:032x}", "file": f"{3:032x}"}

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0008"))
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, is_admin, is_active, created_at) "
                        "VALUES (:user, 'u', 'h', 0, 1, '2026-01-01 00:00:00')"
                    ),
                    ids,
                )
                await conn.execute(
                    text(
                        "INSERT INTO files (id, owner_id, name_enc, content_type_enc, size, chunk_log2, key_id, "
                        "wrapped_dek, header_tag, created_at) VALUES (:file, :user, x'00', x'00', 5, 16, "
                        "'k1', x'00', x'00', '2026-01-01 00:00:00')"
                    ),
                    ids,
                )
                await conn.execute(
                    text(
                        "INSERT INTO uploads (id, owner_id, length, offset, name_enc, key_id, wrapped_dek, "
                        "created_at, expires_at) VALUES (:upload, :user, 9, 4, x'00', 'k1', x'00', "
                        "'2026-01-01 00:00:00', '2030-01-01 00:00:00')"
                    ),
                    ids,
                )
                await conn.execute(
                    text(
                        "INSERT INTO upload_parts (upload_id, seq, key, size, header_tag) "
                        "VALUES (:upload, 0, 'uploads/a/b', 4, x'00')"
                    ),
                    ids,
                )
            await upgrade(db)
            async with db.engine.begin() as conn:
                assert (await conn.execute(text("SELECT segments FROM files"))).scalar_one() == 0
                assert (await conn.execute(text("SELECT chunk_log2 FROM upload_parts"))).scalar_one() == 16
                assert (await conn.execute(text("SELECT file_id FROM uploads"))).scalar_one() is None
                await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0008"))
                assert (await conn.execute(text("SELECT count(*) FROM files"))).scalar_one() == 1
                assert (await conn.execute(text("SELECT count(*) FROM upload_parts"))).scalar_one() == 1
            await upgrade(db)
            async with db.engine.begin() as conn:
                await conn.execute(text("UPDATE files SET segments = 1"))
            with pytest.raises(RuntimeError, match="files made of segments exist"):
                async with db.engine.begin() as conn:
                    await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0008"))
        finally:
            await db.dispose()

    asyncio.run(run())
