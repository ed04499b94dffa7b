from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.crypto.keys import WRAP_FORMAT
from sealbox.models import File, KeyHolder, NameKey, RetiredKey, Upload

LegacyRow = tuple[uuid.UUID, str, bytes]  # id, master key id, format-1 token
NameKeyRow = tuple[uuid.UUID, str, bytes, int]  # owner id, master key id, wrapped key, wrap format

# Every table whose rows hold a key wrapped under a master key (a ``key_id`` column):
# files' keys, unfinished uploads' keys, accounts' name keys. Each key command covers
# each of them (tests/unit/test_name_keys.py enumerates the tables with a ``key_id``).
WRAPPED_KEY_TABLES = (File, Upload, NameKey)


class WrappedKeyRepository:
    """The wrapped keys in the database (files', uploads', accounts' name keys); never the blobs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self) -> dict[str, int]:
        """Number of files whose key each master key wraps."""
        result = await self.session.execute(select(File.key_id, func.count()).group_by(File.key_id))
        return {key_id: int(n) for key_id, n in result.all()}

    async def name_key_counts(self) -> dict[str, int]:
        """Number of accounts' name keys each master key wraps."""
        result = await self.session.execute(select(NameKey.key_id, func.count()).group_by(NameKey.key_id))
        return {key_id: int(n) for key_id, n in result.all()}

    async def name_keys_not_on(self, key_id: str, limit: int) -> Sequence[NameKeyRow]:
        """(owner, key id, wrapped key, wrap format) of name keys not wrapped by ``key_id``."""
        query = (
            select(NameKey.owner_id, NameKey.key_id, NameKey.wrapped_key, NameKey.wrap_format)
            .where(NameKey.key_id != key_id)
            .order_by(NameKey.owner_id)
        )
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def swap_name_key(self, owner: uuid.UUID, old: tuple[str, bytes], new: tuple[str, bytes]) -> bool:
        """Compare-and-swap one account's wrapped name key (``new`` in the current format);
        False if the row changed (or went) meanwhile."""
        result = await self.session.execute(
            update(NameKey)
            .where(NameKey.owner_id == owner, NameKey.key_id == old[0], NameKey.wrapped_key == old[1])
            .values(key_id=new[0], wrapped_key=new[1], wrap_format=WRAP_FORMAT)
        )
        return bool(getattr(result, "rowcount", 0))

    async def uploads_on(self, key_id: str) -> int:
        """Resumable uploads in progress whose key ``key_id`` wraps (they are not re-wrapped:
        they finish or expire within SEALBOX_UPLOAD_EXPIRY_HOURS)."""
        result = await self.session.execute(select(func.count()).select_from(Upload).where(Upload.key_id == key_id))
        return int(result.scalar_one())

    async def count_not_on(self, key_id: str) -> int:
        """Files and name keys whose key is not wrapped by ``key_id`` (what a rewrap moves)."""
        total = 0
        for table in (File, NameKey):
            query = select(func.count()).select_from(table).where(table.key_id != key_id)
            total += int((await self.session.execute(query)).scalar_one())
        return total

    async def batch_not_on(self, key_id: str, limit: int) -> Sequence[tuple[uuid.UUID, str, bytes, int, int]]:
        """(id, key id, wrapped key, wrap format, segments) of files not wrapped by ``key_id``."""
        query = (
            select(File.id, File.key_id, File.wrapped_dek, File.wrap_format, File.segments)
            .where(File.key_id != key_id)
            .order_by(File.id)
        )
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def swap(
        self, file_id: uuid.UUID, old: tuple[str, bytes], new: tuple[str, bytes], wrap_format: int = WRAP_FORMAT
    ) -> bool:
        """Compare-and-swap one wrapped key (``new`` is in ``wrap_format``, the current
        format for the file's layout); False if the row changed (or went) meanwhile."""
        result = await self.session.execute(
            update(File)
            .where(File.id == file_id, File.key_id == old[0], File.wrapped_dek == old[1])
            .values(key_id=new[0], wrapped_dek=new[1], wrap_format=wrap_format)
        )
        return bool(getattr(result, "rowcount", 0))

    async def legacy(self, table: type[File | Upload], after: uuid.UUID | None, limit: int) -> Sequence[LegacyRow]:
        """Rows of ``table`` whose key is wrapped in format 1, in id order after ``after``."""
        query = select(table.id, table.key_id, table.wrapped_dek).where(table.wrap_format == 1)
        if after is not None:
            query = query.where(table.id > after)
        rows = (await self.session.execute(query.order_by(table.id).limit(limit))).all()
        return [(row[0], row[1], row[2]) for row in rows]

    async def unsplit_segmented(self, after: uuid.UUID | None, limit: int) -> Sequence[LegacyRow]:
        """Files made of segments whose key still has the plain file prefix (format 2,
        written before ``WrapDomain.SEGMENTED_FILE``), in id order after ``after``."""
        query = select(File.id, File.key_id, File.wrapped_dek).where(File.segments > 0, File.wrap_format == WRAP_FORMAT)
        if after is not None:
            query = query.where(File.id > after)
        rows = (await self.session.execute(query.order_by(File.id).limit(limit))).all()
        return [(row[0], row[1], row[2]) for row in rows]

    async def legacy_count(self) -> int:
        """Rows (files and uploads) whose key is still wrapped in format 1."""
        total = 0
        for table in (File, Upload):
            query = select(func.count()).select_from(table).where(table.wrap_format == 1)
            total += int((await self.session.execute(query)).scalar_one())
        return total

    async def upgrade(
        self,
        table: type[File | Upload],
        row_id: uuid.UUID,
        old: tuple[str, bytes],
        new: bytes,
        formats: tuple[int, int] = (1, WRAP_FORMAT),
    ) -> bool:
        """Compare-and-swap a token in format ``formats[0]`` (1 unless said) for ``new``
        (in ``formats[1]``, 2 unless said), under the same master key."""
        result = await self.session.execute(
            update(table)
            .where(
                table.id == row_id,
                table.key_id == old[0],
                table.wrapped_dek == old[1],
                table.wrap_format == formats[0],
            )
            .values(wrapped_dek=new, wrap_format=formats[1])
        )
        return bool(getattr(result, "rowcount", 0))

    async def retire(self, key_id: str, now: datetime) -> None:
        """Mark ``key_id`` retired (call under the exclusive key lock, after counting)."""
        if await self.session.get(RetiredKey, key_id) is None:
            self.session.add(RetiredKey(id=key_id, retired_at=now))

    async def is_retired(self, key_id: str) -> bool:
        return await self.session.get(RetiredKey, key_id) is not None


@dataclass(frozen=True)
class Holder:
    """A live server process and the master keys it reported holding."""

    id: uuid.UUID
    host: str
    pid: int
    primary: str
    key_ids: frozenset[str]
    missing: frozenset[str]  # key ids it met in stored data and lacks
    seen_at: datetime

    @property
    def name(self) -> str:
        return f"process {self.pid} on {self.host}"


def _ids(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part)


class HolderRepository:
    """The ``key_holders`` rows: which process holds which master key ids."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def report(self, row: KeyHolder) -> None:
        """Insert or refresh one process's row (each process writes only its own)."""
        values = {
            "primary_key": row.primary_key,
            "key_ids": row.key_ids,
            "missing": row.missing,
            "seen_at": row.seen_at,
            "expires_at": row.expires_at,
        }
        result = await self.session.execute(update(KeyHolder).where(KeyHolder.id == row.id).values(**values))
        if not getattr(result, "rowcount", 0):
            self.session.add(row)

    async def remove(self, holder_id: uuid.UUID) -> None:
        await self.session.execute(delete(KeyHolder).where(KeyHolder.id == holder_id))

    async def prune(self, before: datetime) -> None:
        """Forget processes that stopped reporting before ``before``."""
        await self.session.execute(delete(KeyHolder).where(KeyHolder.expires_at < before))

    async def live(self, now: datetime) -> list[Holder]:
        query = select(KeyHolder).where(KeyHolder.expires_at > now).order_by(KeyHolder.host, KeyHolder.pid)
        return [
            Holder(r.id, r.host, r.pid, r.primary_key, _ids(r.key_ids), _ids(r.missing), r.seen_at)
            for r in (await self.session.execute(query)).scalars()
        ]
