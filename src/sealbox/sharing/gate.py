"""The one gate for file bytes (DESIGN promise 6).

Every route that returns a file's metadata or content (the owner's API, a grantee's,
a share link's, the seed routes, and later the web pages) calls ``Gate.authorise``
through ``describe`` or ``open``. It decides who may read which file, and it is where a
link's revocation, expiry, download limit and password hold.

What counts as a download. A link with a download limit of N carries an allowance of
N × (file size) bytes (N for an empty file). Every ``GET`` of its content takes the
length of its response from the allowance, atomically in the database, before the
first byte is sent, and the allowance can never go below zero; bytes that were not
sent because the connection dropped are given back, so an interrupted download can
be resumed with a ``Range`` request. N full downloads therefore always succeed, and no
mix of ranges and parallel requests can fetch more than N × size bytes. ``HEAD`` and
the metadata cost nothing. ``downloads`` counts responses that start at byte 0.

Bytes handed to the network just before a connection drops may never arrive (they sit
in socket buffers), so a resume could need slightly more than what is left. When a
response is cut short, the bytes it did send are also given back, from a grace of
min(size / 2, 16 MiB) per link that is never replenished: an interrupted last download
can still be resumed, and no one can assemble an extra whole copy from it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sealbox.audit.service import Actor, Audit, Detail, Event
from sealbox.crypto.tokens import token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import AuthenticationFailed, Gone, NotFound
from sealbox.files.schemas import FileRead
from sealbox.files.service import Download, FileService
from sealbox.ids import FileId, UserId
from sealbox.models import File, Share, UploadRequest
from sealbox.sharing.repository import SharingRepository


@dataclass(frozen=True)
class AsUser:
    """A signed-in account asking for a file by id: its owner, or a grantee."""

    user_id: UserId
    actor: Actor


@dataclass(frozen=True)
class ByLink:
    """Whoever holds a share link's token (and, for a password, an unlock grant)."""

    token: str
    grant: str | None
    actor: Actor


Access = AsUser | ByLink


def check_live(link: Share | UploadRequest, now: datetime) -> None:
    """Raise ``Gone`` for a revoked, expired or used-up link, with nothing else about it."""
    if link.revoked_at is not None:
        raise Gone("this link has been revoked")
    if link.expires_at <= now:
        raise Gone("this link has expired")
    if isinstance(link, Share) and link.bytes_left is not None and link.bytes_left <= 0:
        raise Gone("this link's download limit has been reached")
    if isinstance(link, UploadRequest) and link.files_received >= link.max_files:
        raise Gone(f"this link has received all the {link.max_files} files it accepts")


async def check_open(repo: SharingRepository, link: Share | UploadRequest, now: datetime) -> None:
    """``check_live``, and ``Gone`` while the link's owner is disabled."""
    check_live(link, now)
    if not await repo.owner_active(link.owner_id):
        raise Gone("this link is suspended")


async def check_unlocked(
    repo: SharingRepository, link: Share | UploadRequest, grant: str | None, now: datetime
) -> None:
    if link.password_hash is None:
        return
    if not grant or not await repo.unlocked(token_hash(grant), link.id, now):
        raise AuthenticationFailed("this link needs its password: POST it to the link's /unlock first")


def downloads_left(share: Share, size: int) -> int | None:
    if share.bytes_left is None:
        return None
    return max(share.bytes_left, 0) // max(size, 1)


@dataclass(frozen=True)
class Authorised:
    row: File
    via: str  # "owner", "grant" or "link"
    share: Share | None = None


@dataclass
class Opened:
    """An authorised, authenticated file, and what its responses cost.

    Call ``begin`` before sending a ``GET`` body and ``finish`` after it; ``HEAD``
    calls neither.
    """

    download: Download
    _gate: Gate
    _authorised: Authorised
    _actor: Actor
    _charged: int = field(default=0, init=False)

    async def begin(self, start: int, end: int) -> None:
        """Take the response's bytes from a link's allowance (``Gone`` if it has too
        few) and record the response in the audit trail (``file.download``, ranges too)."""
        length = end - start + 1
        share = self._authorised.share
        row = self._authorised.row
        if share is not None:
            amount = max(length, 1) if share.bytes_left is not None else 0
            now = utcnow()
            async with self._gate.db.write() as session:
                repo = SharingRepository(session)
                if not await repo.charge(share.id, now, amount, start == 0):
                    current = await session.get(Share, share.id, populate_existing=True)
                    if current is None:
                        raise Gone("this link has been revoked")
                    check_live(current, now)
                    raise Gone(f"this link's download limit allows only {current.bytes_left} more bytes")
            self._charged = amount
        # Every response that sends bytes is one event, ranges included (a range names its
        # first byte): a download in many ranges cannot pass unrecorded, and group commit
        # keeps a burst of them to a few transactions.
        target = str(share.id) if share is not None else None
        detail: Detail = {"via": self._authorised.via, "bytes": max(length, 0)}
        if length != row.size:
            detail = {**detail, "start": start}
        self._gate.audit.record_soon(Event("file.download", self._actor, row.owner_id, row.id, target, detail))

    def finish(self, unsent: int) -> None:
        """After a response: give back to a link's allowance what a cut-short one did
        not deliver (see the module's description).

        Runs as its own task: it is called while the response is being cancelled."""
        share = self._authorised.share
        if share is None or share.bytes_left is None or unsent <= 0 or self._charged == 0:
            return
        unsent = min(unsent, self._charged)
        self._gate.refund(share.id, unsent, self._charged - unsent)


class Gate:
    def __init__(self, db: Database, files: FileService, audit: Audit) -> None:
        self.db = db
        self.files = files
        self.audit = audit
        self._refunds: set[asyncio.Task[None]] = set()

    async def authorise(self, access: Access, file_id: FileId | None = None) -> Authorised:
        """The authorisation function: which file ``access`` may read, and how.

        For an account: the file ``file_id`` if they own it or hold a grant for it
        (``NotFound`` otherwise, the same as for a file that does not exist). For a
        link: its file, if the link exists (``NotFound``), is live (``Gone``) and is
        unlocked when it has a password (``AuthenticationFailed``).
        """
        if isinstance(access, AsUser):
            if file_id is None:
                raise NotFound("file not found")
            row = await self.files.record(file_id)
            if row is None:
                raise NotFound("file not found")
            if row.owner_id == access.user_id:
                return Authorised(row, "owner")
            async with self.db.read() as session:
                repo = SharingRepository(session)
                grant = await repo.grant_for(file_id, access.user_id)
                if grant is None or not await repo.owner_active(row.owner_id):
                    raise NotFound("file not found")
            return Authorised(row, "grant")
        now = utcnow()
        async with self.db.read() as session:
            repo = SharingRepository(session)
            share = await repo.share_by_token(token_hash(access.token))
            if share is None:
                raise NotFound("link not found")
            await check_open(repo, share, now)
            await check_unlocked(repo, share, access.grant, now)
        row = await self.files.record(FileId(share.file_id))
        if row is None:
            raise NotFound("link not found")
        return Authorised(row, "link", share)

    async def describe(self, access: Access, file_id: FileId | None = None) -> tuple[FileRead, Authorised]:
        authorised = await self.authorise(access, file_id)
        return self.files.describe(authorised.row), authorised

    async def open(self, access: Access, file_id: FileId | None = None) -> Opened:
        authorised = await self.authorise(access, file_id)
        download = await self.files.open(authorised.row)
        return Opened(download, self, authorised, access.actor)

    def refund(self, share_id: uuid.UUID, unsent: int, sent: int) -> None:
        task = asyncio.get_running_loop().create_task(self._refund(share_id, unsent, sent))
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)

    async def _refund(self, share_id: uuid.UUID, unsent: int, sent: int) -> None:
        async with self.db.write() as session:
            await SharingRepository(session).refund(share_id, unsent, sent)

    async def drain(self) -> None:
        """Wait for pending refunds (at shutdown)."""
        if self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)
