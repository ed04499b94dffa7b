"""``Client`` (blocking) and ``AsyncClient`` (asyncio): the same operations, performed
with ``httpx2.Client`` or ``httpx2.AsyncClient``.

Every public method is an operation of ``_ops`` exposed by ``operation``; the clients
themselves only perform instructions (HTTP calls, reads of the upload source, writes to
the download sink, pauses between retries)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Generic, ParamSpec, TypeVar, overload

import httpx2 as httpx

from sealbox.client import _ops, _tree
from sealbox.client._ops import (
    BaseUrl,
    Call,
    Local,
    Op,
    OpenSink,
    OpenSource,
    Parallel,
    Read,
    Reply,
    Reset,
    SetToken,
    Sleep,
)

P = ParamSpec("P")
T = TypeVar("T")
PIECE = 1 << 20


class operation(Generic[P, T]):
    """Expose an operation as a method: blocking on ``Client``, awaitable on ``AsyncClient``."""

    def __init__(self, fn: Callable[P, Op[T]]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

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

    login = operation(_ops.login)
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
    upload = operation(_ops.upload)
    files = operation(_ops.list_files)
    file = operation(_ops.get_file)
    download = operation(_ops.download)
    delete = operation(_ops.delete_file)
    share = operation(_tree.share)
    links = operation(_ops.links)
    revoke_link = operation(_ops.revoke_link)
    link_info = operation(_ops.link_info)
    download_link = operation(_ops.download_link)
    grant = operation(_ops.grant)
    grants = operation(_ops.grants)
    revoke_grant = operation(_ops.revoke_grant)
    shared_with_me = operation(_ops.shared_with_me)
    create_request = operation(_ops.create_request)
    requests = operation(_ops.requests)
    revoke_request = operation(_ops.revoke_request)
    received = operation(_ops.received)
    upload_to_link = operation(_ops.upload_to_link)
    audit = operation(_ops.audit)
    make_folder = operation(_tree.make_folder)
    make_path = operation(_tree.make_path)
    lookup = operation(_tree.lookup)
    list_folder = operation(_tree.list_folder)
    folder_items = operation(_tree.folder_items)
    rename_folder = operation(_tree.rename_folder)
    move_folder = operation(_tree.move_folder)
    delete_folder = operation(_tree.delete_folder)
    rename_file = operation(_tree.rename_file)
    move_file = operation(_tree.move_file)
    upload_file = operation(_tree.upload_file)
    upload_dir = operation(_tree.upload_dir)
    download_link_dir = operation(_tree.download_link_dir)
    download_link_archive = operation(_tree.download_link_archive)

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, backoff: float = 1.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.backoff = backoff  # scales the pauses between retries

    def _local(self, instruction: Any, run: _Run) -> Any:
        """Perform what needs no I/O on the network (the same for both clients)."""
        if isinstance(instruction, OpenSource):
            return run.open_source(instruction.source)
        if isinstance(instruction, OpenSink):
            return run.open_sink(instruction.sink)
        if isinstance(instruction, Reset):
            return run.reset()
        if isinstance(instruction, BaseUrl):
            return self.url
        if isinstance(instruction, SetToken):
            self.token = instruction.token
            return None
        raise TypeError(instruction)

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call, content: Any) -> httpx.Request:
        headers = dict(call.headers)
        if call.authenticated and self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        url = _ops.absolute(self.url, call.url)
        return http.build_request(
            call.method, url, params=call.params, headers=headers, json=call.json, data=call.form, content=content
        )


class _Run:
    """What one operation has opened: its upload source and download sink."""

    def __init__(self) -> None:
        self.closing = contextlib.ExitStack()
        self.source: Any = None
        self.sink: IO[bytes] | None = None

    def open_source(self, source: Any) -> tuple[int | None, str | None]:
        if isinstance(source, str | os.PathLike):
            self.source = self.closing.enter_context(open(source, "rb"))  # noqa: SIM115 (closed by the stack)
            return self.source.seek(0, os.SEEK_END), Path(source).name
        self.source = source
        if not hasattr(source, "read"):
            return None, None  # an iterator: streamed once
        return source.seek(0, os.SEEK_END), Path(getattr(source, "name", "") or "upload").name

    def open_sink(self, sink: Any) -> int:
        if isinstance(sink, str | os.PathLike):
            sink = self.closing.enter_context(open(sink, "ab+"))  # noqa: SIM115
        self.sink = sink
        return int(sink.seek(0, os.SEEK_END))

    def read(self, instruction: Read) -> bytes:
        self.source.seek(instruction.offset)
        return bytes(self.source.read(instruction.size))

    def reset(self) -> None:
        assert self.sink is not None
        self.sink.seek(0)
        self.sink.truncate()


def _reply(response: httpx.Response, content: bytes = b"", received: int = 0, error: Exception | None = None) -> Reply:
    return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content, received, error)


class Client(_Api):
    """A blocking client: ``Client(url, token)``, or ``Client(url)`` then ``login``."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, backoff: float = 1.0) -> None:
        super().__init__(url, token, timeout=timeout, backoff=backoff)
        self._http = httpx.Client(timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, op: Op[T]) -> T:
        run = _Run()
        with run.closing:
            result: Any = None
            while True:
                try:
                    instruction = op.send(result)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                if isinstance(instruction, Call):
                    result = self._call(instruction, run)
                elif isinstance(instruction, Read):
                    result = run.read(instruction)
                elif isinstance(instruction, Sleep):
                    time.sleep(instruction.seconds * self.backoff)
                    result = None
                elif isinstance(instruction, Local):
                    result = instruction.fn(*instruction.args)
                elif isinstance(instruction, Parallel):
                    result = self._parallel(instruction)
                else:
                    result = self._local(instruction, run)

    def _parallel(self, instruction: Parallel) -> list[Any]:
        # httpx2.Client is safe to share between threads (one connection pool).
        with ThreadPoolExecutor(max(1, instruction.workers)) as pool:
            futures = [pool.submit(self._run, op) for op in instruction.ops]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _call(self, call: Call, run: _Run) -> Reply:
        content = iter(run.source) if call.stream_body else call.content
        try:
            response = self._http.send(self._request(self._http, call, content), stream=True)
        except httpx.TransportError as exc:
            return Reply(0, {}, error=exc)
        try:
            if call.to_sink and run.sink is not None and response.status_code in (200, 206):
                received = 0
                try:
                    for piece in response.iter_bytes(PIECE):
                        run.sink.write(piece)
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
    """The asyncio client: the same operations as ``Client``, awaitable. An async
    iterator of bytes can be uploaded too."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0, backoff: float = 1.0) -> None:
        super().__init__(url, token, timeout=timeout, backoff=backoff)
        self._http = httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, op: Op[T]) -> T:
        run = _Run()
        with run.closing:
            result: Any = None
            while True:
                try:
                    instruction = op.send(result)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                if isinstance(instruction, Call):
                    result = await self._call(instruction, run)
                elif isinstance(instruction, Read):
                    result = await asyncio.to_thread(run.read, instruction)
                elif isinstance(instruction, Sleep):
                    await asyncio.sleep(instruction.seconds * self.backoff)
                    result = None
                elif isinstance(instruction, Local):
                    result = await asyncio.to_thread(instruction.fn, *instruction.args)
                elif isinstance(instruction, Parallel):
                    result = await self._parallel(instruction)
                else:
                    result = self._local(instruction, run)

    async def _parallel(self, instruction: Parallel) -> list[Any]:
        slots = asyncio.Semaphore(max(1, instruction.workers))

        async def one(op: Op[Any]) -> Any:
            async with slots:
                return await self._run(op)

        # A TaskGroup cancels the others when one fails, and raises that error.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(op)) for op in instruction.ops]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _call(self, call: Call, run: _Run) -> Reply:
        content: Any = call.content
        if call.stream_body:
            content = run.source if hasattr(run.source, "__aiter__") else _aiter(run.source)
        try:
            response = await self._http.send(self._request(self._http, call, content), stream=True)
        except httpx.TransportError as exc:
            return Reply(0, {}, error=exc)
        try:
            if call.to_sink and run.sink is not None and response.status_code in (200, 206):
                received = 0
                try:
                    async for piece in response.aiter_bytes(PIECE):
                        run.sink.write(piece)
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


async def _aiter(source: Iterable[bytes]) -> Any:
    for piece in source:
        yield piece
