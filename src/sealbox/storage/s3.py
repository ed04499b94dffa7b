"""``S3Store``: blobs as objects in any S3-compatible bucket, through obstore.

- ``put`` streams the ciphertext as a multipart upload in 5 MiB parts, at most two in
  flight (bounded memory); a source that fails, or a failed part, aborts the upload so
  no object appears. An object appears only when the upload completes, so readers see
  nothing or the whole blob.
- Reads are ranged GETs, a few in flight ahead of the consumer; ``size`` is a HEAD.
- Every backend error becomes ``StorageUnavailable`` (``BlobNotFound`` for a missing
  key), so services never see an obstore exception.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store as _ObstoreS3

from sealbox.storage.base import READ_PIECE, BlobNotFound, StorageUnavailable, check_key

if TYPE_CHECKING:
    from obstore.store import S3Config

PART_SIZE = 5 << 20  # the S3 minimum for every part but the last
PARTS_IN_FLIGHT = 2
RANGE_SIZE = 4 << 20  # bytes per ranged GET of a read (rounded to whole pieces)
RANGES_IN_FLIGHT = 2  # ranged GETs of a read ahead of its consumer


class S3Store:
    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        path_style: bool = True,
        allow_http: bool = False,
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        config: S3Config = {"region": region, "virtual_hosted_style_request": not path_style}
        if endpoint:
            config["endpoint"] = endpoint
        if access_key_id and secret_access_key:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        self._store = _ObstoreS3(
            bucket,
            config=config,
            client_options={"allow_http": allow_http, "connect_timeout": "5s", "timeout": "60s"},
            retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=5)},
        )

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        path = self._path(key)
        size = 0

        async def counted() -> AsyncIterator[bytes | bytearray]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        source = counted()
        try:
            await obstore.put_async(self._store, path, source, chunk_size=PART_SIZE, max_concurrency=PARTS_IN_FLIGHT)
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc
        return size

    async def get_range(
        self, key: str, start: int, length: int, piece: int = READ_PIECE
    ) -> AsyncIterator[bytes | bytearray | memoryview]:
        # The span is fetched as ranged GETs of a whole number of pieces each, up to
        # ``RANGES_IN_FLIGHT`` ahead of the consumer, so the network overlaps the
        # decrypting and sending of what came before. Each range arrives as one buffer
        # (one await instead of one per network frame) and is cut into pieces of
        # exactly ``piece`` bytes, the size a reader decrypts where it lies. Memory is
        # bounded by (RANGES_IN_FLIGHT + 1) ranges. A consumer that stops early cancels
        # the requests still in flight.
        path = self._path(key)
        if length <= 0:
            return
        span = max(1, RANGE_SIZE // piece) * piece
        end = start + length
        starts = iter(range(start, end, span))
        pending: deque[asyncio.Task[obstore.Bytes]] = deque()

        def fetch_next() -> None:
            at = next(starts, None)
            if at is not None:
                pending.append(asyncio.create_task(self._fetch(path, at, min(span, end - at))))

        try:
            for _ in range(RANGES_IN_FLIGHT):
                fetch_next()
            while pending:
                data = await pending.popleft()
                fetch_next()
                view = memoryview(data)
                for at in range(0, len(view), piece):
                    # One copy, straight out of obstore's buffer.
                    yield view[at : at + piece]
                del view, data
        except FileNotFoundError:  # obstore signals a missing object with it
            raise BlobNotFound(key) from None
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                for task in pending:  # retrieved, so none is reported as never retrieved
                    _ = task.cancelled() or task.exception()

    async def _fetch(self, path: str, start: int, length: int) -> obstore.Bytes:
        # A task of its own (not obstore's bare future), so cancelling it cancels the
        # request and the loop can tell it is still running.
        return await obstore.get_range_async(self._store, path, start=start, length=length)

    async def read(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            data = await obstore.get_range_async(self._store, self._path(key), start=start, length=length)
        except FileNotFoundError:  # obstore signals a missing object with it
            raise BlobNotFound(key) from None
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc
        return bytes(data)

    async def size(self, key: str) -> int:
        try:
            meta = await obstore.head_async(self._store, self._path(key))
        except FileNotFoundError:  # obstore signals a missing object with it
            raise BlobNotFound(key) from None
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._store, self._path(key))
        except FileNotFoundError:  # obstore signals a missing object with it
            return
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc

    async def list(self, prefix: str) -> AsyncIterator[tuple[str, datetime]]:
        full = self._path(prefix) if prefix else self.prefix or None
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            async for batch in obstore.list(self._store, full):
                for meta in batch:
                    modified = meta["last_modified"]
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=UTC)
                    yield meta["path"][strip:], modified
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc

    async def sweep_partial(self, older_than: datetime) -> int:
        # Unfinished multipart uploads are aborted by ``put`` itself; the bucket's
        # lifecycle rule (AbortIncompleteMultipartUpload, see docs/deploy.md) removes
        # those of a process that died mid-upload.
        return 0

    async def holds_any(self, prefix: str) -> bool:
        try:
            found = await obstore.list_with_delimiter_async(self._store, self._path(prefix))
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc
        return bool(found["objects"] or found["common_prefixes"])

    async def check(self) -> None:
        # One complete request, not a listing stream left half-read: obstore's runtime
        # must not be busy with a background request when the process exits.
        try:
            await obstore.list_with_delimiter_async(self._store, self.prefix or None)
        except BaseError as exc:
            raise StorageUnavailable(
                f"bucket {self.bucket!r} is missing or unreachable ({type(exc).__name__})"
            ) from exc
