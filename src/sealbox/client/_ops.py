"""Every SDK operation, written once as a generator of instructions.

An operation yields ``Call`` (an HTTP request), ``Read`` (the next bytes of the upload
source), ``Sleep`` (back off before a retry) and ``Reset`` (start the download sink
again), and receives what the client did: a ``Reply``, bytes, or nothing. ``Client``
performs the instructions with blocking I/O and ``AsyncClient`` with asyncio, so the
protocol logic — tus resume, Range resume, retries, errors — exists once.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urljoin

from sealbox.client.errors import ApiError, TransportError, error_for
from sealbox.client.models import Event, FileInfo, Grant, Link, LinkInfo, Me, Progress, UploadRequest

T = TypeVar("T")
TUS = {"Tus-Resumable": "1.0.0"}
# Part size of tus uploads (see docs/resumable.md, "Part size"): 64 MiB parts cost the server
# no more CPU per GiB than one raw upload; one part is held in memory while it is sent.
CHUNK = 64 * 1024 * 1024
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
ATTEMPTS = 8
RETRY_STATUSES = frozenset({502, 503, 504})
ProgressCallback = Callable[[Progress], None]


@dataclass
class Call:
    method: str
    url: str  # a path under the server's base URL, or an absolute URL
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None
    content: bytes | None = None
    stream_body: bool = False  # send the operation's source as the body, streamed
    to_sink: bool = False  # write a 200/206 body into the operation's sink
    authenticated: bool = True


@dataclass
class Reply:
    status: int  # 0 when the server could not be reached
    headers: dict[str, str]
    content: bytes = b""
    received: int = 0  # bytes written to the sink
    error: Exception | None = None  # a transport error (before or during the body)

    def json(self) -> Any:
        import json

        return json.loads(self.content)


@dataclass
class Read:
    offset: int
    size: int


@dataclass
class Sleep:
    seconds: float


@dataclass
class Reset:
    """Empty the download sink: the server sent the whole file instead of the range."""


@dataclass
class OpenSource:
    """Open what to upload: a path (closed when the operation ends), a file object, or an
    iterator. The answer is ``(size, name)``: ``size`` is None for an iterator."""

    source: Any


@dataclass
class OpenSink:
    """Open where a download goes: a path (appended to, closed at the end) or a file
    object. The answer is how many bytes it already holds."""

    sink: Any


@dataclass
class BaseUrl:
    """The answer is the client's base URL."""


@dataclass
class SetToken:
    token: str


@dataclass
class Local:
    """Run ``fn(*args)`` on the local file system (walk a tree, make a directory, rename a
    finished download); ``AsyncClient`` runs it in a worker thread. The answer is its result."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass
class Parallel:
    """Run ``ops`` with at most ``workers`` at a time (threads for ``Client``, tasks for
    ``AsyncClient``), each with its own source and sink. The answer is their results, in
    order; the first error stops the rest and is raised."""

    ops: list[Generator[Any, Any, Any]]
    workers: int = 4


Instruction = Call | Read | Sleep | Reset | OpenSource | OpenSink | BaseUrl | SetToken | Local | Parallel
Op = Generator[Instruction, Any, T]


def check(reply: Reply, *ok: int) -> Reply:
    if reply.status in ok:
        return reply
    if reply.status == 0:
        raise TransportError(f"cannot reach the server: {reply.error}")
    raise error_for(reply.status, reply.content, reply.headers)


def call(instruction: Call, *ok: int) -> Op[Reply]:
    """One call, retried with back-off while the server is unreachable or busy (503)."""
    for attempt in range(ATTEMPTS):
        reply: Reply = yield instruction
        transient = reply.status == 0 or reply.status in RETRY_STATUSES
        if not transient or attempt == ATTEMPTS - 1:
            return check(reply, *ok)
        yield Sleep(float(reply.headers.get("retry-after") or BACKOFF[min(attempt, len(BACKOFF) - 1)]))
    raise AssertionError("unreachable")


def login(username: str, password: str) -> Op[str]:
    """Sign in; the client uses the token from then on, and it is returned."""
    form = {"username": username, "password": password, "grant_type": "password"}
    reply = yield from call(Call("POST", "/api/v1/auth/token", form=form, authenticated=False), 200)
    token = str(reply.json()["access_token"])
    yield SetToken(token)
    return token


def whoami() -> Op[Me]:
    return Me.of((yield from call(Call("GET", "/api/v1/me"), 200)).json())


def tokens() -> Op[list[dict[str, Any]]]:
    """Your tokens (never the secrets themselves)."""
    data: list[dict[str, Any]] = (yield from call(Call("GET", "/api/v1/me/tokens"), 200)).json()
    return data


def create_token(name: str, scope: str = "full", expires_in_days: int | None = None) -> Op[str]:
    """A personal API token; the secret is returned only here."""
    body = {"name": name, "scope": scope, "expires_in_days": expires_in_days}
    return str((yield from call(Call("POST", "/api/v1/me/tokens", json=body), 201)).json()["token"])


def revoke_token(token_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/me/tokens/{token_id}"), 204)


def change_password(current: str, new: str) -> Op[None]:
    """Every other token of the account stops working."""
    body = {"current_password": current, "new_password": new}
    yield from call(Call("POST", "/api/v1/me/password", json=body), 204)


def users() -> Op[list[Me]]:
    """Every account (administrators)."""
    return [Me.of(item) for item in (yield from call(Call("GET", "/api/v1/admin/users"), 200)).json()]


def create_user(username: str, password: str, is_admin: bool = False) -> Op[Me]:
    body = {"username": username, "password": password, "is_admin": is_admin}
    return Me.of((yield from call(Call("POST", "/api/v1/admin/users", json=body), 201)).json())


def set_active(user_id: str, active: bool) -> Op[None]:
    yield from call(Call("PATCH", f"/api/v1/admin/users/{user_id}", json={"is_active": active}), 200)


def reset_password(user_id: str, password: str) -> Op[None]:
    yield from call(Call("POST", f"/api/v1/admin/users/{user_id}/password", json={"password": password}), 204)


def delete_user(user_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/admin/users/{user_id}"), 204)


def list_files() -> Op[list[FileInfo]]:
    files: list[FileInfo] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (yield from call(Call("GET", "/api/v1/files", params=params), 200)).json()
        files += [FileInfo.of(item) for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return files


def get_file(file_id: str) -> Op[FileInfo]:
    return FileInfo.of((yield from call(Call("GET", f"/api/v1/files/{file_id}"), 200)).json())


def delete_file(file_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/files/{file_id}"), 204)


def attachment(name: str) -> str:
    """A request's ``Content-Disposition`` naming a file (RFC 6266 ``filename*``)."""
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


def upload_stream(name: str) -> Op[FileInfo]:
    """A body of unknown length (an iterator): one streamed request, not resumable."""
    # The name travels in a header, never in the URL, which proxies write to their logs.
    headers = {"Content-Type": "application/octet-stream", "Content-Disposition": attachment(name)}
    instruction = Call("POST", "/api/v1/files", headers=headers, stream_body=True)
    reply: Reply = yield instruction  # a stream cannot be replayed: no retry
    return FileInfo.of(check(reply, 201).json())


def _metadata(values: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items() if v)


def upload(
    source: Any,
    name: str | None = None,
    *,
    content_type: str | None = None,
    upload_url: str | None = None,
    on_upload_url: Callable[[str], None] | None = None,
    on_progress: ProgressCallback | None = None,
    folder_id: str | None = None,
    path: str | None = None,
) -> Op[FileInfo]:
    """Upload a path or file object resumably (tus), or an iterator of bytes in one
    streamed request. ``upload_url`` (given to ``on_upload_url`` when an upload starts)
    resumes an earlier upload of the same bytes. It goes into ``folder_id`` (None: the
    top) and the relative ``path`` of folders below it ("photos/2024", made as needed)."""
    size, default = yield OpenSource(source)
    name = name or default
    if size is None:
        if not name:
            raise ValueError("name the upload of an iterator")
        if folder_id or path:
            raise ValueError("an iterator is uploaded to the top: give a path or a file object")
        return (yield from upload_stream(name))
    where = {"folder": folder_id or "", "path": (path or "").strip("/")}
    made = yield from _tus(size, name or "upload", content_type, upload_url, on_upload_url, on_progress, extra=where)
    assert made is not None
    return made


def upload_to_link(
    link: str,
    source: Any,
    name: str | None = None,
    *,
    password: str | None = None,
    uploader: str | None = None,
    upload_url: str | None = None,
    on_upload_url: Callable[[str], None] | None = None,
    on_progress: ProgressCallback | None = None,
    path: str | None = None,
) -> Op[None]:
    """Upload through an upload-request link (``https://…/r/…``): no account needed, and
    nothing to read back. ``path`` is a relative path of folders ("scans/2026") below the
    link's folder, made as needed: how a dropped folder keeps its tree."""
    headers = {"Authorization": f"Bearer {(yield from unlock(link, password))}"} if password else {}
    size, default = yield OpenSource(source)
    if size is None:
        raise ValueError("an upload through a link needs a path or a file object")
    extra = {"uploader": uploader or "", "path": (path or "").strip("/")}
    yield from _tus(size, name or default or "upload", None, upload_url, on_upload_url, on_progress,
                    endpoint=f"{link}/uploads/", extra=extra, headers=headers)  # fmt: skip


def _tus(
    size: int,
    name: str,
    content_type: str | None,
    upload_url: str | None,
    on_upload_url: Callable[[str], None] | None,
    on_progress: ProgressCallback | None,
    chunk: int = CHUNK,
    endpoint: str = "/api/v1/uploads/",
    extra: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Op[FileInfo | None]:
    """A resumable upload over tus: resumes ``upload_url`` if it is still there, goes on
    by itself after dropped connections, and returns the new file (``None`` through an
    upload-request link, whose holder may read nothing)."""
    authenticated = endpoint.startswith("/api/")
    base = dict(headers or {})
    offset = None
    url = upload_url
    if url is not None:
        reply: Reply = yield Call("HEAD", url, headers={**base, **TUS}, authenticated=authenticated)
        if reply.status == 200:
            offset = int(reply.headers["upload-offset"])
            if offset == size and (not authenticated or "sealbox-file-id" in reply.headers):
                # Finished already (an earlier run sent the last bytes): nothing to send.
                if on_progress is not None:
                    on_progress(Progress(offset, size))
                return (yield from get_file(reply.headers["sealbox-file-id"])) if authenticated else None
    if offset is None or url is None:
        metadata = _metadata({"filename": name, "filetype": content_type or "", **(extra or {})})
        create = {**base, **TUS, "Upload-Length": str(size), "Upload-Metadata": metadata}
        created = yield from call(Call("POST", endpoint, headers=create, authenticated=authenticated), 201)
        url = created.headers["location"]
        offset = 0
        if on_upload_url is not None:
            on_upload_url(url)
        if size == 0:
            return (yield from get_file(created.headers["sealbox-file-id"])) if authenticated else None
    if on_progress is not None:
        on_progress(Progress(offset, size))
    failures = 0
    while True:
        data: bytes = yield Read(offset, min(chunk, size - offset))
        patch = {**base, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}
        reply = yield Call("PATCH", url, headers=patch, content=data, authenticated=authenticated)
        if reply.status == 204:
            failures = 0
            offset = int(reply.headers["upload-offset"])
            if on_progress is not None:
                on_progress(Progress(offset, size))
            if offset == size:
                return (yield from get_file(reply.headers["sealbox-file-id"])) if authenticated else None
            continue
        if reply.status not in (0, 409, 423, *RETRY_STATUSES) or failures >= ATTEMPTS:
            check(reply, 204)
        yield Sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
        failures += 1
        head: Reply = yield Call("HEAD", url, headers={**base, **TUS}, authenticated=authenticated)
        if head.status == 200:
            offset = int(head.headers["upload-offset"])


def download(file_id: str, sink: Any, *, on_progress: ProgressCallback | None = None) -> Op[int]:
    """Download a file into a path or file object, going on from what it already holds."""
    offset = yield OpenSink(sink)
    return (yield from _fetch(f"/api/v1/files/{file_id}/content", offset, {}, on_progress))


def download_link(
    link: str, sink: Any, *, password: str | None = None, on_progress: ProgressCallback | None = None
) -> Op[int]:
    """Download what a share link offers (unlocking it with ``password`` if given)."""
    headers = {"Authorization": f"Bearer {(yield from unlock(link, password))}"} if password else {}
    offset = yield OpenSink(sink)
    return (yield from _fetch(f"{link}/download", offset, headers, on_progress, authenticated=False))


def _fetch(
    url: str, offset: int, headers: dict[str, str], on_progress: ProgressCallback | None, authenticated: bool = True
) -> Op[int]:
    """Stream ``url`` into the sink from ``offset`` (what the sink already holds),
    resuming with ``Range`` after a dropped connection; returns the size of the file."""
    failures = 0
    total: int | None = None
    while True:
        ranged = {**headers, "Range": f"bytes={offset}-"} if offset else dict(headers)
        reply: Reply = yield Call("GET", url, headers=ranged, to_sink=True, authenticated=authenticated)
        if reply.status == 416 and total is None and offset:
            total = int(reply.headers.get("content-range", "*/0").rsplit("/", 1)[-1])
            if total == offset:
                return total  # it was complete already
        if reply.status in (200, 206):
            if reply.status == 200 and offset:
                yield Reset()  # the server sent it all again (it changed, or ignored the range)
                offset = 0
            length = int(reply.headers.get("content-length", reply.received))
            total = offset + length
            offset += reply.received
            if on_progress is not None:
                on_progress(Progress(offset, total))
            if reply.error is None and offset >= total:
                return total
        elif reply.status not in (0, *RETRY_STATUSES) or failures >= ATTEMPTS:
            check(reply, 200, 206)
        yield Sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
        failures += 1


def links(file_id: str | None) -> Op[list[Link]]:
    params = {"file_id": file_id} if file_id else None
    return [Link.of(item) for item in (yield from call(Call("GET", "/api/v1/shares", params=params), 200)).json()]


def revoke_link(link_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/shares/{link_id}"), 204)


def create_request(
    max_files: int = 10, max_bytes: int | None = None, expires_in: int | None = None, password: str | None = None
) -> Op[UploadRequest]:
    """An upload-request link; its ``url`` (a path with the secret token) is only in this answer."""
    body = {"max_files": max_files, "max_bytes": max_bytes, "expires_in_seconds": expires_in, "password": password}
    reply = yield from call(Call("POST", "/api/v1/upload-requests", json=body), 201)
    return UploadRequest.of(reply.json())


def requests() -> Op[list[UploadRequest]]:
    return [UploadRequest.of(item) for item in (yield from call(Call("GET", "/api/v1/upload-requests"), 200)).json()]


def revoke_request(request_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/upload-requests/{request_id}"), 204)


def received(request_id: str) -> Op[list[FileInfo]]:
    """The files that arrived through one of your upload-request links."""
    reply = yield from call(Call("GET", f"/api/v1/upload-requests/{request_id}/files"), 200)
    return [FileInfo.of(item) for item in reply.json()]


def grant(file_id: str, username: str) -> Op[Grant]:
    reply = yield from call(Call("POST", f"/api/v1/files/{file_id}/grants", json={"username": username}), 201)
    return Grant.of(reply.json())


def grants(file_id: str) -> Op[list[Grant]]:
    return [Grant.of(item) for item in (yield from call(Call("GET", f"/api/v1/files/{file_id}/grants"), 200)).json()]


def revoke_grant(file_id: str, grant_id: str) -> Op[None]:
    yield from call(Call("DELETE", f"/api/v1/files/{file_id}/grants/{grant_id}"), 204)


def shared_with_me() -> Op[list[FileInfo]]:
    return [FileInfo.of(item) for item in (yield from call(Call("GET", "/api/v1/shared-with-me"), 200)).json()]


def audit(before: int | None = None, limit: int = 100, everything: bool = False) -> Op[list[Event]]:
    """Events about your files, links and account, newest first (``everything``: all, for administrators)."""
    params: dict[str, Any] = {
        "limit": limit,
        **({"before": before} if before else {}),
        **({"all": "true"} if everything else {}),
    }
    return [
        Event.of(item) for item in (yield from call(Call("GET", "/api/v1/audit", params=params), 200)).json()["items"]
    ]


def unlock(link_url: str, password: str) -> Op[str]:
    reply = yield from call(Call("POST", f"{link_url}/unlock", json={"password": password}, authenticated=False), 200)
    return str(reply.json()["grant"])


def link_info(link_url: str, password: str | None = None) -> Op[LinkInfo]:
    """What a share link offers (unlocking it with ``password`` if given)."""
    grant = (yield from unlock(link_url, password)) if password is not None else None
    headers = {"Accept": "application/json", **({"Authorization": f"Bearer {grant}"} if grant else {})}
    reply = yield from call(Call("GET", link_url, headers=headers, authenticated=False), 200)
    return LinkInfo.of(reply.json())


def absolute(base: str, url: str) -> str:
    return urljoin(base.rstrip("/") + "/", url)


__all__ = ["ApiError", "Call", "Op", "Read", "Reply", "Reset", "Sleep"]
