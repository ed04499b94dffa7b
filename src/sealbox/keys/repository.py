from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.models import File, Upload


class WrappedKeyRepository:
    """The wrapped file keys in the ``files`` table; never the blobs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def counts(self) -> dict[str, int]:
        """Number of files whose key each master key wraps."""
        result = await self.session.execute(select(File.key_id, func.count()).group_by(File.key_id))
        return {key_id: int(n) for key_id, n in result.all()}

    async def uploads_on(self, key_id: str) -> int:
        """Resumable uploads in progress whose key ``key_id`` wraps (they are not re-wrapped:
        they finish or expire within SEALBOX_UPLOAD_EXPIRY_HOURS)."""
        result = await self.session.execute(select(func.count()).select_from(Upload).where(Upload.key_id == key_id))
        return int(result.scalar_one())

    async def count_not_on(self, key_id: str) -> int:
        result = await self.session.execute(select(func.count()).select_from(File).where(File.key_id != key_id))
        return int(result.scalar_one())

    async def batch_not_on(self, key_id: str, limit: int) -> Sequence[tuple[uuid.UUID, str, bytes]]:
        query = select(File.id, File.key_id, File.wrapped_dek).where(File.key_id != key_id).order_by(File.id)
        return [(row[0], row[1], row[2]) for row in (await self.session.execute(query.limit(limit))).all()]

    async def swap(self, file_id: uuid.UUID, old: tuple[str, bytes], new: tuple[str, bytes]) -> bool:
        """Compare-and-swap one wrapped key; False if the row changed (or went) meanwhile."""
        result = await self.session.execute(
            update(File)
            .where(File.id == file_id, File.key_id == old[0], File.wrapped_dek == old[1])
            .values(key_id=new[0], wrapped_dek=new[1])
        )
        return bool(getattr(result, "rowcount", 0))
