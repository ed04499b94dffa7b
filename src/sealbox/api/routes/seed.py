"""The two routes of the original design, kept as a compatible entry point.

They behave like the API (same authentication, encryption, gate and errors); the path
segment of ``/download`` is a file id issued by the server, never a path.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sealbox.api.deps import Reader, RuntimeDep, WritingUser
from sealbox.api.downloads import content_response
from sealbox.api.errors import responses
from sealbox.api.routes.files import CONTENT, MULTIPART_FILE, upload_body
from sealbox.api.uploads import owner_store, receive_multipart
from sealbox.files.schemas import FileRead
from sealbox.files.service import file_ref

router = APIRouter(tags=["compatibility"])


@router.post(
    "/upload",
    status_code=201,
    openapi_extra=upload_body(MULTIPART_FILE),
    responses=responses(400, 401, 403, 413, 422, 503),
)
async def upload(request: Request, runtime: RuntimeDep, user: WritingUser) -> FileRead:
    """Upload a file as multipart/form-data in field `file` (same as `POST /api/v1/files`)."""
    return await receive_multipart(request, owner_store(request, runtime, user))


# GET and HEAD as two operations (each with its own id in the OpenAPI document).
@router.get(
    "/download/{file_id}", response_class=Response, responses={**CONTENT, **responses(401, 404, 416, 422, 500, 503)}
)
@router.head(
    "/download/{file_id}", response_class=Response, responses={**CONTENT, **responses(401, 404, 416, 422, 500, 503)}
)
async def download(file_id: str, request: Request, runtime: RuntimeDep, reader: Reader) -> Response:
    """Download a file by id (same as `GET /api/v1/files/{id}/content`)."""
    opened = await runtime.gate.open(reader, file_ref(file_id))
    return await content_response(request, opened)
