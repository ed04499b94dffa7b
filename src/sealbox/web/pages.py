"""The pages. Each route reads what it shows from the services and renders a template;
forms post back to these routes and are answered with a redirect (or the page again, with
the error). Interactive parts (resumable uploads, copy buttons, dialogs) are ES modules
under ``static/js`` that talk to the same JSON API."""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from sealbox.accounts.schemas import PasswordChange, Principal, TokenCreate
from sealbox.audit.service import Actor
from sealbox.errors import (
    AuthenticationFailed,
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    SealboxError,
)
from sealbox.files.service import MAX_PAGE, parse_file_id
from sealbox.ids import FileId
from sealbox.inputs import MAX_INT64, Count, parse_count
from sealbox.sharing.gate import AsUser, ByLink
from sealbox.sharing.schemas import PublicCollection, PublicEntry, RequestCreate, ShareCreate, ShareCreated
from sealbox.web.auth import PageUser, PageWriter, SignInRequired, session_of
from sealbox.web.context import client_of, runtime_of
from sealbox.web.flash import Flash, read_flash, set_flash, shown
from sealbox.web.forms import read_form as form
from sealbox.web.sessions import clear_session, set_grant, set_session

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

router = APIRouter(include_in_schema=False)
# Where a form may send the browser back to: a path on this site made of plain segments.
# "//host", "/\\host", "/%2F/host", schemes and hosts never match.
LOCAL_PATH = re.compile(r"(/[A-Za-z0-9_-]+)+/?|/")
EXPIRIES = [(3600, "1 hour"), (86400, "1 day"), (7 * 86400, "7 days"), (30 * 86400, "30 days"), (90 * 86400, "90 days")]
ACTIONS = {
    "login.ok": "Signed in",
    "login.failed": "Failed sign-in",
    "file.upload": "Uploaded",
    "file.download": "Downloaded",
    "file.delete": "Deleted",
    "file.rename": "Renamed",
    "file.move": "Moved",
    "file.update": "Renamed and moved",
    "file.archive": "Downloaded as ZIP",
    "folder.create": "Folder made",
    "folder.rename": "Folder renamed",
    "folder.move": "Folder moved",
    "folder.update": "Folder renamed and moved",
    "folder.delete": "Folder deleted",
    "share.create": "Link created",
    "share.archive": "Link downloaded as ZIP",
    "share.revoke": "Link revoked",
    "link.unlock": "Link opened with its password",
    "link.password_failed": "Wrong link password",
    "grant.give": "Shared with an account",
    "grant.revoke": "Stopped sharing with an account",
    "request.create": "Upload link created",
    "request.revoke": "Upload link revoked",
    "token.create": "Token created",
    "token.revoke": "Token revoked",
    "password.change": "Password changed",
    "password.change_failed": "Wrong current password",
}


def _size(value: int) -> str:
    size = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} bytes"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def _templates() -> Jinja2Templates:
    """The templates, loaded on the first page shown: a server that only answers the API
    never pays for Jinja2."""
    from fastapi.templating import Jinja2Templates

    templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
    templates.env.filters["size"] = _size
    templates.env.filters["when"] = _when
    templates.env.filters["action"] = lambda action: ACTIONS.get(action, action)
    return templates


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return _templates().TemplateResponse(request, template, context, status_code=status)


def see(location: str) -> RedirectResponse:
    """A 303 to ``location``, which *must not* be a value provided by the client: pass
    those through ``local_path`` first."""
    return RedirectResponse(location, status_code=303)


def local_path(value: str | None, default: str) -> str:
    """``value`` if it is a path on this site, else ``default``: the one check for every
    redirect target a client supplies."""
    return value if value is not None and LOCAL_PATH.fullmatch(value) else default


def form_error(exc: Exception, default: str) -> str:
    """What a form's page says about a refused value: the rule's own message (a service's,
    or the first failed validation's), else ``default``."""
    if isinstance(exc, SealboxError):
        return exc.message
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        return f"{field}: {message}" if field else message
    return default


def see_with_flash(request: Request, path: str, flash: Flash) -> RedirectResponse:
    """Post/redirect/get: send the browser to ``path``, which shows ``flash`` once."""
    response = see(path)
    set_flash(response, request, path, flash)
    return response


def install(app: FastAPI) -> None:
    """Mount the pages on ``app``, with the redirect to sign in where one is needed."""

    async def sign_in_first(_: Request, __: Exception) -> Response:
        return see("/login")

    from sealbox.web import browse  # it builds on this module's helpers

    app.add_exception_handler(SignInRequired, sign_in_first)
    app.include_router(browse.router)
    app.include_router(router)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def actor(request: Request, user: Principal) -> Actor:
    return user.actor(client_of(request))


# Signing in and out


@router.get("/")
async def home(request: Request) -> Response:
    return see("/files" if await session_of(request) else "/login")


@router.get("/login")
async def login_page(request: Request) -> Response:
    if await session_of(request):
        return see("/files")
    return page(request, "login.html", title="Sign in")


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form(request)
    username, password = fields.get("username", ""), fields.get("password", "")
    try:
        issued = await runtime_of(request).accounts.login(username, password, client_of(request), "session")
    except (AuthenticationFailed, RateLimited) as exc:
        status = 429 if isinstance(exc, RateLimited) else 401
        return page(request, "login.html", status, title="Sign in", error=exc.message, username=username)
    response = see("/files")
    set_session(response, request, issued.access_token, issued.expires_at)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = await session_of(request)
    if user is not None:
        await runtime_of(request).accounts.revoke_token(user, user.token_id, actor(request, user))
    response = see("/login")
    clear_session(response, request)
    return response


# Files


async def _file_page(
    request: Request, user: Principal, file_id: FileId, status: int = 200, flash: Flash | None = None, **extra: Any
) -> Response:
    runtime = runtime_of(request)
    info, authorised = await runtime.gate.describe(AsUser(user.user_id, actor(request, user)), file_id)
    owner = authorised.via == "owner"
    shares = await runtime.sharing.shares(user.user_id, file_id) if owner else []
    grants = await runtime.sharing.grants(user.user_id, file_id) if owner else []
    policy = runtime.sharing.policy
    max_seconds = policy.max_lifetime.total_seconds()
    return page(
        request,
        "file.html",
        status,
        title=info.name,
        user=user,
        section="files",
        file=info,
        owner=owner,
        shares=shares,
        grants=grants,
        base_url=base_url(request),
        expiries=[(s, label) for s, label in EXPIRIES if s <= max_seconds] or [(int(max_seconds), "the maximum")],
        cap=policy.max_downloads,
        password_required=policy.password_required,
        **flashed(flash, shares),
        **extra,
    )


def flashed(flash: Flash | None, items: list[Any] | None = None) -> dict[str, Any]:
    """Template variables for a flash: the notice, the secret shown once, and the item it
    was created for (looked up among ``items`` by id)."""
    if flash is None:
        return {}
    item = next((i for i in items or [] if i.id == flash.item), None)
    return {"notice": flash.notice, "secret": flash.secret, "created": item}


@router.get("/files/{file_id}")
async def file_page(request: Request, user: PageUser, file_id: str) -> Response:
    target = parse_file_id(file_id)
    flash = read_flash(request)
    return shown(await _file_page(request, user, target, flash=flash), request, f"/files/{target}", flash)


@router.post("/files/{file_id}/share")
async def share(request: Request, user: PageWriter, file_id: str) -> Response:
    fields = await form(request)
    target = parse_file_id(file_id)
    try:
        body = ShareCreate(
            expires_in_seconds=optional_count(fields, "expires", "the expiry") or None,
            download_limit=optional_count(fields, "limit", "the download limit"),
            password=fields.get("password") or None,
            note=fields.get("note") or None,
        )
        created_share: ShareCreated = await runtime_of(request).sharing.create_share(
            user.user_id, target, body, actor(request, user)
        )
    except (ValueError, InvalidInput) as exc:
        return await _file_page(request, user, target, 400, error=form_error(exc, "check the link's settings"))
    return see_with_flash(request, f"/files/{target}", Flash("Link created.", created_share.url, created_share.id))


@router.post("/links/{share_id}/revoke")
async def revoke_link(request: Request, user: PageWriter, share_id: str) -> Response:
    back = (await form(request)).get("back")
    await runtime_of(request).sharing.revoke_share(user.user_id, _uuid(share_id, "link"), actor(request, user))
    return see(local_path(back, "/links"))


@router.post("/files/{file_id}/grants")
async def grant(request: Request, user: PageWriter, file_id: str) -> Response:
    target = parse_file_id(file_id)
    username = (await form(request)).get("username", "").strip()
    try:
        await runtime_of(request).sharing.grant(user.user_id, target, username, actor(request, user))
    except (NotFound, InvalidInput) as exc:
        if exc.message == "file not found":
            raise
        return await _file_page(request, user, target, 400, error=exc.message)
    except Conflict as exc:
        return await _file_page(request, user, target, 409, error=exc.message)
    return see(f"/files/{file_id}")


@router.post("/files/{file_id}/grants/{grant_id}/revoke")
async def revoke_grant(request: Request, user: PageWriter, file_id: str, grant_id: str) -> Response:
    await runtime_of(request).sharing.revoke_grant(
        user.user_id, parse_file_id(file_id), _uuid(grant_id, "grant"), actor(request, user)
    )
    return see(f"/files/{file_id}")


@router.get("/files/{file_id}/delete")
async def confirm_delete(request: Request, user: PageUser, file_id: str) -> Response:
    info, authorised = await runtime_of(request).gate.describe(
        AsUser(user.user_id, actor(request, user)), parse_file_id(file_id)
    )
    if authorised.via != "owner":
        raise NotFound("file not found")
    return page(
        request,
        "confirm.html",
        title="Delete",
        user=user,
        section="files",
        question=f"Delete {info.name}?",
        consequence="Its key is destroyed with it: nobody can read it again, and its links stop working.",
        action=f"/files/{info.id}/delete",
        confirm="Delete",
        cancel=f"/files/{info.id}",
    )


@router.post("/files/{file_id}/delete")
async def delete(request: Request, user: PageWriter, file_id: str) -> Response:
    await runtime_of(request).files.delete(user.user_id, parse_file_id(file_id), actor(request, user))
    return see("/files")


@router.get("/shared")
async def shared_page(request: Request, user: PageUser) -> Response:
    files = await runtime_of(request).sharing.shared_with_me(user.user_id)
    return page(request, "shared.html", title="Shared with me", user=user, section="shared", files=files)


@router.get("/links")
async def links_page(request: Request, user: PageUser) -> Response:
    shares = await runtime_of(request).sharing.shares(user.user_id, None)
    return page(request, "links.html", title="Links", user=user, section="links", shares=shares)


# Upload requests


async def _requests_page(
    request: Request, user: Principal, status: int = 200, flash: Flash | None = None, **extra: Any
) -> Response:
    runtime = runtime_of(request)
    policy = runtime.sharing.policy
    requests = await runtime.sharing.requests(user.user_id)
    return page(
        request,
        "requests.html",
        status,
        title="Upload requests",
        user=user,
        section="requests",
        requests=requests,
        expiries=[(s, label) for s, label in EXPIRIES if s <= policy.max_lifetime.total_seconds()],
        password_required=policy.password_required,
        base_url=base_url(request),
        **flashed(flash, requests),
        **extra,
    )


@router.get("/requests")
async def requests_page(request: Request, user: PageUser) -> Response:
    flash = read_flash(request)
    return shown(await _requests_page(request, user, flash=flash), request, "/requests", flash)


@router.post("/requests")
async def create_request(request: Request, user: PageWriter) -> Response:
    fields = await form(request)
    try:
        body = RequestCreate(
            expires_in_seconds=optional_count(fields, "expires", "the expiry") or None,
            max_files=optional_count(fields, "max_files", "the number of files") or 10,
            max_bytes=_mib(optional_count(fields, "max_mib", "the size in MiB")),
            password=fields.get("password") or None,
        )
        made = await runtime_of(request).sharing.create_request(user.user_id, body, actor(request, user))
    except (ValueError, InvalidInput) as exc:
        message = form_error(exc, "check the upload link's settings")
        return await _requests_page(request, user, 400, error=message)
    return see_with_flash(request, "/requests", Flash("Upload link created.", made.url, made.id))


@router.post("/requests/{request_id}/revoke")
async def revoke_request(request: Request, user: PageWriter, request_id: str) -> Response:
    await runtime_of(request).sharing.revoke_request(
        user.user_id, _uuid(request_id, "upload request"), actor(request, user)
    )
    return see("/requests")


@router.get("/requests/{request_id}")
async def request_page(request: Request, user: PageUser, request_id: str) -> Response:
    files = await runtime_of(request).sharing.received(user.user_id, _uuid(request_id, "upload request"))
    return page(request, "request.html", title="Received", user=user, section="requests", files=files)


# Account and activity


async def _account_page(
    request: Request, user: Principal, status: int = 200, flash: Flash | None = None, **extra: Any
) -> Response:
    tokens = await runtime_of(request).accounts.tokens(user)
    return page(
        request,
        "account.html",
        status,
        title="Account",
        user=user,
        section="account",
        tokens=tokens,
        **flashed(flash, tokens),
        **extra,
    )


@router.get("/account")
async def account_page(request: Request, user: PageUser) -> Response:
    flash = read_flash(request)
    return shown(await _account_page(request, user, flash=flash), request, "/account", flash)


@router.post("/account/password")
async def change_password(request: Request, user: PageWriter) -> Response:
    fields = await form(request)
    try:
        change = PasswordChange(
            current_password=fields.get("current_password", ""), new_password=fields.get("new_password", "")
        )
        await runtime_of(request).accounts.change_password(user, change, actor(request, user))
    except (ValueError, InvalidInput, PermissionDenied, RateLimited) as exc:
        status = 429 if isinstance(exc, RateLimited) else 400
        return await _account_page(request, user, status, error=form_error(exc, "check the passwords"))
    return see_with_flash(
        request, "/account", Flash("Password changed. Your other sessions and tokens were signed out.")
    )


@router.post("/account/tokens")
async def create_token(request: Request, user: PageWriter) -> Response:
    fields = await form(request)
    try:
        body = TokenCreate.model_validate(
            {"name": fields.get("name", "").strip() or "token", "scope": fields.get("scope")}
        )
        made = await runtime_of(request).accounts.create_token(user, body, actor(request, user))
    except (ValueError, InvalidInput) as exc:
        return await _account_page(request, user, 400, error=form_error(exc, "give the token a name and a scope"))
    return see_with_flash(request, "/account", Flash("Token created: copy it now.", made.token, made.id))


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(request: Request, user: PageWriter, token_id: str) -> Response:
    await runtime_of(request).accounts.revoke_token(user, _uuid(token_id, "token"), actor(request, user))
    return see("/account")


@router.get("/audit")
async def audit_page(
    request: Request, user: PageUser, before: Annotated[Count | None, Query(ge=1, le=MAX_INT64)] = None
) -> Response:
    runtime = runtime_of(request)
    events = await runtime.audit.events(user.user_id, before, 100)
    listing = await runtime.files.list(user.user_id, MAX_PAGE, None)
    names = {f.id: f.name for f in listing.items}
    return page(
        request,
        "audit.html",
        title="Activity",
        user=user,
        section="audit",
        events=events.items,
        next_before=events.next_before,
        names=names,
    )


# Public pages of links


async def share_page(request: Request, token: str, grant: str | None) -> Response:
    """``/s/{token}`` for a browser: the file, a password form, or why the link is gone."""
    runtime = runtime_of(request)
    path = f"/s/{token}"
    try:
        link = await runtime.gate.link(ByLink(token, grant, Actor.link(client_of(request))))
        if link.file is None:
            collection = await runtime.sharing.public_collection(link.share, token)
            return page(request, "share.html", title=collection.name, collection=collection, tree=tree_of(collection))
        authorised = await runtime.gate.within(link)
    except NotFound:
        return page(request, "share.html", 404, title="Link unavailable", gone="There is no such link")
    except Gone as exc:
        return page(request, "share.html", 410, title="Link unavailable", gone=exc.message.capitalize())
    except AuthenticationFailed:
        return page(request, "share.html", title="Protected", locked=True, path=path)
    public = await runtime.sharing.public_share(authorised, runtime.files.describe(authorised.row), token)
    return page(request, "share.html", title=public.name, share=public)


@dataclass
class Node:
    """A folder of a link's tree as the page shows it: its subfolders, then its files."""

    name: str
    folders: dict[str, Node] = field(default_factory=dict)
    files: list[tuple[str, PublicEntry]] = field(default_factory=list)


def tree_of(collection: PublicCollection) -> Node:
    """The entries of a link to several files (flat paths, folders ending in "/") as a tree."""
    root = Node("")

    def folder(parts: list[str]) -> Node:
        node = root
        for part in parts:
            node = node.folders.setdefault(part, Node(part))
        return node

    for entry in collection.entries:
        parts = entry.path.rstrip("/").split("/")
        if entry.kind == "folder":
            folder(parts)
        else:
            folder(parts[:-1]).files.append((parts[-1], entry))
    return root


@router.post("/s/{token}")
async def unlock_share(request: Request, token: str) -> Response:
    return await _unlock(request, token, f"/s/{token}", "share.html")


async def _unlock(request: Request, token: str, path: str, template: str) -> Response:
    password = (await form(request)).get("password", "")
    try:
        issued = await runtime_of(request).sharing.unlock(token, password, Actor.link(client_of(request)))
    except NotFound:
        return page(request, template, 404, title="Link unavailable", gone="There is no such link")
    except Gone as exc:
        return page(request, template, 410, title="Link unavailable", gone=exc.message.capitalize())
    except InvalidInput:
        return see(path)  # a link without a password: nothing to unlock, on to its page
    except (AuthenticationFailed, RateLimited) as exc:
        status = 429 if isinstance(exc, RateLimited) else 401
        return page(request, template, status, title="Protected", locked=True, path=path, error=exc.message)
    response = see(path)
    set_grant(response, request, path, issued.grant, issued.expires_at)
    return response


async def drop_page(request: Request, token: str, grant: str | None) -> Response:
    """``/r/{token}`` for a browser: the upload form, a password form, or why it is gone."""
    path = f"/r/{token}"
    try:
        drop = await runtime_of(request).sharing.public_request(token, grant)
    except NotFound:
        return page(request, "drop.html", 404, title="Link unavailable", gone="There is no such link")
    except Gone as exc:
        return page(request, "drop.html", 410, title="Link unavailable", gone=exc.message.capitalize())
    except AuthenticationFailed:
        return page(request, "drop.html", title="Upload files", locked=True, path=path)
    return page(request, "drop.html", title="Upload files", drop=drop, path=path)


@router.post("/r/{token}")
async def unlock_drop(request: Request, token: str) -> Response:
    return await _unlock(request, token, f"/r/{token}", "drop.html")


def optional_count(fields: dict[str, str], name: str, what: str) -> int | None:
    """A form's integer field: empty is ``None``; else ASCII digits (``InvalidInput``)."""
    value = fields.get(name, "")
    return parse_count(value, what) if value else None


def _mib(value: int | None) -> int | None:
    if value is None:
        return None
    if value > MAX_INT64 >> 20:
        raise InvalidInput(f"the size in MiB is at most {MAX_INT64 >> 20}")
    return value << 20


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} not found") from None
