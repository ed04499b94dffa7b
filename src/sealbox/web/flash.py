"""One-time messages carried across a post/redirect/get.

A form that changes something answers ``303 See Other`` to a page, so reloading that page
never repeats the action. What the action produced and must be shown once (a new link's
URL, a new token) travels to that page in a flash cookie:

- ``HttpOnly``, ``SameSite=Strict``, ``Secure`` as ``secure_cookies`` decides, scoped to
  the path of the page that shows it, and expiring after ``FLASH_SECONDS``;
- deleted by the page that shows it, which is answered with ``Cache-Control: no-store``;
- never part of a URL, so the secret cannot reach a server log, the browser history or a
  ``Referer`` header.

The cookie holds only what the same browser is about to see; the page renders it as text.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass

from starlette.requests import Request
from starlette.responses import Response

from sealbox.inputs import storable
from sealbox.web.cookies import cookie
from sealbox.web.sessions import secure_cookies

FLASH_COOKIE = "sealbox_flash"
FLASH_SECONDS = 120
MAX_FLASH = 2048


@dataclass(frozen=True)
class Flash:
    notice: str
    secret: str | None = None  # shown once: a new link's path, a new token
    item: str | None = None  # the id of what was created, to show its details


def set_flash(response: Response, request: Request, path: str, flash: Flash) -> None:
    """Have the page at ``path`` show ``flash`` once."""
    value = base64.urlsafe_b64encode(json.dumps(asdict(flash)).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_SECONDS,
        path=path,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )


def read_flash(request: Request) -> Flash | None:
    """The flash this request carries, or ``None`` (also for anything malformed)."""
    value = cookie(request, FLASH_COOKIE)
    if not value or len(value) > MAX_FLASH:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value))
        fields = {key: data.get(key) for key in ("notice", "secret", "item")}
        texts = [v for v in fields.values() if v is not None]
        if not all(isinstance(v, str) and storable(v) for v in texts) or fields["notice"] is None:
            return None  # (lone surrogates could not even be written into the page)
        return Flash(**fields)
    except (binascii.Error, ValueError, AttributeError):
        return None


def shown(response: Response, request: Request, path: str, flash: Flash | None) -> Response:
    """``response`` with ``flash`` consumed: the cookie deleted, the page not cached."""
    if flash is not None:
        response.delete_cookie(
            FLASH_COOKIE, path=path, httponly=True, samesite="strict", secure=secure_cookies(request)
        )
        response.headers["Cache-Control"] = "no-store"
    return response
