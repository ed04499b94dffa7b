"""Resumable uploads: create, append, inspect, terminate; the last append turns the
upload into an ordinary file.

Each accepted ``PATCH`` body becomes one part: a sealbox stream of exactly those bytes,
sealed under the upload's own data key with a fresh salt (so a fresh payload key),
written atomically to the blob store before the new offset is committed. Nothing is
ever at rest in plaintext, and because every part has its own payload key, retrying a
part (after a dropped connection, a checksum failure or a crash) never seals different
bytes under a key and nonce used before.

When the last bytes arrive, the parts become the file's segments, without being read
again: the file takes the id chosen for it when the upload was created (which the
parts' headers and the encrypted metadata are bound to) and the upload's data key,
wrapped again as a file key; its record holds the authenticated segment table
(``sealbox.crypto.segments``). That happens in one transaction that also marks the
upload complete, on the condition that its offset has not moved, so an upload becomes
exactly one file, or none. Until then a crash leaves the last committed offset, from
which the client resumes. A complete upload answers with its full length (and appends
nothing) until it expires, so a client that runs again does not upload again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox import names
from sealbox.audit.service import Actor
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import WRAP_FORMAT, FieldCipher, KeyProvider, WrapDomain, new_dek
from sealbox.crypto.segments import part_tag, verify_parts
from sealbox.crypto.stream import Sealer, chunk_log2_for
from sealbox.db.base import Columns, utcnow
from sealbox.db.session import Database, Tx
from sealbox.errors import (
    ChecksumMismatch,
    Conflict,
    Gone,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    TooLarge,
    Unavailable,
)
from sealbox.files.names import check_content_type
from sealbox.files.repository import FileRepository
from sealbox.files.service import FileService, Held, Limit, limited
from sealbox.files.tree import Place, split_path
from sealbox.ids import UserId
from sealbox.models import File, FileSegment, Upload, UploadPart, UploadRequest
from sealbox.models.upload import holding_room
from sealbox.sharing.service import RequestAdmission, admission_for
from sealbox.storage.base import BlobStore, StorageUnavailable

PART_PREFIX = "uploads"
MAX_PENDING = 100  # unfinished uploads an account may have at once (a link: its files left)
# Parts (so segments of its file) an upload may have: each costs a blob, a row, and, on
# every download of the file, the opening of a segment (header and final chunk) before
# the first byte. As many as S3 allows parts of one object; 16 GiB in parts of 2 MiB.
MAX_PARTS = 10_000

UPLOADS = Columns(Upload)
UPLOAD = select(*UPLOADS.columns).where(Upload.id == bindparam("upload_id"))
# A part's unit of work: move the offset (only from the one the part was written at, and
# only while the upload is live), number the part, insert it.
MOVE = (
    update(Upload)
    .where(Upload.id == bindparam("upload_id"), Upload.offset == bindparam("old"), Upload.expires_at > bindparam("now"))
    .values(offset=bindparam("new"), expires_at=bindparam("until"))
)
# Completion: from the offset the last part was written at, while the upload is live and
# not complete, it becomes complete. From then on it holds no room (see
# ``FileRepository.reserved``) and no key: the data key lives on only in the file's row,
# so deleting the file still shreds it. Its parts are the file's segments now.
COMPLETE = (
    update(Upload)
    .where(Upload.id == bindparam("upload_id"), Upload.offset == bindparam("old"), holding_room(bindparam("now")))
    .values(
        offset=bindparam("full"),
        completed_at=bindparam("now"),
        expires_at=bindparam("until"),
        key_id="",
        wrapped_dek=b"",
        wrap_format=WRAP_FORMAT,
        name_enc=b"",
        content_type_enc=None,
        uploader_enc=None,
    )
)
DROP_PARTS = delete(UploadPart).where(UploadPart.upload_id == bindparam("upload_id"))
PARTS = select(func.count()).where(UploadPart.upload_id == bindparam("upload_id"))
INSERT_PART = insert(UploadPart.__table__)  # type: ignore[arg-type]
PART_COLUMNS = Columns(UploadPart)
CHECKSUMS: dict[str, Callable[[], hashlib._Hash]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def part_key(upload_id: uuid.UUID) -> str:
    """A new object key for a part: under the upload's id, unique per attempt."""
    return f"{PART_PREFIX}/{upload_id.hex}/{uuid.uuid4().hex}"


def parse_upload_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("upload not found") from None


@dataclass(frozen=True)
class Holder:
    """Who may touch an upload: the account that created it, or the upload-request link
    it was created through (never both)."""

    user_id: UserId | None = None
    request: UploadRequest | None = None

    def holds(self, row: Upload) -> bool:
        if self.request is not None:
            return row.request_id == self.request.id
        return row.request_id is None and row.owner_id == self.user_id


@dataclass(frozen=True)
class UploadState:
    id: uuid.UUID
    offset: int
    length: int
    expires_at: datetime
    file_id: str | None = None  # once complete: the file it became


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


@dataclass(frozen=True)
class Completion:
    """Turns the upload into a file only if its offset is still the one this request
    started from; in the file's transaction, the upload's row is marked complete."""

    upload_id: uuid.UUID
    offset: int
    length: int
    inner: RequestAdmission | None
    expires_at: datetime  # how long the complete upload still answers

    @property
    def target(self) -> str:
        return self.inner.target if self.inner is not None else str(self.upload_id)

    @property
    def limit(self) -> Limit | None:
        return self.inner.limit if self.inner is not None else None

    @property
    def completes(self) -> Held:
        return Held(self.length)

    @property
    def by_link(self) -> bool:
        return self.inner is not None

    def admit(self, tx: Tx, row: File) -> None:
        # Only a live upload completes: one that expired while its last bytes streamed in
        # holds no room any more (and its parts may be swept), like any late PATCH.
        now = utcnow()
        values = {"upload_id": self.upload_id, "old": self.offset, "now": now, "full": self.length}
        if tx.conn.execute(COMPLETE, {**values, "until": self.expires_at}).rowcount != 1:
            current = tx.conn.execute(UPLOAD, values).first()
            if current is not None and UPLOADS.build(current).expires_at <= now:
                raise Gone("this upload has expired")
            raise Conflict("another request has changed this upload")
        tx.conn.execute(DROP_PARTS, values)
        if self.inner is not None:
            self.inner.admit(tx, row)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


async def _succeeded(task: asyncio.Future[Any]) -> bool:
    try:
        await task
    except Exception:
        return False
    return True


async def _hashed(source: AsyncIterable[bytes], hasher: hashlib._Hash | None) -> AsyncIterator[bytes]:
    async for piece in source:
        if hasher is not None:
            hasher.update(piece)
        yield piece


class UploadService:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        keyring: KeyProvider,
        files: FileService,
        lifetime: timedelta,
        max_pending: int = MAX_PENDING,
        max_parts: int = MAX_PARTS,
    ) -> None:
        self.db = db
        self.store = store
        self.keyring = keyring
        self.files = files
        self.lifetime = lifetime
        self.max_pending = max_pending
        self.max_parts = max_parts

    def _dek(self, row: Upload) -> bytes:
        return self.files.unwrap(row.key_id, row.id.bytes, row.wrapped_dek, WrapDomain.UPLOAD, row.wrap_format)

    def _state(self, row: Upload) -> UploadState:
        file_id = str(row.bound_id) if row.completed_at is not None else None
        return UploadState(row.id, row.offset, row.length, row.expires_at, file_id)

    async def create(
        self,
        holder: Holder,
        length: int,
        name: str | None,
        content_type: str | None,
        uploader: str | None,
        folder: uuid.UUID | None = None,
        path: tuple[str, ...] = (),
    ) -> Upload:
        """Start an upload of ``length`` bytes; refuse at once what could never be stored.

        Its file goes to ``folder`` (the link's folder for an upload through a link)
        and the relative ``path`` of folders below it, made when it completes.

        The upload holds room from now on: its declared length counts against the
        owner's quota and the link's bytes, and it takes one of the link's files, until
        it completes, is cancelled or expires. The check and the new row are one write
        transaction, under the owner's (and the link's) lock, so parallel creations
        cannot together hold more than there is. An account may have ``max_pending``
        unfinished uploads; a link, as many as it has files left. Raises ``TooLarge``
        (naming the limit) or ``Conflict`` (too many unfinished uploads).
        """
        if length < 0:
            raise InvalidInput("Upload-Length must be a non-negative integer")
        owner = UserId(holder.request.owner_id) if holder.request is not None else holder.user_id
        assert owner is not None
        upload_id = uuid.uuid4()
        # The id the file will have: chosen now, since the parts and the metadata are
        # bound to it as they are written. It is not the upload's id, which is in the
        # upload's URL: someone sending through a link never learns a file's id.
        file_id = uuid.uuid4()
        name = name or f"upload-{upload_id.hex[:8]}"
        name = names.file_name(name)
        uploader = names.uploader_name(uploader)
        content_type = check_content_type(content_type, name)
        admission = admission_for(holder.request) if holder.request is not None else None
        if holder.request is not None:
            folder = holder.request.folder_id
        elif folder is not None:
            await self.files.check_folder(owner, folder)
        for limit in await self.files.limits(owner, admission):
            if length > limit.size:
                raise TooLarge(limit.message)
        dek = new_dek()
        fields = FieldCipher(dek, file_id.bytes)
        now = utcnow()
        row = Upload(
            id=upload_id,
            file_id=file_id,
            owner_id=owner,
            request_id=holder.request.id if holder.request is not None else None,
            length=length,
            offset=0,
            name_enc=fields.encrypt("name", name),
            content_type_enc=fields.encrypt("content_type", content_type),
            uploader_enc=fields.encrypt("uploader", uploader) if uploader else None,
            folder_id=folder,
            path_enc=fields.encrypt("path", "/".join(path)) if path else None,
            created_at=now,
            expires_at=now + self.lifetime,
        )
        async with self.db.write() as session:
            # Wrapped in this transaction, so ``keys retire`` counts it or it sees the
            # retirement. Locks in the one order every writer takes them: the key lock
            # (here), then the owner's, then the link's (a different order could deadlock
            # with a commit while a retirement waits for the key lock).
            row.key_id, row.wrapped_dek = await self.files.wrap_in(session, upload_id.bytes, dek, WrapDomain.UPLOAD)
            row.wrap_format = WRAP_FORMAT
            await self.files.reserve(session, owner, length, stranger=holder.request is not None)
            if admission is not None:
                await admission.reserve(session, length)
            else:
                await self._refuse_if_too_many(session, owner)
            session.add(row)
        return row

    async def _refuse_if_too_many(self, session: AsyncSession, owner: UserId) -> None:
        query = select(func.count()).where(
            Upload.owner_id == owner,
            Upload.request_id.is_(None),
            holding_room(utcnow()),
        )
        pending = int((await session.execute(query)).scalar_one())
        if pending >= self.max_pending:
            raise Conflict(
                f"you have {pending} unfinished uploads, the most an account may have "
                f"({self.max_pending}): finish or cancel one first"
            )

    async def _held(self, upload_id: uuid.UUID, holder: Holder) -> Upload:
        found = await self.db.rows(UPLOAD, {"upload_id": upload_id})
        row = UPLOADS.build(found[0]) if found else None
        if row is None or not holder.holds(row):
            raise NotFound("upload not found")
        if row.expires_at <= utcnow():
            raise Gone("this upload has expired")
        return row

    async def state(self, upload_id: uuid.UUID, holder: Holder) -> UploadState:
        return self._state(await self._held(upload_id, holder))

    async def append(
        self,
        upload_id: uuid.UUID,
        holder: Holder,
        offset: int,
        body: AsyncIterable[bytes],
        checksum: Checksum | None,
        actor: Actor,
        row: Upload | None = None,
    ) -> UploadState:
        """Append ``body`` at ``offset``, which must be the upload's current offset.

        The new offset is committed only after the part is durable and its checksum (if
        given) matched; two requests racing from one offset cannot both win.
        """
        row = row or await self._held(upload_id, holder)
        if offset != row.offset:
            raise Conflict(f"the upload is at offset {row.offset}, not {offset}")
        if row.completed_at is not None:
            # Complete already (a client that did not hear the answer, or runs again):
            # nothing is appended and nothing is created; the answer is the same.
            async for _ in limited(body, Limit(0, "the upload is complete: nothing may follow its end")):
                pass
            return self._state(row)
        hasher = CHECKSUMS[checksum.algorithm]() if checksum is not None else None
        dek = self._dek(row)
        sealer = Sealer(dek, row.bound_id.bytes, chunk_log2_for(row.length))
        key = part_key(row.id)
        left = row.length - row.offset
        source = _hashed(
            limited(body, Limit(left, f"the body goes past the upload's end: {left} bytes were left")), hasher
        )
        if row.length == row.offset:
            async for _ in source:  # nothing may follow the end; an empty body completes
                pass
            return await self._complete(row, dek, None, actor)
        try:
            await self.store.put(key, sealer.seal(source))
        except StorageUnavailable as exc:
            raise Unavailable("file storage is unavailable") from exc
        if hasher is not None and checksum is not None and not hmac.compare_digest(hasher.digest(), checksum.digest):
            await self._discard(key)
            raise ChecksumMismatch("the body does not match its Upload-Checksum; nothing was stored")
        if sealer.plain_size == 0:
            await self._discard(key)
            return self._state(row)
        part = UploadPart(
            upload_id=row.id,
            key=key,
            size=sealer.plain_size,
            chunk_log2=sealer.header.chunk_log2,
            header_tag=sealer.header.tag,
            # Pins the part to its place: checked when the upload completes (``_complete``).
            tag=part_tag(dek, row.bound_id.bytes, row.length, row.offset, sealer.plain_size, sealer.header.tag),
        )
        new_offset = row.offset + sealer.plain_size
        if new_offset == row.length:
            return await self._complete(row, dek, part, actor)
        now = utcnow()
        expires_at = now + self.lifetime
        values = {"upload_id": row.id, "old": row.offset, "new": new_offset, "now": now, "until": expires_at}

        def record(tx: Tx) -> None:
            # Only while it has not expired: an expired upload holds no room any more
            # (see ``create``), so a part that arrives late must not bring it back.
            if tx.conn.execute(MOVE, values).rowcount != 1:
                current = tx.conn.execute(UPLOAD, values).first()
                if current is not None and UPLOADS.build(current).expires_at <= now:
                    raise Gone("this upload has expired")
                raise Conflict("another request has changed this upload")
            part.seq = int(tx.conn.execute(PARTS, values).scalar_one())
            if part.seq + 1 >= self.max_parts:
                # Only the last part allowed may be this one, and it must end the upload.
                raise InvalidInput(
                    f"an upload may have at most {self.max_parts} parts: "
                    f"send the remaining {row.length - row.offset} bytes in one PATCH"
                )
            tx.conn.execute(INSERT_PART, [PART_COLUMNS.values(part)])

        moved = asyncio.ensure_future(self.db.transact(record))
        try:
            await asyncio.shield(moved)
        except asyncio.CancelledError:
            # The transaction goes on without us: keep the part if it commits.
            if not await _succeeded(moved):
                await self._discard(key)
            raise
        except BaseException:
            await self._discard(key)
            raise
        return UploadState(row.id, new_offset, row.length, expires_at)

    async def _parts(self, upload_id: uuid.UUID) -> list[UploadPart]:
        async with self.db.read() as session:
            query = select(UploadPart).where(UploadPart.upload_id == upload_id).order_by(UploadPart.seq)
            return list((await session.execute(query)).scalars().all())

    async def _complete(self, row: Upload, dek: bytes, last: UploadPart | None, actor: Actor) -> UploadState:
        """Turn the upload into the file made of its parts, without reading them again.

        The file takes the id chosen when the upload was created (``Upload.file_id``), so
        the parts (bound to that id by their headers) and the encrypted name, type and
        uploader (bound to it by ``FieldCipher``, with a file's column labels) are the
        file's as they are; its key is the upload's key, wrapped again as a file key in
        the committing transaction. An upload with no bytes becomes a file of one empty
        segment, written here under a key of this attempt's own: never under the file's
        blob key, which racing completions would share, the loser removing the winner's.
        """
        parts = await self._parts(row.id) + ([last] if last is not None else [])
        if not parts:
            last = await self._empty_part(row, dek)
            parts = [last]
        written: str | None = last.key if last is not None else None
        try:
            request = await self._completable(row, dek, parts)
        except BaseException:
            # Refused before anything is recorded: the part this request wrote is no one's.
            if written is not None:
                await self._discard(written)
            raise
        inner = admission_for(request) if request is not None else None
        completion = Completion(row.id, row.offset, row.length, inner, utcnow() + self.lifetime)
        file = File(
            id=row.bound_id,
            owner_id=row.owner_id,
            name_enc=row.name_enc,
            content_type_enc=row.content_type_enc or self._content_type(row, dek),
            size=0,
            chunk_log2=parts[0].chunk_log2,
            header_tag=b"",
            created_at=utcnow(),
            uploader_enc=row.uploader_enc,
        )
        segments = [
            FileSegment(key=part.key, size=part.size, chunk_log2=part.chunk_log2, header_tag=part.header_tag)
            for part in parts
        ]
        where = Place(row.folder_id, self._path(row, dek), via=row.request_id)
        commit = asyncio.ensure_future(self.files.record_segments(file, dek, segments, completion, actor, where))
        try:
            created = await asyncio.shield(commit)
        except asyncio.CancelledError:
            # The commit goes on without us: keep the last blob if it succeeds, so a
            # recorded file always has all its bytes.
            if written is not None and not await _succeeded(commit):
                await self._discard(written)
            raise
        except NotFound:
            if written is not None:
                await self._discard(written)
            await self._refuse_if_folder_gone(row)
            raise
        except BaseException:
            if written is not None:
                await self._discard(written)
            raise
        return UploadState(row.id, row.length, row.length, completion.expires_at, created.id)

    async def _completable(self, row: Upload, dek: bytes, parts: list[UploadPart]) -> UploadRequest | None:
        """Check that ``parts`` are the whole upload, and find its link (if any)."""
        try:
            self._check_parts(row, dek, parts)
        except IntegrityFailure:
            # Read after another request completed (or moved) the upload: its parts were
            # dropped or grew since ``row`` was read. That is a lost race, not tampering.
            found = await self.db.rows(UPLOAD, {"upload_id": row.id})
            if not found:
                # Cancelled, or gone with the folder it was going to, meanwhile.
                raise NotFound("upload not found") from None
            current = UPLOADS.build(found[0])
            if current.offset != row.offset or current.completed_at is not None:
                raise Conflict("another request has changed this upload") from None
            raise
        if row.request_id is None:
            return None
        async with self.db.read() as session:
            request = await session.get(UploadRequest, row.request_id)
        if request is None:
            raise Gone("this link has been revoked")
        return request

    async def _refuse_if_folder_gone(self, row: Upload) -> None:
        """After a completion found no folder to go to: if the upload's folder was
        deleted while it was in progress, it can never complete. Drop it (row and parts:
        it would otherwise hold its room until it expires) and say why (``Gone``)."""
        if row.folder_id is None:
            return
        try:
            await self.files.check_folder(UserId(row.owner_id), row.folder_id)
        except NotFound:
            await self._drop(row)
            raise Gone("the folder this upload was going to has been deleted; the upload is cancelled") from None

    @staticmethod
    def _path(row: Upload, dek: bytes) -> tuple[str, ...]:
        """The relative folder path the upload's file goes to, below its folder."""
        if row.path_enc is None:
            return ()
        try:
            return split_path(FieldCipher(dek, row.bound_id.bytes).decrypt("path", row.path_enc))
        except IntegrityError as exc:
            raise IntegrityFailure("stored upload metadata failed authentication") from exc

    async def _empty_part(self, row: Upload, dek: bytes) -> UploadPart:
        """The one segment of an upload of no bytes: an empty stream, durable, unrecorded."""
        key = part_key(row.id)
        sealer = Sealer(dek, row.bound_id.bytes, chunk_log2_for(0))
        try:
            await self.store.put(key, sealer.seal(_nothing()))
        except StorageUnavailable as exc:
            raise Unavailable("file storage is unavailable") from exc
        tag = part_tag(dek, row.bound_id.bytes, row.length, 0, 0, sealer.header.tag)
        return UploadPart(
            upload_id=row.id,
            key=key,
            size=0,
            chunk_log2=sealer.header.chunk_log2,
            header_tag=sealer.header.tag,
            tag=tag,
        )

    @staticmethod
    def _check_parts(row: Upload, dek: bytes, parts: list[UploadPart]) -> None:
        """Refuse (``IntegrityFailure``) parts that are not, in order, those accepted at
        their places: the segment table is made from them and authenticated as it is,
        so a part reordered, copied or put back in the records since would otherwise be
        read as the file's. Parts without a tag (accepted before tags existed) pass only
        for an upload bound to its own id (begun before revision 0009): making a newer
        upload look like one changes the id its parts are read against, and they fail."""
        try:
            if any(part.tag is None for part in parts):
                if row.file_id is not None:
                    raise IntegrityError("an upload part has no tag")
                if sum(part.size for part in parts) != row.length:
                    raise IntegrityError("the upload's parts do not cover its length")
                return
            checked = [(part.header_tag, part.size, part.tag or b"") for part in parts]
            verify_parts(dek, row.bound_id.bytes, checked, row.length)
        except IntegrityError as exc:
            raise IntegrityFailure("stored upload data failed authentication") from exc

    @staticmethod
    def _content_type(row: Upload, dek: bytes) -> bytes:
        """Encrypted content type for an upload recorded without one: the guess from its name."""
        fields = FieldCipher(dek, row.bound_id.bytes)
        try:
            name = fields.decrypt("name", row.name_enc)
        except IntegrityError as exc:
            raise IntegrityFailure("stored upload metadata failed authentication") from exc
        return fields.encrypt("content_type", check_content_type(None, name))

    async def terminate(self, upload_id: uuid.UUID, holder: Holder) -> None:
        """Cancel an upload: its row and parts go at once. A complete upload's row goes;
        its file stays (delete that as a file)."""
        row = await self._held(upload_id, holder)
        if not await self._drop(row):
            # Complete, perhaps since the parts were read: they are its file's
            # segments now and stay; only the row goes.
            async with self.db.write() as session:
                await session.execute(delete(Upload).where(Upload.id == row.id))

    async def _drop(self, row: Upload) -> bool:
        """Remove an unfinished upload, its row and then its parts; ``False`` if it is
        complete (or gone) by now."""
        parts = await self._parts(row.id)
        async with self.db.write() as session:
            cancelled = await session.execute(delete(Upload).where(Upload.id == row.id, Upload.completed_at.is_(None)))
        if getattr(cancelled, "rowcount", 0) != 1:
            return False
        for part in parts:
            await self._discard(part.key)
        return True

    async def _discard(self, key: str) -> None:
        with contextlib.suppress(StorageUnavailable):
            await self.store.delete(key)

    async def sweep(self, older_than: timedelta) -> int:
        """Remove expired uploads (rows and parts), and parts older than ``older_than``
        that are neither a part of an upload nor a segment of a file (a crash between
        writing a part and recording it; a deleted file whose segments were not removed)."""
        now = utcnow()
        removed = 0
        async with self.db.read() as session:
            expired = list((await session.execute(select(Upload.id).where(Upload.expires_at <= now))).scalars())
        for upload_id in expired:
            parts = await self._parts(upload_id)
            async with self.db.write() as session:
                gone = await session.execute(delete(Upload).where(Upload.id == upload_id, Upload.expires_at <= now))
            if getattr(gone, "rowcount", 0) != 1:
                continue  # completed (its parts are a file's segments now) or removed meanwhile
            for part in parts:
                await self._discard(part.key)
                removed += 1
        cutoff = now - older_than
        candidates = [key async for key, modified in self.store.list(PART_PREFIX) if modified < cutoff]
        for i in range(0, len(candidates), 500):
            batch = candidates[i : i + 500]
            # A part of an upload in progress, or a segment of a file: both are live.
            async with self.db.read() as session:
                query = select(UploadPart.key).where(UploadPart.key.in_(batch))
                known = set((await session.execute(query)).scalars())
                known |= await FileRepository(session).known_segment_keys(batch)
            for key in batch:
                if key not in known:
                    await self._discard(key)
                    removed += 1
        return removed
