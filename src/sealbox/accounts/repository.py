from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.models import ApiToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_username(self, username: str) -> User | None:
        result = await self.session.execute(select(User).where(User.username == username))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: ApiToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def owner_of(self, token_hash: str, now: datetime) -> User | None:
        """The active user holding an unexpired token with this hash."""
        query = (
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, User.is_active.is_(True))
            .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        )
        result = await self.session.execute(query)
        return result.scalar_one_or_none()
