"""Folders: make, list, rename, move and delete them; find an item by its path.

Names travel in request bodies, never in URLs (proxies log URLs); a path lookup is a
POST for that reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from sealbox.api.deps import CurrentUser, RuntimeDep, WritingUser, actor_of
from sealbox.api.downloads import archive_response
from sealbox.api.errors import responses
from sealbox.errors import InvalidInput
from sealbox.files.folders import MAX_PAGE, MAX_QUERY, Entry, FolderPage, FolderRead, folder_ref, parse_folder_id
from sealbox.files.tree import MAX_PATH
from sealbox.inputs import Count
from sealbox.sharing.collections import MAX_ITEMS, parse_items
from sealbox.sharing.schemas import ItemRef

router = APIRouter(prefix="/api/v1/folders", tags=["folders"])


class FolderCreate(BaseModel):
    name: str = Field(max_length=1000)
    parent_id: str | None = Field(default=None, max_length=36, description="null: at the top")


class FolderUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=1000, description="a new name")
    parent_id: str | None = Field(
        default=None, max_length=36, description="move into this folder; null: to the top; absent: stay"
    )


class PathLookup(BaseModel):
    path: str = Field(max_length=MAX_PATH, description="'a/b/c.txt', from the top of your files")


@router.post("", status_code=201, responses=responses(400, 401, 403, 404, 409, 422, 503))
async def create_folder(
    body: FolderCreate, request: Request, response: Response, runtime: RuntimeDep, user: WritingUser
) -> FolderRead:
    """Make a folder. Names are unique within a folder, across files and folders (409)."""
    created = await runtime.folders.create(user.user_id, folder_ref(body.parent_id), body.name, actor_of(request, user))
    response.headers["Location"] = f"/api/v1/folders/{created.id}"
    return created


@router.get("/{folder_id}", responses=responses(400, 401, 404, 422, 503))
async def list_folder(
    folder_id: str,
    runtime: RuntimeDep,
    user: CurrentUser,
    sort: Literal["name", "size", "created"] = "name",
    order: Literal["asc", "desc"] = "asc",
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description="only names containing this (any case)")] = None,
    limit: Annotated[Count, Query(ge=1, le=MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096, description="next_cursor of the previous page")] = None,
) -> FolderPage:
    """A folder (`top` for the top of your files) and one page of what is in it: folders
    first, then files, each sorted as asked."""
    return await runtime.folders.page(
        user.user_id, folder_ref(folder_id), sort=sort, order=order, query=q, limit=limit, cursor=cursor
    )


@router.patch("/{folder_id}", responses=responses(400, 401, 403, 404, 409, 422, 503))
async def update_folder(
    folder_id: str, body: FolderUpdate, request: Request, runtime: RuntimeDep, user: WritingUser
) -> FolderRead:
    """Rename a folder, move it (`parent_id`; null for the top), or both, atomically."""
    actor = actor_of(request, user)
    if "parent_id" in body.model_fields_set:
        parent = folder_ref(body.parent_id)
        return await runtime.folders.update(
            user.user_id, parse_folder_id(folder_id), actor, name=body.name, parent=parent
        )
    if body.name is None:
        raise InvalidInput("give a new name, a parent_id to move to, or both")
    return await runtime.folders.update(user.user_id, parse_folder_id(folder_id), actor, name=body.name)


@router.delete("/{folder_id}", status_code=204, responses=responses(401, 403, 404, 422, 503))
async def delete_folder(folder_id: str, request: Request, runtime: RuntimeDep, user: WritingUser) -> Response:
    """Delete a folder and everything in it, at once: every file's key goes with its
    record, so the data is unreadable from then on. Links to them stop working."""
    await runtime.folders.delete(user.user_id, parse_folder_id(folder_id), actor_of(request, user))
    return Response(status_code=204)


class ArchiveRequest(BaseModel):
    items: list[ItemRef] = Field(min_length=1, max_length=MAX_ITEMS)


ARCHIVE: dict[int | str, dict[str, Any]] = {"200": {"description": "A ZIP archive", "content": {"application/zip": {}}}}


@router.get(
    "/{folder_id}/archive", response_class=Response, responses={**ARCHIVE, **responses(401, 404, 413, 422, 500, 503)}
)
async def folder_archive(folder_id: str, request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """One of your folders, with everything below it, as one streamed ZIP."""
    archive = await runtime.gate.own_archive(
        user.user_id, [("folder", parse_folder_id(folder_id))], actor_of(request, user)
    )
    return await archive_response(request, archive)


archive_router = APIRouter(prefix="/api/v1", tags=["folders"])


@archive_router.post(
    "/archive", response_class=Response, responses={**ARCHIVE, **responses(400, 401, 404, 413, 422, 500, 503)}
)
async def archive(body: ArchiveRequest, request: Request, runtime: RuntimeDep, user: CurrentUser) -> Response:
    """Your files and folders (a selection) as one streamed ZIP."""
    items = parse_items([(item.kind, item.id) for item in body.items])
    archive = await runtime.gate.own_archive(user.user_id, items, actor_of(request, user))
    return await archive_response(request, archive)


# Beside the folders' routes, not under /api/v1/folders/: there "lookup" would also match
# /api/v1/folders/{folder_id}, whose methods a 405 would then list for it.
@archive_router.post("/lookup", responses=responses(400, 401, 404, 422, 503))
async def lookup(body: PathLookup, runtime: RuntimeDep, user: CurrentUser) -> Entry:
    """The file or folder at a path (in the body: names never travel in URLs)."""
    return await runtime.folders.lookup(user.user_id, body.path)
