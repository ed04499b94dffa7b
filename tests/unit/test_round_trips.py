"""The database work of the hot paths, counted (statements and connections, never time),
on a real SQLite file and a real PostgreSQL: a download's credential, file and grant are
one statement; a link download's share, file, owner and unlock grant are one statement;
a token lookup is one statement; concurrent clients do not open connections per request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from sealbox.audit.service import Actor
from sealbox.config import Settings
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.db.migrate import upgrade
from sealbox.errors import AuthenticationFailed, Gone, NotFound
from sealbox.ids import FileId, UserId
from sealbox.models import User
from sealbox.runtime import Runtime, build
from sealbox.sharing.gate import ByLink, WithCredential
from sealbox.sharing.schemas import ShareCreate
from sealbox.storage.memory import MemoryStore
from tests.services import Postgres

ACTOR = Actor("owner")
PASSWORD = "password-1"
CLIENTS = 16

Scenario = Callable[[Runtime], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    database: dict[str, Any] = {}
    if request.param == "postgres":
        postgres: Postgres = request.getfixturevalue("postgres")
        database["database_url"] = postgres.create_database()
    (tmp_path / "data").mkdir()
    return Settings(data_dir=tmp_path / "data", **database)


def run(settings: Settings, scenario: Scenario) -> None:
    async def main() -> None:
        runtime = build(settings, Keyring([new_master_key("k1")]), MemoryStore())
        await upgrade(runtime.db)
        try:
            await scenario(runtime)
        finally:
            await runtime.close()

    asyncio.run(main())


class Counted:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.connections = 0


@contextmanager
def counting(runtime: Runtime) -> Iterator[Counted]:
    """Every statement sent and every connection opened, on every engine, meanwhile."""
    counted = Counted()

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        counted.statements.append(sql)

    def connected(*_args: Any) -> None:
        counted.connections += 1

    for engine in runtime.db.engines:
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "connect", connected)
    try:
        yield counted
    finally:
        for engine in runtime.db.engines:
            event.remove(engine, "before_cursor_execute", statement)
            event.remove(engine, "connect", connected)


async def _body() -> AsyncIterator[bytes]:
    yield b"x" * 4096


async def _account(runtime: Runtime, name: str) -> tuple[UserId, str]:
    user = await runtime.accounts.create_user(name, PASSWORD)
    token = (await runtime.accounts.login(name, PASSWORD)).access_token
    return UserId(uuid.UUID(user.id)), token


async def _shared_file(runtime: Runtime) -> tuple[FileId, str, str, str]:
    """A file of ``owner``, granted to ``grantee`` and shared by a link: (file id, owner's
    token, grantee's token, link token)."""
    owner, owner_token = await _account(runtime, "owner")
    _, grantee_token = await _account(runtime, "grantee")
    created = await runtime.files.upload(owner, "a.txt", None, _body(), ACTOR)
    file_id = FileId(uuid.UUID(created.id))
    await runtime.sharing.grant(owner, file_id, "grantee", ACTOR)
    link = await runtime.sharing.create_share(owner, file_id, ShareCreate(), ACTOR)
    return file_id, owner_token, grantee_token, link.token


def test_a_download_is_authorised_in_one_statement(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        file_id, owner_token, grantee_token, link_token = await _shared_file(runtime)
        cases = [
            (WithCredential(owner_token, "bearer", None), file_id, "owner"),
            (WithCredential(grantee_token, "bearer", None), file_id, "grant"),
            (ByLink(link_token, None, Actor.link(None)), None, "link"),
        ]
        for access, target, via in cases:
            with counting(runtime) as counted:
                authorised = await runtime.gate.authorise(access, target)
            assert authorised.via == via
            assert authorised.row.id == file_id
            assert len(counted.statements) == 1, counted.statements

    run(settings, scenario)


def test_a_refused_download_costs_one_statement_too(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        file_id, owner_token, grantee_token, link_token = await _shared_file(runtime)
        async with runtime.db.write() as session:
            await session.execute(update(User).where(User.username == "owner").values(is_active=False))
        refused: list[tuple[Any, FileId | None, type[Exception]]] = [
            (WithCredential("no-such-token", "bearer", None), file_id, AuthenticationFailed),
            (WithCredential(owner_token, "cookie", None), file_id, AuthenticationFailed),  # wrong kind
            (WithCredential(owner_token, "bearer", None), file_id, AuthenticationFailed),  # disabled holder
            (WithCredential(grantee_token, "bearer", None), FileId(uuid.uuid4()), NotFound),
            (WithCredential(grantee_token, "bearer", None), file_id, NotFound),  # the owner is disabled
            (WithCredential(grantee_token, "bearer", None), None, NotFound),  # malformed id
            (ByLink("no-such-link", None, Actor.link(None)), None, NotFound),
            (ByLink(link_token, None, Actor.link(None)), None, Gone),  # suspended with its owner
        ]
        for access, target, error in refused:
            with counting(runtime) as counted, pytest.raises(error):
                await runtime.gate.authorise(access, target)
            assert len(counted.statements) == 1, (access, counted.statements)

    run(settings, scenario)


def test_a_token_is_resolved_in_one_statement(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner, token = await _account(runtime, "owner")
        with counting(runtime) as counted:
            principal = await runtime.accounts.authenticate(token, "bearer")
        assert principal.user_id == owner
        assert len(counted.statements) == 1, counted.statements

    run(settings, scenario)


def test_concurrent_downloads_open_no_connection_per_request(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        file_id, owner_token, _, link_token = await _shared_file(runtime)

        async def download(access: WithCredential | ByLink, target: FileId | None) -> int:
            opened = await runtime.gate.open(access, target)
            await opened.begin(0, opened.download.file.size - 1)
            return len(b"".join([bytes(p) async for p in opened.download.content(0, opened.download.file.size - 1)]))

        def burst() -> list[Awaitable[int]]:
            half = CLIENTS // 2
            owner = [download(WithCredential(owner_token, "bearer", None), file_id) for _ in range(half)]
            link = [download(ByLink(link_token, None, Actor.link(None)), None) for _ in range(half)]
            return [*owner, *link]

        assert await asyncio.gather(*burst()) == [4096] * CLIENTS  # opens what the pools keep
        with counting(runtime) as counted:
            for _ in range(3):
                assert await asyncio.gather(*burst()) == [4096] * CLIENTS
        assert counted.connections == 0

    run(settings, scenario)


def test_a_listing_page_is_one_statement(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner, _ = await _account(runtime, "owner")
        names = [f"f{i}.txt" for i in range(5)]
        for name in names:
            await runtime.files.upload(owner, name, None, _body(), ACTOR)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            with counting(runtime) as counted:
                page = await runtime.files.list(owner, 2, cursor)
            assert len(counted.statements) == 1, counted.statements
            seen += [item.name for item in page.items]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == names[::-1]  # newest first, each once
        assert pages == 3

    run(settings, scenario)
