"""What a link's holder sees: share links at ``/s/{token}`` and upload-request links at
``/r/{token}``. No account is needed; a link with a password is unlocked with ``POST
…/unlock``, which returns a short-lived grant for that one link, sent back as
``Authorization: Bearer <grant>`` (a password never travels in a URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sealbox.api.deps import RuntimeDep
from sealbox.api.downloads import archive_response, content_response
from sealbox.api.errors import responses
from sealbox.api.routes.files import CONTENT, MULTIPART_FILE, RAW_FILE, upload_body
from sealbox.api.uploads import PATH_HEADER, UPLOADER_PARAMETER, folder_path_of, receive_upload, uploader_of
from sealbox.audit.service import Actor
from sealbox.errors import NotFound
from sealbox.files.service import file_ref
from sealbox.sharing.gate import ByLink
from sealbox.sharing.schemas import PublicCollection, PublicRequest, PublicShare, Receipt, UnlockIssued, UnlockRequest
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


@router.get(
    "/s/{token}", response_model=PublicShare | PublicCollection, responses=responses(401, 404, 410, 413, 500, 503)
)
async def share(
    token: str, request: Request, runtime: RuntimeDep, grant: Grant
) -> PublicShare | PublicCollection | Response:
    """What the link offers (as JSON; a browser asking for HTML gets the link's page):
    for one file, its name, size, expiry, downloads left and note; for a folder or a
    selection, every folder and file in it (paths, sizes, downloads left of each) and
    where to get each file and the archive of all of them."""
    if wants_html(request):
        return await share_page(request, token, grant)
    link = await runtime.gate.link(_access(request, token, grant))
    if link.file is None:
        return await runtime.sharing.public_collection(link.share, token)
    authorised = await runtime.gate.within(link)
    return await runtime.sharing.public_share(authorised, runtime.files.describe(authorised.row), token)


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
    password), or a byte range of it; each response is charged to the link's limit. For
    a link to a folder or a selection: everything, as one ZIP (as `/archive`)."""
    link = await runtime.gate.link(_access(request, token, grant))
    if link.file is None:
        return await archive_response(request, await runtime.gate.archive(link))
    return await content_response(request, await runtime.gate.open_link(link))


@router.get(
    "/s/{token}/files/{file_id}",
    response_class=Response,
    responses={**CONTENT, **responses(401, 404, 410, 416, 500, 503)},
)
@router.head(
    "/s/{token}/files/{file_id}",
    response_class=Response,
    responses={**CONTENT, **responses(401, 404, 410, 416, 500, 503)},
)
async def share_file(token: str, file_id: str, request: Request, runtime: RuntimeDep, grant: Grant) -> Response:
    """Download one file of the link (or a byte range of it), charged to that file's
    share of the link's limit."""
    link = await runtime.gate.link(_access(request, token, grant))
    target = file_ref(file_id)
    if target is None:
        raise NotFound("file not found")
    return await content_response(request, await runtime.gate.open_link(link, target))


ARCHIVE: dict[int | str, dict[str, Any]] = {"200": {"description": "A ZIP archive", "content": {"application/zip": {}}}}


@router.get(
    "/s/{token}/archive", response_class=Response, responses={**ARCHIVE, **responses(401, 404, 410, 413, 500, 503)}
)
@router.head(
    "/s/{token}/archive", response_class=Response, responses={**ARCHIVE, **responses(401, 404, 410, 413, 500, 503)}
)
async def share_archive(token: str, request: Request, runtime: RuntimeDep, grant: Grant) -> Response:
    """Everything the link holds as one ZIP, made as it is sent (stored, ZIP64, UTF-8
    names). With a download limit, every file must have a whole download left: the
    archive takes one of each, and gives back what it did not send."""
    link = await runtime.gate.link(_access(request, token, grant))
    return await archive_response(request, await runtime.gate.archive(link))


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
