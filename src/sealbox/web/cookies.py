"""The one reading of a request's cookies, shared by every layer.

The CSRF middleware, sign-in and link grants all ask ``cookies_of``, so they can never
disagree about a request that carries two ``Cookie`` headers (HTTP/2 splits them; an
attacker may send both): every ``Cookie`` header counts, in order, joined as RFC 6265
§5.4 says a single one would be, and for a name given twice the last value wins. The
result is parsed once per request and kept in the ASGI scope.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request, cookie_parser
from starlette.types import Scope

_KEY = "sealbox.cookies"


def cookies_of(scope: Scope) -> Mapping[str, str]:
    """The cookies of the request ``scope`` describes."""
    cached: Mapping[str, str] | None = scope.get(_KEY)
    if cached is None:
        joined = "; ".join(value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie")
        cached = cookie_parser(joined) if joined else {}
        scope[_KEY] = cached
    return cached


def cookie(request: Request, name: str) -> str | None:
    return cookies_of(request.scope).get(name) or None
