"""``Client`` (blocking) and ``AsyncClient`` (asyncio): the same operations, performed
with ``httpx2.Client`` or ``httpx2.AsyncClient``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Generic, ParamSpec, TypeVar, cast, overload

import httpx2 as httpx

from sealbox.client import _ops
from sealbox.client._ops import Call, Op, Read, Reply, Reset, Sleep
from sealbox.client.models import FileInfo, Link, LinkInfo, Progress

P = ParamSpec("P")
T = TypeVar("T")
Source = str | os.PathLike[str] | IO[bytes]
Sink = str | os.PathLike[str] | IO[bytes]
PIECE = 1 << 20


class operation(Generic[P, T]):
    """Expose an operation as a method: blocking on ``Client``, awaitable on ``AsyncClient``."""

    def __init__(self, fn: Callable[P, Op[T]]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: Client, owner: type | None = None) -> Callable[P, T]: ...

    @overload
    def __get__(self, obj: AsyncClient, owner: type | None = None) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        fn = self.fn

        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return obj._run(fn(*args, **kwargs))

        return functools.wraps(fn)(bound)


class _Api:
    """The operations both clients offer (their parameters are the operations')."""

    url: str
    token: str | None

    whoami = operation(_ops.whoami)
    tokens = operation(_ops.tokens)
    create_token = operation(_ops.create_token)
    revoke_token = operation(_ops.revoke_token)
    change_password = operation(_ops.change_password)
    users = operation(_ops.users)
    create_user = operation(_ops.create_user)
    set_active = operation(_ops.set_active)
    reset_password = operation(_ops.reset_password)
    delete_user = operation(_ops.delete_user)
    files = operation(_ops.list_files)
    file = operation(_ops.get_file)
    delete = operation(_ops.delete_file)
    links = operation(_ops.links)
    revoke_link = operation(_ops.revoke_link)
    create_request = operation(_ops.create_request)
    requests = operation(_ops.requests)
    revoke_request = operation(_ops.revoke_request)
    received = operation(_ops.received)
    grant = operation(_ops.grant)
    grants = operation(_ops.grants)
    revoke_grant = operation(_ops.revoke_grant)
    shared_with_me = operation(_ops.shared_with_me)
    audit = operation(_ops.audit)

    def _headers(self, call: Call) -> dict[str, str]:
        headers = dict(call.headers)
        if call.authenticated and self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _url(self, call: Call) -> str:
        return _ops.absolute(self.url, call.url)


def _reply(response: httpx.Response, content: bytes = b"", received: int = 0, error: Exception | None = None) -> Reply:
    return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content, received, error)


class Client(_Api):
    """A blocking client. ``Client(url, token)``; or ``Client(url).login(user, password)``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, backoff: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.backoff = backoff  # scales the pauses between retries
        self._http = httpx.Client(timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def login(self, username: str, password: str) -> str:
        """Sign in; the client uses the token from then on, and returns it."""
        self.token = self._run(_ops.login(username, password))
        return self.token

    def upload(
        self,
        source: Source | Iterable[bytes],
        name: str | None = None,
        *,
        content_type: str | None = None,
        upload_url: str | None = None,
        on_upload_url: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> FileInfo:
        """Upload a path or file object resumably (tus), or an iterator of bytes in one
        streamed request. ``upload_url`` resumes an earlier upload of the same bytes."""
        with _opened(source) as (stream, default):
            op = _plan(stream, name or default, content_type, upload_url, on_upload_url, on_progress)
            result = self._run(op, source=stream)
        assert result is not None
        return result

    def upload_to_link(
        self,
        link: str,
        source: Source,
        name: str | None = None,
        *,
        password: str | None = None,
        uploader: str | None = None,
        upload_url: str | None = None,
        on_upload_url: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        """Upload through an upload-request link (``https://…/r/…``): no account needed,
        and nothing to read back."""
        headers = {"Authorization": f"Bearer {self._run(_ops.unlock(link, password))}"} if password else {}
        with _opened(source) as (stream, default):
            op = _plan(stream, name or default, None, upload_url, on_upload_url, on_progress,
                       f"{link}/uploads/", uploader, headers)  # fmt: skip
            self._run(op, source=stream)

    def download(self, file_id: str, sink: Sink, *, on_progress: Callable[[Progress], None] | None = None) -> int:
        """Download a file into a path or file object, resuming what a path already holds."""
        return self._download(f"/api/v1/files/{file_id}/content", sink, {}, on_progress, True)

    def download_link(
        self, link: str, sink: Sink, *, password: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> int:  # fmt: skip
        """Download what a share link offers (unlocking it with ``password`` if given)."""
        headers = {}
        if password is not None:
            headers["Authorization"] = f"Bearer {self._run(_ops.unlock(link, password))}"
        return self._download(f"{link}/download", sink, headers, on_progress, False)

    def link_info(self, link: str, password: str | None = None) -> LinkInfo:
        grant = self._run(_ops.unlock(link, password)) if password is not None else None
        return self._run(_ops.link_info(link, grant))

    def share(
        self, file_id: str, *, expires_in: int | None = None, download_limit: int | None = None,
        password: str | None = None, note: str | None = None,
    ) -> Link:  # fmt: skip
        """Create a share link; its ``url`` (with the secret token) is only in this answer."""
        link = self._run(_ops.create_link(file_id, expires_in, download_limit, password, note))
        return _with_base(link, self.url)

    def _download(
        self, url: str, sink: Sink, headers: dict[str, str], on_progress: Callable[[Progress], None] | None,
        authenticated: bool,
    ) -> int:  # fmt: skip
        if isinstance(sink, str | os.PathLike):
            with open(sink, "ab+") as f:
                return self._download(url, f, headers, on_progress, authenticated)
        offset = sink.seek(0, os.SEEK_END)
        return self._run(_ops.download(url, offset, headers, on_progress, authenticated), sink=sink)

    def _run(self, op: Op[T], source: Any = None, sink: IO[bytes] | None = None) -> T:
        result: Any = None
        while True:
            try:
                instruction = op.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(instruction, Call):
                result = self._call(instruction, source, sink)
            elif isinstance(instruction, Read):
                source.seek(instruction.offset)
                result = source.read(instruction.size)
            elif isinstance(instruction, Sleep):
                time.sleep(instruction.seconds * self.backoff)
                result = None
            elif isinstance(instruction, Reset):
                assert sink is not None
                sink.seek(0)
                sink.truncate()
                result = None

    def _call(self, call: Call, source: Any, sink: IO[bytes] | None) -> Reply:
        content = iter(source) if call.stream_body else call.content
        request = self._http.build_request(
            call.method, self._url(call), params=call.params, headers=self._headers(call),
            json=call.json, data=call.form, content=content,
        )  # fmt: skip
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return Reply(0, {}, error=exc)
        try:
            if call.to_sink and sink is not None and response.status_code in (200, 206):
                received = 0
                try:
                    for piece in response.iter_bytes(PIECE):
                        sink.write(piece)
                        received += len(piece)
                except httpx.TransportError as exc:
                    return _reply(response, received=received, error=exc)
                return _reply(response, received=received)
            try:
                return _reply(response, response.read())
            except httpx.TransportError as exc:
                return _reply(response, error=exc)
        finally:
            response.close()


class AsyncClient(_Api):
    """The asyncio client: the same operations as ``Client``, awaitable."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, backoff: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.backoff = backoff
        self._http = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def login(self, username: str, password: str) -> str:
        self.token = await self._run(_ops.login(username, password))
        return self.token

    async def upload(
        self,
        source: Source | AsyncIterable[bytes] | Iterable[bytes],
        name: str | None = None,
        *,
        content_type: str | None = None,
        upload_url: str | None = None,
        on_upload_url: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> FileInfo:
        """As ``Client.upload``; an async iterator of bytes is streamed too."""
        with _opened(source) as (stream, default):
            op = _plan(stream, name or default, content_type, upload_url, on_upload_url, on_progress)
            result = await self._run(op, source=stream)
        assert result is not None
        return result

    async def upload_to_link(
        self,
        link: str,
        source: Source,
        name: str | None = None,
        *,
        password: str | None = None,
        uploader: str | None = None,
        upload_url: str | None = None,
        on_upload_url: Callable[[str], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        """As ``Client.upload_to_link``."""
        headers = {"Authorization": f"Bearer {await self._run(_ops.unlock(link, password))}"} if password else {}
        with _opened(source) as (stream, default):
            op = _plan(stream, name or default, None, upload_url, on_upload_url, on_progress,
                       f"{link}/uploads/", uploader, headers)  # fmt: skip
            await self._run(op, source=stream)

    async def download(self, file_id: str, sink: Sink, *, on_progress: Callable[[Progress], None] | None = None) -> int:
        return await self._download(f"/api/v1/files/{file_id}/content", sink, {}, on_progress, True)

    async def download_link(
        self, link: str, sink: Sink, *, password: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> int:  # fmt: skip
        headers = {}
        if password is not None:
            headers["Authorization"] = f"Bearer {await self._run(_ops.unlock(link, password))}"
        return await self._download(f"{link}/download", sink, headers, on_progress, False)

    async def link_info(self, link: str, password: str | None = None) -> LinkInfo:
        grant = await self._run(_ops.unlock(link, password)) if password is not None else None
        return await self._run(_ops.link_info(link, grant))

    async def share(
        self, file_id: str, *, expires_in: int | None = None, download_limit: int | None = None,
        password: str | None = None, note: str | None = None,
    ) -> Link:  # fmt: skip
        link = await self._run(_ops.create_link(file_id, expires_in, download_limit, password, note))
        return _with_base(link, self.url)

    async def _download(
        self, url: str, sink: Sink, headers: dict[str, str], on_progress: Callable[[Progress], None] | None,
        authenticated: bool,
    ) -> int:  # fmt: skip
        if isinstance(sink, str | os.PathLike):
            with open(sink, "ab+") as f:  # noqa: ASYNC230
                return await self._download(url, f, headers, on_progress, authenticated)
        offset = sink.seek(0, os.SEEK_END)
        return await self._run(_ops.download(url, offset, headers, on_progress, authenticated), sink=sink)

    async def _run(self, op: Op[T], source: Any = None, sink: IO[bytes] | None = None) -> T:
        result: Any = None
        while True:
            try:
                instruction = op.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(instruction, Call):
                result = await self._call(instruction, source, sink)
            elif isinstance(instruction, Read):
                source.seek(instruction.offset)
                result = await asyncio.to_thread(source.read, instruction.size)
            elif isinstance(instruction, Sleep):
                await asyncio.sleep(instruction.seconds * self.backoff)
                result = None
            elif isinstance(instruction, Reset):
                assert sink is not None
                sink.seek(0)
                sink.truncate()
                result = None

    async def _call(self, call: Call, source: Any, sink: IO[bytes] | None) -> Reply:
        content: Any = call.content
        if call.stream_body:
            content = source if hasattr(source, "__aiter__") else _aiter(source)
        request = self._http.build_request(
            call.method, self._url(call), params=call.params, headers=self._headers(call),
            json=call.json, data=call.form, content=content,
        )  # fmt: skip
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return Reply(0, {}, error=exc)
        try:
            if call.to_sink and sink is not None and response.status_code in (200, 206):
                received = 0
                try:
                    async for piece in response.aiter_bytes(PIECE):
                        sink.write(piece)
                        received += len(piece)
                except httpx.TransportError as exc:
                    return _reply(response, received=received, error=exc)
                return _reply(response, received=received)
            try:
                return _reply(response, await response.aread())
            except httpx.TransportError as exc:
                return _reply(response, error=exc)
        finally:
            await response.aclose()


@contextlib.contextmanager
def _opened(source: Any) -> Iterator[tuple[Any, str | None]]:
    """A path opened for reading (with its name), or the source as it is."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            yield f, Path(source).name
    else:
        yield source, None


def _plan(
    source: Any,
    name: str | None,
    content_type: str | None,
    upload_url: str | None,
    on_upload_url: Callable[[str], None] | None,
    on_progress: Callable[[Progress], None] | None,
    endpoint: str = "/api/v1/uploads/",
    uploader: str | None = None,
    headers: dict[str, str] | None = None,
) -> Op[FileInfo | None]:
    """The operation for an upload: tus for a file object (resumable), one streamed
    request for an iterator (which cannot be replayed)."""
    if not hasattr(source, "read"):
        if name is None:
            raise ValueError("name the upload of an iterator")
        if endpoint != "/api/v1/uploads/":
            raise ValueError("an upload through a link needs a path or a file object")
        return _ops.upload_stream(name)
    stream = cast(IO[bytes], source)
    size = stream.seek(0, os.SEEK_END)
    name = name or Path(getattr(stream, "name", "upload")).name
    extra = {"uploader": uploader} if uploader else None
    return _ops.upload(size, name, content_type, upload_url, on_upload_url, on_progress,
                       endpoint=endpoint, extra=extra, headers=headers)  # fmt: skip


async def _aiter(source: Iterable[bytes]) -> Any:
    for piece in source:
        yield piece


def _with_base(link: Link, base: str) -> Link:
    if link.url is None or link.url.startswith("http"):
        return link
    from dataclasses import replace

    return replace(link, url=base + link.url)
