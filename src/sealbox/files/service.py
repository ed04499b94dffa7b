"""File rules: upload (encrypt while streaming), list, read, delete.

Who may read a file is decided by the one gate, ``sealbox.sharing.gate.Gate``: every
route that returns content goes through it, and it calls ``FileService.open`` only
after it has authorised the caller.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import itertools
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox import names
from sealbox.audit.service import Actor, Audit, Event
from sealbox.crypto.errors import IntegrityError, UnknownKeyId
from sealbox.crypto.keys import (
    FieldCipher,
    KeyProvider,
    WrapDomain,
    file_wrap_domain,
    file_wrapping,
    new_dek,
    wrap_domain,
)
from sealbox.crypto.segments import table_tag, verify_table
from sealbox.crypto.stream import HEADER_LEN, Opener, Sealer, chunk_log2_for, parse_header, sealed_size
from sealbox.db.base import utcnow
from sealbox.db.session import Database, Tx, in_session
from sealbox.errors import IntegrityFailure, InvalidInput, KeyMissing, NotFound, TooLarge, Unavailable
from sealbox.files.names import check_content_type
from sealbox.files.repository import (
    FILES,
    FIRST_PAGE,
    INSERT_FILE,
    INSERT_SEGMENT,
    LOCK_OWNER,
    NEXT_PAGE,
    RETIRED,
    SEGMENTS,
    USAGE,
    FileRepository,
)
from sealbox.files.schemas import FilePage, FileRead
from sealbox.files.tree import FOLDER_OF, TOP, NameKeys, Place, free_name, place
from sealbox.ids import FileId, UserId
from sealbox.models import File, FileSegment
from sealbox.storage.base import BlobNotFound, BlobStore, StorageUnavailable

log = structlog.get_logger()
BLOB_PREFIX = "files"
SMALL_BLOB = 256 << 10
MAX_PAGE = 1000
# Segments of one file authenticated concurrently when it is opened (header, final chunk).
OPEN_SEGMENTS_AT_ONCE = 8


def blob_key(file_id: uuid.UUID) -> str:
    """The object key of a file's blob: derived from its id only, never from client input."""
    return f"{BLOB_PREFIX}/{file_id.hex[:2]}/{file_id.hex}"


def parse_file_id(value: str) -> FileId:
    """Parse a client-supplied id; anything malformed is simply a file that does not exist."""
    try:
        return FileId(uuid.UUID(value))
    except ValueError:
        raise NotFound("file not found") from None


def file_ref(value: str) -> FileId | None:
    """A client-supplied id, or ``None`` when it is malformed (a file that does not
    exist, said only after the caller has authenticated)."""
    try:
        return FileId(uuid.UUID(value))
    except ValueError:
        return None


def etag_of(header_tag: bytes) -> str:
    # The header tag is an HMAC under a per-file key: it changes with every write and
    # reveals nothing about the plaintext, unlike a content hash.
    return '"' + header_tag[:16].hex() + '"'


@dataclass(frozen=True)
class Limit:
    """The most bytes an upload may take, and what to say when it takes more."""

    size: int
    message: str


async def limited(source: AsyncIterable[bytes], limit: Limit) -> AsyncIterator[bytes]:
    """``source``, raising ``TooLarge`` (with the limit's message) once it passes ``limit``."""
    total = 0
    async for piece in source:
        total += len(piece)
        if total > limit.size:
            raise TooLarge(limit.message)
        yield piece


@dataclass(frozen=True)
class Held:
    """Room held by an unfinished upload: its declared size."""

    size: int


class Admission(Protocol):
    """Extra rules for an upload that arrives through a link (an upload request)."""

    @property
    def target(self) -> str: ...

    @property
    def limit(self) -> Limit | None: ...

    @property
    def completes(self) -> Held | None:
        """The unfinished upload this file completes, if any: the room it holds is the file's."""

    @property
    def by_link(self) -> bool:
        """Whether the upload comes through an upload link: its sender learns nothing of
        the owner's account (their quota, what they store)."""

    def admit(self, tx: Tx, row: File) -> None:
        """A step of the unit of work that records ``row``: check and count it inside
        that transaction; raise to refuse."""


# What someone sending through an upload link hears when the owner's quota is full.
NO_ROOM = "the link's owner has no room for this file"


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


@dataclass(frozen=True)
class Segment:
    """One authenticated segment of a file made of segments, ready to read."""

    start: int  # where its plaintext begins in the file
    opener: Opener
    key: str


@dataclass
class Download:
    """An authorised, authenticated file ready to stream: the header and the final
    chunk have verified (of every segment, for a file made of segments, and its segment
    table too), so the size is known to be right."""

    file: FileRead
    _opener: Opener | None
    _store: BlobStore
    _key: str
    _blob: bytes | None = None  # the whole blob, when it is small enough to read at once
    _segments: tuple[Segment, ...] = ()

    async def content(self, start: int, end: int) -> AsyncIterator[bytearray | memoryview]:
        """Plaintext bytes ``start..end`` inclusive; raises ``IntegrityFailure`` midway
        if stored data fails authentication (the caller must then abort the response)."""
        if self._opener is not None:
            async for piece in _content(self._opener, self._store, self._key, self._blob, start, end):
                yield piece
            return
        # A file made of segments: the offsets map to (segment, offset) by the cumulative
        # sizes; each segment is read as a one-blob file is.
        for segment in self._segments:
            size = segment.opener.plain_size
            if segment.start + size <= start or size == 0:
                continue
            if segment.start > end:
                return
            first = max(start, segment.start) - segment.start
            last = min(end, segment.start + size - 1) - segment.start
            async for piece in _content(segment.opener, self._store, segment.key, None, first, last):
                yield piece

    async def in_memory(self, start: int, end: int) -> bytes | None:
        """Plaintext bytes ``start..end`` inclusive when the whole blob was read at open
        (a small one-blob file), ``None`` otherwise or if stored data fails
        authentication (``content`` then fails the same way, while streaming)."""
        if self._opener is None or self._blob is None:
            return None
        try:
            return b"".join([piece async for piece in self.content(start, end)])
        except IntegrityFailure:
            return None


async def _content(
    opener: Opener, store: BlobStore, key: str, blob: bytes | None, start: int, end: int
) -> AsyncIterator[bytearray | memoryview]:
    offset, length = opener.chunk_span(start // opener.chunk_size, end // opener.chunk_size)
    with stored_data_errors():
        if blob is None:
            sealed = store.get_range(key, offset, length, opener.batch_bytes)
        else:
            sealed = _one(blob[offset : offset + length])
        async for piece in opener.open_range(sealed, start, end):
            yield piece


async def open_sealed(
    store: BlobStore, key: str, dek: bytes, bound_id: bytes, tag: bytes, size: int
) -> tuple[Opener, bytes | None]:
    """Authenticate the header and final chunk of the blob at ``key``, sealed under
    ``dek`` for ``bound_id``, against the header tag and plaintext size recorded for it.

    Returns the opener, and the whole blob when it is small enough to have been read at
    once. Raises ``IntegrityFailure`` (before any plaintext exists) if it does not match.
    """
    with stored_data_errors():
        blob_size = await store.size(key)
        # A small blob is read in one call, instead of header, final chunk and body
        # in three: for small files those calls are most of the cost.
        blob = await store.read(key, 0, blob_size) if blob_size <= SMALL_BLOB else None
        raw_header = blob[:HEADER_LEN] if blob is not None else await store.read(key, 0, HEADER_LEN)
        header, k_pay = parse_header(raw_header, dek, bound_id)
        # The record pins the header tag: an older blob of the same file (rollback) or a
        # blob from another file fails here.
        if not hmac.compare_digest(header.tag, tag):
            raise IntegrityError("blob does not match its record")
        # The record pins the size too: the blob must be exactly the sealed size of the
        # plaintext size recorded for it, so bytes appended (or cut) anywhere fail here,
        # whatever their length.
        if blob_size != sealed_size(size, header.chunk_log2):
            raise IntegrityError("blob size does not match its record")
        opener = Opener(header, k_pay, blob_size)
        last = opener.chunk_count - 1
        offset, length = opener.chunk_span(last, last)
        final = blob[offset : offset + length] if blob is not None else await store.read(key, offset, length)
        opener.verify_final(final)
    return opener, blob


async def _succeeded(task: asyncio.Future[None]) -> bool:
    try:
        await task
    except Exception:
        return False
    return True


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class FileService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        keyring: KeyProvider,
        audit: Audit,
        max_upload_size: int,
        quota: int | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.keyring = keyring
        self.audit = audit
        self.max_upload_size = max_upload_size
        self.quota = quota
        self._missing: set[str] = set()  # key ids met in stored rows and not held
        self.names = NameKeys(self.wrap_now, self.unwrap)

    def _read(self, row: File, dek: bytes | None = None) -> FileRead:
        dek = dek or self.dek(row)
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
            folder_id=str(row.folder_id) if row.folder_id else None,
        )

    def dek(self, row: File) -> bytes:
        """The file's data key, unwrapped (also for data bound to the file, like a link's note).

        Its wrapping must be the one of the file's layout (``file_wrap_domain``): the key
        of a file made of segments never opens the file as one blob, so a record changed
        to that layout cannot pass one segment off as the whole file.
        """
        try:
            domain = file_wrap_domain(row.segments, row.wrap_format)
        except IntegrityError as exc:
            raise IntegrityFailure("the stored file key failed authentication") from exc
        return self._unwrap(row.key_id, row.id.bytes, row.wrapped_dek, domain, "file")

    def unwrap(self, key_id: str, bound_id: bytes, wrapped: bytes, domain: WrapDomain, wrap_format: int) -> bytes:
        """Unwrap the data key of a file (or an upload, as ``domain`` says) bound to
        ``bound_id`` and stored in ``wrap_format``.

        A key id this process does not hold, even after reading its keyring again, is
        ``KeyMissing`` (503, naming the key id; the process turns not ready until its
        keyring holds it): the data is intact, this server's keyring is out of date. A
        wrapped key that fails authentication is an ``IntegrityFailure``.
        """
        what = {WrapDomain.UPLOAD: "upload", WrapDomain.NAMES: "name"}.get(domain, "file")
        try:
            exact = wrap_domain(domain, wrap_format)
        except IntegrityError as exc:
            raise IntegrityFailure(f"the stored {what} key failed authentication") from exc
        return self._unwrap(key_id, bound_id, wrapped, exact, what)

    def _unwrap(self, key_id: str, bound_id: bytes, wrapped: bytes, domain: WrapDomain, what: str) -> bytes:
        try:
            return self.keyring.unwrap(key_id, bound_id, wrapped, domain)
        except UnknownKeyId:
            self._missing.add(key_id)
            log.warning("keys.missing", key_id=key_id)
            raise KeyMissing({key_id}) from None
        except IntegrityError as exc:
            raise IntegrityFailure(f"the stored {what} key failed authentication") from exc

    def missing_keys(self) -> frozenset[str]:
        """Key ids that stored rows named and this process's keyring still lacks."""
        held = self.keyring.ids
        self._missing -= held
        return frozenset(self._missing)

    async def wrap_in(
        self, session: AsyncSession, bound_id: bytes, dek: bytes, domain: WrapDomain
    ) -> tuple[str, bytes]:
        """``wrap_now`` inside a session's write transaction."""
        is_sqlite = self.db.is_sqlite
        return await session.run_sync(
            lambda sync: self.wrap_now(in_session(sync, is_sqlite, session.info), bound_id, dek, domain)
        )

    def wrap_now(self, tx: Tx, bound_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]:
        """Wrap ``dek`` (a file's or an upload's, as ``domain`` says) under the current
        primary key inside the write transaction that records it, in the current wrap
        format (``WRAP_FORMAT``), and return (key id, wrapped key).

        Holds the shared key lock, so ``keys retire`` either counts this row or has
        already marked its key retired, which is checked here: a row is never committed
        under a key that has left the keyring. Raises ``Unavailable`` if this process's
        primary key has been retired (its keyring is out of date).
        """
        self.db.lock_keys_in(tx)
        key_id, wrapped = self.keyring.wrap(bound_id, dek, domain)
        # Asked once per transaction and key: the key lock holds the answer until the
        # commit, and a group commit wraps many keys under one primary key.
        live: set[str] = tx.info.setdefault("sealbox_live_keys", set())
        if key_id not in live and tx.conn.execute(RETIRED, {"key_id": key_id}).first() is not None:
            log.warning("keys.primary_retired", key_id=key_id)
            raise Unavailable(
                f"this server's primary master key {key_id} has been retired: its keyring is out of date "
                "(see docs/keys.md, several hosts)"
            )
        live.add(key_id)
        return key_id, wrapped

    async def check_folder(self, owner: UserId, folder_id: uuid.UUID) -> None:
        """``NotFound`` unless ``folder_id`` is a folder of ``owner`` (an early answer for
        an upload that will go there: its commit checks again)."""
        if not await self.db.rows(FOLDER_OF, {"id": folder_id, "owner": owner}):
            raise NotFound("folder not found")

    async def limits(self, owner: UserId, admission: Admission | None) -> list[Limit]:
        """What bounds this upload: the file size limit, the owner's quota (less what is
        stored and what unfinished uploads hold), the link's. An early answer only: the
        transaction that records the file checks again."""
        limits = [Limit(self.max_upload_size, f"the file is larger than the limit of {self.max_upload_size} bytes")]
        if self.quota is not None:
            (stored, held), *_ = await self.db.rows(USAGE, {"owner": owner, "now": utcnow()})
            used = int(stored) + int(held)
            if admission is not None and admission.completes is not None:
                used -= admission.completes.size  # the upload this file completes holds its own room
            stranger = admission is not None and admission.by_link
            if used >= self.quota:
                raise TooLarge(NO_ROOM if stranger else f"your storage quota of {self.quota} bytes is used up")
            message = NO_ROOM if stranger else f"the file would exceed your storage quota of {self.quota} bytes"
            limits.append(Limit(self.quota - used, message))
        if admission is not None and admission.limit is not None:
            limits.append(admission.limit)
        return limits

    async def _check_quota(
        self, files: FileRepository, owner: UserId, size: int, what: str, *, stranger: bool = False
    ) -> None:
        """Refuse ``size`` more bytes for ``owner`` if stored files, the room held by
        unfinished uploads and ``size`` together pass the quota. Call it in a write
        transaction after ``lock_owner``. A ``stranger`` (someone sending through an
        upload link) is told only that there is no room, nothing of the owner's account."""
        if self.quota is None:
            return
        stored, held = await files.usage(owner), await files.reserved(owner, utcnow())
        self._refuse_past_quota(stored, held, size, what, stranger=stranger)

    def _refuse_past_quota(self, stored: int, held: int, size: int, what: str, *, stranger: bool) -> None:
        if self.quota is not None and stored + held + size > self.quota:
            if stranger:
                raise TooLarge(NO_ROOM)
            raise TooLarge(
                f"{what} would exceed your storage quota of {self.quota} bytes "
                f"({stored} bytes stored, {held} held by unfinished uploads)"
            )

    async def reserve(self, session: AsyncSession, owner: UserId, size: int, *, stranger: bool = False) -> None:
        """In the write transaction that records an unfinished upload of ``size`` bytes:
        hold ``owner``'s lock and refuse it (``TooLarge``, naming the quota to the owner)
        if it does not fit beside what is stored and what other unfinished uploads hold."""
        files = FileRepository(session)
        await files.lock_owner(owner)
        await self._check_quota(files, owner, size, "the upload", stranger=stranger)

    async def _commit(
        self,
        row: File,
        dek: bytes,
        admission: Admission | None,
        event: Event,
        extra: Sequence[FileSegment] = (),
        where: Place = TOP,
    ) -> None:
        """Record ``row`` and its audit ``event`` as one unit of work for the committer
        (it shares a commit with concurrent ones): the file key wrapped in the
        transaction (see ``wrap_now``: an upload that streamed through a rotation and a
        retirement commits under the primary key of the moment it commits), the
        admission (if any), the quota checked, the row and its ``extra`` segments
        inserted in its folder (``where``: made as needed; a name taken there is
        numbered or refused, as it says). Nothing is recorded if a step refuses."""
        # The prefix says the layout (one blob, or segments): see ``dek``.
        domain, row.wrap_format = file_wrapping(row.segments)
        owner = UserId(row.owner_id)
        stranger = admission is not None and admission.by_link

        asked = FieldCipher(dek, row.id.bytes).decrypt("name", row.name_enc)
        original = row.name_enc

        def record(tx: Tx) -> None:
            row.key_id, row.wrapped_dek = self.wrap_now(tx, row.id.bytes, dek, domain)
            # Names in a folder are claimed under the owner's lock (see ``files.tree``).
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            cipher = self.names.in_tx(tx, owner)
            row.folder_id, _ = place(tx, owner, cipher, where, stranger=stranger)
            name, row.name_tag = free_name(tx, owner, cipher, row.folder_id, asked, where.on_conflict)
            row.listed_name_enc = cipher.encrypt(row.id.bytes, "name", name)
            row.name_enc = FieldCipher(dek, row.id.bytes).encrypt("name", name) if name != asked else original
            if admission is not None:
                # First: completing an unfinished upload removes it, and with it the room
                # it held, which this file now takes.
                admission.admit(tx, row)
            if self.quota is not None:
                stored, held = tx.conn.execute(USAGE, {"owner": owner, "now": utcnow()}).one()
                self._refuse_past_quota(int(stored), int(held), row.size, "the file", stranger=stranger)
            tx.conn.execute(INSERT_FILE, [FILES.values(row)])
            if extra:
                tx.conn.execute(INSERT_SEGMENT, [SEGMENTS.values(segment) for segment in extra])

        await self.audit.record(event, work=(record,))

    async def upload(
        self,
        owner: UserId,
        name: str,
        content_type: str | None,
        source: AsyncIterable[bytes],
        actor: Actor,
        *,
        admission: Admission | None = None,
        uploader: str | None = None,
        where: Place = TOP,
    ) -> FileRead:
        """Encrypt ``source`` into a new blob, then record the file (in ``where``).

        The row is committed only after the blob is durable, so a file is never listed
        before it is complete. On any failure (including ``TooLarge`` raised while
        streaming, or the client going away) nothing is left behind.
        """
        name = names.file_name(name)
        uploader = names.uploader_name(uploader)
        content_type = check_content_type(content_type, name)
        limit = min(await self.limits(owner, admission), key=lambda limit: limit.size)
        file_id = FileId(uuid.uuid4())
        dek = new_dek()
        sealer = Sealer(dek, file_id.bytes, chunk_log2_for(None))
        key = blob_key(file_id)
        try:
            await self.store.put(key, sealer.seal(limited(source, limit)))
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
            header_tag=sealer.header.tag,
            created_at=utcnow(),
            uploader_enc=fields.encrypt("uploader", uploader) if uploader else None,
        )
        target = admission.target if admission is not None else None
        event = Event("file.upload", actor, owner, file_id, target, {"bytes": row.size})
        commit = asyncio.ensure_future(self._commit(row, dek, admission, event, where=where))
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

    async def record_segments(
        self,
        row: File,
        dek: bytes,
        segments: Sequence[FileSegment],
        admission: Admission,
        actor: Actor,
        where: Place = TOP,
    ) -> FileRead:
        """Record ``row`` as the file made of ``segments`` (in order, their blobs durable).

        Each segment is a sealbox stream under ``dek`` bound to ``row.id``; the row gets
        the segment table's tag (in ``header_tag``) and the total size. With no segments,
        ``row`` is an empty one-blob file whose blob and header tag are in place. One transaction
        wraps ``dek`` as a file key, runs ``admission`` (which completes the upload the
        segments came from), checks the quota and adds the row, its segments and the
        audit event; nothing is recorded if any of it refuses.
        """
        entries = [(segment.header_tag, segment.size) for segment in segments]
        row.segments = len(entries)
        row.size = sum(size for _, size in entries)
        if entries:
            row.header_tag = table_tag(dek, row.id.bytes, entries)
        for seq, segment in enumerate(segments):
            segment.file_id, segment.seq = row.id, seq
        event = Event("file.upload", actor, UserId(row.owner_id), FileId(row.id), admission.target, {"bytes": row.size})
        await self._commit(row, dek, admission, event, segments, where)
        return self._read(row, dek)

    def describe(self, row: File, dek: bytes | None = None) -> FileRead:
        """The file's metadata, decrypted (the caller has authorised the reader); pass
        ``dek`` if it is unwrapped already."""
        return self._read(row, dek)

    def uploader(self, row: File, dek: bytes | None = None) -> str | None:
        """What the uploader of a file received through a link said about themselves."""
        if row.uploader_enc is None:
            return None
        try:
            return FieldCipher(dek or self.dek(row), row.id.bytes).decrypt("uploader", row.uploader_enc)
        except IntegrityError as exc:
            raise IntegrityFailure("stored file metadata failed authentication") from exc

    async def record(self, file_id: FileId) -> File | None:
        """The file's row, for the gate to authorise against; ``None`` if there is none."""
        async with self.db.read() as session:
            return await FileRepository(session).get(file_id)

    async def list(self, owner: UserId, limit: int, cursor: str | None) -> FilePage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        after = _decode_cursor(cursor) if cursor else None
        # One plain statement, no ORM session: listings are among the most frequent requests.
        if after is None:
            found = await self.db.rows(FIRST_PAGE, {"owner": owner, "limit": limit + 1})
        else:
            values = {"owner": owner, "limit": limit + 1, "created_at": after[0], "file_id": after[1]}
            found = await self.db.rows(NEXT_PAGE, values)
        rows = [FILES.build(row) for row in found]
        items = [self._read(row) for row in rows[:limit]]
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return FilePage(items=items, next_cursor=_encode_cursor(last.created_at, last.id) if last else None)

    async def delete(self, owner: UserId, file_id: FileId, actor: Actor) -> None:
        """Delete the row (and with it the wrapped DEK, its links and grants), then the blob.

        Once the row is gone the blob can never be decrypted again; if removing the
        blob fails, the sweeper removes it later.
        """
        async with self.db.write() as session:
            files = FileRepository(session)
            segments = (await files.segment_keys([file_id])).get(file_id, [])
            if not await files.remove(owner, file_id):
                raise NotFound("file not found")
        await self.audit.record(Event("file.delete", actor, owner, file_id))
        with contextlib.suppress(StorageUnavailable):
            await self.store.delete(blob_key(file_id))
            for key, *_ in segments:
                await self.store.delete(key)

    async def delete_all(self, owner: UserId, actor: Actor) -> int:
        """Delete every file of ``owner`` (rows first, then blobs); return how many."""
        removed = 0
        while True:
            async with self.db.read() as session:
                rows = await FileRepository(session).page(owner, 500, None)
            if not rows:
                return removed
            for row in rows:
                with contextlib.suppress(NotFound):
                    await self.delete(owner, FileId(row.id), actor)
                    removed += 1

    async def open(self, row: File) -> Download:
        """Authenticate the header and final chunk of an authorised file's blob.

        Raises ``IntegrityFailure`` if stored data was altered (before any byte is
        released). Only the gate calls this, after it has authorised the reader.
        """
        dek = self.dek(row)
        info = self._read(row, dek)
        key = blob_key(row.id)
        if row.segments:
            return Download(info, None, self.store, key, None, await self._open_segments(row, dek))
        opener, blob = await open_sealed(self.store, key, dek, row.id.bytes, row.header_tag, row.size)
        return Download(info, opener, self.store, key, blob)

    async def _open_segments(self, row: File, dek: bytes) -> tuple[Segment, ...]:
        """Authenticate a file made of segments before any of its bytes is released:
        the segment table against its tag (order, count, sizes, header tags), then every
        segment's header and final chunk against the table, a few at a time."""
        async with self.db.read() as session:
            segments = list(await FileRepository(session).segments(row.id))
        entries = [(segment.header_tag, segment.size) for segment in segments]
        try:
            if len(entries) != row.segments or sum(size for _, size in entries) != row.size:
                raise IntegrityError("segment table does not match its file")
            verify_table(dek, row.id.bytes, entries, row.header_tag)
        except IntegrityError as exc:
            raise IntegrityFailure("stored data failed authentication") from exc
        gate = asyncio.Semaphore(OPEN_SEGMENTS_AT_ONCE)

        async def open_one(segment: FileSegment) -> Opener:
            async with gate:
                opener, _ = await open_sealed(
                    self.store, segment.key, dek, row.id.bytes, segment.header_tag, segment.size
                )
                return opener

        openers = await asyncio.gather(*(open_one(segment) for segment in segments))
        starts = list(itertools.accumulate((segment.size for segment in segments), initial=0))[:-1]
        return tuple(
            Segment(start, opener, segment.key)
            for start, opener, segment in zip(starts, openers, segments, strict=True)
        )

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
