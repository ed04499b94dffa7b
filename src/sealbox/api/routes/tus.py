"""Resumable uploads over tus 1.0.0 (https://tus.io/protocols/resumable-upload):
core, creation, creation-with-upload, termination, checksum (sha1, sha256) and
expiration, at ``/api/v1/uploads/`` for accounts and ``/r/{token}/uploads/`` for
upload-request links. The rules live in ``sealbox.uploads``; this module speaks the
protocol."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealbox.api.deps import RuntimeDep, WritingUser, actor_of
from sealbox.api.errors import problem, responses
from sealbox.api.http import parse_count
from sealbox.api.limits import STREAMED_BODY
from sealbox.api.routes.links import Grant
from sealbox.api.uploads import refuse_name_in_url
from sealbox.audit.service import Actor
from sealbox.errors import InvalidInput
from sealbox.files.folders import folder_ref
from sealbox.files.tree import split_path
from sealbox.uploads.service import CHECKSUMS, Checksum, Holder, UploadState, parse_upload_id
from sealbox.web.context import client_of

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_STREAM = "application/offset+octet-stream"
TUS_METHODS = {"POST", "HEAD", "PATCH", "DELETE"}
TUS_PATH = re.compile(r"^(/api/v1/uploads|/r/[^/]+/uploads)(/|$)")

router = APIRouter(tags=["resumable uploads"])


class TusHeaders:
    """ASGI middleware for tus paths: ``Tus-Resumable`` on every response, and 412 for a
    tus request (``POST``, ``HEAD``, ``PATCH``, ``DELETE``) that does not speak tus 1.0.0."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not TUS_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        # Methods tus does not define fall through to the router's 405.
        if scope["method"] in TUS_METHODS and headers.get(b"tus-resumable") != TUS_VERSION.encode():
            detail = f"this server speaks tus {TUS_VERSION}: send 'Tus-Resumable: {TUS_VERSION}'"
            refusal = problem(
                412, detail, "unsupported_version", {"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION}
            )
            await refusal(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"tus-resumable", TUS_VERSION.encode())]
            await send(message)

        await self.app(scope, receive, send_with_version)


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None:
        raise InvalidInput(f"{name} must be a non-negative integer")
    return parse_count(value, name)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs, keys unique."""
    result: dict[str, str] = {}
    if not value:
        return result
    for pair in value.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or key in result:
            raise InvalidInput("Upload-Metadata must be comma-separated 'key base64value' pairs with unique keys")
        try:
            result[key] = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        # ValueError covers binascii.Error and a value that is not ASCII at all.
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
    return result


def _checksum(request: Request) -> Checksum | None:
    value = request.headers.get("upload-checksum")
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise InvalidInput(f"unsupported checksum algorithm {algorithm!r}: use one of {', '.join(CHECKSUMS)}")
    try:
        return Checksum(algorithm, base64.b64decode(encoded, validate=True))
    except ValueError:
        raise InvalidInput("Upload-Checksum must be '<algorithm> <base64 digest>'") from None


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _unsupported_type() -> Response:
    return problem(415, f"send the upload's bytes as {OFFSET_STREAM}", "unsupported_media_type")


def _state_headers(state: UploadState, holder: Holder) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(state.offset),
        "Upload-Expires": format_datetime(state.expires_at, usegmt=True),
    }
    # Only an account learns the id of the file its upload became: someone sending
    # through an upload link can see and address nothing in the owner's space.
    if state.file_id is not None and holder.request is None:
        headers["Sealbox-File-Id"] = state.file_id
    return headers


def _options(runtime: RuntimeDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(runtime.settings.max_upload_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        },
    )


async def _create(request: Request, runtime: RuntimeDep, holder: Holder, actor: Actor, base: str) -> Response:
    refuse_name_in_url(request)  # the name travels in Upload-Metadata, never in the URL
    if "upload-defer-length" in request.headers:
        raise InvalidInput("Upload-Defer-Length is not supported: send Upload-Length")
    length = _int_header(request, "upload-length")
    if length > runtime.settings.max_upload_size:
        limit = runtime.settings.max_upload_size
        return problem(
            413, f"Upload-Length is larger than the limit of {limit} bytes", "too_large", {"Tus-Max-Size": str(limit)}
        )
    metadata = parse_metadata(request.headers.get("upload-metadata"))
    name = metadata.get("filename") or metadata.get("name")
    content_type = metadata.get("filetype") or metadata.get("type")
    uploader = metadata.get("uploader")
    # Where the file goes: a folder of yours ("folder": its id) and a relative path of
    # folders below it ("path": "photos/2024", made as needed when the upload completes).
    given = metadata.get("folder")
    folder = folder_ref(given or None)
    path = split_path(metadata.get("path"))
    with_body = _has_body(request)
    if with_body and request.headers.get("content-type") != OFFSET_STREAM:
        return _unsupported_type()
    row = await runtime.uploads.create(holder, length, name, content_type, uploader, folder, path)
    location = f"{base}/{row.id}"
    if with_body or length == 0:
        state = await runtime.uploads.append(row.id, holder, 0, _body(request), _checksum(request), actor, row)
    else:
        state = UploadState(row.id, 0, row.length, row.expires_at)
    return Response(status_code=201, headers={"Location": location, **_state_headers(state, holder)})


async def _head(upload_id: str, runtime: RuntimeDep, holder: Holder) -> Response:
    state = await runtime.uploads.state(parse_upload_id(upload_id), holder)
    headers = {**_state_headers(state, holder), "Upload-Length": str(state.length), "Cache-Control": "no-store"}
    return Response(status_code=200, headers=headers)


async def _patch(request: Request, upload_id: str, runtime: RuntimeDep, holder: Holder, actor: Actor) -> Response:
    if request.headers.get("content-type") != OFFSET_STREAM:
        return _unsupported_type()
    offset = _int_header(request, "upload-offset")
    checksum = _checksum(request)
    state = await runtime.uploads.append(parse_upload_id(upload_id), holder, offset, _body(request), checksum, actor)
    return Response(status_code=204, headers=_state_headers(state, holder))


async def _delete(upload_id: str, runtime: RuntimeDep, holder: Holder) -> Response:
    await runtime.uploads.terminate(parse_upload_id(upload_id), holder)
    return Response(status_code=204)


# Accounts: /api/v1/uploads/

ACCOUNT_BASE = "/api/v1/uploads"


def _account(user: WritingUser) -> Holder:
    return Holder(user_id=user.user_id)


AccountHolder = Annotated[Holder, Depends(_account)]


@router.options(f"{ACCOUNT_BASE}/", status_code=204)
@router.options(f"{ACCOUNT_BASE}/{{upload_id}}", status_code=204)
async def options(runtime: RuntimeDep) -> Response:
    """tus discovery: version, extensions, largest upload, checksum algorithms."""
    return _options(runtime)


@router.post(
    f"{ACCOUNT_BASE}/",
    status_code=201,
    openapi_extra=STREAMED_BODY,
    responses=responses(400, 401, 403, 409, 412, 413, 415, 460, 503),
)
async def create_upload(request: Request, runtime: RuntimeDep, user: WritingUser, holder: AccountHolder) -> Response:
    """Start a resumable upload (tus creation; with a body: creation-with-upload)."""
    return await _create(request, runtime, holder, actor_of(request, user), ACCOUNT_BASE)


@router.head(f"{ACCOUNT_BASE}/{{upload_id}}", responses=responses(401, 404, 410, 412))
async def upload_offset(upload_id: str, runtime: RuntimeDep, holder: AccountHolder) -> Response:
    """How many bytes of the upload are safely stored."""
    return await _head(upload_id, runtime, holder)


@router.patch(
    f"{ACCOUNT_BASE}/{{upload_id}}",
    status_code=204,
    openapi_extra=STREAMED_BODY,
    responses=responses(400, 401, 403, 404, 409, 410, 412, 413, 415, 460, 503),
)
async def upload_append(
    upload_id: str, request: Request, runtime: RuntimeDep, user: WritingUser, holder: AccountHolder
) -> Response:
    """Append bytes at `Upload-Offset`; the last bytes turn the upload into a file (`Sealbox-File-Id`)."""
    return await _patch(request, upload_id, runtime, holder, actor_of(request, user))


@router.delete(f"{ACCOUNT_BASE}/{{upload_id}}", status_code=204, responses=responses(401, 403, 404, 410, 412))
async def upload_terminate(upload_id: str, runtime: RuntimeDep, holder: AccountHolder) -> Response:
    """Cancel an upload: what it stored is removed at once."""
    return await _delete(upload_id, runtime, holder)


# Upload-request links: /r/{token}/uploads/


async def _link(token: str, runtime: RuntimeDep, grant: Grant) -> Holder:
    return Holder(request=await runtime.sharing.live_request(token, grant))


LinkHolder = Annotated[Holder, Depends(_link)]


@router.options("/r/{token}/uploads/", status_code=204)
@router.options("/r/{token}/uploads/{upload_id}", status_code=204)
async def link_options(runtime: RuntimeDep) -> Response:
    return _options(runtime)


@router.post(
    "/r/{token}/uploads/",
    status_code=201,
    openapi_extra=STREAMED_BODY,
    responses=responses(400, 401, 404, 409, 410, 412, 413, 415, 460),
)
async def link_create_upload(token: str, request: Request, runtime: RuntimeDep, holder: LinkHolder) -> Response:
    """Start a resumable upload through an upload-request link (metadata `uploader` names you)."""
    return await _create(request, runtime, holder, Actor.link(client_of(request)), f"/r/{token}/uploads")


@router.head("/r/{token}/uploads/{upload_id}", responses=responses(401, 404, 410, 412))
async def link_upload_offset(upload_id: str, runtime: RuntimeDep, holder: LinkHolder) -> Response:
    return await _head(upload_id, runtime, holder)


@router.patch(
    "/r/{token}/uploads/{upload_id}",
    status_code=204,
    openapi_extra=STREAMED_BODY,
    responses=responses(400, 401, 404, 409, 410, 412, 413, 415, 460),
)
async def link_upload_append(upload_id: str, request: Request, runtime: RuntimeDep, holder: LinkHolder) -> Response:
    return await _patch(request, upload_id, runtime, holder, Actor.link(client_of(request)))


@router.delete("/r/{token}/uploads/{upload_id}", status_code=204, responses=responses(401, 404, 410, 412))
async def link_upload_terminate(upload_id: str, runtime: RuntimeDep, holder: LinkHolder) -> Response:
    return await _delete(upload_id, runtime, holder)
