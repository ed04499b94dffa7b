"""Dependencies shared by the routes: the runtime and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sealbox.accounts.schemas import Principal
from sealbox.audit.service import Actor
from sealbox.errors import AuthenticationFailed, PermissionDenied
from sealbox.runtime import Runtime
from sealbox.web.pages import client_of, runtime_of
from sealbox.web.sessions import SESSION_COOKIE

# auto_error=False: a missing token is answered by our own problem+json 401.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


async def current_user(
    request: Request, runtime: RuntimeDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    """The caller, by bearer token, or by the web interface's session cookie."""
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationFailed("an 'Authorization: Bearer' token is required")
    return await runtime.accounts.authenticate(token)


CurrentUser = Annotated[Principal, Depends(current_user)]


async def writing_user(user: CurrentUser) -> Principal:
    """The caller, who must hold a full-scope token (a read-only token only reads)."""
    if user.scope != "full":
        raise PermissionDenied("this token is read-only")
    return user


async def admin_user(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise PermissionDenied("administrators only")
    if user.scope != "full":
        raise PermissionDenied("this token is read-only")
    return user


WritingUser = Annotated[Principal, Depends(writing_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]


def actor_of(request: Request, user: Principal) -> Actor:
    return user.actor(client_of(request))
