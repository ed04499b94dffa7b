"""Who is asking, for every surface: the dependencies through which the API, the pages,
tus and the seed routes put their question to the authority
(``sealbox.accounts.authority``).

A route declares the action it performs (``Caller(Action.WRITE, "api")``); the
dependency finds the credential where that surface accepts one, has the account service
resolve it (kind included) and the authority allow the action. The JSON API takes
``Authorization: Bearer`` (login and personal tokens) or, for the web interface's own
scripts, the session cookie; a page takes only the session cookie and sends a browser
without one to the sign-in page.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from sealbox.accounts.authority import Action, Presented, authorise
from sealbox.accounts.schemas import Principal
from sealbox.errors import AuthenticationFailed
from sealbox.sharing.gate import WithCredential
from sealbox.web.context import client_of, runtime_of
from sealbox.web.cookies import cookie
from sealbox.web.sessions import SESSION_COOKIE

Surface = Literal["api", "page"]

# auto_error=False: a missing token is answered by our own problem+json 401.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


class SignInRequired(Exception):
    """A page needs a signed-in browser; the pages answer it with a redirect to sign in."""


async def session_of(request: Request) -> Principal | None:
    """The account signed in through this browser's session cookie, if any."""
    token = cookie(request, SESSION_COOKIE)
    if token is None:
        return None
    try:
        return await runtime_of(request).accounts.authenticate(token, "cookie")
    except AuthenticationFailed:
        return None


def presented(request: Request, bearer: str | None) -> tuple[str, Presented]:
    """The API credential of a request, and how it came: ``Authorization: Bearer``, or
    else the session cookie (for the web interface's own scripts)."""
    if bearer:
        return bearer, "bearer"
    session = cookie(request, SESSION_COOKIE)
    if session is None:
        raise AuthenticationFailed("an 'Authorization: Bearer' token is required")
    return session, "cookie"


async def credential_of(request: Request, bearer: Annotated[str | None, Depends(oauth2)]) -> WithCredential:
    """Dependency: the API credential, not yet resolved, for a route that reads through
    the gate: the gate resolves it in the same query as the file (one round trip), and
    the authority decides there (``Action.READ``). Raises ``AuthenticationFailed`` when
    there is none."""
    token, how = presented(request, bearer)
    return WithCredential(token, how, client_of(request))


class Caller:
    """Dependency: the account making the request, allowed to perform ``action``.

    Raises ``AuthenticationFailed`` (API) or ``SignInRequired`` (page) without an
    accepted credential, ``PermissionDenied`` when the authority refuses the action.
    """

    def __init__(self, action: Action, surface: Surface) -> None:
        self.action = action
        self.surface = surface

    async def __call__(self, request: Request, bearer: Annotated[str | None, Depends(oauth2)]) -> Principal:
        if self.surface == "page":
            user = await session_of(request)
            if user is None:
                raise SignInRequired
        else:
            user = await runtime_of(request).accounts.authenticate(*presented(request, bearer))
        authorise(user, self.action)
        return user


# The API's callers.
CurrentUser = Annotated[Principal, Depends(Caller(Action.READ, "api"))]
WritingUser = Annotated[Principal, Depends(Caller(Action.WRITE, "api"))]
AdminUser = Annotated[Principal, Depends(Caller(Action.ADMIN, "api"))]
# The pages' callers: a page that only shows, and a form that changes something.
PageUser = Annotated[Principal, Depends(Caller(Action.READ, "page"))]
PageWriter = Annotated[Principal, Depends(Caller(Action.WRITE, "page"))]
# An API reader whose credential the gate resolves with the file it asks for.
Reader = Annotated[WithCredential, Depends(credential_of)]
