"""The ``BlobStore`` interface and its errors.

    StorageError
     ├─ BlobNotFound         no blob under that key
     └─ StorageUnavailable   the backend cannot be reached or failed

Contract, for every implementation:

- ``put`` is atomic: a reader sees either no blob or the complete one. If the source
  raises (client disconnect, size limit, bad input) or the task is cancelled, nothing
  remains under the key or under any temporary name, and the source's exception
  propagates unchanged.
- ``put`` returns only after the blob is durable (synced to disk, or acknowledged by
  the object store).
- Keys are ``/``-separated segments of ``[A-Za-z0-9_-]``; the caller derives them from
  ids it generated, never from client input.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Protocol

READ_PIECE = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class StorageError(Exception):
    """Base class of every error raised by ``sealbox.storage``."""


class BlobNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no blob under {key!r}")
        self.key = key


class StorageUnavailable(StorageError):
    """The backend failed; the request may succeed later."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key; raise ``ValueError`` otherwise."""
    if len(key) > 512 or not _KEY.match(key):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        """Store the concatenation of ``chunks`` under ``key``; return its size."""

    def get_range(self, key: str, start: int, length: int, piece: int = READ_PIECE) -> AsyncIterator[bytes | bytearray]:
        """Stream ``length`` bytes from ``start``; raises ``BlobNotFound``.

        Pieces are ``piece`` bytes long (the last may be shorter), so a reader that
        works in fixed batches can use them without copying. Each piece is a fresh
        buffer that the caller may keep.
        """

    async def read(self, key: str, start: int, length: int) -> bytes:
        """Read a small range whole (a header, one chunk); short at the end of the blob."""

    async def size(self, key: str) -> int:
        """Size in bytes; raises ``BlobNotFound``."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it does not exist."""

    def list(self, prefix: str) -> AsyncIterator[tuple[str, datetime]]:
        """Yield ``(key, last_modified)`` for every blob under ``prefix``."""

    async def holds_any(self, prefix: str) -> bool:
        """Whether any blob exists under ``prefix``."""

    async def sweep_partial(self, older_than: datetime) -> int:
        """Remove unfinished writes started before ``older_than``; return how many."""

    async def check(self) -> None:
        """Raise ``StorageUnavailable`` if the store cannot be used."""
