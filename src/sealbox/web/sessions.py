"""Cookies of the web interface.

A signed-in browser holds an ordinary API token (named "web session", listed and
revocable with the others, checked in the database on every request) in an
``HttpOnly``, ``SameSite=Lax`` cookie, ``Secure`` as ``secure_cookies`` decides. A
link unlocked in a browser holds its grant in a cookie scoped to that link's path.
"""

from __future__ import annotations

import functools
from datetime import datetime

import structlog
from starlette.requests import Request
from starlette.responses import Response

from sealbox.db.base import utcnow

SESSION_COOKIE = "sealbox_session"
GRANT_COOKIE = "sealbox_grant"
log = structlog.get_logger()


def secure_cookies(request: Request) -> bool:
    """Whether cookies set on this response carry ``Secure``: always, if the operator
    said so (``SEALBOX_COOKIE_SECURE=always``), else when the request came over HTTPS.

    Behind a TLS proxy that is not trusted, the scheme sealbox sees is ``http`` (its
    ``X-Forwarded-Proto`` is ignored, rightly): ``auto`` would then send session and
    grant cookies without ``Secure``, so a browser would also send them over plain HTTP.
    That case is logged once per process, naming the setting that fixes it.
    """
    if request.app.state.cookie_secure == "always" or request.url.scheme == "https":
        return True
    if request.headers.get("x-forwarded-proto", "").lower() == "https":
        _warn_untrusted_tls_proxy()
    return False


@functools.cache
def _warn_untrusted_tls_proxy() -> None:
    log.warning(
        "cookies.not_secure",
        reason="a proxy forwarded an HTTPS request but is not in SEALBOX_TRUSTED_PROXIES",
        fix="list the proxy in SEALBOX_TRUSTED_PROXIES or set SEALBOX_COOKIE_SECURE=always",
    )


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
        secure=secure_cookies(request),
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request))


def set_grant(response: Response, request: Request, path: str, grant: str, expires_at: datetime) -> None:
    response.set_cookie(
        GRANT_COOKIE,
        grant,
        max_age=_max_age(expires_at),
        path=path,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
