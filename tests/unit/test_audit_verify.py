"""``Audit.verify`` is consistent while events are appended, and still finds rows that
were removed from the end or inserted past the head."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from sealbox.audit.service import Actor, Audit, Event, chain_hash
from sealbox.db.base import utcnow
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.models import AuditEvent, AuditHead
from tests.services import Postgres

ACTOR = Actor("operator")
ROWS = 2500  # more than two pages of the walk


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        postgres: Postgres = request.getfixturevalue("postgres")
        return postgres.create_database()
    return f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"


def run(url: str, scenario: Callable[[Audit], Awaitable[None]]) -> None:
    async def main() -> None:
        db = Database(url)
        await upgrade(db)
        try:
            audit = Audit(db)
            await audit.record(*(Event("test.fill", ACTOR, detail={"n": i}) for i in range(ROWS)))
            await scenario(audit)
        finally:
            await db.dispose()

    asyncio.run(main())


async def head(audit: Audit) -> int:
    async with audit.db.read() as session:
        return int((await session.execute(select(AuditHead.seq))).scalar_one())


def test_verify_holds_while_events_are_appended(database_url: str) -> None:
    async def scenario(audit: Audit) -> None:
        done = asyncio.Event()
        appended = 0

        async def append() -> None:
            nonlocal appended
            while not done.is_set():
                await audit.record(Event("test.append", ACTOR))
                appended += 1

        appender = asyncio.create_task(append())
        try:
            overlapped = 0
            for _ in range(50):
                before = await head(audit)
                result = await audit.verify()
                after = await head(audit)
                assert result.ok, result.reason
                assert before <= result.rows <= after
                # Only a verification during which events were appended proves anything;
                # on a busy machine the appender may not get a turn during every one.
                overlapped += after > before
                if overlapped == 3:
                    break
            assert overlapped == 3
        finally:
            done.set()
            await appender
        assert appended > 0
        final = await audit.verify()
        assert final.ok
        assert final.rows == ROWS + appended

    run(database_url, scenario)


def test_rows_removed_from_the_end_are_still_found(database_url: str) -> None:
    async def scenario(audit: Audit) -> None:
        async with audit.db.write() as session:
            last = (await session.execute(select(AuditEvent).where(AuditEvent.seq == ROWS))).scalar_one()
            await session.delete(last)
        result = await audit.verify()
        assert not result.ok
        assert result.reason == f"the trail ends at row {ROWS - 1} but {ROWS} rows were written"

    run(database_url, scenario)


def test_a_row_inserted_past_the_head_is_found(database_url: str) -> None:
    async def scenario(audit: Audit) -> None:
        async with audit.db.write() as session:
            prev = (await session.execute(select(AuditHead.hash))).scalar_one()
            row = AuditEvent(
                seq=ROWS + 1,
                at=utcnow(),
                action="forged",
                actor="someone",
                detail=json.dumps({}),
                prev_hash=prev,
            )
            row.hash = chain_hash(prev, row)  # chained correctly, but the head was not moved
            session.add(row)
        result = await audit.verify()
        assert not result.ok
        assert result.broken_at == ROWS + 1
        assert result.reason == f"row {ROWS + 1} is past the last row written ({ROWS})"

    run(database_url, scenario)
