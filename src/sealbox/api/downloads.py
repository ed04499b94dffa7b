"""File content responses, shared by every route that returns file bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from sealbox.api.errors import problem
from sealbox.api.http import Unsatisfiable, content_disposition, parse_range
from sealbox.errors import SealboxError
from sealbox.files.service import Download

log = structlog.get_logger()

# The content is the user's, not ours: never let a browser render or sniff it here.
CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
    "Accept-Ranges": "bytes",
}


async def _body(download: Download, start: int, end: int) -> AsyncIterator[bytes | memoryview]:
    try:
        async for piece in download.content(start, end):
            yield memoryview(piece)
    except SealboxError as exc:
        # Headers are gone already: abort the connection (by raising) so the client
        # sees a cut-short body instead of a well-terminated wrong one.
        log.error("download.aborted", file_id=download.file.id, code=exc.code)
        raise


def content_response(request: Request, download: Download) -> Response:
    """200, 206 or 416 for ``download``, honouring ``Range`` and ``If-Range``; ``HEAD`` too."""
    info = download.file
    headers = {
        **CONTENT_HEADERS,
        "ETag": info.etag,
        "Content-Disposition": content_disposition(info.name),
        # Set as a header, not a media type, so Starlette adds no charset of its own.
        "Content-Type": info.content_type,
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
    if request.method == "HEAD" or end < start:
        return Response(status_code=status, headers=headers)
    return StreamingResponse(_body(download, start, end), status_code=status, headers=headers)
