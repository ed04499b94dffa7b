"""Cookies of the web interface.

A signed-in browser holds an ordinary API token (named "web session", listed and
revocable with the others, checked in the database on every request) in an
``HttpOnly``, ``SameSite=Lax`` cookie, ``Secure`` when the site is served over TLS. A
link unlocked in a browser holds its grant in a cookie scoped to that link's path.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from sealbox.db.base import utcnow

SESSION_COOKIE = "sealbox_session"
GRANT_COOKIE = "sealbox_grant"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _max_age(expires_at: datetime | None) -> int | None:
    return None if expires_at is None else max(0, int((expires_at - utcnow()).total_seconds()))


def set_session(response: Response, request: Request, token: str, expires_at: datetime | None) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=_max_age(expires_at),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))


def set_grant(response: Response, request: Request, path: str, grant: str, expires_at: datetime) -> None:
    response.set_cookie(
        GRANT_COOKIE,
        grant,
        max_age=_max_age(expires_at),
        path=path,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
