"""The one cap on request bodies, as an ASGI middleware in front of every route.

Every request body is bounded while it is read, before anything parses it:

- A route that reads a small body (JSON, a form, or none at all) gets at most
  ``BODY_LIMIT`` bytes. A ``Content-Length`` over it is refused at once; a chunked body is
  read here, counting, and refused as soon as it passes the cap, so nothing downstream ever
  holds more than ``BODY_LIMIT`` bytes, whether or not the route reads its body at all.
- A route that streams a file declares it with ``STREAMED_BODY`` in its ``openapi_extra``
  (it also shows in the OpenAPI document as ``x-sealbox-body: stream``). Its body passes
  through untouched: the upload code bounds it by the upload limits (the largest file,
  the upload's declared length, quota, an upload link's allowance) as it reads.

Refusals are 413 ``application/problem+json`` naming the limit, with ``Connection:
close`` so that a client still sending is not read any further. A small body must also
arrive whole within ``BODY_TIMEOUT`` seconds (408 otherwise); a file stream may take as
long as it needs, but not stall: the HTTP server closes a connection whose body sends
nothing for ``sealbox.api.protocol.BODY_IDLE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealbox.api.errors import problem

BODY_LIMIT = 64 << 10
# A capped body must arrive whole within this many seconds (a client trickling it byte
# by byte would hold a connection for hours otherwise): then 408.
BODY_TIMEOUT = 20.0
STREAMED_BODY: dict[str, Any] = {"x-sealbox-body": "stream"}


def streamed(extra: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is a file stream bounded by the upload limits."""
    return {**extra, **STREAMED_BODY}


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's ``Content-Length`` (already validated by the HTTP server), or ``None``."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 19 else BODY_LIMIT + 1
    return None


def _chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"transfer-encoding" for name, _ in headers)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes, except on routes that stream a file."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], limit: int = BODY_LIMIT) -> None:
        self.app = app
        self.limit = limit
        self.streams = [r for r in routes if isinstance(r, Route) and _is_stream(r)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        declared = _declared_length(headers)
        if (declared is None or declared == 0) and not _chunked(headers):
            await self.app(scope, receive, send)  # no body: the common case costs two scans
            return
        if any(route.matches(scope)[0] == Match.FULL for route in self.streams):
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await self._read(receive)
        except TimeoutError:
            await self._too_slow(scope, receive, send)
            return
        if body is None:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> Message | None:
        """The whole body as one message, or ``None`` once it passes the limit (or the
        client goes away)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(parts), "more_body": False}

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            f"the request body is larger than the limit of {self.limit} bytes",
            "too_large",
            {"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _too_slow(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"
        response = problem(408, detail, "timeout", {"Connection": "close"})
        await response(scope, receive, send)


def _is_stream(route: Route) -> bool:
    extra = getattr(route, "openapi_extra", None) or {}
    return bool(extra.get("x-sealbox-body") == "stream")


def _replay(body: Message, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return body
        return await receive()  # after the body: the disconnect, when it comes

    return replay
