"""``MemoryStore``: an in-process blob store for unit tests; same contract as the others."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime

from sealbox.storage.base import READ_PIECE, BlobNotFound, check_key


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, datetime]] = {}
        self.partial = 0

    async def put(self, key: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        check_key(key)
        data = bytearray()
        self.partial += 1
        try:
            async for chunk in chunks:
                data += chunk
        finally:
            self.partial -= 1
        self.blobs[key] = (bytes(data), datetime.now(UTC))
        return len(data)

    def _get(self, key: str) -> bytes:
        try:
            return self.blobs[check_key(key)][0]
        except KeyError:
            raise BlobNotFound(key) from None

    async def get_range(self, key: str, start: int, length: int, piece: int = READ_PIECE) -> AsyncIterator[bytes]:
        data = self._get(key)
        for offset in range(start, min(start + length, len(data)), piece):
            yield data[offset : min(offset + piece, start + length)]

    async def read(self, key: str, start: int, length: int) -> bytes:
        return self._get(key)[start : start + length]

    async def size(self, key: str) -> int:
        return len(self._get(key))

    async def delete(self, key: str) -> None:
        self.blobs.pop(check_key(key), None)

    async def list(self, prefix: str) -> AsyncIterator[tuple[str, datetime]]:
        for key, (_, modified) in list(self.blobs.items()):
            if key.startswith(prefix):
                yield key, modified

    async def holds_any(self, prefix: str) -> bool:
        return any(key.startswith(prefix) for key in self.blobs)

    async def sweep_partial(self, older_than: datetime) -> int:
        return 0

    async def check(self) -> None:
        return None
