from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.models import ApiToken, LoginFailure, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_username(self, username: str) -> User | None:
        result = await self.session.execute(select(User).where(User.username == username))
        return result.scalar_one_or_none()

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def all(self) -> Sequence[User]:
        return (await self.session.execute(select(User).order_by(User.username))).scalars().all()

    async def active_admins(self) -> int:
        query = select(func.count()).select_from(User).where(User.is_admin.is_(True), User.is_active.is_(True))
        return int((await self.session.execute(query)).scalar_one())

    async def replace_hash(self, user_id: uuid.UUID, old: str, new: str) -> None:
        """Store ``new`` as the user's password hash only if it is still ``old``: a
        password changed meanwhile is never overwritten by a rehash of the previous one."""
        await self.session.execute(
            update(User).where(User.id == user_id, User.password_hash == old).values(password_hash=new)
        )

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def remove(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()


def holder_query() -> Select[*tuple[Any, ...]]:
    """The columns of ``TokenHolder`` for the active user holding an unexpired token whose
    hash is bound as ``token_hash``, at the time bound as ``now`` (no row otherwise).
    Others extend it, to resolve a credential in the same query as what the request
    asks for; its ``HOLDER_COLUMNS`` columns come first."""
    return (
        select(User.id, User.username, User.is_admin, ApiToken.id, ApiToken.scope, ApiToken.kind)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == bindparam("token_hash"), User.is_active.is_(True))
        .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > bindparam("now")))
    )


HOLDER = holder_query()
HOLDER_COLUMNS = 6


@dataclass(frozen=True)
class TokenHolder:
    user_id: uuid.UUID
    username: str
    is_admin: bool
    token_id: uuid.UUID
    scope: str
    kind: str


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: ApiToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def of_user(self, user_id: uuid.UUID) -> Sequence[ApiToken]:
        query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
        return (await self.session.execute(query)).scalars().all()

    async def remove(self, user_id: uuid.UUID, token_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_all(self, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
        query = delete(ApiToken).where(ApiToken.user_id == user_id)
        if keep is not None:
            query = query.where(ApiToken.id != keep)
        await self.session.execute(query)


def _lock_key(subject: str) -> int:
    """A signed 64-bit advisory-lock key for ``subject``. Two subjects sharing a key only
    wait for each other; counts stay exact."""
    return int.from_bytes(hashlib.sha256(b"sealbox/attempts/" + subject.encode()).digest()[:8], "big", signed=True)


class LoginFailureRepository:
    """Counted password attempts (sign-ins, link passwords, current-password checks).

    A row is written *before* the password is verified (a reservation); it stays if the
    password was wrong and is taken back (``forget``) if it was right.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, subjects: Sequence[str]) -> None:
        """Serialise, until this transaction ends, every transaction counting attempts of
        any of ``subjects``.

        PostgreSQL runs READ COMMITTED, so two transactions could each count 9 of 10 and
        each insert a tenth. There is no row per subject to ``SELECT ... FOR UPDATE`` (an
        address, or a user name that is no account, has none), so a transaction-level
        advisory lock keyed by the subject stands in for it: it is released at commit or
        rollback, holds across server processes, and creates nothing that must be
        cleaned up. Keys are taken in one order so that two transactions sharing two
        subjects cannot deadlock. On SQLite every write transaction already runs alone
        (``BEGIN IMMEDIATE`` and the in-process write lock), so there is nothing to do.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        for key in sorted({_lock_key(subject) for subject in subjects}):
            await self.session.execute(select(func.pg_advisory_xact_lock(key)))

    async def recent(self, subjects: Sequence[str], since: datetime) -> dict[str, tuple[int, datetime]]:
        """Per subject: attempts counted since ``since`` and the oldest of them."""
        query = (
            select(LoginFailure.subject, func.count(), func.min(LoginFailure.at))
            .where(LoginFailure.subject.in_(subjects), LoginFailure.at > since)
            .group_by(LoginFailure.subject)
        )
        rows = (await self.session.execute(query)).all()
        return {subject: (int(n), oldest) for subject, n, oldest in rows}

    async def add(self, subjects: Sequence[str], at: datetime, expired_before: datetime) -> list[uuid.UUID]:
        """Count an attempt for each subject, dropping rows past the window; return the
        new rows' ids (see ``forget``). Call ``lock`` first in the same transaction."""
        rows = [LoginFailure(id=uuid.uuid4(), subject=subject, at=at) for subject in subjects]
        self.session.add_all(rows)
        await self.session.execute(delete(LoginFailure).where(LoginFailure.at <= expired_before))
        return [row.id for row in rows]

    async def forget(self, ids: Sequence[uuid.UUID]) -> None:
        """Take back attempts counted before they were checked, once they turned out right."""
        await self.session.execute(delete(LoginFailure).where(LoginFailure.id.in_(ids)))
