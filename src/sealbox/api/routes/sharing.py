"""Managing what you share: links, grants to accounts, upload-request links; what others
share with you; and the audit trail of your files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from sealbox.api.deps import CurrentUser, RuntimeDep, WritingUser, actor_of
from sealbox.api.errors import responses
from sealbox.api.ids import parse_id
from sealbox.audit.service import MAX_PAGE, EventPage
from sealbox.errors import PermissionDenied
from sealbox.files.service import parse_file_id
from sealbox.ids import FileId
from sealbox.inputs import MAX_INT64, Count
from sealbox.sharing.schemas import (
    GrantCreate,
    GrantRead,
    LinkCreate,
    ReceivedFile,
    RequestCreate,
    RequestCreated,
    RequestRead,
    ShareCreate,
    ShareCreated,
    SharedFile,
    ShareRead,
)

router = APIRouter(prefix="/api/v1", tags=["sharing"])


@router.post("/files/{file_id}/shares", status_code=201, responses=responses(400, 401, 403, 404, 422, 503))
async def create_share(
    file_id: str, body: ShareCreate, request: Request, response: Response, runtime: RuntimeDep, user: WritingUser
) -> ShareCreated:
    """Create a download link (`/s/{token}`) for one of your files. The token is shown only here."""
    created = await runtime.sharing.create_share(user.user_id, parse_file_id(file_id), body, actor_of(request, user))
    response.headers["Location"] = f"/api/v1/shares/{created.id}"
    return created


@router.post("/shares", status_code=201, responses=responses(400, 401, 403, 404, 413, 422, 503))
async def create_link(
    body: LinkCreate, request: Request, response: Response, runtime: RuntimeDep, user: WritingUser
) -> ShareCreated:
    """Create a download link (`/s/{token}`) for one of your files (`file_id`), a folder
    (`folder_id`: whatever is in it when the link is opened) or a selection of files and
    folders (`items`, fixed now). The token is shown only here."""
    created = await runtime.sharing.create_link(user.user_id, body, actor_of(request, user))
    response.headers["Location"] = f"/api/v1/shares/{created.id}"
    return created


@router.get("/shares", responses=responses(401, 404, 422, 503))
async def list_shares(
    runtime: RuntimeDep,
    user: CurrentUser,
    file_id: Annotated[str | None, Query(description="Only the links of this file")] = None,
) -> list[ShareRead]:
    """Your links, newest first, with their status and what is left of their limits."""
    return await runtime.sharing.shares(user.user_id, parse_file_id(file_id) if file_id else None)


@router.delete("/shares/{share_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def revoke_share(share_id: str, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    """Revoke a link: it stops working at the next request, on every route."""
    await runtime.sharing.revoke_share(user.user_id, parse_id(share_id, "link"), actor_of(request, user))
    return Response(status_code=204)


@router.post("/files/{file_id}/grants", status_code=201, responses=responses(400, 401, 403, 404, 409, 422, 503))
async def create_grant(
    file_id: str, body: GrantCreate, request: Request, runtime: RuntimeDep, user: WritingUser
) -> GrantRead:
    """Share one of your files with another account, read-only."""
    return await runtime.sharing.grant(user.user_id, parse_file_id(file_id), body.username, actor_of(request, user))


@router.get("/files/{file_id}/grants", responses=responses(401, 404, 422, 503))
async def list_grants(file_id: str, runtime: RuntimeDep, user: CurrentUser) -> list[GrantRead]:
    return await runtime.sharing.grants(user.user_id, parse_file_id(file_id))


@router.delete("/files/{file_id}/grants/{grant_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def revoke_grant(
    file_id: str, grant_id: str, request: Request, runtime: RuntimeDep, user: WritingUser
) -> Response:
    """Take a grant back: the account loses access at its next request."""
    file = FileId(parse_id(file_id, "grant"))
    await runtime.sharing.revoke_grant(user.user_id, file, parse_id(grant_id, "grant"), actor_of(request, user))
    return Response(status_code=204)


@router.get("/shared-with-me", responses=responses(401, 500, 503))
async def shared_with_me(runtime: RuntimeDep, user: CurrentUser) -> list[SharedFile]:
    """Files other accounts have shared with you; download them at `/api/v1/files/{id}/content`."""
    return await runtime.sharing.shared_with_me(user.user_id)


@router.post("/upload-requests", status_code=201, responses=responses(400, 401, 403, 404, 422, 503))
async def create_request(
    body: RequestCreate, request: Request, response: Response, runtime: RuntimeDep, user: WritingUser
) -> RequestCreated:
    """Create an upload-request link (`/r/{token}`): anyone holding it may upload files into
    your space, within its limits, and see nothing. The token is shown only here."""
    created = await runtime.sharing.create_request(user.user_id, body, actor_of(request, user))
    response.headers["Location"] = f"/api/v1/upload-requests/{created.id}"
    return created


@router.get("/upload-requests", responses=responses(401, 503))
async def list_requests(runtime: RuntimeDep, user: CurrentUser) -> list[RequestRead]:
    return await runtime.sharing.requests(user.user_id)


@router.delete("/upload-requests/{request_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def revoke_request(request_id: str, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    await runtime.sharing.revoke_request(user.user_id, parse_id(request_id, "upload request"), actor_of(request, user))
    return Response(status_code=204)


@router.get("/upload-requests/{request_id}/files", responses=responses(401, 404, 422, 500, 503))
async def received_files(request_id: str, runtime: RuntimeDep, user: CurrentUser) -> list[ReceivedFile]:
    """Who uploaded what, and when, through one of your upload-request links."""
    return await runtime.sharing.received(user.user_id, parse_id(request_id, "upload request"))


@router.get("/audit", responses=responses(400, 401, 403, 422, 503))
async def audit_events(
    runtime: RuntimeDep,
    user: CurrentUser,
    before: Annotated[Count | None, Query(ge=1, le=MAX_INT64, description="next_before of the previous page")] = None,
    limit: Annotated[Count, Query(ge=1, le=MAX_PAGE)] = 100,
    all: Annotated[bool, Query(description="Every event, not only yours (administrators)")] = False,
) -> EventPage:
    """Events about your files, links and account, newest first; administrators may ask for all."""
    if all and not user.is_admin:
        raise PermissionDenied("administrators only")
    return await runtime.audit.events(None if all else user.user_id, before, limit)
