"""uvicorn's httptools protocol with limits on request heads.

httptools (llhttp) accepts a request head of any size and any number of header lines,
and uvicorn waits for a head for as long as the client keeps sending it. This subclass
bounds all three, per request:

- ``MAX_HEADER_LINE`` bytes per header line and ``MAX_HEAD`` bytes for the whole head
  (request line and headers); ``MAX_HEADERS`` header lines. Over any of them the server
  answers ``431 Request Header Fields Too Large`` and closes the connection. The head is
  counted as it arrives, so a head that never ends is cut off after ``MAX_HEAD`` bytes
  plus at most one read (256 KiB), never buffered whole.
- ``HEAD_TIMEOUT`` seconds to receive a whole head, counted from the connection's start
  or the end of the previous response: then ``408 Request Timeout``, or a plain close if
  nothing of a new request arrived. (Idle keep-alive connections are closed by uvicorn
  after ``--timeout-keep-alive`` seconds, which ``sealbox serve`` sets.)

Selected with ``uvicorn --http sealbox.api.protocol:LimitedHttpTools`` (``sealbox serve``
does this). It relies on uvicorn's ``HttpToolsProtocol`` callbacks (tested with uvicorn 0.54;
the dependency is bounded below 1).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEADER_LINE = 16 << 10
MAX_HEAD = 64 << 10
MAX_HEADERS = 100
HEAD_TIMEOUT = 10.0
# A request body that sends nothing for this long is dead: the connection is closed (the
# application sees the client go away). Slow is fine; stalled is not.
BODY_IDLE_TIMEOUT = 60.0


class HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that broke a limit (httptools
    turns it into a parser error, which uvicorn would answer with a 400 of its own)."""


class LimitedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # receiving a head (or waiting for one)
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self._stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._body_timer is not None:
            self._await_body()  # the body is moving: its idle clock starts again
        if self._in_head:
            if self._head_bytes > MAX_HEAD:
                # Earlier reads brought more than a whole head may hold, and it has not
                # ended: refuse before parsing (and buffering) any more of it.
                self._refuse(431, f"the request head may have at most {MAX_HEAD} bytes")
                return
            # Counts everything read while the head is incomplete, so a head is never
            # buffered past MAX_HEAD plus one read (the precise size is checked at its end).
            self._head_bytes += len(data)
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # the parser error is ours: the answer is sent already
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse(431, f"a request may have at most {MAX_HEADERS} header lines")
            raise HeadRefused
        if len(name) + len(value) > MAX_HEADER_LINE:
            self._refuse(431, f"a header line may have at most {MAX_HEADER_LINE} bytes")
            raise HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD:
            self._refuse(431, f"the request head may have at most {MAX_HEAD} bytes")
            raise HeadRefused
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()
        if self._expects_body():
            self._await_body()

    def on_message_complete(self) -> None:
        self._stop_body_timer()
        super().on_message_complete()
        # What arrives next is the head of another request.
        self._in_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_head()

    def _await_head(self) -> None:
        """Start the clock for the next head: at the connection's start, and once a
        response is complete (never while one is being sent)."""
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if self.transport.is_closing() or not self._in_head or busy:
            return
        if self._head_bytes:
            self._refuse(408, "the request head did not arrive in time")
        else:
            self.transport.close()

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value not in (b"0", b"")):
                return True
        return False

    def _await_body(self) -> None:
        self._stop_body_timer()
        self._body_timer = self.loop.call_later(BODY_IDLE_TIMEOUT, self._body_stalled)

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_stalled(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with a plain-text ``message`` and close the connection."""
        self._refused = True
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
