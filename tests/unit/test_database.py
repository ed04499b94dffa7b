"""Database mechanisms on a real SQLite file: group commit and concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from sealbox.db.base import Columns
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database, GroupCommit, Tx
from sealbox.models import User

USERS = Columns(User)


def _add(tx: Tx, users: list[User]) -> None:
    tx.conn.execute(insert(User.__table__), [USERS.values(user) for user in users])  # type: ignore[arg-type]


def inserter(db: Database) -> GroupCommit[User]:
    return GroupCommit[User](db, _add)


def run(tmp_path: Path, scenario: object) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        try:
            await scenario(db)  # type: ignore[operator]
        finally:
            await db.dispose()

    asyncio.run(main())


async def _count(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


def test_concurrent_inserts_are_all_committed(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        users = inserter(db)
        await asyncio.gather(*(users.submit(User(username=f"u{i}", password_hash="x")) for i in range(50)))
        assert await _count(db) == 50

    run(tmp_path, scenario)


def test_a_failing_insert_does_not_fail_the_others_in_its_group(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        users = inserter(db)
        await users.submit(User(username="taken", password_hash="x"))
        results = await asyncio.gather(
            *(users.submit(User(username=f"ok{i}", password_hash="x")) for i in range(10)),
            users.submit(User(username="taken", password_hash="x")),
            *(users.submit(User(username=f"ok{i}", password_hash="x")) for i in range(10, 20)),
            return_exceptions=True,
        )
        assert [type(r) for r in results].count(IntegrityError) == 1
        assert isinstance(results[10], IntegrityError)
        assert await _count(db) == 21

    run(tmp_path, scenario)


def test_a_cancelled_caller_does_not_cancel_the_commit(tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        user_id = uuid.uuid4()
        task = asyncio.create_task(inserter(db).submit(User(id=user_id, username="kept", password_hash="x")))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if await _count(db) == 1:
                break
            await asyncio.sleep(0.01)
        assert await _count(db) == 1

    run(tmp_path, scenario)


def test_hot_reads_see_every_committed_write(tmp_path: Path) -> None:
    """``rows`` reads through its own connections (reader threads on SQLite): a row is
    visible to it as soon as the write that added it has committed, never before."""

    async def scenario(db: Database) -> None:
        names = select(User.username).order_by(User.username)
        assert list(await db.rows(names, {})) == []
        async with db.write() as session:
            session.add(User(username="first", password_hash="x"))
            await session.flush()
            assert list(await db.rows(names, {})) == []  # not committed yet
        assert [row.username for row in await db.rows(names, {})] == ["first"]
        await inserter(db).submit(User(username="second", password_hash="x"))
        found = await asyncio.gather(*(db.rows(names, {}) for _ in range(20)))
        assert {tuple(row.username for row in rows) for rows in found} == {("first", "second")}

    run(tmp_path, scenario)


def test_a_cancelled_transaction_keeps_the_write_lock_until_it_ends(tmp_path: Path) -> None:
    """``transact`` runs on the writer thread, which cannot be stopped half-way: a caller
    cancelled meanwhile lets it finish (committed) and holds the in-process write lock
    until then, so no other writer meets the database's own lock."""
    import threading

    async def scenario(db: Database) -> None:
        inside, release = threading.Event(), threading.Event()

        def slow(tx: Tx) -> None:
            _add(tx, [User(username="slow", password_hash="x")])
            inside.set()
            release.wait(10)

        task = asyncio.create_task(db.transact(slow))
        while not inside.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        assert db._write_lock.locked()  # the thread's transaction is still open
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not db._write_lock.locked()
        assert await _count(db) == 1  # it committed

    run(tmp_path, scenario)


def test_events_recorded_in_a_session_come_after_its_rows(tmp_path: Path) -> None:
    """Every writer takes the audit head last: ``record_in`` writes the session's pending
    rows before it locks and moves the head, as the committer's units do."""
    from sqlalchemy import event

    from sealbox.audit.service import Actor, Audit, Event

    async def scenario(db: Database) -> None:
        statements: list[str] = []

        def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
            statements.append(sql.split()[0] + " " + sql.split()[2] if sql.startswith("INSERT") else sql[:40])

        for engine in db.engines:
            event.listen(engine, "before_cursor_execute", seen)
        async with db.write() as session:
            session.add(User(username="pending", password_hash="x"))
            await Audit(db).record_in(session, Event("user.create", Actor("test")))
        inserted = statements.index("INSERT users")
        head = next(i for i, sql in enumerate(statements) if "audit_head" in sql)
        assert inserted < head, statements

    run(tmp_path, scenario)
