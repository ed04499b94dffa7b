"""Limits hold under concurrency: counted password attempts and the room unfinished
resumable uploads hold. Service level, on a real SQLite file and a real PostgreSQL (the
one that runs READ COMMITTED), with the in-memory blob store."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from sealbox.accounts.schemas import PasswordChange, Principal
from sealbox.audit.service import Actor
from sealbox.config import Settings
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.db.base import utcnow
from sealbox.db.migrate import upgrade
from sealbox.errors import Conflict, Gone, RateLimited, TooLarge
from sealbox.ids import UserId
from sealbox.models import AuditEvent, LoginFailure, Upload, UploadRequest
from sealbox.runtime import Runtime, build
from sealbox.sharing.schemas import RequestCreate, ShareCreate
from sealbox.sharing.service import admission_for
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Holder
from tests.services import Postgres

MAX = 10  # attempts per user name or link within the window; five times as many per address
MIB = 1 << 20
QUOTA = 3 * MIB
PENDING = 4  # unfinished uploads per account
RIGHT = "the-right-password"
ACTOR = Actor("owner")

Scenario = Callable[[Runtime], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    database: dict[str, Any] = {}
    if request.param == "postgres":
        postgres: Postgres = request.getfixturevalue("postgres")
        database["database_url"] = postgres.create_database()
    (tmp_path / "data").mkdir()
    return Settings(
        data_dir=tmp_path / "data",
        login_max_failures=MAX,
        link_max_failures=MAX,
        user_quota=QUOTA,
        upload_max_pending=PENDING,
        **database,
    )


def run(settings: Settings, scenario: Scenario) -> None:
    async def main() -> None:
        runtime = build(settings, Keyring([new_master_key("k1")]), MemoryStore())
        await upgrade(runtime.db)
        try:
            await scenario(runtime)
        finally:
            await runtime.close()

    asyncio.run(main())


async def outcomes(attempts: Iterable[Awaitable[object]]) -> tuple[list[object], Counter[str]]:
    """Run ``attempts`` all at once; the results and how many of each kind."""
    results = await asyncio.gather(*attempts, return_exceptions=True)
    return results, Counter(type(r).__name__ if isinstance(r, BaseException) else "ok" for r in results)


async def audited(runtime: Runtime, action: str) -> int:
    await runtime.audit.drain()
    async with runtime.db.read() as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return int((await session.execute(query)).scalar_one())


async def counted(runtime: Runtime, subject: str) -> int:
    async with runtime.db.read() as session:
        query = select(func.count()).select_from(LoginFailure).where(LoginFailure.subject == subject)
        return int((await session.execute(query)).scalar_one())


def guesses(right: Callable[[], Awaitable[object]], wrong: Callable[[int], Awaitable[object]]) -> list[Any]:
    """99 wrong attempts and the right one in the middle of them."""
    attempts: list[Any] = [wrong(i) for i in range(99)]
    attempts.insert(50, right())
    return attempts


async def _user(runtime: Runtime, name: str) -> Principal:
    await runtime.accounts.create_user(name, RIGHT)
    issued = await runtime.accounts.login(name, RIGHT)
    return await runtime.accounts.authenticate(issued.access_token, "bearer")


# Counted password attempts


def test_parallel_sign_ins_verify_at_most_the_limit(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        await runtime.accounts.create_user("lee", RIGHT)
        accounts = runtime.accounts
        results, kinds = await outcomes(
            guesses(lambda: accounts.login("lee", RIGHT), lambda i: accounts.login("lee", f"wrong-{i:04}"))
        )
        right_won = not isinstance(results[50], BaseException)
        assert isinstance(results[50], RateLimited) or right_won
        # Exactly the limit of wrong passwords were verified; everything else was refused unchecked.
        assert kinds == Counter({"AuthenticationFailed": MAX, "RateLimited": 100 - MAX - right_won, "ok": right_won})
        assert await audited(runtime, "login.failed") == MAX
        assert await audited(runtime, "login.ok") == right_won
        assert await counted(runtime, "user:lee") == MAX  # a right attempt gave its reservation back
        # Once the limit is reached, the right password is refused like any other.
        with pytest.raises(RateLimited, match="too many failed sign-ins"):
            await accounts.login("lee", RIGHT)
        _, kinds = await outcomes(accounts.login("lee", RIGHT) for _ in range(20))
        assert kinds == Counter({"RateLimited": 20})

    run(settings, scenario)


def test_parallel_sign_ins_from_one_address_verify_at_most_its_limit(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        _, kinds = await outcomes(
            runtime.accounts.login(f"nobody{i}", "wrong-password", "192.0.2.1") for i in range(100)
        )
        assert kinds == Counter({"AuthenticationFailed": 5 * MAX, "RateLimited": 100 - 5 * MAX})
        assert await counted(runtime, "addr:192.0.2.1") == 5 * MAX
        assert await audited(runtime, "login.failed") == 5 * MAX

    run(settings, scenario)


def test_parallel_current_password_checks_verify_at_most_the_limit(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        mo = await _user(runtime, "mo")
        actor = Actor("mo", mo.user_id, "198.51.100.9")

        def change(current: str) -> Awaitable[None]:
            return runtime.accounts.change_password(
                mo, PasswordChange(current_password=current, new_password="a-new-password"), actor
            )

        results, kinds = await outcomes(guesses(lambda: change(RIGHT), lambda i: change(f"wrong-{i:04}")))
        right_won = not isinstance(results[50], BaseException)
        assert kinds == Counter({"PermissionDenied": MAX, "RateLimited": 100 - MAX - right_won, "ok": right_won})
        assert await audited(runtime, "password.change_failed") == MAX
        assert await audited(runtime, "password.change") == right_won
        assert await counted(runtime, "user:mo") == MAX
        # The same budget as signing in: the password cannot be guessed through either any more.
        with pytest.raises(RateLimited, match="wrong current passwords"):
            await change("a-new-password" if right_won else RIGHT)
        with pytest.raises(RateLimited):
            await runtime.accounts.login("mo", "a-new-password" if right_won else RIGHT)

    run(settings, scenario)


async def _file(runtime: Runtime, owner: UserId) -> str:
    async def body() -> AsyncIterator[bytes]:
        yield b"shared content"

    return (await runtime.files.upload(owner, "a.txt", "text/plain", body(), ACTOR)).id


@pytest.mark.parametrize("kind", ["share", "upload request"])
def test_parallel_link_passwords_verify_at_most_the_limit(settings: Settings, kind: str) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await _user(runtime, "owner")
        sharing = runtime.sharing
        if kind == "share":
            file_id = await _file(runtime, owner.user_id)
            link = await sharing.create_share(owner.user_id, uuid.UUID(file_id), ShareCreate(password=RIGHT), ACTOR)  # type: ignore[arg-type]
        else:
            link = await sharing.create_request(owner.user_id, RequestCreate(password=RIGHT), ACTOR)  # type: ignore[assignment]
        token = link.url.rsplit("/", 1)[1]

        def unlock(password: str, client: str = "203.0.113.5") -> Awaitable[object]:
            return sharing.unlock(token, password, Actor.link(client))

        results, kinds = await outcomes(guesses(lambda: unlock(RIGHT), lambda i: unlock(f"wrong-{i:04}")))
        right_won = not isinstance(results[50], BaseException)
        assert kinds == Counter({"AuthenticationFailed": MAX, "RateLimited": 100 - MAX - right_won, "ok": right_won})
        assert await audited(runtime, "link.password_failed") == MAX
        assert await audited(runtime, "link.unlock") == right_won
        assert await counted(runtime, f"link:{link.id}") == MAX
        # The link is limited from every address, the right password included.
        with pytest.raises(RateLimited, match="too many wrong passwords"):
            await unlock(RIGHT, "203.0.113.77")

    run(settings, scenario)


# Room held by unfinished resumable uploads


async def _create(runtime: Runtime, holder: Holder, length: int) -> Upload:
    return await runtime.uploads.create(holder, length, "part.bin", None, None)


async def _expire(runtime: Runtime, upload_id: uuid.UUID) -> None:
    """What the passing of SEALBOX_UPLOAD_EXPIRY_HOURS does to an upload."""
    async with runtime.db.write() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(update(Upload).where(Upload.id == upload_id).values(expires_at=past))


def test_unfinished_uploads_hold_their_length_against_the_quota(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await _user(runtime, "owner")
        holder = Holder(user_id=owner.user_id)
        results, kinds = await outcomes(_create(runtime, holder, MIB) for _ in range(8))
        assert kinds == Counter({"ok": 3, "TooLarge": 5})
        refused = [r for r in results if isinstance(r, TooLarge)]
        assert all(f"storage quota of {QUOTA} bytes" in str(r) for r in refused)
        assert "held by unfinished uploads" in str(refused[0])
        # A plain upload cannot take the room they hold either.
        with pytest.raises(TooLarge, match=f"storage quota of {QUOTA} bytes"):
            await _file(runtime, owner.user_id)
        held = [r for r in results if isinstance(r, Upload)]
        # Cancelled or expired, an upload gives its room back.
        await runtime.uploads.terminate(held[0].id, holder)
        again = await _create(runtime, holder, MIB)
        with pytest.raises(TooLarge):
            await _create(runtime, holder, 1)
        await _expire(runtime, held[1].id)
        await _create(runtime, holder, MIB)
        # An expired upload cannot come back with a late part and hold room again.
        with pytest.raises(Gone):
            await runtime.uploads.append(held[1].id, holder, 0, _bytes(10), None, ACTOR, row=held[1])
        # An upload that holds all the room it needs completes.
        await runtime.uploads.terminate(again.id, holder)
        last = await _create(runtime, holder, MIB)
        state = await runtime.uploads.append(last.id, holder, 0, _bytes(MIB), None, ACTOR)
        assert state.file_id is not None

    run(settings, scenario)


async def _bytes(size: int) -> AsyncIterator[bytes]:
    for i in range(0, size, 64 << 10):
        yield b"x" * min(64 << 10, size - i)


def test_an_account_may_have_only_so_many_unfinished_uploads(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await _user(runtime, "owner")
        holder = Holder(user_id=owner.user_id)
        results, kinds = await outcomes(_create(runtime, holder, 1) for _ in range(10))
        assert kinds == Counter({"ok": PENDING, "Conflict": 10 - PENDING})
        assert all(f"({PENDING})" in str(r) for r in results if isinstance(r, Conflict))
        await _expire(runtime, next(r for r in results if isinstance(r, Upload)).id)
        await _create(runtime, holder, 1)

    run(settings, scenario)


async def _request(runtime: Runtime, owner: Principal, max_files: int, max_bytes: int) -> Holder:
    created = await runtime.sharing.create_request(
        owner.user_id, RequestCreate(max_files=max_files, max_bytes=max_bytes), ACTOR
    )
    async with runtime.db.read() as session:
        row = await session.get(UploadRequest, uuid.UUID(created.id))
    assert row is not None
    return Holder(request=row)


def test_unfinished_uploads_hold_a_links_files_and_bytes(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await _user(runtime, "owner")
        one_file = await _request(runtime, owner, 1, MIB)
        results, kinds = await outcomes(_create(runtime, one_file, MIB) for _ in range(8))
        assert kinds == Counter({"ok": 1, "Conflict": 7})
        assert "1 unfinished upload(s) hold them" in str(next(r for r in results if isinstance(r, Conflict)))
        held = next(r for r in results if isinstance(r, Upload))
        await runtime.uploads.terminate(held.id, one_file)
        await _create(runtime, one_file, MIB)

        one_mib = await _request(runtime, owner, 10, MIB)
        results, kinds = await outcomes(_create(runtime, one_mib, 300_000) for _ in range(8))
        assert kinds == Counter({"ok": 3, "TooLarge": 5})
        refused = next(r for r in results if isinstance(r, TooLarge))
        assert f"of its {MIB} bytes (900000 held by unfinished uploads)" in str(refused)
        await _expire(runtime, next(r for r in results if isinstance(r, Upload)).id)
        await _create(runtime, one_mib, 300_000)

    run(settings, scenario)


def test_a_plain_upload_through_a_link_cannot_take_what_unfinished_ones_hold(settings: Settings) -> None:
    async def scenario(runtime: Runtime) -> None:
        owner = await _user(runtime, "owner")
        link = await _request(runtime, owner, 2, 1000)
        assert link.request is not None
        await _create(runtime, link, 900)
        with pytest.raises(TooLarge, match="100 of its 1000 bytes"):
            await runtime.files.upload(
                owner.user_id, "b.bin", None, _bytes(200), ACTOR, admission=admission_for(link.request)
            )

    run(settings, scenario)
