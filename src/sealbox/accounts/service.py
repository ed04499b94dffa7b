"""Account rules: user creation, password login, bearer-token authentication."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.exc import IntegrityError as DBIntegrityError

from sealbox import names
from sealbox.accounts.authority import Presented, accepts
from sealbox.accounts.repository import (
    HOLDER,
    HOLDER_COLUMNS,
    LoginFailureRepository,
    TokenHolder,
    TokenRepository,
    UserRepository,
)
from sealbox.accounts.schemas import (
    Kind,
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
from sealbox.crypto.passwords import MAX_PASSWORD, hash_password_async, rehash_async, verify_password_async
from sealbox.crypto.tokens import new_token, token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from sealbox.ids import UserId
from sealbox.inputs import made_storable
from sealbox.models import ApiToken, User

LABELS: dict[Kind, str] = {"session": "web session", "login": "login", "personal": "token"}
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


def _kind(value: str) -> Kind:
    return cast(Kind, value if value in ("session", "login") else "personal")


def _token_read(row: ApiToken, principal: Principal) -> TokenRead:
    return TokenRead(
        id=str(row.id),
        name=row.name,
        kind=_kind(row.kind),
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
    ``max_failures`` attempts counted within ``window``, or another (a client address)
    five times as many; ``recent`` is from ``LoginFailureRepository.recent``. The message
    says when the oldest of them leaves the window."""
    for subject, (count, oldest) in recent.items():
        if count >= max_failures * (1 if subject == main else 5):
            wait = max(1, math.ceil((oldest + window - now).total_seconds()))
            raise RateLimited(f"too many {what}; try again in {wait} seconds", wait)


async def reserve_attempt(
    db: Database, main: str, others: Sequence[str], max_failures: int, window: timedelta, what: str
) -> list[uuid.UUID]:
    """Count one password attempt against ``main`` and each of ``others`` *before* the
    password is checked, or raise ``RateLimited`` (see ``refuse_if_limited``) without
    counting it. Shared by sign-ins, current-password checks and link passwords.

    The count and the insert are one write transaction under a lock per subject (see
    ``LoginFailureRepository.lock``), so of N parallel attempts at most the limit are
    ever verified, and the right password among the rest is refused like any other.
    The caller gives the returned reservation back (``forget``) if the password was
    right; a wrong one stays counted until the window passes.
    """
    subjects = [main, *others]
    async with db.write() as session:
        attempts = LoginFailureRepository(session)
        await attempts.lock(subjects)
        now = utcnow()
        recent = await attempts.recent(subjects, now - window)
        refuse_if_limited(recent, main, max_failures, window, now, what)
        return await attempts.add(subjects, now, now - window)


def _not_yourself(user_id: UserId, actor: Actor | None, what: str) -> None:
    """An administrator acts on other accounts: locking oneself out (disabled, demoted,
    signed out everywhere by a reset) takes another administrator or the operator."""
    if actor is not None and actor.user_id == user_id:
        raise Conflict(f"administrators cannot {what} here: another administrator or the operator can")


def principal_of(holder: Sequence[Any] | None, presented: Presented) -> Principal:
    """The principal of a credential from the ``holder_query`` columns found for it
    (``None``: none found), as it was ``presented``. Raises ``AuthenticationFailed``, the
    same for an unknown token and one presented where its kind is not accepted."""
    if holder is None:
        raise AuthenticationFailed("invalid or expired token")
    found = TokenHolder(*holder)
    if not accepts(presented, found.kind):
        raise AuthenticationFailed("invalid or expired token")
    return Principal(
        UserId(found.user_id), found.username, found.is_admin, found.token_id, _scope(found.scope), _kind(found.kind)
    )


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
        names.user_name(username)
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

    def _subjects(self, username: str, client: str | None) -> tuple[str, list[str]]:
        """What a password attempt for ``username`` counts against: the user name, and
        the client address (five times the limit)."""
        return f"user:{username.casefold()[:150]}", [f"addr:{client[:150]}"] if client else []

    async def login(self, username: str, password: str, client: str | None = None, kind: Kind = "login") -> TokenIssued:
        """Check a password and issue a token of ``kind``: ``login`` (a bearer token) or
        ``session`` (a web session, accepted only as its cookie).

        Costs one Argon2 verification whether or not the user exists, and says the same
        thing for an unknown user, a wrong password and a disabled account. Every attempt
        is counted in the database, per user name and per client address, before the
        password is checked (see ``reserve_attempt``); a right one is taken back. Past the
        policy's limit every attempt, right or wrong, gets ``RateLimited`` until the
        window passes.
        """
        policy = self.login_policy
        # A name no database can store is no account: it is looked up (and counted) as
        # an unknown name, at the same cost, instead of failing in the driver.
        username = made_storable(username)
        by_user, others = self._subjects(username, client)
        async with self.db.read() as session:
            user = await UserRepository(session).by_username(username)
        attempt = await reserve_attempt(self.db, by_user, others, policy.max_failures, policy.window, "failed sign-ins")
        stored = user.password_hash if user is not None else None
        ok = await verify_password_async(stored, password)
        if not ok or user is None or not user.is_active:
            # A name that is no account is not recorded: people type passwords into it.
            who = Actor(user.username, user.id, client) if user is not None else Actor("(unknown user)", None, client)
            await self.audit.record(Event("login.failed", who, who.user_id))
            raise AuthenticationFailed("wrong user name or password")
        token = new_token()
        expires_at = utcnow() + self.token_ttl
        fresh = await rehash_async(user.password_hash, password)
        # Only this attempt's own reservation is given back, not the user's other
        # failures: clearing them would hand their slots to guesses still in flight.
        async with self.db.write() as session:
            if fresh is not None:
                await UserRepository(session).replace_hash(user.id, user.password_hash, fresh)
            await TokenRepository(session).add(
                ApiToken(
                    user_id=user.id, token_hash=token_hash(token), name=LABELS[kind], kind=kind, expires_at=expires_at
                )
            )
            await LoginFailureRepository(session).forget(attempt)
        await self.audit.record(Event("login.ok", Actor(user.username, user.id, client), user.id))
        return TokenIssued(access_token=token, expires_at=expires_at)

    async def authenticate(self, token: str, presented: Presented) -> Principal:
        """Resolve a token presented as a cookie or a bearer token. Raises
        ``AuthenticationFailed``, the same for an unknown token and one presented where
        its kind is not accepted (``sealbox.accounts.authority.accepts``).

        Looked up in the database on every request, so disabling an account or revoking
        a token takes effect on the next request, in every server process.
        """
        rows = await self.db.rows(HOLDER, {"token_hash": token_hash(token), "now": utcnow()})
        return principal_of(rows[0][:HOLDER_COLUMNS] if rows else None, presented)

    async def create_token(self, principal: Principal, request: TokenCreate, actor: Actor) -> TokenCreated:
        """A personal API token; the token itself is returned only here."""
        name = names.label(request.name, "a token's name")
        token = new_token()
        now = utcnow()
        expires_at = now + timedelta(days=request.expires_in_days) if request.expires_in_days else None
        row = ApiToken(
            user_id=principal.user_id,
            token_hash=token_hash(token),
            name=name,
            kind="personal",
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
        """Change one's own password; every other token of the account is revoked.

        The current password is a guess like a sign-in (a stolen token must not buy
        unlimited tries at the password that would lock its owner out): it is counted
        against the same user name and address limits before it is checked, and a wrong
        one is audited as ``password.change_failed``.
        """
        check_password(change.new_password)
        async with self.db.read() as session:
            user = await UserRepository(session).get(principal.user_id)
        if user is None:
            raise NotFound("user not found")
        policy = self.login_policy
        by_user, others = self._subjects(user.username, actor.client)
        attempt = await reserve_attempt(
            self.db, by_user, others, policy.max_failures, policy.window, "wrong current passwords"
        )
        if not await verify_password_async(user.password_hash, change.current_password):
            await self.audit.record(Event("password.change_failed", actor, principal.user_id))
            raise PermissionDenied("the current password is wrong")
        hashed = await hash_password_async(change.new_password)
        async with self.db.write() as session:
            await LoginFailureRepository(session).forget(attempt)
            user = await UserRepository(session).get(principal.user_id)
            if user is None:
                raise NotFound("user not found")
            user.password_hash = hashed
            await TokenRepository(session).remove_all(principal.user_id, keep=principal.token_id)
        await self.audit.record(Event("password.change", actor, principal.user_id))

    # Administration. Callers check that the principal is an administrator.

    async def users(self) -> list[UserRead]:
        async with self.db.read() as session:
            return [_user_read(user) for user in await UserRepository(session).all()]

    async def update_user(self, user_id: UserId, update: UserUpdate, actor: Actor | None = None) -> UserRead:
        """Enable or disable an account, grant or withdraw administration.

        Refuses changes to the acting administrator's own account, and to lock out the
        last active administrator.
        """
        _not_yourself(user_id, actor, "change your own account's status or role")
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
        _not_yourself(user_id, actor, "reset your own password (change it with your current one)")
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
