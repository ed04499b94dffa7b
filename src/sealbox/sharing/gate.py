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
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, null, select
from sqlalchemy.orm import aliased

from sealbox.accounts.authority import Action, Presented, authorise
from sealbox.accounts.repository import HOLDER, HOLDER_COLUMNS, holder_query
from sealbox.accounts.schemas import Principal
from sealbox.accounts.service import principal_of
from sealbox.archive import Member, archive_size, zip_stream
from sealbox.audit.service import Actor, Audit, Detail, Event
from sealbox.crypto.tokens import token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database, Tx
from sealbox.errors import AuthenticationFailed, Gone, NotFound
from sealbox.files.folders import FolderService
from sealbox.files.repository import FILES
from sealbox.files.schemas import FileRead
from sealbox.files.service import Download, FileService
from sealbox.ids import FileId, UserId
from sealbox.models import File, Grant, Share, Unlock, UploadRequest, User
from sealbox.sharing.collections import Collection, Collections, Item, Kind
from sealbox.sharing.repository import (
    CHARGE,
    DELIVER_POSTGRES,
    DELIVER_SQLITE,
    GRACE,
    SHARE,
    SHARES,
    UNDELIVER,
    USE_GRACE,
    SharingRepository,
)


@dataclass(frozen=True)
class AsUser:
    """A signed-in account asking for a file by id: its owner, or a grantee."""

    user_id: UserId
    actor: Actor


@dataclass(frozen=True)
class WithCredential:
    """A signed-in account's credential as presented (a bearer token or the session
    cookie), not yet resolved: the gate resolves it in the same query as the file, and
    the authority (``sealbox.accounts.authority``) decides whether it counts."""

    token: str
    presented: Presented
    client: str | None


@dataclass(frozen=True)
class ByLink:
    """Whoever holds a share link's token (and, for a password, an unlock grant)."""

    token: str
    grant: str | None
    actor: Actor


Access = AsUser | WithCredential | ByLink


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


def check_owner(owner_active: bool) -> None:
    """``Gone`` while the link's owner is disabled."""
    if not owner_active:
        raise Gone("this link is suspended")


def check_password(link: Share | UploadRequest, unlocked: bool) -> None:
    """``AuthenticationFailed`` for a link with a password that was not ``unlocked`` (by
    a live grant for it)."""
    if link.password_hash is not None and not unlocked:
        raise AuthenticationFailed("this link needs its password: POST it to the link's /unlock first")


async def check_open(repo: SharingRepository, link: Share | UploadRequest, now: datetime) -> None:
    """``check_live``, and ``Gone`` while the link's owner is disabled."""
    check_live(link, now)
    check_owner(await repo.owner_active(link.owner_id))


async def check_unlocked(
    repo: SharingRepository, link: Share | UploadRequest, grant: str | None, now: datetime
) -> None:
    if link.password_hash is None:
        return
    check_password(link, bool(grant) and await repo.unlocked(token_hash(grant or ""), link.id, now))


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
    """An authorised, authenticated file, and what its responses cost: one object per
    response, owned by the gate.

    Call ``begin`` before sending a ``GET``'s headers (it takes the bytes from a link's
    allowance and records the download), then send ``content``, which gives back in its
    own ``finally`` what was not delivered; ``HEAD`` calls neither.
    """

    download: Download
    _gate: Gate
    _authorised: Authorised
    _actor: Actor
    _charged: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)

    async def begin(self, start: int, end: int) -> None:
        """Take the response's bytes from a link's allowance (``Gone`` if it has too
        few) and record the response in the audit trail (``file.download``, ranges too)."""
        length = end - start + 1
        share = self._authorised.share
        row = self._authorised.row
        # Every response that sends bytes is one event, ranges included (a range names its
        # first byte): a download in many ranges cannot pass unrecorded, and group commit
        # keeps a burst of them to a few transactions.
        target = str(share.id) if share is not None else None
        detail: Detail = {"via": self._authorised.via, "bytes": max(length, 0)}
        if length != row.size:
            detail = {**detail, "start": start}
        event = Event("file.download", self._actor, row.owner_id, row.id, target, detail)
        if share is None:
            self._gate.audit.record_soon(event)
            return
        now = utcnow()
        if share.file_id is None:
            # A file of a link to several files: counted per file (``charge_files``).
            amount = max(length, 1) if share.download_limit is not None else 0
            amounts = {row.id: (amount, row.size)}
            counts = int(start == 0)
            await self._gate.audit.record(event, work=(lambda tx: charge_files(tx, share, amounts, counts, now),))
            self._charged = amount
            return
        amount = max(length, 1) if share.bytes_left is not None else 0
        share_id = share.id

        values = {"share_id": share_id, "now": now, "amount": amount, "counts": int(start == 0)}

        def charge(tx: Tx) -> None:
            if tx.conn.execute(CHARGE, values).rowcount != 1:
                current = tx.conn.execute(SHARE, values).first()
                if current is None:
                    raise Gone("this link has been revoked")
                share = SHARES.build(current)
                check_live(share, now)
                raise Gone(f"this link's download limit allows only {share.bytes_left} more bytes")

        # The charge and its event are one unit of work, and concurrent downloads share
        # its commit: the allowance is taken, durably, before the headers are sent.
        await self._gate.audit.record(event, work=(charge,))
        self._charged = amount

    @property
    def refundable(self) -> bool:
        """Whether a cut-short response would give bytes back (``content``): a download
        through a link with a byte allowance."""
        share = self._authorised.share
        if share is not None and share.file_id is None:
            return share.download_limit is not None
        return share is not None and share.bytes_left is not None

    async def content(self, start: int, end: int) -> AsyncGenerator[bytearray | memoryview]:
        """Plaintext bytes ``start..end`` (after ``begin``). Whatever of them the server
        has not taken when this ends (the client went away, the server is stopping,
        stored data failed authentication) is given back to a link's allowance here,
        in this generator's ``finally``."""
        sent = 0
        self._started = True
        try:
            async for piece in self.download.content(start, end):
                yield piece
                sent += len(piece)  # counted once the server has taken it
        finally:
            self._finish(end - start + 1 - sent)

    def abandon(self) -> None:
        """After a response whose body never started (the client went away first): give
        back all it was charged, as ``content`` would have."""
        if not self._started:
            self._started = True
            self._finish(self._charged)

    def _finish(self, unsent: int) -> None:
        """After a response: give back to a link's allowance what a cut-short one did
        not deliver (see the module's description).

        Runs as its own task: it is called while the response is being cancelled."""
        share = self._authorised.share
        if share is not None and share.file_id is None:
            if self._charged and unsent > 0:
                unsent = min(unsent, self._charged)
                row_id = self._authorised.row.id
                self._gate.refund_files(share.id, {row_id: unsent}, (row_id, self._charged - unsent))
            return
        if share is None or share.bytes_left is None or unsent <= 0 or self._charged == 0:
            return
        unsent = min(unsent, self._charged)
        self._gate.refund(share.id, unsent, self._charged - unsent)


@dataclass
class Archive:
    """A collection as one ZIP, made by the gate for one response: ``begin`` charges
    it (a link's liveness and, with a download limit, every file's whole size; audited
    as ``share.archive``, or ``file.archive`` for an owner's own files), ``content``
    streams it, opening each file (which authenticates it) only when the archive
    reaches it, and gives back in its own ``finally`` what each file did not deliver."""

    collection: Collection
    _gate: Gate
    _share: Share | None
    _actor: Actor
    _owner: UserId | None = None
    _members: list[Member] = field(init=False)
    _sent: dict[uuid.UUID, int] = field(default_factory=dict, init=False)
    _charged: dict[uuid.UUID, int] = field(default_factory=dict, init=False)
    _last: uuid.UUID | None = field(default=None, init=False)  # the file being sent, or sent last
    _settled: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        files = self.collection.files
        newest = max((item.row.created_at for item in files), default=utcnow())
        members = [Member(path, 0, newest, None) for path in self.collection.dirs]
        members += [Member(item.path, item.row.size, item.row.created_at, self._opener(item)) for item in files]
        members.sort(key=lambda member: member.path)
        self._members = members

    @property
    def size(self) -> int:
        """The archive's exact length (``ArchiveError`` if a member could not be archived)."""
        return archive_size(self._members)

    @property
    def name(self) -> str:
        return f"{self.collection.name}.zip"

    async def begin(self) -> None:
        files = self.collection.files
        detail: Detail = {"files": len(files), "bytes": self.collection.size}
        share = self._share
        if share is None:
            event = Event("file.archive", self._actor, self._owner, None, None, detail)
            self._gate.audit.record_soon(event)
            return
        limited = share.download_limit is not None
        amounts = {item.row.id: (max(item.row.size, 1) if limited else 0, item.row.size) for item in files}
        now = utcnow()
        event = Event("share.archive", self._actor, share.owner_id, None, str(share.id), detail)
        await self._gate.audit.record(event, work=(lambda tx: charge_files(tx, share, amounts, 1, now),))
        if limited:
            self._charged = {file_id: amount for file_id, (amount, _) in amounts.items()}

    def _opener(self, item: Item) -> Callable[[], AsyncIterator[bytes | bytearray | memoryview]]:
        async def content() -> AsyncIterator[bytes | bytearray | memoryview]:
            row = item.row
            self._sent.setdefault(row.id, 0)
            self._last = row.id
            if row.size == 0:
                return
            download = await self._gate.files.open(row)
            async for piece in download.content(0, row.size - 1):
                yield piece
                self._sent[row.id] += len(piece)

        return content

    async def content(self) -> AsyncGenerator[bytes]:
        complete = False
        try:
            async with aclosing(zip_stream(self._members)) as pieces:
                async for piece in pieces:
                    yield piece
            complete = True
        finally:
            self.settle(complete)

    def settle(self, complete: bool = False) -> None:
        """Give back what the archive did not deliver (once; also when the response
        never started): every file not sent in full, and from the link's grace, the
        bytes sent of the file it was in when it was cut short."""
        if self._settled:
            return
        self._settled = True
        if self._share is None or not self._charged or complete:
            return
        unsent = {}
        for item in self.collection.files:
            sent = self._sent.get(item.row.id)
            done = sent is not None and sent >= item.row.size
            unsent[item.row.id] = 0 if done else self._charged[item.row.id] - (sent or 0)
        last = (self._last, self._sent.get(self._last, 0)) if self._last is not None else None
        self._gate.refund_files(self._share.id, unsent, last)


_owner = aliased(User)


def _reader(access: WithCredential, row: tuple[Any, ...] | None) -> Principal:
    """The principal of an unresolved credential from its query's row, if the authority
    accepts it for reading."""
    principal = principal_of(row[:HOLDER_COLUMNS] if row is not None else None, access.presented)
    authorise(principal, Action.READ)
    return principal


def _account_query(by_credential: bool) -> Select[*tuple[Any, ...]]:
    """The file bound as ``file_id``, its owner's id, whether that owner is enabled, and
    the reading account's grant for it; with ``by_credential``, after the holder of the
    credential bound as ``token_hash`` (``HOLDER``): no row when the credential resolves
    to no one, NULLs after the holder when there is no such file. Otherwise the account
    is bound as ``user_id``."""
    columns = (*FILES.columns, _owner.id, _owner.is_active, Grant.id)
    if not by_credential:
        query = select(*columns).select_from(File).where(File.id == bindparam("file_id"))
        query = query.join(_owner, _owner.id == File.owner_id)
        return query.outerjoin(Grant, and_(Grant.file_id == File.id, Grant.grantee_id == bindparam("user_id")))
    query = holder_query().add_columns(*columns)
    query = query.outerjoin(File, File.id == bindparam("file_id")).outerjoin(_owner, _owner.id == File.owner_id)
    return query.outerjoin(Grant, and_(Grant.file_id == File.id, Grant.grantee_id == User.id))


def _link_query(with_grant: bool) -> Select[*tuple[Any, ...]]:
    """The link whose token hash is bound as ``token_hash``, its file, whether its owner
    is enabled and, ``with_grant``, the link's id if the grant whose hash is bound as
    ``grant_hash`` unlocks it at the time bound as ``now``."""
    unlocked = Unlock.link_id if with_grant else null()
    query = select(*SHARES.columns, *FILES.columns, User.is_active, unlocked).select_from(Share)
    # A link to a folder or a selection has no file: its file columns come back NULL.
    query = query.outerjoin(File, File.id == Share.file_id).join(User, User.id == Share.owner_id)
    if with_grant:
        live = and_(
            Unlock.link_id == Share.id,
            Unlock.token_hash == bindparam("grant_hash"),
            Unlock.expires_at > bindparam("now"),
        )
        query = query.outerjoin(Unlock, live)
    return query.where(Share.token_hash == bindparam("token_hash"))


# Built once: building a statement costs more than running it.
BY_CREDENTIAL, BY_USER = _account_query(True), _account_query(False)
BY_LINK, BY_LINK_WITH_GRANT = _link_query(False), _link_query(True)


@dataclass(frozen=True)
class LinkAccess:
    """An authorised share link (live, its owner enabled, unlocked if it has a
    password), with its file when it is a link to one file."""

    share: Share
    file: File | None
    actor: Actor


def charge_files(tx: Tx, share: Share, amounts: dict[uuid.UUID, tuple[int, int]], counts: int, now: datetime) -> None:
    """A unit of work's step for a link to several files: the link must still be live
    (its ``downloads`` counts ``counts`` more), and with a download limit each file
    takes its amount from what it has left ({file id: (amount, its size)}); ``Gone``
    if the link went or a file has too little left."""
    values = {"share_id": share.id, "now": now, "amount": 0, "counts": counts}
    if tx.conn.execute(CHARGE, values).rowcount != 1:
        current = tx.conn.execute(SHARE, values).first()
        if current is None:
            raise Gone("this link has been revoked")
        check_live(SHARES.build(current), now)
        raise Gone("this link has been revoked")
    limit = share.download_limit
    if limit is None:
        return
    deliver = DELIVER_SQLITE if tx.is_sqlite else DELIVER_POSTGRES
    short = 0
    for file_id, (amount, size) in amounts.items():
        allowance = limit * max(size, 1)
        params = {"share_id": share.id, "file_id": file_id, "amount": amount, "allowance": allowance}
        if tx.conn.execute(deliver, params).first() is None:
            short += 1
    if short:
        raise Gone(
            f"this link's download limit has been reached for {short} of the files asked for"
            if len(amounts) > 1
            else "this link's download limit has been reached for this file"
        )


class Gate:
    def __init__(self, db: Database, files: FileService, audit: Audit, collections: Collections | None = None) -> None:
        self.db = db
        self.files = files
        self.audit = audit
        self.collections = collections or Collections(files, FolderService(files))
        self._refunds: set[asyncio.Task[None]] = set()

    async def authorise(self, access: Access, file_id: FileId | None = None) -> Authorised:
        """The authorisation function: which file ``access`` may read, and how.

        For an account: the file ``file_id`` if they own it or hold a grant for it whose
        owner is enabled (``NotFound`` otherwise, the same as for a file that does not
        exist). A credential not yet resolved is resolved first, in the same query, and
        must be accepted (``AuthenticationFailed``). For a link: its file, if the link
        exists (``NotFound``), is live and its owner enabled (``Gone``) and is unlocked
        when it has a password (``AuthenticationFailed``). One database round trip.
        """
        authorised, _ = await self._resolve(access, file_id)
        return authorised

    async def _resolve(self, access: Access, file_id: FileId | None) -> tuple[Authorised, Actor]:
        if isinstance(access, ByLink):
            return await self._by_link(access), access.actor
        if isinstance(access, WithCredential) and file_id is None:
            # Authenticate first: a malformed id must not answer before the credential.
            rows = await self.db.rows(HOLDER, {"token_hash": token_hash(access.token), "now": utcnow()})
            _reader(access, tuple(rows[0]) if rows else None)
            raise NotFound("file not found")
        if file_id is None:
            raise NotFound("file not found")
        if isinstance(access, WithCredential):
            values = {"token_hash": token_hash(access.token), "now": utcnow(), "file_id": file_id}
            rows = await self.db.rows(BY_CREDENTIAL, values)
        else:
            rows = await self.db.rows(BY_USER, {"file_id": file_id, "user_id": access.user_id})
        row: tuple[Any, ...] | None = tuple(rows[0]) if rows else None
        if isinstance(access, WithCredential):
            principal = _reader(access, row)
            user_id, actor = principal.user_id, principal.actor(access.client)
            row = row[HOLDER_COLUMNS:] if row is not None else None
        else:
            user_id, actor = access.user_id, access.actor
        if row is None or row[-3] is None:  # no such file (the owner's id comes back NULL)
            raise NotFound("file not found")
        file = FILES.build(row[: len(FILES)])
        owner_active, granted = row[-2], row[-1]
        if file.owner_id == user_id:
            return Authorised(file, "owner"), actor
        if granted is None or not owner_active:
            raise NotFound("file not found")
        return Authorised(file, "grant"), actor

    async def link(self, access: ByLink) -> LinkAccess:
        """The link ``access`` holds, if it exists (``NotFound``), is live and its owner
        enabled (``Gone``) and is unlocked when it has a password
        (``AuthenticationFailed``); with its file for a link to one file. One database
        round trip."""
        now = utcnow()
        values: dict[str, object] = {"token_hash": token_hash(access.token)}
        if access.grant:
            values |= {"grant_hash": token_hash(access.grant), "now": now}
        rows = await self.db.rows(BY_LINK_WITH_GRANT if access.grant else BY_LINK, values)
        if not rows:
            raise NotFound("link not found")
        row = tuple(rows[0])
        share = SHARES.build(row[: len(SHARES)])
        file_columns = row[len(SHARES) : len(SHARES) + len(FILES)]
        owner_active, unlocked = row[-2], row[-1]
        check_live(share, now)
        check_owner(bool(owner_active))
        check_password(share, unlocked is not None)
        if share.file_id is not None and file_columns[0] is None:
            raise NotFound("link not found")  # its file went in the meantime
        file = FILES.build(file_columns) if share.file_id is not None else None
        return LinkAccess(share, file, access.actor)

    async def _by_link(self, access: ByLink, file_id: FileId | None = None) -> Authorised:
        return await self.within(await self.link(access), file_id)

    async def within(self, link: LinkAccess, file_id: FileId | None = None) -> Authorised:
        """A file of an authorised link: its one file, or the file ``file_id`` if the link
        holds it now (``NotFound`` otherwise: a link to several files needs the id)."""
        if link.file is not None and (file_id is None or file_id == link.file.id):
            return Authorised(link.file, "link", link.share)
        if file_id is None:
            raise NotFound("this link holds several files: download one by its id, or all of them as an archive")
        row = await self.collections.contains(link.share, file_id)
        if row is None:
            raise NotFound("file not found")
        return Authorised(row, "link", link.share)

    async def open_link(self, link: LinkAccess, file_id: FileId | None = None) -> Opened:
        authorised = await self.within(link, file_id)
        return Opened(await self.files.open(authorised.row), self, authorised, link.actor)

    async def archive(self, link: LinkAccess) -> Archive:
        """Everything a link holds as one ZIP. ``begin`` charges it: the link must be
        live and, with a download limit, every file must have its whole size left (the
        archive takes it for each, and gives back what it did not send)."""
        if link.file is not None:
            # A link to one file has one allowance, taken by its downloads (``Opened``):
            # an archive of it would be a second.
            raise NotFound("this link is to one file: download it at the link's /download")
        collection = await self.collections.of_share(link.share)
        return Archive(collection, self, link.share, link.actor)

    async def own_archive(self, owner: UserId, items: Sequence[tuple[Kind, uuid.UUID]], actor: Actor) -> Archive:
        """An account's own files and folders as one ZIP (nothing to charge)."""
        if len(items) == 1 and items[0][0] == "folder":
            collection = await self.collections.folder(owner, items[0][1])
        else:
            collection = await self.collections.gather(owner, items, strict=True)
        return Archive(collection, self, None, actor, owner)

    async def describe(self, access: Access, file_id: FileId | None = None) -> tuple[FileRead, Authorised]:
        authorised = await self.authorise(access, file_id)
        return self.files.describe(authorised.row), authorised

    async def open(self, access: Access, file_id: FileId | None = None) -> Opened:
        if isinstance(access, ByLink):
            return await self.open_link(await self.link(access), file_id)
        authorised, actor = await self._resolve(access, file_id)
        download = await self.files.open(authorised.row)
        return Opened(download, self, authorised, actor)

    def refund_files(
        self, share_id: uuid.UUID, unsent: dict[uuid.UUID, int], last: tuple[uuid.UUID, int] | None = None
    ) -> None:
        """Give back to each file of a link to several files what was not delivered of it,
        and, for ``last`` (the file whose bytes were sent last when a response was cut
        short, and how many of them were sent), as many of those as the link's grace
        still allows: they may have been lost in flight (see ``charge_files``)."""
        amounts = {fid: n for fid, n in unsent.items() if n > 0}

        def step(tx: Tx) -> None:
            if last is not None and last[1] > 0:
                found = tx.conn.execute(GRACE, {"share_id": share_id}).first()
                grace = min(last[1], int(found[0])) if found is not None else 0
                if grace > 0:
                    tx.conn.execute(USE_GRACE, {"b_id": share_id, "grace": grace})
                    amounts[last[0]] = amounts.get(last[0], 0) + grace
            if amounts:
                values = [{"b_share": share_id, "b_file": fid, "amount": n} for fid, n in amounts.items()]
                tx.conn.execute(UNDELIVER, values)

        if not amounts and (last is None or last[1] <= 0):
            return
        self._in_background(self.db.transact(step))

    def refund(self, share_id: uuid.UUID, unsent: int, sent: int) -> None:
        self._in_background(self._refund(share_id, unsent, sent))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a refund as its own task (it is started while a response is cancelled),
        kept until done so that ``drain`` can wait for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)

    async def _refund(self, share_id: uuid.UUID, unsent: int, sent: int) -> None:
        async with self.db.write() as session:
            await SharingRepository(session).refund(share_id, unsent, sent)

    async def drain(self) -> None:
        """Wait for pending refunds (at shutdown)."""
        if self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)
