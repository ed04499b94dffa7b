"""Account rules: user creation, password login, bearer-token authentication."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy.exc import IntegrityError as DBIntegrityError

from sealbox.accounts.repository import LoginFailureRepository, TokenRepository, UserRepository
from sealbox.accounts.schemas import (
    PasswordChange,
    Principal,
    Scope,
    TokenCreate,
    TokenCreated,
    TokenIssued,
    TokenRead,
    UserRead,
    UserUpdate,
)
from sealbox.audit.service import Actor, Audit, Detail, Event
from sealbox.crypto.passwords import MAX_PASSWORD, hash_password_async, verify_password_async
from sealbox.crypto.tokens import new_token, token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from sealbox.ids import UserId
from sealbox.inputs import made_storable
from sealbox.models import ApiToken, User

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 8


def _user_read(user: User) -> UserRead:
    return UserRead(
        id=str(user.id),
        username=user.username,
        is_admin=user.is_admin,
        is_active=user.is_active,
        created_at=user.created_at,
    )


def _scope(value: str) -> Scope:
    return cast(Scope, value if value in ("full", "read") else "read")


def _token_read(row: ApiToken, principal: Principal) -> TokenRead:
    return TokenRead(
        id=str(row.id),
        name=row.name,
        scope=_scope(row.scope),
        created_at=row.created_at,
        expires_at=row.expires_at,
        current=row.id == principal.token_id,
    )


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")


@dataclass(frozen=True)
class LoginPolicy:
    """Failed sign-ins allowed per user name within ``window``; five times as many per
    client address (a person on a shared address mistyping is not an attack)."""

    max_failures: int = 10
    window: timedelta = timedelta(minutes=15)


def refuse_if_limited(
    recent: dict[str, tuple[int, datetime]], main: str, max_failures: int, window: timedelta, now: datetime, what: str
) -> None:
    """Raise ``RateLimited`` if the ``main`` subject (a user name, a link) has
    ``max_failures`` failures within ``window``, or another (a client address) five times
    as many; ``recent`` is from ``LoginFailureRepository.recent``. The message says when
    the oldest of them leaves the window. Shared by sign-ins and link passwords."""
    for subject, (count, oldest) in recent.items():
        if count >= max_failures * (1 if subject == main else 5):
            wait = max(1, math.ceil((oldest + window - now).total_seconds()))
            raise RateLimited(f"too many {what}; try again in {wait} seconds", wait)


class AccountService:
    def __init__(
        self, db: Database, audit: Audit, token_ttl: timedelta, login_policy: LoginPolicy | None = None
    ) -> None:
        self.db = db
        self.audit = audit
        self.token_ttl = token_ttl
        self.login_policy = login_policy or LoginPolicy()

    async def create_user(
        self, username: str, password: str, *, is_admin: bool = False, actor: Actor | None = None
    ) -> UserRead:
        """Create an active user. Raises ``InvalidInput`` or ``Conflict`` (name taken)."""
        if not USERNAME.match(username):
            raise InvalidInput("a user name is 1-64 letters, digits or '_.@-', starting with a letter or digit")
        check_password(password)
        hashed = await hash_password_async(password)
        try:
            async with self.db.write() as session:
                users = UserRepository(session)
                if await users.by_username(username) is not None:
                    raise Conflict(f"user {username!r} already exists")
                user = await users.add(User(username=username, password_hash=hashed, is_admin=is_admin))
        except DBIntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        detail: Detail = {"username": username, "admin": is_admin}
        await self.audit.record(Event("user.create", actor or Actor.operator(), None, None, str(user.id), detail))
        return _user_read(user)

    async def login(self, username: str, password: str, client: str | None = None, label: str = "login") -> TokenIssued:
        """Check a password and issue a bearer token.

        Costs one Argon2 verification whether or not the user exists, and says the same
        thing for an unknown user, a wrong password and a disabled account. Failures are
        counted in the database per user name and per client address; past the policy's
        limit every attempt, right or wrong, gets ``RateLimited`` until the window passes.
        """
        policy = self.login_policy
        now = utcnow()
        # A name no database can store is no account: it is looked up (and counted) as
        # an unknown name, at the same cost, instead of failing in the driver.
        username = made_storable(username)
        by_user = f"user:{username.casefold()[:150]}"
        subjects = [by_user] + ([f"addr:{client[:150]}"] if client else [])
        async with self.db.read() as session:
            recent = await LoginFailureRepository(session).recent(subjects, now - policy.window)
            user = await UserRepository(session).by_username(username)
        refuse_if_limited(recent, by_user, policy.max_failures, policy.window, now, "failed sign-ins")
        stored = user.password_hash if user is not None else None
        ok = await verify_password_async(stored, password)
        if not ok or user is None or not user.is_active:
            async with self.db.write() as session:
                await LoginFailureRepository(session).add(subjects, now, now - policy.window)
            # A name that is no account is not recorded: people type passwords into it.
            who = Actor(user.username, user.id, client) if user is not None else Actor("(unknown user)", None, client)
            await self.audit.record(Event("login.failed", who, who.user_id))
            raise AuthenticationFailed("wrong user name or password")
        token = new_token()
        expires_at = now + self.token_ttl
        async with self.db.write() as session:
            await TokenRepository(session).add(
                ApiToken(user_id=user.id, token_hash=token_hash(token), name=label, expires_at=expires_at)
            )
            if by_user in recent:
                await LoginFailureRepository(session).clear(by_user)
        await self.audit.record(Event("login.ok", Actor(user.username, user.id, client), user.id))
        return TokenIssued(access_token=token, expires_at=expires_at)

    async def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token. Raises ``AuthenticationFailed``.

        Looked up in the database on every request, so disabling an account or revoking
        a token takes effect on the next request, in every server process.
        """
        async with self.db.read() as session:
            found = await TokenRepository(session).holder(token_hash(token), utcnow())
        if found is None:
            raise AuthenticationFailed("invalid or expired token")
        return Principal(UserId(found.user_id), found.username, found.is_admin, found.token_id, _scope(found.scope))

    async def create_token(self, principal: Principal, request: TokenCreate, actor: Actor) -> TokenCreated:
        """A personal API token; the token itself is returned only here."""
        token = new_token()
        now = utcnow()
        expires_at = now + timedelta(days=request.expires_in_days) if request.expires_in_days else None
        row = ApiToken(
            user_id=principal.user_id,
            token_hash=token_hash(token),
            name=request.name,
            scope=request.scope,
            created_at=now,
            expires_at=expires_at,
        )
        async with self.db.write() as session:
            await TokenRepository(session).add(row)
        detail = {"scope": request.scope}
        await self.audit.record(Event("token.create", actor, principal.user_id, None, str(row.id), detail))
        return TokenCreated(**_token_read(row, principal).model_dump(), token=token)

    async def tokens(self, principal: Principal) -> list[TokenRead]:
        async with self.db.read() as session:
            rows = await TokenRepository(session).of_user(principal.user_id)
        return [_token_read(row, principal) for row in rows]

    async def revoke_token(self, principal: Principal, token_id: uuid.UUID, actor: Actor) -> None:
        async with self.db.write() as session:
            if not await TokenRepository(session).remove(principal.user_id, token_id):
                raise NotFound("token not found")
        await self.audit.record(Event("token.revoke", actor, principal.user_id, None, str(token_id)))

    async def change_password(self, principal: Principal, change: PasswordChange, actor: Actor) -> None:
        """Change one's own password; every other token of the account is revoked."""
        check_password(change.new_password)
        async with self.db.read() as session:
            user = await UserRepository(session).get(principal.user_id)
        assert user is not None
        ok = await verify_password_async(user.password_hash, change.current_password)
        if not ok:
            raise PermissionDenied("the current password is wrong")
        hashed = await hash_password_async(change.new_password)
        async with self.db.write() as session:
            user = await UserRepository(session).get(principal.user_id)
            assert user is not None
            user.password_hash = hashed
            await TokenRepository(session).remove_all(principal.user_id, keep=principal.token_id)
        await self.audit.record(Event("password.change", actor, principal.user_id))

    # Administration. Callers check that the principal is an administrator.

    async def users(self) -> list[UserRead]:
        async with self.db.read() as session:
            return [_user_read(user) for user in await UserRepository(session).all()]

    async def update_user(self, user_id: UserId, update: UserUpdate, actor: Actor | None = None) -> UserRead:
        """Enable or disable an account, grant or withdraw administration.

        Refuses to lock out the last active administrator (yourself included).
        """
        async with self.db.write() as session:
            users = UserRepository(session)
            user = await users.get(user_id)
            if user is None:
                raise NotFound("user not found")
            if update.is_active is not None:
                user.is_active = update.is_active
            if update.is_admin is not None:
                user.is_admin = update.is_admin
            await session.flush()
            if await users.active_admins() == 0:
                raise Conflict("that would leave no active administrator")
            if update.is_active is False:
                await TokenRepository(session).remove_all(user.id)
            read = _user_read(user)
        detail = update.model_dump(exclude_none=True)
        await self.audit.record(Event("user.update", actor or Actor.operator(), None, None, str(user_id), detail))
        return read

    async def reset_password(self, user_id: UserId, password: str, actor: Actor | None = None) -> None:
        """Set a new password; every token of the account is revoked."""
        check_password(password)
        hashed = await hash_password_async(password)
        async with self.db.write() as session:
            user = await UserRepository(session).get(user_id)
            if user is None:
                raise NotFound("user not found")
            user.password_hash = hashed
            await TokenRepository(session).remove_all(user.id)
        await self.audit.record(Event("user.reset_password", actor or Actor.operator(), None, None, str(user_id)))

    async def delete_user(self, user_id: UserId) -> None:
        """Delete an account and its tokens (see ``Runtime.delete_account`` for its files)."""
        async with self.db.write() as session:
            users = UserRepository(session)
            user = await users.get(user_id)
            if user is None:
                raise NotFound("user not found")
            await users.remove(user)

    async def user(self, user_id: UserId) -> UserRead:
        async with self.db.read() as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            raise NotFound("user not found")
        return _user_read(user)

    async def find(self, username: str) -> UserRead:
        async with self.db.read() as session:
            user = await UserRepository(session).by_username(username)
        if user is None:
            raise NotFound("user not found")
        return _user_read(user)
