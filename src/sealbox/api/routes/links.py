"""What a link's holder sees: share links at ``/s/{token}`` and upload-request links at
``/r/{token}``. No account is needed; a link with a password is unlocked with ``POST
…/unlock``, which returns a short-lived grant for that one link, sent back as
``Authorization: Bearer <grant>`` (a password never travels in a URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sealbox.api.deps import RuntimeDep
from sealbox.api.downloads import content_response
from sealbox.api.errors import responses
from sealbox.api.routes.files import CONTENT, MULTIPART_FILE, RAW_FILE, upload_body
from sealbox.api.uploads import PATH_HEADER, UPLOADER_PARAMETER, folder_path_of, receive_upload, uploader_of
from sealbox.audit.service import Actor
from sealbox.sharing.gate import ByLink
from sealbox.sharing.schemas import PublicRequest, PublicShare, Receipt, UnlockIssued, UnlockRequest
from sealbox.web.context import client_of, wants_html
from sealbox.web.cookies import cookie
from sealbox.web.pages import drop_page, share_page
from sealbox.web.sessions import GRANT_COOKIE

router = APIRouter(tags=["links"])
grant_scheme = HTTPBearer(auto_error=False, scheme_name="LinkGrant", description="A grant from a link's /unlock")


def _grant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(grant_scheme)]
) -> str | None:
    """The link's grant: from ``Authorization: Bearer``, or from the cookie a browser got
    when it unlocked the link."""
    return credentials.credentials if credentials else cookie(request, GRANT_COOKIE)


Grant = Annotated[str | None, Depends(_grant)]


def _access(request: Request, token: str, grant: str | None) -> ByLink:
    return ByLink(token, grant, Actor.link(client_of(request)))


@router.get("/s/{token}", response_model=PublicShare, responses=responses(401, 404, 410, 500, 503))
async def share(token: str, request: Request, runtime: RuntimeDep, grant: Grant) -> PublicShare | Response:
    """What the link offers: the file's name, size, expiry, downloads left and note (as
    JSON; a browser asking for HTML gets the link's page)."""
    if wants_html(request):
        return await share_page(request, token, grant)
    info, authorised = await runtime.gate.describe(_access(request, token, grant))
    return await runtime.sharing.public_share(authorised, info, token)


@router.post("/s/{token}/unlock", responses=responses(400, 401, 404, 410, 422, 429, 503))
async def unlock_share(token: str, body: UnlockRequest, request: Request, runtime: RuntimeDep) -> UnlockIssued:
    """Exchange the link's password for a grant (wrong passwords are rate limited: 429)."""
    return await runtime.sharing.unlock(token, body.password, Actor.link(client_of(request)))


# GET and HEAD as two operations (each with its own id in the OpenAPI document).
@router.get(
    "/s/{token}/download", response_class=Response, responses={**CONTENT, **responses(401, 404, 410, 416, 500, 503)}
)
@router.head(
    "/s/{token}/download", response_class=Response, responses={**CONTENT, **responses(401, 404, 410, 416, 500, 503)}
)
async def share_download(token: str, request: Request, runtime: RuntimeDep, grant: Grant) -> Response:
    """Download the file (`curl -OJ`/`wget --content-disposition` work on a link without a
    password), or a byte range of it; each response is charged to the link's limit."""
    opened = await runtime.gate.open(_access(request, token, grant))
    return await content_response(request, opened)


@router.get("/r/{token}", response_model=PublicRequest, responses=responses(401, 404, 410, 503))
async def upload_request(token: str, request: Request, runtime: RuntimeDep, grant: Grant) -> PublicRequest | Response:
    """What the upload-request link still accepts (as JSON; a browser asking for HTML gets
    the upload page)."""
    if wants_html(request):
        return await drop_page(request, token, grant)
    return await runtime.sharing.public_request(token, grant)


@router.post("/r/{token}/unlock", responses=responses(400, 401, 404, 410, 422, 429, 503))
async def unlock_request(token: str, body: UnlockRequest, request: Request, runtime: RuntimeDep) -> UnlockIssued:
    """Exchange the link's password for a grant (wrong passwords are rate limited: 429)."""
    return await runtime.sharing.unlock(token, body.password, Actor.link(client_of(request)))


@router.post(
    "/r/{token}/files",
    status_code=201,
    openapi_extra=upload_body({**RAW_FILE, **MULTIPART_FILE}, UPLOADER_PARAMETER),
    responses=responses(400, 401, 404, 410, 413, 422, 503),
)
async def upload_to_request(
    token: str,
    request: Request,
    runtime: RuntimeDep,
    grant: Grant,
) -> Receipt:
    """Upload a file into the link owner's space. You can list and read nothing. Say who
    you are, for the link's owner, in a `Sealbox-Uploader` header (optional)."""
    actor = Actor.link(client_of(request))
    uploader = uploader_of(request)
    path = folder_path_of(request.headers.get(PATH_HEADER))

    async def store(file_name: str, content_type: str | None, body: AsyncIterator[bytes]) -> Receipt:
        return await runtime.sharing.upload_via_request(
            token, grant, file_name, content_type, body, uploader, actor, path
        )

    return await receive_upload(request, runtime.settings.max_upload_size, store)
