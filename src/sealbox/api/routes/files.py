from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from sealbox.api.deps import CurrentUser, Reader, RuntimeDep, WritingUser, actor_of
from sealbox.api.downloads import content_response
from sealbox.api.errors import responses
from sealbox.api.limits import streamed
from sealbox.api.uploads import PLACE_PARAMETERS, owner_store, receive_upload
from sealbox.errors import InvalidInput
from sealbox.files.folders import folder_ref
from sealbox.files.schemas import FilePage, FileRead
from sealbox.files.service import MAX_PAGE, file_ref, parse_file_id
from sealbox.inputs import Count

router = APIRouter(prefix="/api/v1/files", tags=["files"])

MULTIPART_FILE: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
    }
}
RAW_FILE: dict[str, Any] = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


NAME_HEADER: dict[str, Any] = {
    "name": "Content-Disposition",
    "in": "header",
    "required": False,
    "description": "The file's name, for a raw body: `attachment; filename*=UTF-8''<percent-encoded name>`. "
    "Names are never accepted in the URL (`?name=` is refused with 400): proxies log URLs.",
    "schema": {"type": "string"},
}


def upload_body(content: dict[str, Any], *parameters: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI request body for a streamed upload: the route reads the stream itself,
    bounded by the upload limits instead of the small-body cap (see ``api.limits``)."""
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": content}}
    declared = [NAME_HEADER] if "application/octet-stream" in content else []
    if declared or parameters:
        extra["parameters"] = [*declared, *parameters]
    return streamed(extra)


CONTENT: dict[int | str, dict[str, Any]] = {
    "200": {"description": "The whole file", "content": {"application/octet-stream": {}}},
    "206": {"description": "The requested byte range", "content": {"application/octet-stream": {}}},
}


@router.post(
    "",
    status_code=201,
    openapi_extra=upload_body({**RAW_FILE, **MULTIPART_FILE}, *PLACE_PARAMETERS),
    responses=responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def upload_file(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    user: WritingUser,
) -> FileRead:
    """Upload a file. The body is encrypted as it streams in; nothing is kept in plaintext.

    A raw body is named by `Content-Disposition: attachment; filename*=UTF-8''<percent-encoded
    name>`; a name in the URL (`?name=`) is refused with 400, since proxies log URLs. It goes
    to the top of your files, or to the `folder` given (and the `Sealbox-Path` below it)."""
    created = await receive_upload(request, runtime.settings.max_upload_size, owner_store(request, runtime, user))
    response.headers["Location"] = f"/api/v1/files/{created.id}"
    return created


@router.get("", responses=responses(400, 401, 422, 500, 503))
async def list_files(
    runtime: RuntimeDep,
    user: CurrentUser,
    limit: Annotated[Count, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> FilePage:
    """Your files, newest first."""
    return await runtime.files.list(user.user_id, limit, cursor)


@router.get("/{file_id}", responses=responses(401, 404, 422, 500, 503))
async def get_file(file_id: str, runtime: RuntimeDep, reader: Reader) -> FileRead:
    """A file's metadata (yours, or one shared with you)."""
    info, _ = await runtime.gate.describe(reader, file_ref(file_id))
    return info


class FileUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=1000, description="a new name")
    folder_id: str | None = Field(
        default=None, max_length=36, description="move into this folder; null or 'top': to the top; absent: stay"
    )


@router.patch("/{file_id}", responses=responses(400, 401, 403, 404, 409, 422, 503))
async def update_file(
    file_id: str, body: FileUpdate, request: Request, runtime: RuntimeDep, user: WritingUser
) -> FileRead:
    """Rename one of your files, move it to another folder, or both, atomically. Names
    are unique within a folder (409)."""
    actor = actor_of(request, user)
    target = parse_file_id(file_id)
    if "folder_id" in body.model_fields_set:
        folder = folder_ref(body.folder_id)
        return await runtime.folders.update_file(user.user_id, target, actor, name=body.name, folder=folder)
    if body.name is None:
        raise InvalidInput("give a new name, a folder_id to move to, or both")
    return await runtime.folders.update_file(user.user_id, target, actor, name=body.name)


@router.delete("/{file_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def delete_file(file_id: str, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    """Delete a file with its links and grants. Its key is destroyed with its record, so
    the data is unreadable at once."""
    await runtime.files.delete(user.user_id, parse_file_id(file_id), actor_of(request, user))
    return Response(status_code=204)


# GET and HEAD as two operations (each with its own id in the OpenAPI document).
@router.get(
    "/{file_id}/content", response_class=Response, responses={**CONTENT, **responses(401, 404, 416, 422, 500, 503)}
)
@router.head(
    "/{file_id}/content", response_class=Response, responses={**CONTENT, **responses(401, 404, 416, 422, 500, 503)}
)
async def file_content(file_id: str, request: Request, runtime: RuntimeDep, reader: Reader) -> Response:
    """Download a file (yours, or one shared with you), or a byte range of it
    (`Range: bytes=a-b`; one range per request)."""
    # The credential, the file and the grant are resolved together by the gate.
    opened = await runtime.gate.open(reader, file_ref(file_id))
    return await content_response(request, opened)
