"""Streaming request bodies into ``FileService.upload``: raw bodies and multipart.

Never ``UploadFile`` (it spools to ``$TMPDIR`` in plaintext) and never a whole body in
memory: the file part is handed on piece by piece as it arrives.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from sealbox.accounts.schemas import Principal
from sealbox.api.deps import actor_of
from sealbox.api.http import filename_from_disposition, parse_count, percent_decoded
from sealbox.errors import InvalidInput, TooLarge
from sealbox.files.folders import folder_ref
from sealbox.files.schemas import FileRead
from sealbox.files.tree import Place, split_path
from sealbox.runtime import Runtime

T = TypeVar("T")
FILE_FIELD = "file"
# Bounds on everything in a multipart body that is not the file itself.
MAX_OTHER_BYTES = 64 << 10
MAX_PARTS = 32
MAX_HEADER_BYTES = 16 << 10


class MultipartFile:
    """Reads a ``multipart/form-data`` body up to its ``file`` part, then streams it."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self._stream = request.stream().__aiter__()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
            # Room for a long file name, so that it is refused with a specific message.
            max_header_size=MAX_HEADER_BYTES,
        )
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parts = 0
        self._other = 0
        self._in_file = self._file_done = self._ended = False
        self._pending: list[bytes] = []
        self.filename: str | None = None
        self.content_type: str | None = None

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidInput(f"a multipart body may have at most {MAX_PARTS} parts")
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") != FILE_FIELD.encode() or self.filename is not None:
            return
        raw_name = params.get(b"filename")
        if raw_name is None:
            raise InvalidInput("the 'file' part has no filename")
        try:
            self.filename = raw_name.decode()
            content_type = self._headers.get(b"content-type")
            self.content_type = content_type.decode("ascii") if content_type else None
        except UnicodeDecodeError:
            raise InvalidInput("the 'file' part headers are not valid UTF-8") from None
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])
            return
        self._other += end - start
        if self._other > MAX_OTHER_BYTES:
            raise InvalidInput(f"multipart fields other than 'file' may hold at most {MAX_OTHER_BYTES} bytes")

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True

    def _end(self) -> None:
        self._ended = True

    async def _feed(self) -> None:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            raise InvalidInput("the multipart body ended early") from None
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            raise InvalidInput("the multipart body is malformed") from None

    async def start(self) -> None:
        """Read up to the headers of the ``file`` part. Raises ``InvalidInput``."""
        while self.filename is None:
            if self._ended:
                raise InvalidInput("the multipart body has no 'file' field")
            await self._feed()

    async def data(self) -> AsyncIterator[bytes]:
        """The file part's bytes; ends only once the whole body has been read and checked,
        so a truncated or malformed body never becomes a stored file."""
        while True:
            pending, self._pending = self._pending, []
            for piece in pending:
                yield piece
            if self._file_done:
                break
            await self._feed()
        while not self._ended:
            await self._feed()
        self._pending.clear()


def _boundary(content_type: str) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise InvalidInput("multipart/form-data needs a boundary parameter")
    return boundary


def _name_from_header(request: Request) -> str | None:
    header = request.headers.get("content-disposition")
    if header is None:
        return None
    try:
        return filename_from_disposition(header)
    except ValueError:
        raise InvalidInput("the Content-Disposition filename* is not valid UTF-8") from None


async def _raw(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


# Stores one uploaded file: (name, content type or None, body) -> result.
Store = Callable[[str, str | None, AsyncIterator[bytes]], Awaitable[T]]


def refuse_name_in_url(request: Request) -> None:
    """Names never travel in URLs: proxies write request lines to their logs (nginx's
    error log does whenever an upstream fails), and a name is plaintext we promise to keep.
    Parameter names are compared without case, so ``?Name=`` is refused too."""
    given = {key.lower() for key in request.query_params}
    if "name" in given:
        raise InvalidInput(
            "file names are not accepted in the URL (?name=), which proxies log: send the name in a "
            "Content-Disposition header (attachment; filename*=UTF-8''<percent-encoded name>) "
            "or as the filename of a multipart/form-data 'file' field"
        )
    if "uploader" in given:
        raise InvalidInput(
            f"uploader names are not accepted in the URL (?uploader=), which proxies log: send it in a "
            f"{UPLOADER_HEADER} header (percent-encoded UTF-8)"
        )
    if "path" in given:
        # Folder names, as a client may try to send them; ignored, they would still be logged.
        raise InvalidInput(
            f"folder paths are not accepted in the URL (?path=), which proxies log: send it in a "
            f"{PATH_HEADER} header (percent-encoded UTF-8), or as 'path' in the tus Upload-Metadata"
        )


UPLOADER_HEADER = "Sealbox-Uploader"
UPLOADER_PARAMETER: dict[str, Any] = {
    "name": UPLOADER_HEADER,
    "in": "header",
    "required": False,
    "description": "Who you are, for the link's owner: percent-encoded UTF-8 (never in the URL).",
    "schema": {"type": "string"},
}


def uploader_of(request: Request) -> str | None:
    """Who an upload-request link's uploader says they are: the ``Sealbox-Uploader``
    header, percent-encoded UTF-8 (raises ``InvalidInput`` if it is not)."""
    value = request.headers.get(UPLOADER_HEADER)
    if value is None:
        return None
    try:
        return percent_decoded(value)
    except ValueError:
        raise InvalidInput(f"the {UPLOADER_HEADER} header is not percent-encoded UTF-8") from None


async def receive_multipart(request: Request, store: Store[T]) -> T:
    refuse_name_in_url(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidInput("send the file as multipart/form-data in a field named 'file'")
    body = MultipartFile(request, _boundary(content_type))
    await body.start()
    assert body.filename is not None
    return await store(body.filename, body.content_type, body.data())


async def receive_upload(request: Request, max_size: int, store: Store[T]) -> T:
    """Store the request body as a new file with ``store``: multipart (field ``file``)
    if the body is ``multipart/form-data``, otherwise the raw body named by its
    ``Content-Disposition`` header."""
    refuse_name_in_url(request)
    declared = request.headers.get("content-length")
    if declared is not None and parse_count(declared, "Content-Length") > max_size + MAX_OTHER_BYTES:
        raise TooLarge(f"the file is larger than the limit of {max_size} bytes")
    content_type = request.headers.get("content-type")
    if content_type and content_type.lower().startswith("multipart/form-data"):
        return await receive_multipart(request, store)
    name = _name_from_header(request)
    if name is None:
        raise InvalidInput(
            "name the file in a Content-Disposition header (attachment; filename*=UTF-8''<percent-encoded "
            "name>), or send multipart/form-data"
        )
    if content_type and content_type.lower().startswith("application/x-www-form-urlencoded"):
        # What `curl --data-binary` sends by default; it says nothing about the file.
        content_type = None
    return await store(name, content_type, _raw(request))


PATH_HEADER = "Sealbox-Path"
PLACE_PARAMETERS: tuple[dict[str, Any], ...] = (
    {
        "name": "folder",
        "in": "query",
        "required": False,
        "description": "The id of the folder the file goes to (absent or `top`: the top of your files).",
        "schema": {"type": "string"},
    },
    {
        "name": PATH_HEADER,
        "in": "header",
        "required": False,
        "description": "A relative path of folders below that folder ('photos/2024', percent-encoded UTF-8), "
        "made as needed: how a folder keeps its tree when it is uploaded.",
        "schema": {"type": "string"},
    },
    {
        "name": "on_conflict",
        "in": "query",
        "required": False,
        "description": "When the name is taken in that folder: `rename` (the default) stores it as "
        "'name (2).ext'; `fail` answers 409.",
        "schema": {"type": "string", "enum": ["rename", "fail"]},
    },
)


def folder_path_of(value: str | None) -> tuple[str, ...]:
    """A relative folder path sent percent-encoded (the ``Sealbox-Path`` header, tus
    metadata), checked (``files.tree.split_path``)."""
    if value is None:
        return ()
    try:
        decoded = percent_decoded(value)
    except ValueError:
        raise InvalidInput(f"the {PATH_HEADER} header is not percent-encoded UTF-8") from None
    return split_path(decoded)


def place_of(request: Request, folder: uuid.UUID | None = None) -> Place:
    """Where an upload goes: ``folder`` (a link's) or the ``folder`` query parameter, the
    ``Sealbox-Path`` header below it, and the ``on_conflict`` rule."""
    if folder is None:
        given = request.query_params.get("folder")
        folder = folder_ref(given or None)
    on_conflict = request.query_params.get("on_conflict", "rename")
    if on_conflict not in ("rename", "fail"):
        raise InvalidInput("on_conflict is 'rename' or 'fail'")
    path = folder_path_of(request.headers.get(PATH_HEADER))
    return Place(folder, path, "fail" if on_conflict == "fail" else "rename")


def owner_store(request: Request, runtime: Runtime, user: Principal) -> Store[FileRead]:
    """Store uploads as files of the signed-in ``user``, where the request says."""
    where = place_of(request)

    async def store(name: str, content_type: str | None, body: AsyncIterator[bytes]) -> FileRead:
        return await runtime.files.upload(user.user_id, name, content_type, body, actor_of(request, user), where=where)

    return store
