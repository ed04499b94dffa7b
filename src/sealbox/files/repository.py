from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, and_, bindparam, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.db.base import Columns
from sealbox.ids import FileId, UserId
from sealbox.models import File, FileSegment, NameKey, RetiredKey, Upload, UploadPart, User
from sealbox.models.upload import holding_room

FILES = Columns(File)
# A file's row, inserted by the committer (plain values, no ORM flush).
INSERT_FILE = insert(File.__table__)  # type: ignore[arg-type]
SEGMENTS = Columns(FileSegment)
INSERT_SEGMENT = insert(FileSegment.__table__)  # type: ignore[arg-type]
# Serialises the quota checks of one owner until the transaction ends (PostgreSQL;
# SQLite's write lock already serialises every writer).
LOCK_OWNER = select(User.id).where(User.id == bindparam("owner")).with_for_update()
# Whether a master key was retired (no row may be wrapped under it any more).
RETIRED = select(RetiredKey.id).where(RetiredKey.id == bindparam("key_id"))


def _page_query(after: bool) -> Select[*tuple[Any, ...]]:
    """``FILES`` columns of the files of the owner bound as ``owner``, newest first,
    keyset-paginated on (created_at, id) after the values bound as ``created_at`` and
    ``file_id`` when ``after``; at most the number bound as ``limit``."""
    query = select(*FILES.columns).where(File.owner_id == bindparam("owner"))
    if after:
        created = bindparam("created_at", type_=File.created_at.type)
        earlier = or_(File.created_at < created, and_(File.created_at == created, File.id < bindparam("file_id")))
        query = query.where(earlier)
    return query.order_by(File.created_at.desc(), File.id.desc()).limit(bindparam("limit", type_=Integer))


# Built once: listing runs on every page load and sync.
FIRST_PAGE, NEXT_PAGE = _page_query(False), _page_query(True)

# What the owner bound as ``owner`` stores, and what their unfinished uploads unexpired
# at the time bound as ``now`` hold (see ``FileRepository.usage`` and ``reserved``), in
# one statement: the early quota answer before an upload streams.
USAGE = select(
    select(func.coalesce(func.sum(File.size), 0)).where(File.owner_id == bindparam("owner")).scalar_subquery(),
    select(func.coalesce(func.sum(Upload.length), 0))
    .where(Upload.owner_id == bindparam("owner"), holding_room(bindparam("now")))
    .scalar_subquery(),
)


class FileRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, file_id: FileId) -> File | None:
        return await self.session.get(File, file_id)

    async def segments(self, file_id: uuid.UUID) -> Sequence[FileSegment]:
        """The segments of a file made of segments, in order (none for a one-blob file)."""
        query = select(FileSegment).where(FileSegment.file_id == file_id).order_by(FileSegment.seq)
        return (await self.session.execute(query)).scalars().all()

    async def segment_keys(self, file_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, int, int, bytes]]]:
        """(key, plaintext size, chunk_log2, header_tag) of each segment of ``file_ids``, in order."""
        query = (
            select(
                FileSegment.file_id, FileSegment.key, FileSegment.size, FileSegment.chunk_log2, FileSegment.header_tag
            )
            .where(FileSegment.file_id.in_(file_ids))
            .order_by(FileSegment.file_id, FileSegment.seq)
        )
        found: dict[uuid.UUID, list[tuple[str, int, int, bytes]]] = {}
        for file_id, key, size, chunk_log2, tag in (await self.session.execute(query)).all():
            found.setdefault(file_id, []).append((key, size, chunk_log2, tag))
        return found

    async def known_segment_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that are segments of a file."""
        result = await self.session.execute(select(FileSegment.key).where(FileSegment.key.in_(keys)))
        return set(result.scalars().all())

    async def usage(self, owner: UserId) -> int:
        """Bytes stored by ``owner``."""
        query = select(func.coalesce(func.sum(File.size), 0)).where(File.owner_id == owner)
        return int((await self.session.execute(query)).scalar_one())

    async def reserved(self, owner: UserId, now: datetime) -> int:
        """Bytes held for ``owner``'s unfinished resumable uploads that have not expired
        (their declared lengths, through a link or not): they count against the quota
        from the moment they are created. Expired and complete ones hold nothing."""
        query = select(func.coalesce(func.sum(Upload.length), 0)).where(Upload.owner_id == owner, holding_room(now))
        return int((await self.session.execute(query)).scalar_one())

    async def lock_owner(self, owner: UserId) -> None:
        """Serialise uploads of one owner until the transaction ends (quota checks)."""
        await self.session.execute(LOCK_OWNER, {"owner": owner})

    async def page(self, owner: UserId, limit: int, after: tuple[datetime, uuid.UUID] | None) -> Sequence[File]:
        """Newest first, keyset-paginated on (created_at, id)."""
        query = select(File).where(File.owner_id == owner)
        if after is not None:
            created, file_id = after
            query = query.where(or_(File.created_at < created, and_(File.created_at == created, File.id < file_id)))
        query = query.order_by(File.created_at.desc(), File.id.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()

    async def remove(self, owner: UserId, file_id: FileId) -> bool:
        result = await self.session.execute(delete(File).where(File.id == file_id, File.owner_id == owner))
        return bool(getattr(result, "rowcount", 0))

    async def existing(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        result = await self.session.execute(select(File.id).where(File.id.in_(ids)))
        return set(result.scalars().all())

    async def blob_records(
        self, after: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, int, bytes, int, int]]:
        """(id, size, header_tag, chunk_log2, segments) of every file, in id order, for blob copies."""
        query = select(File.id, File.size, File.header_tag, File.chunk_log2, File.segments).order_by(File.id)
        if after is not None:
            query = query.where(File.id > after)
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def part_records(
        self, after: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, list[tuple[str, int, int, bytes]]]]:
        """(upload id, its parts as (key, plaintext size, chunk_log2, header_tag) in order)
        of unfinished uploads that have parts, in id order after ``after``, for blob copies:
        their parts become a file's segments when they complete."""
        ids = select(Upload.id).where(Upload.completed_at.is_(None), Upload.id.in_(select(UploadPart.upload_id)))
        if after is not None:
            ids = ids.where(Upload.id > after)
        chosen = list((await self.session.execute(ids.order_by(Upload.id).limit(limit))).scalars())
        query = (
            select(UploadPart.upload_id, UploadPart.key, UploadPart.size, UploadPart.chunk_log2, UploadPart.header_tag)
            .where(UploadPart.upload_id.in_(chosen))
            .order_by(UploadPart.upload_id, UploadPart.seq)
        )
        found: dict[uuid.UUID, list[tuple[str, int, int, bytes]]] = {upload_id: [] for upload_id in chosen}
        for upload_id, key, size, chunk_log2, tag in (await self.session.execute(query)).all():
            found[upload_id].append((key, size, chunk_log2, tag))
        return list(found.items())

    async def unfinished_with_parts(self) -> int:
        query = select(func.count()).where(Upload.completed_at.is_(None), Upload.id.in_(select(UploadPart.upload_id)))
        return int((await self.session.execute(query)).scalar_one())

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count()).select_from(File))).scalar_one())

    async def key_ids(self) -> set[str]:
        """The master key ids that wrap a stored file's key or an account's name key
        (without which that file, or every name in that account, cannot be read)."""
        found: set[str] = set()
        for table in (File, NameKey):
            found.update((await self.session.execute(select(table.key_id).distinct())).scalars().all())
        return found
