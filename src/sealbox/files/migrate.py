"""Copy every file's blob (or segments) to another store, as ciphertext, verified and resumable.

Blobs are copied byte for byte (never decrypted: the copy needs no key). A copy counts
as done only when the target's bytes hash the same as the source's; a blob already in
the target with the right size and header tag is skipped, so an interrupted migration
is resumed by running it again. The source is left untouched.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sealbox.crypto.stream import HEADER_LEN, sealed_size
from sealbox.db.session import Database
from sealbox.errors import IntegrityFailure, Unavailable
from sealbox.files.repository import FileRepository
from sealbox.files.service import blob_key
from sealbox.storage.base import BlobNotFound, BlobStore, StorageUnavailable

BATCH = 200


@dataclass(frozen=True)
class Step:
    file_id: uuid.UUID
    copied: bool  # False: already in the target (every segment), verified by size and header tag
    size: int  # bytes of ciphertext (all its segments)


async def _digest(store: BlobStore, key: str, size: int) -> str:
    digest = hashlib.sha256()
    async for piece in store.get_range(key, 0, size):
        digest.update(piece)
    return digest.hexdigest()


async def _already_there(target: BlobStore, key: str, size: int, header_tag: bytes) -> bool:
    try:
        if await target.size(key) != size:
            return False
        return (await target.read(key, 0, HEADER_LEN))[HEADER_LEN - 32 :] == header_tag
    except BlobNotFound:
        return False


async def _copy(source: BlobStore, target: BlobStore, key: str, size: int) -> None:
    digest = hashlib.sha256()

    async def stream() -> AsyncIterator[bytes | bytearray]:
        async for piece in source.get_range(key, 0, size):
            digest.update(piece)
            yield piece

    written = await target.put(key, stream())
    if written != size or await _digest(target, key, size) != digest.hexdigest():
        await target.delete(key)
        raise IntegrityFailure(f"the copy of {key} does not match its source")


async def migrate(db: Database, source: BlobStore, target: BlobStore) -> AsyncIterator[Step]:
    """Copy every file's blob (or, for a file made of segments, each of its segments)
    from ``source`` to ``target``; yield one ``Step`` per file.

    Raises ``IntegrityFailure`` if a blob is missing from the source or a copy does not
    verify, and ``Unavailable`` if a store cannot be reached.
    """
    after: uuid.UUID | None = None
    while True:
        async with db.read() as session:
            files = FileRepository(session)
            records = await files.blob_records(after, BATCH)
            segments = await files.segment_keys([record[0] for record in records if record[4]])
        if not records:
            return
        for file_id, plain_size, header_tag, chunk_log2, _ in records:
            blobs = [(key, sealed_size(size, log2), tag) for key, size, log2, tag in segments.get(file_id, [])] or [
                (blob_key(file_id), sealed_size(plain_size, chunk_log2), header_tag)
            ]
            copied = False
            try:
                for key, size, tag in blobs:
                    if not await _already_there(target, key, size, tag):
                        await _copy(source, target, key, size)
                        copied = True
            except BlobNotFound as exc:
                raise IntegrityFailure(f"the blob of file {file_id} is missing from the source") from exc
            except StorageUnavailable as exc:
                raise Unavailable(str(exc)) from exc
            yield Step(file_id, copied, sum(size for _, size, _ in blobs))
        after = records[-1][0]


async def count(db: Database) -> int:
    async with db.read() as session:
        return await FileRepository(session).count()
