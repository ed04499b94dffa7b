"""``S3Store``: blobs as objects in any S3-compatible bucket, through obstore.

- ``put`` streams the ciphertext as a multipart upload in 5 MiB parts, at most two in
  flight (bounded memory); a source that fails, or a failed part, aborts the upload so
  no object appears. An object appears only when the upload completes, so readers see
  nothing or the whole blob.
- Reads are ranged GETs; ``size`` is a HEAD.
- Every backend error becomes ``StorageUnavailable`` (``BlobNotFound`` for a missing
  key), so services never see an obstore exception.
"""

from __future__ import annotations

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
    ) -> AsyncIterator[bytes | bytearray]:
        path = self._path(key)
        if length <= 0:
            return
        try:
            result = await obstore.get_async(self._store, path, options={"range": (start, start + length)})
            # obstore hands over network frames joined to at least ``piece`` bytes, so
            # rarely exactly ``piece``: cut them into pieces of exactly that size (the
            # size a reader decrypts in place) with one copy each, straight out of
            # obstore's buffers. Pieces grow by appending: ``bytearray(n)`` would first
            # zero what the copy then overwrites (~4 % of a download's CPU in a profile).
            left = length
            buf = bytearray()
            async for data in result.stream(min_chunk_size=piece):
                view = memoryview(data)
                if len(view) > left - len(buf):
                    raise StorageUnavailable("object storage returned more than the range asked for")
                while view:
                    want = min(piece, left)
                    take = min(want - len(buf), len(view))
                    buf += view[:take]
                    view = view[take:]
                    if len(buf) == want:
                        left -= want
                        yield buf
                        buf = bytearray()
            if buf:
                yield buf
        except FileNotFoundError:  # obstore signals a missing object with it
            raise BlobNotFound(key) from None
        except BaseError as exc:
            raise StorageUnavailable(f"object storage failed: {type(exc).__name__}") from exc

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
