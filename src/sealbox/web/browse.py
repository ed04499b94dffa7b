"""The files pages: a folder's listing (paged by the server, sorted, filtered), folders
made, renamed, moved and deleted, files renamed, and actions on a selection of files and
folders (move, delete, share with one link, download as one ZIP).

Every decision is the services' (``FolderService``, ``FileService``, the sharing service
and the gate), the same methods the JSON API calls: these routes only read forms, call
them and render what they answer. A folder travels in URLs as its id, never as a name
(names are encrypted at rest and stay out of access logs).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from sealbox.accounts.schemas import Principal
from sealbox.errors import Conflict, InvalidInput, NotFound, SealboxError
from sealbox.files.folders import MAX_QUERY, Entry, folder_ref, parse_folder_id
from sealbox.files.service import parse_file_id
from sealbox.ids import FileId
from sealbox.sharing import collections
from sealbox.sharing.gate import AsUser
from sealbox.sharing.schemas import ItemRef, LinkCreate
from sealbox.web.auth import PageUser, PageWriter
from sealbox.web.context import runtime_of
from sealbox.web.flash import Flash, read_flash, set_flash, shown
from sealbox.web.forms import read_form, read_selection_form
from sealbox.web.pages import EXPIRIES, actor, base_url, flashed, form_error, optional_count, page, see

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
Kind = collections.Kind
Item = tuple[Kind, uuid.UUID]


def parse_items(values: list[str]) -> list[Item]:
    """The selection a form carries (``"file:<id>"``, ``"folder:<id>"``), checked by the
    sharing service's own rules (``InvalidInput``: too many, a repeat, an unknown kind;
    ``NotFound``: an id that is none)."""
    if not values:
        raise InvalidInput("choose at least one file or folder first")
    pairs = [(kind, raw) for kind, _, raw in (value.partition(":") for value in values)]
    return collections.parse_items(pairs)


def folder_param(value: str | None) -> uuid.UUID | None:
    """A folder id from a URL or a form; empty or ``"top"`` is the top of the files."""
    return folder_ref(value or None)


def folder_url(folder_id: uuid.UUID | str | None) -> str:
    """The listing of ``folder_id``: built from a parsed id, never from client text."""
    return f"/files?folder={folder_id}" if folder_id else "/files"


def back_to(request: Request, folder_id: uuid.UUID | str | None, flash: Flash) -> Response:
    """Post/redirect/get to the listing of ``folder_id``, which shows ``flash`` once (the
    flash cookie is scoped to ``/files``: cookie paths ignore the query)."""
    response = see(folder_url(folder_id))
    set_flash(response, request, "/files", flash)
    return response


def status_of(exc: SealboxError) -> int:
    return 409 if isinstance(exc, Conflict) else 400


# The listing


async def _files_page(
    request: Request,
    user: Principal,
    folder_id: uuid.UUID | None,
    *,
    q: str = "",
    sort: str = "name",
    order: Literal["asc", "desc"] = "asc",
    cursor: str | None = None,
    status: int = 200,
    flash: Flash | None = None,
    **extra: Any,
) -> Response:
    runtime = runtime_of(request)
    listing = await runtime.folders.page(
        user.user_id,
        folder_id,
        sort="size" if sort == "size" else "created" if sort == "date" else "name",
        order=order,
        query=q or None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    here = str(folder_id) if folder_id else ""
    view = {"folder": here, "q": q, "sort": sort, "order": order}
    query = {k: v for k, v in view.items() if v and (k, v) not in (("sort", "name"), ("order", "asc"))}
    more = f"/files?{urlencode({**query, 'cursor': listing.next_cursor})}" if listing.next_cursor else None
    policy = runtime.sharing.policy
    max_seconds = policy.max_lifetime.total_seconds()
    # Where a selection may be moved from here: the top, each folder above, the folders shown.
    destinations = [("top", "Top of your files")]
    destinations += [(c.id, "/".join(p.name for p in listing.path[: i + 1])) for i, c in enumerate(listing.path)]
    destinations += [(e.id, e.name) for e in listing.items if e.kind == "folder"]
    return page(
        request,
        "files.html",
        status,
        title=listing.folder.name if listing.folder else "Files",
        user=user,
        section="files",
        listing=listing,
        here=here,
        parent=(listing.folder.parent_id or "top") if listing.folder else None,
        q=q,
        sort=sort,
        order=order,
        paged=cursor is not None,
        first=f"/files?{urlencode(query)}" if query else "/files",
        more=more,
        destinations=destinations,
        expiries=[(s, label) for s, label in EXPIRIES if s <= max_seconds] or [(int(max_seconds), "the maximum")],
        cap=policy.max_downloads,
        password_required=policy.password_required,
        base_url=base_url(request),
        **flashed(flash, await runtime.sharing.shares(user.user_id, None) if flash and flash.item else []),
        **extra,
    )


@router.get("/files")
async def files_page(
    request: Request,
    user: PageUser,
    folder: Annotated[str | None, Query(max_length=36)] = None,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    sort: Literal["name", "size", "date"] = "name",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> Response:
    """A folder (the top without ``folder``) and one page of what is in it."""
    flash = read_flash(request)
    folder_id = folder_param(folder)
    try:
        response = await _files_page(request, user, folder_id, q=q, sort=sort, order=order, cursor=cursor, flash=flash)
    except InvalidInput as exc:  # a cursor from another listing: the first page, and why
        response = await _files_page(
            request, user, folder_id, q=q, sort=sort, order=order, status=400, error=exc.message
        )
    return shown(response, request, "/files", flash)


# Folders and files, one at a time


@router.post("/folders")
async def make_folder(request: Request, user: PageWriter) -> Response:
    fields = await read_form(request)
    parent = folder_param(fields.get("parent"))
    try:
        made = await runtime_of(request).folders.create(
            user.user_id, parent, fields.get("name", ""), actor(request, user)
        )
    except (InvalidInput, Conflict) as exc:
        return await _files_page(request, user, parent, status=status_of(exc), error=exc.message)
    return back_to(request, parent, Flash(f"Folder “{made.name}” made."))


async def _rename_page(
    request: Request, user: Principal, kind: Kind, item_id: str, name: str, back: str, status: int = 200, **extra: Any
) -> Response:
    return page(
        request,
        "rename.html",
        status,
        title="Rename",
        user=user,
        section="files",
        what="folder" if kind == "folder" else "file",
        name=name,
        action=f"/{kind}s/{item_id}/rename",
        cancel=back,
        **extra,
    )


@router.get("/folders/{folder_id}/rename")
async def rename_folder_page(request: Request, user: PageUser, folder_id: str) -> Response:
    folder = await runtime_of(request).folders.get(user.user_id, parse_folder_id(folder_id))
    return await _rename_page(request, user, "folder", folder.id, folder.name, folder_url(folder.parent_id))


@router.post("/folders/{folder_id}/rename")
async def rename_folder(request: Request, user: PageWriter, folder_id: str) -> Response:
    target = parse_folder_id(folder_id)
    name = (await read_form(request)).get("name", "")
    folders = runtime_of(request).folders
    try:
        renamed = await folders.update(user.user_id, target, actor(request, user), name=name)
    except (InvalidInput, Conflict) as exc:
        current = await folders.get(user.user_id, target)
        back = folder_url(current.parent_id)
        return await _rename_page(request, user, "folder", current.id, name, back, status_of(exc), error=exc.message)
    return back_to(request, renamed.parent_id, Flash(f"Renamed to “{renamed.name}”."))


async def _owned_file(request: Request, user: Principal, file_id: str) -> Any:
    """The file ``file_id`` of ``user``, described by the gate; ``NotFound`` unless its
    owner asks (a file shared with you cannot be renamed by you)."""
    info, authorised = await runtime_of(request).gate.describe(
        AsUser(user.user_id, actor(request, user)), parse_file_id(file_id)
    )
    if authorised.via != "owner":
        raise NotFound("file not found")
    return info


@router.get("/files/{file_id}/rename")
async def rename_file_page(request: Request, user: PageUser, file_id: str) -> Response:
    info = await _owned_file(request, user, file_id)
    return await _rename_page(request, user, "file", info.id, info.name, folder_url(info.folder_id))


@router.post("/files/{file_id}/rename")
async def rename_file(request: Request, user: PageWriter, file_id: str) -> Response:
    target = parse_file_id(file_id)
    name = (await read_form(request)).get("name", "")
    try:
        renamed = await runtime_of(request).folders.update_file(user.user_id, target, actor(request, user), name=name)
    except (InvalidInput, Conflict) as exc:
        info = await _owned_file(request, user, file_id)
        back = folder_url(info.folder_id)
        return await _rename_page(request, user, "file", info.id, name, back, status_of(exc), error=exc.message)
    return back_to(request, renamed.folder_id, Flash(f"Renamed to “{renamed.name}”."))


@router.get("/folders/{folder_id}/delete")
async def confirm_delete_folder(request: Request, user: PageUser, folder_id: str) -> Response:
    folders = runtime_of(request).folders
    folder = await folders.get(user.user_id, parse_folder_id(folder_id))
    dirs, members = await folders.members(user.user_id, uuid.UUID(folder.id))
    inside = f"{len(members)} file{'s' if len(members) != 1 else ''}"
    if dirs:
        inside += f" in {len(dirs) + 1} folders"
    return page(
        request,
        "confirm.html",
        title="Delete",
        user=user,
        section="files",
        question=f"Delete the folder {folder.name} and everything in it?",
        consequence=f"It holds {inside}. Their keys are destroyed with them: nobody can read them again, "
        "and links to them stop working.",
        action=f"/folders/{folder.id}/delete",
        confirm="Delete",
        cancel=folder_url(folder.parent_id),
    )


@router.post("/folders/{folder_id}/delete")
async def delete_folder(request: Request, user: PageWriter, folder_id: str) -> Response:
    folders = runtime_of(request).folders
    folder = await folders.get(user.user_id, parse_folder_id(folder_id))
    deleted = await folders.delete(user.user_id, uuid.UUID(folder.id), actor(request, user))
    notice = f"Deleted {folder.name} ({deleted.files} file{'s' if deleted.files != 1 else ''})."
    return back_to(request, folder.parent_id, Flash(notice))


# A selection


@dataclass(frozen=True)
class Selection:
    """A selection form: where it was made (the folder shown), its other fields, and
    its items with their names where that folder lists them."""

    folder: uuid.UUID | None
    fields: dict[str, str]
    items: list[Item]
    names: dict[str, str]

    def name(self, item: Item) -> str:
        kind, item_id = item
        return self.names.get(str(item_id), f"a {kind}")


async def read_selection(request: Request, user: Principal) -> Selection:
    fields, values = await read_selection_form(request)
    folder = folder_param(fields.get("folder"))
    items = parse_items(values)
    entries: list[Entry] = await runtime_of(request).folders.entries(user.user_id, folder)
    return Selection(folder, fields, items, {e.id: e.name for e in entries})


async def selection_or_page(request: Request, user: Principal) -> Selection | Response:
    """The selection posted, or the listing again with why it cannot be used."""
    try:
        return await read_selection(request, user)
    except InvalidInput as exc:
        return await _files_page(request, user, await _folder_of_form(request), status=400, error=exc.message)


async def _folder_of_form(request: Request) -> uuid.UUID | None:
    """The folder a refused selection form was posted from, when it can be read (else the top)."""
    try:
        fields, _ = await read_selection_form(request)
        return folder_param(fields.get("folder"))
    except (InvalidInput, NotFound):
        return None


def outcome(done: int, total: int, verb: str, failures: list[str]) -> Flash:
    """What a bulk action says it did: all of it, or how much and why not the rest."""
    noun = "item" if total == 1 else "items"
    if not failures:
        return Flash(f"{verb} {done} {noun}.")
    return Flash(f"{verb} {done} of {total} {noun}. Not done: " + "; ".join(failures[:5]) + ".")


@router.post("/files/move")
async def move_selection(request: Request, user: PageWriter) -> Response:
    """Move each chosen item into the folder ``to`` (``top``: the top), one atomic move
    each; what cannot move (a taken name, a folder into itself) stays and is reported.
    An item that is not the account's (or is gone) is ``NotFound`` (404), as in the API:
    the items before it in the selection have moved."""
    chosen = await selection_or_page(request, user)
    if isinstance(chosen, Response):
        return chosen
    target = folder_param(chosen.fields.get("to"))
    folders = runtime_of(request).folders
    failures: list[str] = []
    for item in chosen.items:
        kind, item_id = item
        try:
            if kind == "folder":
                await folders.update(user.user_id, item_id, actor(request, user), parent=target)
            else:
                await folders.update_file(user.user_id, FileId(item_id), actor(request, user), folder=target)
        except (InvalidInput, Conflict) as exc:
            failures.append(f"{chosen.name(item)}: {exc.message}")
    done = len(chosen.items) - len(failures)
    return back_to(request, chosen.folder, outcome(done, len(chosen.items), "Moved", failures))


@router.post("/files/delete")
async def delete_selection(request: Request, user: PageWriter) -> Response:
    """Ask first (a page listing what goes); with ``confirmed``, delete each chosen item
    (a folder with everything in it), each in its own transaction; an item that is not
    the account's (or is gone) is ``NotFound`` (404), the items before it deleted."""
    chosen = await selection_or_page(request, user)
    if isinstance(chosen, Response):
        return chosen
    if chosen.fields.get("confirmed") != "yes":
        listed = [chosen.name(item) + ("/" if item[0] == "folder" else "") for item in chosen.items]
        count = len(chosen.items)
        return page(
            request,
            "confirm.html",
            title="Delete",
            user=user,
            section="files",
            question=f"Delete {count} item{'s' if count != 1 else ''}?",
            consequence="Folders go with everything in them. Their keys are destroyed: nobody can read them "
            "again, and links to them stop working.",
            listed=listed,
            hidden=[("folder", str(chosen.folder or "")), ("confirmed", "yes")]
            + [("item", f"{kind}:{item_id}") for kind, item_id in chosen.items],
            action="/files/delete",
            confirm="Delete",
            cancel=folder_url(chosen.folder),
        )
    runtime = runtime_of(request)
    for kind, item_id in chosen.items:
        if kind == "folder":
            await runtime.folders.delete(user.user_id, item_id, actor(request, user))
        else:
            await runtime.files.delete(user.user_id, FileId(item_id), actor(request, user))
    return back_to(request, chosen.folder, outcome(len(chosen.items), len(chosen.items), "Deleted", []))


@router.post("/files/share")
async def share_selection(request: Request, user: PageWriter) -> Response:
    """One link for the chosen items: to the file or the folder when one is chosen (a
    folder's link shows what is in it when it is opened), else to the selection (fixed
    now). The link is shown once, on the listing."""
    chosen = await selection_or_page(request, user)
    if isinstance(chosen, Response):
        return chosen
    fields = chosen.fields
    target: dict[str, Any]
    if len(chosen.items) == 1:
        kind, item_id = chosen.items[0]
        target = {f"{kind}_id": str(item_id)}
    else:
        target = {"items": [ItemRef(kind=kind, id=str(item_id)) for kind, item_id in chosen.items]}
    try:
        body = LinkCreate(
            expires_in_seconds=optional_count(fields, "expires", "the expiry") or None,
            download_limit=optional_count(fields, "limit", "the download limit"),
            password=fields.get("password") or None,
            note=fields.get("note") or None,
            **target,
        )
        made = await runtime_of(request).sharing.create_link(user.user_id, body, actor(request, user))
    except (ValueError, InvalidInput) as exc:
        message = form_error(exc, "check the link's settings")
        return await _files_page(request, user, chosen.folder, status=400, error=message)
    return back_to(request, chosen.folder, Flash("Link created.", made.url, made.id))
