"""Browser-facing defences, as one ASGI middleware in front of the whole application.

- Headers on every response: a Content-Security-Policy that allows only this origin and
  no inline code (``default-src 'self'``, ``frame-ancestors 'none'``), ``Referrer-Policy:
  no-referrer`` (share tokens in URLs never leak through the Referer),
  ``X-Content-Type-Options: nosniff``. A response that sets its own policy (file content:
  ``sandbox``) keeps it. ``Cache-Control: no-store`` on everything but the static files
  (a response that sets its own keeps it), and ``Vary: Accept`` on a link's paths, which
  answer a page or JSON.
- CSRF: every state-changing request (anything but GET, HEAD, OPTIONS) that a browser
  marks as coming from elsewhere is refused, with or without a cookie: ``Sec-Fetch-Site``
  must be ``same-origin`` or ``none`` when the browser sends it; otherwise ``Origin``,
  when sent, must be this origin. Refusing cookie-less requests too closes login CSRF
  (a cross-site form signing the victim's browser in to the attacker's account) and
  keeps other sites from driving the public link forms. Clients that are not browsers
  send neither header and are not affected.
  Session cookies are also ``SameSite=Lax``, so browsers do not attach them to
  cross-site posts in the first place.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _origin(scope: Scope, headers: dict[bytes, bytes]) -> str:
    scheme = scope.get("scheme", "http")
    host = headers.get(b"host", b"").decode("latin-1")
    return f"{scheme}://{host}"


def cross_site(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    """Whether a browser says this request comes from another site or origin.

    ``Sec-Fetch-Site`` decides when present (every current browser sends it). Without
    it, ``Origin`` must be this origin; under ``Referrer-Policy: no-referrer`` browsers
    send ``Origin: null`` on same-origin form posts, so ``null`` only counts against a
    request that lacks ``Sec-Fetch-Site``.
    """
    fetch_site = headers.get(b"sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    return origin is not None and origin.decode("latin-1") != _origin(scope, headers)


class BrowserSecurity:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            headers = dict(scope["headers"])
            if cross_site(scope, headers):
                await _refuse(send)
                return

        path: str = scope["path"]
        cached = path.startswith("/static/")
        negotiated = path.startswith(("/s/", "/r/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [h for h in HEADERS if h[0] not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", CSP.encode()))
                if not cached and b"cache-control" not in present:
                    # Pages, listings and files are someone's: no shared or disk cache keeps them.
                    extra.append((b"cache-control", b"no-store"))
                if negotiated and b"vary" not in present:
                    extra.append((b"vary", b"Accept"))  # a link answers a page or JSON
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
            "detail": "cross-site request refused",
            "code": "cross_site",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
                (b"content-security-policy", CSP.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
