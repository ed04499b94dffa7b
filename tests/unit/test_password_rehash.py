"""Argon2 hashes made with other parameters are replaced on the next right password
(sign-ins and link passwords), and only then."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from sealbox.accounts.repository import UserRepository
from sealbox.audit.service import Actor
from sealbox.config import Settings
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.crypto.passwords import needs_rehash, verify_password
from sealbox.db.migrate import upgrade
from sealbox.errors import AuthenticationFailed
from sealbox.ids import UserId
from sealbox.models import Share, UploadRequest, User
from sealbox.runtime import Runtime, build
from sealbox.sharing.schemas import RequestCreate, ShareCreate
from sealbox.storage.memory import MemoryStore

RIGHT = "the-right-password"
ACTOR = Actor("owner")
CURRENT = "m=9216,t=4,p=1"
# What an earlier release (or another tool) might have stored: weaker parameters.
OLD = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=2)


def run(tmp_path: Path, scenario: Callable[[Runtime], Awaitable[None]]) -> None:
    async def main() -> None:
        (tmp_path / "data").mkdir()
        runtime = build(Settings(data_dir=tmp_path / "data"), Keyring([new_master_key("k1")]), MemoryStore())
        await upgrade(runtime.db)
        try:
            await scenario(runtime)
        finally:
            await runtime.close()

    asyncio.run(main())


async def stored_hash(runtime: Runtime, table: type[User | Share | UploadRequest], row_id: uuid.UUID) -> str:
    async with runtime.db.read() as session:
        row = await session.get(table, row_id)
    assert row is not None
    assert row.password_hash is not None
    return row.password_hash


async def set_hash(runtime: Runtime, table: type[User | Share | UploadRequest], row_id: uuid.UUID, value: str) -> None:
    async with runtime.db.write() as session:
        await session.execute(update(table).where(table.id == row_id).values(password_hash=value))


def test_the_old_parameters_are_outdated() -> None:
    assert needs_rehash(OLD.hash(RIGHT))
    assert not needs_rehash(PasswordHasher(time_cost=4, memory_cost=9 * 1024, parallelism=1).hash(RIGHT))
    assert not needs_rehash("not an argon2 hash")


def test_a_sign_in_replaces_a_hash_made_with_old_parameters(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime) -> None:
        user = await runtime.accounts.create_user("ann", RIGHT)
        user_id = uuid.UUID(user.id)
        old = OLD.hash(RIGHT)
        await set_hash(runtime, User, user_id, old)

        with pytest.raises(AuthenticationFailed):
            await runtime.accounts.login("ann", "a-wrong-password")
        assert await stored_hash(runtime, User, user_id) == old  # a wrong password changes nothing

        await runtime.accounts.login("ann", RIGHT)
        fresh = await stored_hash(runtime, User, user_id)
        assert fresh != old
        assert CURRENT in fresh
        assert not needs_rehash(fresh)
        assert verify_password(fresh, RIGHT)

        await runtime.accounts.login("ann", RIGHT)
        assert await stored_hash(runtime, User, user_id) == fresh  # current hashes are left alone

    run(tmp_path, scenario)


def test_a_rehash_never_overwrites_a_password_changed_meanwhile(tmp_path: Path) -> None:
    async def scenario(runtime: Runtime) -> None:
        user = await runtime.accounts.create_user("bea", RIGHT)
        user_id = uuid.UUID(user.id)
        changed = await stored_hash(runtime, User, user_id)  # as if changed after the rehash began
        async with runtime.db.write() as session:
            await UserRepository(session).replace_hash(user_id, OLD.hash(RIGHT), "rehashed")
        assert await stored_hash(runtime, User, user_id) == changed

    run(tmp_path, scenario)


@pytest.mark.parametrize("kind", ["share", "upload request"])
def test_a_right_link_password_replaces_a_hash_made_with_old_parameters(tmp_path: Path, kind: str) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await runtime.accounts.create_user("owner", RIGHT)
        owner_id = UserId(uuid.UUID(owner.id))
        table: type[Share | UploadRequest]
        if kind == "share":

            async def body() -> AsyncIterator[bytes]:
                yield b"shared"

            file = await runtime.files.upload(owner_id, "a.txt", "text/plain", body(), ACTOR)
            link = await runtime.sharing.create_share(owner_id, uuid.UUID(file.id), ShareCreate(password=RIGHT), ACTOR)  # type: ignore[arg-type]
            table = Share
        else:
            link = await runtime.sharing.create_request(owner_id, RequestCreate(password=RIGHT), ACTOR)  # type: ignore[assignment]
            table = UploadRequest
        link_id = uuid.UUID(str(link.id))
        token = link.url.rsplit("/", 1)[1]
        old = OLD.hash(RIGHT)
        await set_hash(runtime, table, link_id, old)

        with pytest.raises(AuthenticationFailed):
            await runtime.sharing.unlock(token, "a-wrong-password", Actor.link("203.0.113.5"))
        assert await stored_hash(runtime, table, link_id) == old

        await runtime.sharing.unlock(token, RIGHT, Actor.link("203.0.113.5"))
        fresh = await stored_hash(runtime, table, link_id)
        assert fresh != old
        assert CURRENT in fresh
        assert verify_password(fresh, RIGHT)

    run(tmp_path, scenario)
