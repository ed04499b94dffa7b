"""Sharing rules: download links, unlocking a link's password, grants to accounts and
upload-request links. Reading goes through ``Gate``; this module creates and manages."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox import names
from sealbox.accounts.repository import LoginFailureRepository
from sealbox.accounts.service import reserve_attempt
from sealbox.audit.service import Actor, Audit, Event
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import FieldCipher
from sealbox.crypto.passwords import MAX_PASSWORD, hash_password_async, rehash_async, verify_password_async
from sealbox.crypto.tokens import new_link_token, token_hash
from sealbox.db.base import utcnow
from sealbox.db.session import Database, Tx
from sealbox.errors import (
    AuthenticationFailed,
    Conflict,
    Gone,
    IntegrityFailure,
    InvalidInput,
    NotFound,
    TooLarge,
)
from sealbox.files.folders import FolderService, folder_ref, parse_folder_id
from sealbox.files.schemas import FileRead
from sealbox.files.service import FileService, Held, Limit, parse_file_id
from sealbox.files.tree import Place
from sealbox.ids import FileId, UserId
from sealbox.models import File, Grant, Share, ShareItem, Unlock, UploadRequest
from sealbox.sharing.collections import Kind, parse_items
from sealbox.sharing.gate import Authorised, Gate, check_live, check_open, check_unlocked, downloads_left
from sealbox.sharing.repository import ADMIT, LOCKED_REQUEST, PENDING, REQUESTS, SharingRepository
from sealbox.sharing.schemas import (
    GrantRead,
    LinkCreate,
    LinkStatus,
    PublicCollection,
    PublicEntry,
    PublicRequest,
    PublicShare,
    Receipt,
    ReceivedFile,
    RequestCreate,
    RequestCreated,
    RequestRead,
    ShareCreate,
    ShareCreated,
    SharedFile,
    ShareRead,
    UnlockIssued,
)

MIN_LINK_PASSWORD = 8
RESUME_GRACE = 16 << 20  # the most a link gives back for bytes lost in flight


@dataclass(frozen=True)
class LinkPolicy:
    """The administrator's rules for links (settings ``SEALBOX_LINK_*``)."""

    default_lifetime: timedelta = timedelta(days=7)
    max_lifetime: timedelta = timedelta(days=90)
    password_required: bool = False
    max_downloads: int | None = None
    # Failed password attempts per link within ``window``; five times as many per address.
    max_failures: int = 10
    window: timedelta = timedelta(minutes=15)
    unlock_lifetime: timedelta = timedelta(hours=1)


def _status(link: Share | UploadRequest, now: datetime) -> LinkStatus:
    try:
        check_live(link, now)
    except Gone:
        if link.revoked_at is not None:
            return "revoked"
        return "expired" if link.expires_at <= now else "exhausted"
    return "active"


def _request_read(row: UploadRequest, now: datetime) -> RequestRead:
    return RequestRead(
        id=str(row.id),
        status=_status(row, now),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        password=row.password_hash is not None,
        max_files=row.max_files,
        max_bytes=row.max_bytes,
        files_received=row.files_received,
        bytes_received=row.bytes_received,
        folder_id=str(row.folder_id) if row.folder_id else None,
    )


@dataclass(frozen=True)
class RequestAdmission:
    """The limits of an upload-request link, checked again as the file is recorded.

    A link's unfinished resumable uploads hold room in it from the moment they are
    created (see ``reserve``): each holds one of its files and its declared length in
    bytes, until it completes, is cancelled or expires.
    """

    request_id: uuid.UUID
    limit: Limit | None

    @property
    def target(self) -> str:
        return str(self.request_id)

    @property
    def by_link(self) -> bool:
        return True

    @property
    def completes(self) -> Held | None:
        return None

    async def _locked(self, session: AsyncSession) -> UploadRequest:
        # Locks the link's row until the transaction ends (PostgreSQL; SQLite's write
        # lock already serialises every writer), so two uploads cannot both take its
        # last file or bytes, and reads it afresh after the wait.
        current = await session.get(UploadRequest, self.request_id, with_for_update=True, populate_existing=True)
        if current is None:
            raise Gone("this link has been revoked")
        check_live(current, utcnow())
        return current

    def admit(self, tx: Tx, row: File) -> None:
        # The link's row locked (as ``_locked``), then counted in one guarded statement.
        now = utcnow()
        values = {"request_id": self.request_id, "now": now}
        found = tx.conn.execute(LOCKED_REQUEST, values).first()
        if found is None:
            raise Gone("this link has been revoked")
        current = REQUESTS.build(found)
        check_live(current, now)
        files, held = tx.conn.execute(PENDING, values).one()
        _refuse_if_full(current, int(files), int(held), row.size, "file")
        counted = {**values, "size": row.size, "pending": int(files), "held": int(held)}
        if tx.conn.execute(ADMIT, counted).rowcount != 1:
            raise Conflict("another upload has changed this link; try again")
        row.upload_request_id = self.request_id

    async def reserve(self, session: AsyncSession, size: int) -> None:
        """In the write transaction that records an unfinished upload of ``size`` bytes
        through this link: refuse it if the link's files or bytes, less those its other
        unfinished uploads hold, cannot take it."""
        current = await self._locked(session)
        files, held = await SharingRepository(session).pending(self.request_id, utcnow())
        _refuse_if_full(current, files, held, size, "upload")


def _refuse_if_full(link: UploadRequest, pending: int, held: int, size: int, what: str) -> None:
    """``Conflict`` if ``pending`` unfinished uploads hold every file the link has left,
    ``TooLarge`` (naming the limit) if ``size`` more bytes do not fit beside ``held``."""
    files_left = link.max_files - link.files_received
    if pending >= files_left:
        raise Conflict(
            f"this link accepts {files_left} more file(s) and {pending} unfinished upload(s) hold them: "
            "finish or cancel one first"
        )
    left = link.max_bytes - link.bytes_received - held
    if size > left:
        raise TooLarge(
            f"the {what} is larger than what this link still accepts: {max(left, 0)} of its {link.max_bytes} bytes"
            + (f" ({held} held by unfinished uploads)" if held else "")
        )


def admission_for(row: UploadRequest) -> RequestAdmission:
    """The rules an upload through the upload-request link ``row`` must pass."""
    left = row.max_bytes - row.bytes_received
    return RequestAdmission(row.id, Limit(left, f"the file is larger than what this link still accepts: {left} bytes"))


class SharingService:
    def __init__(
        self, db: Database, files: FileService, gate: Gate, audit: Audit, policy: LinkPolicy, folders: FolderService
    ) -> None:
        self.db = db
        self.files = files
        self.gate = gate
        self.audit = audit
        self.policy = policy
        self.folders = folders

    # Rules common to both kinds of link

    def _expiry(self, seconds: int | None, now: datetime) -> datetime:
        policy = self.policy
        if seconds is None:
            return now + min(policy.default_lifetime, policy.max_lifetime)
        if seconds > policy.max_lifetime.total_seconds():
            limit = int(policy.max_lifetime.total_seconds())
            raise InvalidInput(f"a link may last at most {limit} seconds (the maximum link lifetime)")
        return now + timedelta(seconds=seconds)

    async def _password(self, password: str | None) -> str | None:
        if password is None:
            if self.policy.password_required:
                raise InvalidInput("links must have a password (the password policy)")
            return None
        if not MIN_LINK_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidInput(f"a link password must be {MIN_LINK_PASSWORD} to {MAX_PASSWORD} characters long")
        return await hash_password_async(password)

    # Download links

    def _share_read(self, share: Share, row: File, now: datetime) -> ShareRead:
        # A link's note is sealed with its file's key, bound to the link's id.
        dek = self.files.dek(row)
        note = None
        if share.note_enc is not None:
            try:
                note = FieldCipher(dek, share.id.bytes).decrypt("note", share.note_enc)
            except IntegrityError as exc:
                raise IntegrityFailure("stored link metadata failed authentication") from exc
        return self._read(share, now, "file", self.files.describe(row, dek).name, note, downloads_left(share, row.size))

    def _read(
        self, share: Share, now: datetime, kind: str, name: str, note: str | None, left: int | None, items: int = 1
    ) -> ShareRead:
        return ShareRead(
            id=str(share.id),
            kind="file" if kind == "file" else "folder" if kind == "folder" else "selection",
            file_id=str(share.file_id) if share.file_id else None,
            folder_id=str(share.folder_id) if share.folder_id else None,
            items=items,
            file_name=name,
            status=_status(share, now),
            created_at=share.created_at,
            expires_at=share.expires_at,
            revoked_at=share.revoked_at,
            password=share.password_hash is not None,
            download_limit=share.download_limit,
            downloads=share.downloads,
            downloads_left=left,
            note=note,
        )

    async def _collection_note(self, share: Share) -> str | None:
        """The note of a link to several files: sealed under the owner's name key, bound
        to the link's id."""
        if share.note_enc is None:
            return None
        cipher = await self.folders.cipher(UserId(share.owner_id))
        if cipher is None:
            raise IntegrityFailure("stored link metadata failed authentication")
        try:
            return cipher.decrypt(share.id.bytes, "note", share.note_enc)
        except IntegrityError as exc:
            raise IntegrityFailure("stored link metadata failed authentication") from exc

    async def _read_share(self, share: Share, now: datetime) -> ShareRead | None:
        """How a link reads to its owner; ``None`` if what it pointed at is gone."""
        owner = UserId(share.owner_id)
        if share.file_id is not None:
            row = await self.files.record(FileId(share.file_id))
            return self._share_read(share, row, now) if row is not None else None
        note = await self._collection_note(share)
        if share.folder_id is not None:
            try:
                folder = await self.folders.get(owner, share.folder_id)
            except NotFound:
                return None
            return self._read(share, now, "folder", folder.name, note, None)
        items = len(await self.gate.collections.items_of(share))
        return self._read(share, now, "selection", f"{items} items", note, None, items)

    async def _owned(self, owner: UserId, file_id: FileId) -> File:
        row = await self.files.record(file_id)
        if row is None or row.owner_id != owner:
            raise NotFound("file not found")
        return row

    async def _terms(self, request: ShareCreate, now: datetime) -> tuple[int | None, datetime, str | None]:
        """A new link's download limit (the policy's cap applied), expiry and password hash."""
        limit = request.download_limit
        cap = self.policy.max_downloads
        if cap is not None:
            if limit is not None and limit > cap:
                raise InvalidInput(f"the download limit may be at most {cap} (the download-limit cap)")
            limit = limit or cap
        expires_at = self._expiry(request.expires_in_seconds, now)
        return limit, expires_at, await self._password(request.password)

    async def create_share(self, owner: UserId, file_id: FileId, request: ShareCreate, actor: Actor) -> ShareCreated:
        note = names.note(request.note)
        row = await self._owned(owner, file_id)
        now = utcnow()
        limit, expires_at, password_hash = await self._terms(request, now)
        token = new_link_token()
        share = Share(
            id=uuid.uuid4(),
            file_id=row.id,
            owner_id=owner,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires_at,
            password_hash=password_hash,
            download_limit=limit,
            bytes_left=limit * max(row.size, 1) if limit is not None else None,
            grace_left=min(row.size // 2, RESUME_GRACE) if limit is not None else 0,
            downloads=0,
        )
        if note is not None:
            share.note_enc = FieldCipher(self.files.dek(row), share.id.bytes).encrypt("note", note)
        async with self.db.write() as session:
            session.add(share)
        detail = {"password": password_hash is not None, "limit": limit, "expires_at": expires_at.isoformat()}
        await self.audit.record(Event("share.create", actor, owner, row.id, str(share.id), detail))
        read = await self._read_share(share, now)
        assert read is not None
        return ShareCreated(**read.model_dump(), token=token, url=f"/s/{token}")

    async def create_link(self, owner: UserId, request: LinkCreate, actor: Actor) -> ShareCreated:
        """A link to one file, a folder or a selection (exactly one of them)."""
        given = [request.file_id is not None, request.folder_id is not None, request.items is not None]
        if sum(given) != 1:
            raise InvalidInput("give exactly one of file_id, folder_id or items")
        if request.file_id is not None:
            return await self.create_share(owner, parse_file_id(request.file_id), request, actor)
        note = names.note(request.note)
        folder_id: uuid.UUID | None = None
        items: list[tuple[Kind, uuid.UUID]] = []
        if request.folder_id is not None:
            folder_id = parse_folder_id(request.folder_id)
            await self.folders.get(owner, folder_id)
        else:
            assert request.items is not None
            items = parse_items([(item.kind, item.id) for item in request.items])
            await self.gate.collections.gather(owner, items, strict=True)
        now = utcnow()
        limit, expires_at, password_hash = await self._terms(request, now)
        token = new_link_token()
        share = Share(
            id=uuid.uuid4(),
            file_id=None,
            folder_id=folder_id,
            owner_id=owner,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires_at,
            password_hash=password_hash,
            download_limit=limit,
            bytes_left=None,
            # Shared by its files, never replenished: see ``Gate.refund_files``.
            grace_left=RESUME_GRACE if limit is not None else 0,
            downloads=0,
        )
        if note is not None:
            cipher = await self.folders.ensure_cipher(owner)
            share.note_enc = cipher.encrypt(share.id.bytes, "note", note)
        async with self.db.write() as session:
            session.add(share)
            await session.flush()
            for kind, item_id in items:
                session.add(
                    ShareItem(
                        share_id=share.id,
                        file_id=item_id if kind == "file" else None,
                        folder_id=item_id if kind == "folder" else None,
                    )
                )
        detail = {
            "kind": "folder" if folder_id is not None else "selection",
            "items": len(items) or 1,
            "password": password_hash is not None,
            "limit": limit,
            "expires_at": expires_at.isoformat(),
        }
        await self.audit.record(Event("share.create", actor, owner, None, str(share.id), detail))
        read = await self._read_share(share, now)
        assert read is not None
        return ShareCreated(**read.model_dump(), token=token, url=f"/s/{token}")

    async def shares(self, owner: UserId, file_id: FileId | None) -> list[ShareRead]:
        async with self.db.read() as session:
            shares = await SharingRepository(session).shares(owner, file_id)
        now = utcnow()
        result = []
        for share in shares:
            read = await self._read_share(share, now)
            if read is not None:
                result.append(read)
        return result

    async def revoke_share(self, owner: UserId, share_id: uuid.UUID, actor: Actor) -> None:
        async with self.db.write() as session:
            share = await session.get(Share, share_id)
            if share is None or share.owner_id != owner:
                raise NotFound("link not found")
            if share.revoked_at is None:
                share.revoked_at = utcnow()
        await self.audit.record(Event("share.revoke", actor, owner, share.file_id, str(share_id)))

    async def public_share(self, authorised: Authorised, info: FileRead, token: str) -> PublicShare:
        share = authorised.share
        assert share is not None
        read = self._share_read(share, authorised.row, utcnow())
        return PublicShare(
            name=info.name,
            size=info.size,
            content_type=info.content_type,
            expires_at=share.expires_at,
            downloads_left=read.downloads_left,
            note=read.note,
            download_url=f"/s/{token}/download",
        )

    async def public_collection(self, share: Share, token: str) -> PublicCollection:
        """What a link to several files shows: its folders and files (paths, sizes, how
        many downloads each has left), and where to get each and all of them."""
        collection = await self.gate.collections.of_share(share)
        delivered: dict[uuid.UUID, int] = {}
        if share.download_limit is not None:
            async with self.db.read() as session:
                delivered = await SharingRepository(session).delivered(share.id)
        limit = share.download_limit
        entries = [
            PublicEntry(path=path, kind="folder", size=None, download_url=None, downloads_left=None)
            for path in collection.dirs
        ]
        for item in collection.files:
            size = item.row.size
            left = None
            if limit is not None:
                left = max(limit * max(size, 1) - delivered.get(item.row.id, 0), 0) // max(size, 1)
            entries.append(
                PublicEntry(
                    path=item.path,
                    kind="file",
                    size=size,
                    download_url=f"/s/{token}/files/{item.row.id}",
                    downloads_left=left,
                )
            )
        entries.sort(key=lambda entry: entry.path)
        return PublicCollection(
            kind="folder" if collection.kind == "folder" else "selection",
            name=collection.name,
            expires_at=share.expires_at,
            note=await self._collection_note(share),
            files=len(collection.files),
            size=collection.size,
            entries=entries,
            archive_url=f"/s/{token}/archive",
        )

    # Passwords

    async def unlock(self, token: str, password: str, actor: Actor) -> UnlockIssued:
        """Exchange a link's password for a grant bound to that one link.

        Failures are counted in the database per link and per client address; past
        the policy's limit every attempt, right or wrong, gets ``RateLimited`` until
        the window has passed. An attempt is counted before the password is checked,
        so parallel guesses cannot overshoot the limit; a right one is not kept.
        """
        policy = self.policy
        now = utcnow()
        hashed = token_hash(token)
        async with self.db.read() as session:
            repo = SharingRepository(session)
            link: Share | UploadRequest | None = await repo.share_by_token(hashed) or await repo.request_by_token(
                hashed
            )
            if link is None:
                raise NotFound("link not found")
            await check_open(repo, link, now)
        if link.password_hash is None:
            raise InvalidInput("this link has no password")
        others = [f"linkaddr:{actor.client[:150]}"] if actor.client else []
        attempt = await reserve_attempt(
            self.db, f"link:{link.id}", others, policy.max_failures, policy.window, "wrong passwords"
        )
        file_id = link.file_id if isinstance(link, Share) else None
        if not await verify_password_async(link.password_hash, password):
            await self.audit.record(Event("link.password_failed", actor, link.owner_id, file_id, str(link.id)))
            raise AuthenticationFailed("wrong password")
        grant = secrets.token_urlsafe(32)
        expires_at = min(now + policy.unlock_lifetime, link.expires_at)
        fresh = await rehash_async(link.password_hash, password)
        async with self.db.write() as session:
            if fresh is not None:
                await SharingRepository(session).replace_password_hash(link, link.password_hash, fresh)
            await LoginFailureRepository(session).forget(attempt)
            await SharingRepository(session).add_unlock(
                Unlock(token_hash=token_hash(grant), link_id=link.id, expires_at=expires_at), now
            )
        await self.audit.record(Event("link.unlock", actor, link.owner_id, file_id, str(link.id)))
        return UnlockIssued(grant=grant, expires_at=expires_at)

    # Grants

    async def grant(self, owner: UserId, file_id: FileId, username: str, actor: Actor) -> GrantRead:
        row = await self._owned(owner, file_id)
        try:
            async with self.db.write() as session:
                repo = SharingRepository(session)
                grantee = await repo.user_named(username)
                if grantee is None or not grantee.is_active:
                    raise NotFound(f"no active user named {username!r}")
                if grantee.id == owner:
                    raise InvalidInput("you own this file already")
                if await repo.grant_for(file_id, UserId(grantee.id)) is not None:
                    raise Conflict(f"{username!r} has this file already")
                grant = Grant(
                    id=uuid.uuid4(), file_id=row.id, owner_id=owner, grantee_id=grantee.id, created_at=utcnow()
                )
                session.add(grant)
        except DBIntegrityError:
            raise Conflict(f"{username!r} has this file already") from None
        await self.audit.record(Event("grant.give", actor, owner, row.id, str(grant.id), {"grantee": username}))
        return GrantRead(id=str(grant.id), file_id=str(row.id), grantee=username, created_at=grant.created_at)

    async def grants(self, owner: UserId, file_id: FileId) -> list[GrantRead]:
        await self._owned(owner, file_id)
        async with self.db.read() as session:
            found = await SharingRepository(session).grants(file_id)
        return [
            GrantRead(id=str(g.id), file_id=str(g.file_id), grantee=name, created_at=g.created_at) for g, name in found
        ]

    async def revoke_grant(self, owner: UserId, file_id: FileId, grant_id: uuid.UUID, actor: Actor) -> None:
        async with self.db.write() as session:
            grant = await session.get(Grant, grant_id)
            if grant is None or grant.owner_id != owner or grant.file_id != file_id:
                raise NotFound("grant not found")
            await session.delete(grant)
        await self.audit.record(Event("grant.revoke", actor, owner, file_id, str(grant_id)))

    async def shared_with_me(self, grantee: UserId) -> list[SharedFile]:
        async with self.db.read() as session:
            found = await SharingRepository(session).shared_with(grantee)
        return [
            SharedFile(**self.files.describe(row).model_dump(), owner=owner, grant_id=str(grant_id))
            for row, owner, grant_id in found
        ]

    # Upload-request links

    async def create_request(self, owner: UserId, request: RequestCreate, actor: Actor) -> RequestCreated:
        now = utcnow()
        max_size = self.files.max_upload_size
        max_bytes = request.max_bytes or max_size
        expires_at = self._expiry(request.expires_in_seconds, now)
        password_hash = await self._password(request.password)
        folder = folder_ref(request.folder_id)
        if folder is not None:
            await self.files.check_folder(owner, folder)
        token = new_link_token()
        row = UploadRequest(
            id=uuid.uuid4(),
            owner_id=owner,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires_at,
            password_hash=password_hash,
            max_files=request.max_files,
            max_bytes=max_bytes,
            files_received=0,
            bytes_received=0,
            folder_id=folder,
        )
        async with self.db.write() as session:
            session.add(row)
        detail = {"max_files": row.max_files, "max_bytes": max_bytes, "password": password_hash is not None}
        await self.audit.record(Event("request.create", actor, owner, None, str(row.id), detail))
        return RequestCreated(**_request_read(row, now).model_dump(), token=token, url=f"/r/{token}")

    async def requests(self, owner: UserId) -> list[RequestRead]:
        async with self.db.read() as session:
            rows = await SharingRepository(session).requests(owner)
        now = utcnow()
        return [_request_read(row, now) for row in rows]

    async def _own_request(self, session: AsyncSession, owner: UserId, request_id: uuid.UUID) -> UploadRequest:
        row = await session.get(UploadRequest, request_id)
        if row is None or row.owner_id != owner:
            raise NotFound("upload request not found")
        return row

    async def revoke_request(self, owner: UserId, request_id: uuid.UUID, actor: Actor) -> None:
        async with self.db.write() as session:
            row = await self._own_request(session, owner, request_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
        await self.audit.record(Event("request.revoke", actor, owner, None, str(request_id)))

    async def received(self, owner: UserId, request_id: uuid.UUID) -> list[ReceivedFile]:
        """Who uploaded what, when, through one of the owner's upload-request links."""
        async with self.db.read() as session:
            await self._own_request(session, owner, request_id)
            rows = await SharingRepository(session).received(request_id)
        return [self._received(row) for row in rows]

    def _received(self, row: File) -> ReceivedFile:
        dek = self.files.dek(row)
        return ReceivedFile(**self.files.describe(row, dek).model_dump(), uploader=self.files.uploader(row, dek))

    async def live_request(self, token: str, grant: str | None) -> UploadRequest:
        now = utcnow()
        async with self.db.read() as session:
            repo = SharingRepository(session)
            row = await repo.request_by_token(token_hash(token))
            if row is None:
                raise NotFound("link not found")
            await check_open(repo, row, now)
            await check_unlocked(repo, row, grant, now)
        return row

    async def public_request(self, token: str, grant: str | None) -> PublicRequest:
        """What the link still accepts: its files and bytes, less what unfinished uploads
        through it hold (so the numbers are what an upload started now may take)."""
        row = await self.live_request(token, grant)
        async with self.db.read() as session:
            pending, held = await SharingRepository(session).pending(row.id, utcnow())
        return PublicRequest(
            expires_at=row.expires_at,
            files_left=max(row.max_files - row.files_received - pending, 0),
            bytes_left=max(row.max_bytes - row.bytes_received - held, 0),
            upload_url=f"/r/{token}/files",
        )

    async def upload_via_request(
        self,
        token: str,
        grant: str | None,
        name: str,
        content_type: str | None,
        source: AsyncIterable[bytes],
        uploader: str | None,
        actor: Actor,
        path: tuple[str, ...] = (),
    ) -> Receipt:
        """Store a file sent through an upload-request link, in the link's folder (and
        the relative ``path`` of folders below it, made as needed: a dropped folder
        keeps its tree)."""
        row = await self.live_request(token, grant)
        uploader = names.uploader_name(uploader)
        admission = admission_for(row)
        where = Place(row.folder_id, path, via=row.id)
        created = await self.files.upload(
            UserId(row.owner_id), name, content_type, source, actor, admission=admission, uploader=uploader, where=where
        )
        # The name as sent, not as stored: a number added because the owner's folder
        # holds that name already would tell a stranger what the folder holds.
        return Receipt(name=names.file_name(name), size=created.size, received_at=created.created_at)
