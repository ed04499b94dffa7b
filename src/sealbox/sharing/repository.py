from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.db.base import Columns
from sealbox.ids import FileId, UserId
from sealbox.models import File, Grant, Share, ShareDelivery, Unlock, Upload, UploadRequest, User
from sealbox.models.upload import holding_room

SHARES = Columns(Share)
# Take ``amount`` bytes from a share's allowance if it is still live and has them, in one
# guarded statement (a unit of work's step): concurrent downloads can never overdraw it.
CHARGE = (
    update(Share)
    .where(
        Share.id == bindparam("share_id"),
        Share.revoked_at.is_(None),
        Share.expires_at > bindparam("now"),
        Share.bytes_left.is_(None) | (Share.bytes_left >= bindparam("amount")),
    )
    .values(bytes_left=Share.bytes_left - bindparam("amount"), downloads=Share.downloads + bindparam("counts"))
)
REQUESTS = Columns(UploadRequest)
# An upload-request link, locked until the transaction ends (PostgreSQL; SQLite's write
# lock already serialises every writer), so two uploads cannot both take its last file
# or bytes.
LOCKED_REQUEST = select(*REQUESTS.columns).where(UploadRequest.id == bindparam("request_id")).with_for_update()
# A link's unfinished resumable uploads that have not expired: how many, and the bytes
# they declared.
PENDING = select(func.count(), func.coalesce(func.sum(Upload.length), 0)).where(
    Upload.request_id == bindparam("request_id"), holding_room(bindparam("now"))
)
# Count a file of ``size`` bytes against the link if it is live and still has a file and
# the bytes for it beside the ``pending`` uploads holding ``held`` bytes.
ADMIT = (
    update(UploadRequest)
    .where(
        UploadRequest.id == bindparam("request_id"),
        UploadRequest.revoked_at.is_(None),
        UploadRequest.expires_at > bindparam("now"),
        UploadRequest.files_received + bindparam("pending") < UploadRequest.max_files,
        UploadRequest.bytes_received + bindparam("held") + bindparam("size") <= UploadRequest.max_bytes,
    )
    .values(
        files_received=UploadRequest.files_received + 1, bytes_received=UploadRequest.bytes_received + bindparam("size")
    )
)
# A share as it is now (to say why a charge was refused).
SHARE = select(*SHARES.columns).where(Share.id == bindparam("share_id"))


def _deliver(dialect_insert: Any) -> Any:
    """Add ``amount`` bytes to what a link to several files has delivered of one file,
    only while the total stays within ``allowance`` (its download limit × its size):
    no row is written, and none returned, otherwise."""
    statement = dialect_insert(ShareDelivery).values(
        share_id=bindparam("share_id"), file_id=bindparam("file_id"), delivered=bindparam("amount")
    )
    total = ShareDelivery.delivered + statement.excluded.delivered
    return statement.on_conflict_do_update(
        index_elements=["share_id", "file_id"],
        set_={"delivered": total},
        where=total <= bindparam("allowance"),
    ).returning(ShareDelivery.delivered)


DELIVER_SQLITE = _deliver(sqlite_insert)
DELIVER_POSTGRES = _deliver(postgres_insert)
# A link's grace (bytes it may give back beyond what was provably unsent), locked
# until the transaction ends; and taking some of it.
GRACE = select(Share.grace_left).where(Share.id == bindparam("share_id")).with_for_update()
USE_GRACE = update(Share).where(Share.id == bindparam("b_id")).values(grace_left=Share.grace_left - bindparam("grace"))
# Give back what a response did not deliver of one file.
UNDELIVER = (
    update(ShareDelivery)
    .where(ShareDelivery.share_id == bindparam("b_share"), ShareDelivery.file_id == bindparam("b_file"))
    .values(
        delivered=case(
            (ShareDelivery.delivered > bindparam("amount"), ShareDelivery.delivered - bindparam("amount")), else_=0
        )
    )
)


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class SharingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Links

    async def share_by_token(self, token_hash: str) -> Share | None:
        return (await self.session.execute(select(Share).where(Share.token_hash == token_hash))).scalar_one_or_none()

    async def request_by_token(self, token_hash: str) -> UploadRequest | None:
        query = select(UploadRequest).where(UploadRequest.token_hash == token_hash)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def owner_active(self, owner: uuid.UUID) -> bool:
        """Whether the account owning a link or a file is enabled: a disabled account's
        links and grants stop working until it is enabled again."""
        query = select(User.is_active).where(User.id == owner)
        return bool((await self.session.execute(query)).scalar_one_or_none())

    async def shares(self, owner: UserId, file_id: FileId | None) -> Sequence[Share]:
        query = select(Share).where(Share.owner_id == owner).order_by(Share.created_at.desc())
        if file_id is not None:
            query = query.where(Share.file_id == file_id)
        return (await self.session.execute(query)).scalars().all()

    async def requests(self, owner: UserId) -> Sequence[UploadRequest]:
        query = select(UploadRequest).where(UploadRequest.owner_id == owner).order_by(UploadRequest.created_at.desc())
        return (await self.session.execute(query)).scalars().all()

    async def delivered(self, share_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """What a link to several files has delivered of each file (bytes)."""
        query = select(ShareDelivery.file_id, ShareDelivery.delivered).where(ShareDelivery.share_id == share_id)
        return {file_id: int(n) for file_id, n in (await self.session.execute(query)).all()}

    async def refund(self, share_id: uuid.UUID, unsent: int, sent: int) -> None:
        """Give back ``unsent`` bytes, and as many of the ``sent`` ones as the share's
        grace allows (they may have been lost in flight)."""
        query = select(Share).where(Share.id == share_id).with_for_update()
        share = (await self.session.execute(query)).scalar_one_or_none()
        if share is None or share.bytes_left is None:
            return
        grace = min(sent, share.grace_left)
        share.grace_left -= grace
        share.bytes_left += unsent + grace

    async def pending(self, request_id: uuid.UUID, now: datetime) -> tuple[int, int]:
        """Unfinished resumable uploads through the link that have not expired: how many,
        and the bytes they declared."""
        count, held = (await self.session.execute(PENDING, {"request_id": request_id, "now": now})).one()
        return int(count), int(held)

    async def received(self, request_id: uuid.UUID) -> Sequence[File]:
        query = select(File).where(File.upload_request_id == request_id).order_by(File.created_at.desc())
        return (await self.session.execute(query)).scalars().all()

    # Unlocks

    async def replace_password_hash(self, link: Share | UploadRequest, old: str, new: str) -> None:
        """Store ``new`` as the link's password hash only if it is still ``old``."""
        table = type(link)
        await self.session.execute(
            update(table).where(table.id == link.id, table.password_hash == old).values(password_hash=new)
        )

    async def add_unlock(self, unlock: Unlock, now: datetime) -> None:
        self.session.add(unlock)
        await self.session.execute(delete(Unlock).where(Unlock.expires_at <= now))

    async def unlocked(self, token_hash: str, link_id: uuid.UUID, now: datetime) -> bool:
        query = select(Unlock.link_id).where(
            Unlock.token_hash == token_hash, Unlock.link_id == link_id, Unlock.expires_at > now
        )
        return (await self.session.execute(query)).first() is not None

    # Grants

    async def grant_for(self, file_id: FileId, grantee: UserId) -> Grant | None:
        query = select(Grant).where(Grant.file_id == file_id, Grant.grantee_id == grantee)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def grants(self, file_id: FileId) -> Sequence[tuple[Grant, str]]:
        query = (
            select(Grant, User.username)
            .join(User, User.id == Grant.grantee_id)
            .where(Grant.file_id == file_id)
            .order_by(Grant.created_at)
        )
        return [(grant, name) for grant, name in (await self.session.execute(query)).all()]

    async def shared_with(self, grantee: UserId) -> Sequence[tuple[File, str, uuid.UUID]]:
        query = (
            select(File, User.username, Grant.id)
            .join(Grant, Grant.file_id == File.id)
            .join(User, User.id == File.owner_id)
            .where(Grant.grantee_id == grantee, User.is_active.is_(True))
            .order_by(File.created_at.desc())
        )
        return [(row, owner, grant_id) for row, owner, grant_id in (await self.session.execute(query)).all()]

    async def user_named(self, username: str) -> User | None:
        return (await self.session.execute(select(User).where(User.username == username))).scalar_one_or_none()
