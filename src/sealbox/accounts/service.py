"""Account rules: user creation, password login, bearer-token authentication."""

from __future__ import annotations

import re
from datetime import timedelta

import anyio
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from sealbox.accounts.repository import TokenRepository, UserRepository
from sealbox.accounts.schemas import Principal, TokenIssued, UserRead
from sealbox.crypto.passwords import hash_password, verify_password
from sealbox.crypto.tokens import new_token, token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import AuthenticationFailed, Conflict, InvalidInput
from sealbox.ids import UserId
from sealbox.models import ApiToken, User

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# Argon2 takes ~50-100 ms of CPU and memory per call: run it in worker threads, a few
# at a time, so a burst of logins cannot starve the event loop or exhaust memory.
_ARGON2_LIMIT = anyio.CapacityLimiter(2)


def _user_read(user: User) -> UserRead:
    return UserRead(
        id=str(user.id),
        username=user.username,
        is_admin=user.is_admin,
        is_active=user.is_active,
        created_at=user.created_at,
    )


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")


class AccountService:
    def __init__(self, db: Database, token_ttl: timedelta) -> None:
        self.db = db
        self.token_ttl = token_ttl

    async def create_user(self, username: str, password: str, *, is_admin: bool = False) -> UserRead:
        """Create an active user. Raises ``InvalidInput`` or ``Conflict`` (name taken)."""
        if not USERNAME.match(username):
            raise InvalidInput("a user name is 1-64 letters, digits or '_.@-', starting with a letter or digit")
        check_password(password)
        hashed = await anyio.to_thread.run_sync(hash_password, password, limiter=_ARGON2_LIMIT)
        try:
            async with self.db.write() as session:
                users = UserRepository(session)
                if await users.by_username(username) is not None:
                    raise Conflict(f"user {username!r} already exists")
                user = await users.add(User(username=username, password_hash=hashed, is_admin=is_admin))
                return _user_read(user)
        except DBIntegrityError:
            raise Conflict(f"user {username!r} already exists") from None

    async def login(self, username: str, password: str, label: str = "login") -> TokenIssued:
        """Check a password and issue a bearer token.

        Costs one Argon2 verification whether or not the user exists, and says the same
        thing for an unknown user, a wrong password and a disabled account.
        """
        async with self.db.read() as session:
            user = await UserRepository(session).by_username(username)
        stored = user.password_hash if user is not None else None
        ok = await anyio.to_thread.run_sync(verify_password, stored, password[:MAX_PASSWORD], limiter=_ARGON2_LIMIT)
        if not ok or user is None or not user.is_active:
            raise AuthenticationFailed("wrong user name or password")
        token = new_token()
        expires_at = utcnow() + self.token_ttl
        async with self.db.write() as session:
            await TokenRepository(session).add(
                ApiToken(user_id=user.id, token_hash=token_hash(token), name=label, expires_at=expires_at)
            )
        return TokenIssued(access_token=token, expires_at=expires_at)

    async def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token. Raises ``AuthenticationFailed``."""
        async with self.db.read() as session:
            user = await TokenRepository(session).owner_of(token_hash(token), utcnow())
        if user is None:
            raise AuthenticationFailed("invalid or expired token")
        return Principal(UserId(user.id), user.username, user.is_admin)
