"""Every wrapped key is under key management: the tables holding one, and accounts'
name keys through status, rewrap and retire (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from sealbox.db.base import Base
from sealbox.errors import Conflict
from sealbox.files.folders import FolderService
from sealbox.keys.repository import WRAPPED_KEY_TABLES
from sealbox.keys.service import KeyService
from sealbox.models import File, NameKey, RetiredKey
from tests.unit.test_rotation import ACTOR, World, _chunks, _url, run


def test_every_table_holding_a_wrapped_key_is_one_the_key_commands_cover() -> None:
    """A table that records which master key wrapped its rows (``key_id``) is one whose
    rows ``keys rewrap``, ``retire`` and start-up must know about."""
    with_key = {table.name for table in Base.metadata.sorted_tables if "key_id" in table.c}
    assert with_key == {model.__tablename__ for model in WRAPPED_KEY_TABLES}
    assert with_key == {"files", "uploads", "name_keys"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rewrap_moves_name_keys_and_retire_waits_for_them(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    async def scenario(w: World) -> None:
        folders = FolderService(w.files)
        trip = await folders.create(w.owner, None, "Trip", ACTOR)
        await folders.create(w.owner, uuid.UUID(trip.id), "Day 1", ACTOR)
        await w.files.upload(w.owner, "a.txt", None, _chunks(b"alpha"), ACTOR)
        status = await w.keys.status()
        assert [(k.files, k.name_keys) for k in status.keys] == [(1, 1)]
        await w.keys.rotate(wait=0)
        with pytest.raises(Conflict, match="key 'old' still wraps 1 file and 1 account name key;"):
            await w.keys.retire("old")
        assert await w.keys.pending() == 2
        moved = [n async for n in w.keys.rewrap(batch=1)]
        assert sum(moved) == 2
        new = w.keys.keyring().primary.id
        status = await w.keys.status()
        assert [(k.id, k.files, k.name_keys) for k in status.keys] == [(new, 1, 1), ("old", 0, 0)]
        assert status.unused == ["old"]
        await w.keys.retire("old")
        async with w.db.read() as session:
            assert (await session.execute(select(NameKey.key_id))).scalars().all() == [new]
            assert (await session.execute(select(File.key_id))).scalars().all() == [new]
            assert await session.get(RetiredKey, "old") is not None
        # A process started now (a fresh cache of name keys) reads every name.
        restarted = FolderService(w.service(KeyService(w.db, w.path).keyring()))
        page = await restarted.page(w.owner, None)
        assert [item.name for item in page.items] == ["Trip", "a.txt"]
        inside = await restarted.page(w.owner, uuid.UUID(trip.id))
        assert [item.name for item in inside.items] == ["Day 1"]

    run(tmp_path, scenario, _url(request, backend))
