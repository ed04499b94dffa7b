"""File rules: upload (encrypt while streaming), list, download (the gate), delete.

``FileService.open`` is the one gate for file bytes: every route that returns content
calls it, and it authorises the caller before any stored byte is read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sealbox.crypto.errors import IntegrityError, UnknownKeyId
from sealbox.crypto.keys import FieldCipher, KeyProvider, new_dek
from sealbox.crypto.stream import HEADER_LEN, Opener, Sealer, parse_header
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import IntegrityFailure, InvalidInput, NotFound, TooLarge, Unavailable
from sealbox.files.names import check_content_type, check_name
from sealbox.files.repository import FileRepository
from sealbox.files.schemas import FilePage, FileRead
from sealbox.ids import FileId, UserId
from sealbox.models import File
from sealbox.storage.base import BlobNotFound, BlobStore, StorageUnavailable

BLOB_PREFIX = "files"
SMALL_BLOB = 256 << 10
MAX_PAGE = 1000


def blob_key(file_id: uuid.UUID) -> str:
    """The object key of a file's blob: derived from its id only, never from client input."""
    return f"{BLOB_PREFIX}/{file_id.hex[:2]}/{file_id.hex}"


def parse_file_id(value: str) -> FileId:
    """Parse a client-supplied id; anything malformed is simply a file that does not exist."""
    try:
        return FileId(uuid.UUID(value))
    except ValueError:
        raise NotFound("file not found") from None


def etag_of(header_tag: bytes) -> str:
    # The header tag is an HMAC under a per-file key: it changes with every write and
    # reveals nothing about the plaintext, unlike a content hash.
    return '"' + header_tag[:16].hex() + '"'


async def _limited(source: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for piece in source:
        total += len(piece)
        if total > limit:
            raise TooLarge(f"the file is larger than the limit of {limit} bytes")
        yield piece


@contextlib.contextmanager
def stored_data_errors() -> Iterator[None]:
    """Translate what reading a blob can raise into sealbox errors.

    A missing blob is an integrity failure, not an empty file: its record says it exists.
    """
    try:
        yield
    except IntegrityError as exc:
        raise IntegrityFailure("stored data failed authentication") from exc
    except BlobNotFound as exc:
        raise IntegrityFailure("stored data is missing") from exc
    except StorageUnavailable as exc:
        raise Unavailable("file storage is unavailable") from exc


@dataclass
class Download:
    """An authorised, authenticated file ready to stream: the header and the final
    chunk have verified, so the size is known to be right."""

    file: FileRead
    _opener: Opener
    _store: BlobStore
    _key: str
    _blob: bytes | None = None  # the whole blob, when it is small enough to read at once

    async def content(self, start: int, end: int) -> AsyncIterator[bytearray | memoryview]:
        """Plaintext bytes ``start..end`` inclusive; raises ``IntegrityFailure`` midway
        if stored data fails authentication (the caller must then abort the response)."""
        offset, length = self._opener.chunk_span(start // self._opener.chunk_size, end // self._opener.chunk_size)
        with stored_data_errors():
            if self._blob is None:
                sealed = self._store.get_range(self._key, offset, length, self._opener.batch_bytes)
            else:
                sealed = _one(self._blob[offset : offset + length])
            async for piece in self._opener.open_range(sealed, start, end):
                yield piece


async def _succeeded(task: asyncio.Future[None]) -> bool:
    try:
        await task
    except Exception:
        return False
    return True


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class FileService:
    def __init__(self, db: Database, store: BlobStore, keyring: KeyProvider, max_upload_size: int) -> None:
        self.db = db
        self.store = store
        self.keyring = keyring
        self.max_upload_size = max_upload_size

    def _read(self, row: File, dek: bytes | None = None) -> FileRead:
        dek = dek or self._dek(row)
        fields = FieldCipher(dek, row.id.bytes)
        try:
            name = fields.decrypt("name", row.name_enc)
            content_type = fields.decrypt("content_type", row.content_type_enc)
        except IntegrityError as exc:
            raise IntegrityFailure("stored file metadata failed authentication") from exc
        return FileRead(
            id=str(row.id),
            name=name,
            size=row.size,
            content_type=content_type,
            created_at=row.created_at,
            etag=etag_of(row.header_tag),
        )

    def _dek(self, row: File) -> bytes:
        try:
            return self.keyring.unwrap(row.key_id, row.id.bytes, row.wrapped_dek)
        except UnknownKeyId as exc:
            raise IntegrityFailure("the key for this file is not in the keyring") from exc
        except IntegrityError as exc:
            raise IntegrityFailure("the stored file key failed authentication") from exc

    async def upload(
        self, owner: UserId, name: str, content_type: str | None, source: AsyncIterable[bytes]
    ) -> FileRead:
        """Encrypt ``source`` into a new blob, then record the file.

        The row is committed only after the blob is durable, so a file is never listed
        before it is complete. On any failure (including ``TooLarge`` raised while
        streaming, or the client going away) nothing is left behind.
        """
        check_name(name)
        content_type = check_content_type(content_type, name)
        file_id = FileId(uuid.uuid4())
        dek = new_dek()
        key_id, wrapped = self.keyring.wrap(file_id.bytes, dek)
        sealer = Sealer(dek, file_id.bytes)
        key = blob_key(file_id)
        try:
            await self.store.put(key, sealer.seal(_limited(source, self.max_upload_size)))
        except StorageUnavailable as exc:
            raise Unavailable("file storage is unavailable") from exc
        fields = FieldCipher(dek, file_id.bytes)
        row = File(
            id=file_id,
            owner_id=owner,
            name_enc=fields.encrypt("name", name),
            content_type_enc=fields.encrypt("content_type", content_type),
            size=sealer.plain_size,
            chunk_log2=sealer.header.chunk_log2,
            key_id=key_id,
            wrapped_dek=wrapped,
            header_tag=sealer.header.tag,
            created_at=utcnow(),
        )
        commit = asyncio.ensure_future(self.db.insert(row))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # The commit goes on without us: keep the blob if it succeeds, so a listed
            # file always has its bytes.
            if not await _succeeded(commit):
                await self.store.delete(key)
            raise
        except BaseException:
            await self.store.delete(key)
            raise
        return self._read(row, dek)

    async def get(self, owner: UserId, file_id: FileId) -> FileRead:
        async with self.db.read() as session:
            row = await FileRepository(session).owned(owner, file_id)
        if row is None:
            raise NotFound("file not found")
        return self._read(row)

    async def list(self, owner: UserId, limit: int, cursor: str | None) -> FilePage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        after = _decode_cursor(cursor) if cursor else None
        async with self.db.read() as session:
            rows = await FileRepository(session).page(owner, limit + 1, after)
        items = [self._read(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return FilePage(items=items, next_cursor=_encode_cursor(last.created_at, last.id) if last else None)

    async def delete(self, owner: UserId, file_id: FileId) -> None:
        """Delete the row (and with it the wrapped DEK), then the blob.

        Once the row is gone the blob can never be decrypted again; if removing the
        blob fails, the sweeper removes it later.
        """
        async with self.db.write() as session:
            if not await FileRepository(session).remove(owner, file_id):
                raise NotFound("file not found")
        with contextlib.suppress(StorageUnavailable):
            await self.store.delete(blob_key(file_id))

    async def delete_all(self, owner: UserId) -> int:
        """Delete every file of ``owner`` (rows first, then blobs); return how many."""
        removed = 0
        while True:
            async with self.db.read() as session:
                rows = await FileRepository(session).page(owner, 500, None)
            if not rows:
                return removed
            for row in rows:
                with contextlib.suppress(NotFound):
                    await self.delete(owner, FileId(row.id))
                    removed += 1

    async def open(self, owner: UserId, file_id: FileId) -> Download:
        """The gate for file bytes: authorise, then authenticate header and final chunk.

        Raises ``NotFound`` for a missing file or someone else's, and
        ``IntegrityFailure`` if stored data was altered (before any byte is released).
        """
        async with self.db.read() as session:
            row = await FileRepository(session).owned(owner, file_id)
        if row is None:
            raise NotFound("file not found")
        dek = self._dek(row)
        info = self._read(row, dek)
        key = blob_key(row.id)
        with stored_data_errors():
            size = await self.store.size(key)
            # A small blob is read in one call, instead of header, final chunk and body
            # in three: for small files those calls are most of the cost.
            blob = await self.store.read(key, 0, size) if size <= SMALL_BLOB else None
            raw_header = blob[:HEADER_LEN] if blob is not None else await self.store.read(key, 0, HEADER_LEN)
            header, k_pay = parse_header(raw_header, dek, row.id.bytes)
            # The row pins the header tag: an older blob of the same file (rollback) or a
            # blob from another file fails here.
            if not hmac.compare_digest(header.tag, row.header_tag):
                raise IntegrityError("blob does not match its record")
            opener = Opener(header, k_pay, size)
            if opener.plain_size != row.size:
                raise IntegrityError("blob size does not match its record")
            last = opener.chunk_count - 1
            offset, length = opener.chunk_span(last, last)
            final = blob[offset : offset + length] if blob is not None else await self.store.read(key, offset, length)
            opener.verify_final(final)
        return Download(info, opener, self.store, key, blob)

    async def referenced_key_ids(self) -> set[str]:
        async with self.db.read() as session:
            return await FileRepository(session).key_ids()

    async def sweep(self, older_than: timedelta) -> int:
        """Remove unfinished writes and blobs without a row, older than ``older_than``."""
        cutoff = utcnow() - older_than
        removed = await self.store.sweep_partial(cutoff)
        candidates: dict[uuid.UUID, str] = {}
        async for key, modified in self.store.list(BLOB_PREFIX):
            try:
                file_id = uuid.UUID(key.rsplit("/", 1)[-1])
            except ValueError:
                continue
            if modified < cutoff and blob_key(file_id) == key:
                candidates[file_id] = key
        ids = list(candidates)
        for i in range(0, len(ids), 500):
            batch = ids[i : i + 500]
            async with self.db.read() as session:
                known = await FileRepository(session).existing(batch)
            for file_id in batch:
                if file_id not in known:
                    await self.store.delete(candidates[file_id])
                    removed += 1
        return removed


def _encode_cursor(created_at: datetime, file_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{file_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, file_id = raw.partition("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError
        return when, uuid.UUID(file_id)
    except ValueError:
        raise InvalidInput("the cursor is not valid") from None
