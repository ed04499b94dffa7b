"""File content responses, shared by every route that returns file bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from sealbox.api.errors import problem
from sealbox.api.http import Unsatisfiable, content_disposition, parse_range
from sealbox.archive import ArchiveError
from sealbox.errors import SealboxError, TooLarge
from sealbox.files.names import servable_content_type
from sealbox.logs import AlreadyLogged
from sealbox.sharing.gate import Archive, Opened

log = structlog.get_logger()

# The content is the user's, not ours: never let a browser render or sniff it here.
CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
    "Accept-Ranges": "bytes",
}


async def _body(opened: Opened, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
    download = opened.download
    length, sent, failed = end - start + 1, 0, False
    try:
        # Closed here, not left to the garbage collector: its own ``finally`` gives back to
        # a link what was not delivered.
        async with aclosing(opened.content(start, end)) as pieces:
            async for piece in pieces:
                yield memoryview(piece)
                sent += len(piece)  # counted once the server has taken it
    except SealboxError as exc:
        # Headers are gone already: abort the connection (by raising) so the client
        # sees a cut-short body instead of a well-terminated wrong one. One event, with
        # the file's id and never its name; the exception that cuts the connection is
        # not reported a second time.
        failed = True
        log.error("download.aborted", file_id=str(download.file.id), code=exc.code, sent=sent, length=length)
        raise AlreadyLogged(exc.code) from exc
    finally:
        if sent < length and not failed:
            # The client went away (or the server is stopping): not an error of ours.
            log.info("download.interrupted", file_id=str(download.file.id), sent=sent, length=length)


class SettledResponse(StreamingResponse):
    """A streamed body with something to do once the response is over, however it ended:
    ``settle`` runs even when the body never started (the client went away between the
    charge and the first byte), where the body's own ``finally`` cannot."""

    def __init__(self, content: AsyncIterator[Any], settle: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._settle = settle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._settle()


async def content_response(request: Request, opened: Opened) -> Response:
    """200, 206 or 416 for ``opened``, honouring ``Range`` and ``If-Range``; ``HEAD`` too.

    A ``GET`` is charged to the link it came through (if any) before the body starts.
    """
    download = opened.download
    info = download.file
    headers = {
        **CONTENT_HEADERS,
        "ETag": info.etag,
        "Content-Disposition": content_disposition(info.name),
        # Set as a header, not a media type, so Starlette adds no charset of its own.
        "Content-Type": servable_content_type(info.content_type),
    }
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != info.etag:
        range_header = None  # the representation changed (or a date was given): send it all
    try:
        selected = parse_range(range_header, info.size)
    except Unsatisfiable:
        return problem(
            416,
            f"the range is outside the file of {info.size} bytes",
            "range_not_satisfiable",
            {**CONTENT_HEADERS, "Content-Range": f"bytes */{info.size}"},
        )
    status = 200
    start, end = 0, info.size - 1
    if selected is not None:
        status = 206
        start, end = selected
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    await opened.begin(start, end)
    if end < start:
        return Response(status_code=status, headers=headers)
    if not opened.refundable:
        # A small blob read whole at open: decrypt it here and answer in one piece, without
        # a streaming task. A link with a byte allowance keeps streaming, which knows what
        # a cut-short response did not deliver; a failure streams too, and aborts there.
        body = await opened.download.in_memory(start, end)
        if body is not None:
            return Response(body, status_code=status, headers=headers)
    return SettledResponse(_body(opened, start, end), opened.abandon, status_code=status, headers=headers)


ARCHIVE_HEADERS = {**CONTENT_HEADERS, "Accept-Ranges": "none", "Content-Type": "application/zip"}


async def _archive_body(archive: Archive) -> AsyncIterator[bytes]:
    sent = 0
    try:
        async with aclosing(archive.content()) as pieces:
            async for piece in pieces:
                yield piece
                sent += len(piece)
    except SealboxError as exc:
        # As for one file: abort the connection, so the client sees a cut-short archive.
        log.error("archive.aborted", code=exc.code, sent=sent, files=len(archive.collection.files))
        raise AlreadyLogged(exc.code) from exc


async def archive_response(request: Request, archive: Archive) -> Response:
    """A collection as one streamed ZIP (no ranges: it is made as it is sent). Its exact
    length is known before the first byte, so the response has a ``Content-Length``.
    A ``GET`` is charged (and audited) before the body starts; ``HEAD`` is free."""
    try:
        size = archive.size
    except ArchiveError as exc:
        # A path no ZIP can hold (over 65,535 bytes): said before anything is charged.
        raise TooLarge(f"these files cannot be put in one archive: {exc}") from None
    headers = {
        **ARCHIVE_HEADERS,
        "Content-Disposition": content_disposition(archive.name),
        "Content-Length": str(size),
    }
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    await archive.begin()
    return SettledResponse(_archive_body(archive), archive.settle, status_code=200, headers=headers)
