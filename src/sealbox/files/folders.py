"""Folders: make, rename, move and delete them; rename and move files; list a folder.

Every change is one unit of work with its audit event (``Audit.record(work=...)``),
under the owner's lock (see ``files.tree``): a rename, a move or a recursive delete is
atomic, and concurrent ones of one account are serialised. Events carry ids and counts,
never names.

A listing decrypts the names of everything in the folder (one AES-GCM call each, under
the account's name key) to sort and filter by name: its cost grows with the folder, not
with the page (docs/design.md, "Folders and encrypted names").
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import json
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Integer, String, bindparam, delete, func, literal, or_, select, type_coerce, update

from sealbox import names
from sealbox.audit.service import Actor, Event
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import FieldCipher, NameCipher
from sealbox.db.session import Tx
from sealbox.errors import Conflict, IntegrityFailure, InvalidInput, NotFound, TooLarge
from sealbox.files.repository import FILES, LOCK_OWNER
from sealbox.files.schemas import FileRead
from sealbox.files.service import FileService, blob_key, etag_of
from sealbox.files.tree import (
    FOLDER_BY_TAG,
    MAX_DEPTH,
    NAME_KEY,
    ancestors,
    claim,
    decrypt_name,
    folder_in,
    make_folder,
    split_path,
)
from sealbox.ids import FileId, UserId
from sealbox.models import File, FileSegment, Folder, Upload, UploadPart, UploadRequest
from sealbox.storage.base import StorageUnavailable

MAX_PAGE = 1000
MAX_QUERY = 255
Sort = Literal["name", "size", "created"]
Order = Literal["asc", "desc"]


class FolderRead(BaseModel):
    id: str
    name: str
    parent_id: str | None  # null: at the top
    created_at: datetime


class Crumb(BaseModel):
    id: str
    name: str


class Entry(BaseModel):
    """One item of a folder: a folder or a file (a file's content type is not listed:
    it needs the file's own key; ``GET /api/v1/files/{id}`` gives it)."""

    kind: Literal["folder", "file"]
    id: str
    name: str
    size: int | None  # null for a folder
    created_at: datetime
    etag: str | None = None


class FolderPage(BaseModel):
    folder: FolderRead | None  # null: the top of your files
    path: list[Crumb]  # from the top down to this folder (the top itself not included)
    items: list[Entry]  # folders first, then files, each in the order asked
    total: int  # items in the folder that match the filter
    next_cursor: str | None


@dataclass(frozen=True)
class Deleted:
    folders: int
    files: int
    bytes: int


@dataclass(frozen=True)
class Member:
    """A file below a folder, with its path relative to that folder."""

    path: str
    row: File


_UNSET: Any = object()


def _folders_in(parent: bool) -> Any:
    columns = select(Folder.id, Folder.name_enc, Folder.created_at).where(Folder.owner_id == bindparam("owner"))
    if parent:
        return columns.where(Folder.parent_id == bindparam("folder"))
    return columns.where(Folder.parent_id.is_(None))


def _files_in(parent: bool) -> Any:
    # The id and the date as the driver gives them (SQLite: text; PostgreSQL: uuid and
    # timestamptz objects), converted only where used (``_hex``, ``_when``): SQLAlchemy's
    # conversion of every row was most of the cost of listing a large folder.
    columns = select(
        type_coerce(File.id, String),
        File.size,
        type_coerce(File.created_at, String),
        File.header_tag,
        File.listed_name_enc,
    ).where(File.owner_id == bindparam("owner"))
    if parent:
        return columns.where(File.folder_id == bindparam("folder"))
    return columns.where(File.folder_id.is_(None))


# Built once each: listings are frequent. (Separate statements for the top, where the
# column is null, so that each uses its index on every backend.)
FOLDERS_IN = {True: _folders_in(True), False: _folders_in(False)}
FILES_IN = {True: _files_in(True), False: _files_in(False)}
FOLDER_ROW = select(Folder.parent_id, Folder.name_enc, Folder.created_at).where(
    Folder.id == bindparam("id"), Folder.owner_id == bindparam("owner")
)
FILE_ROWS = select(*FILES.columns).where(File.id.in_(bindparam("ids", expanding=True)))
FILE_ROW = select(*FILES.columns).where(File.id == bindparam("id"), File.owner_id == bindparam("owner"))


def _subtree() -> Any:
    """The folder bound as ``root`` and every folder below it, with its depth below it."""
    top = select(Folder.id, literal(0, Integer).label("depth")).where(
        Folder.id == bindparam("root"), Folder.owner_id == bindparam("owner")
    )
    tree = top.cte("subtree", recursive=True)
    below = select(Folder.id, (tree.c.depth + 1).label("depth")).join(tree, Folder.parent_id == tree.c.id)
    return tree.union_all(below)


SUBTREE = _subtree()
SUBTREE_IDS = select(SUBTREE.c.id)
SUBTREE_HEIGHT = select(SUBTREE.c.depth).order_by(SUBTREE.c.depth.desc()).limit(1)
SUBTREE_FOLDERS = select(Folder.id, Folder.parent_id, Folder.name_enc).where(Folder.id.in_(SUBTREE_IDS))
SUBTREE_FILES = select(*FILES.columns).where(File.folder_id.in_(SUBTREE_IDS), File.owner_id == bindparam("owner"))
SUBTREE_SEGMENTS = select(FileSegment.key).where(
    FileSegment.file_id.in_(select(File.id).where(File.folder_id.in_(SUBTREE_IDS)))
)
SUBTREE_COUNTS = select(
    select(func.count()).select_from(File).where(File.folder_id.in_(SUBTREE_IDS)).scalar_subquery(),
    select(func.count()).select_from(SUBTREE_IDS.subquery()).scalar_subquery(),
)
SUBTREE_USAGE = select(File.id, File.size).where(File.folder_id.in_(SUBTREE_IDS))
# Unfinished resumable uploads going into the subtree: the owner's own (by their folder)
# and those through upload links to a folder of it (the links go with their folder).
SUBTREE_UPLOADS = select(Upload.id).where(
    Upload.owner_id == bindparam("owner"),
    Upload.completed_at.is_(None),
    or_(
        Upload.folder_id.in_(SUBTREE_IDS),
        Upload.request_id.in_(select(UploadRequest.id).where(UploadRequest.folder_id.in_(SUBTREE_IDS))),
    ),
)
SUBTREE_UPLOAD_PARTS = select(UploadPart.key).where(UploadPart.upload_id.in_(SUBTREE_UPLOADS))


# One item of a folder as a listing holds it until it is on the page: (rank: 0 for a
# folder, 1 for a file; name; size, None for a folder; created_at; id; header tag, None
# for a folder). Only the page's items become ``Entry`` models: building one for every
# item of a large folder cost more than decrypting its name.
# The id is its 32 hex digits, the date as the database gave it (see ``_files_in``).
Item = tuple[int, str, int | None, Any, str, bytes | None]


def _hex(value: Any) -> str:
    """An id as the driver gave it (32 hex digits on SQLite, a UUID on PostgreSQL) as hex."""
    return value if isinstance(value, str) else str(value.hex)


def _when(value: Any) -> datetime:
    """A date as the driver gave it (text on SQLite, stored in UTC; an aware datetime on
    PostgreSQL) as an aware UTC datetime, as ``UTCDateTime`` reads it."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _name(cipher: NameCipher, item_id: str, sealed: bytes) -> str:
    try:
        return cipher.decrypt(bytes.fromhex(item_id), "name", sealed)
    except (IntegrityError, ValueError) as exc:
        raise IntegrityFailure("stored names failed authentication") from exc


def _entry(item: Item) -> Entry:
    rank, name, size, created_at, item_id, tag = item
    return Entry(
        kind="folder" if rank == 0 else "file",
        id=str(uuid.UUID(hex=item_id)),
        name=name,
        size=size,
        created_at=_when(created_at),
        etag=etag_of(tag) if tag is not None else None,
    )


def _key(item: Item, sort: Sort) -> tuple[Any, ...]:
    rank, name, size, created_at, item_id, _ = item
    folded = name.casefold()
    if sort == "name":
        primary: Any = folded
    elif sort == "size":
        primary = size or 0
    else:
        primary = int(_when(created_at).timestamp() * 1_000_000)
    return (rank, primary, folded, name, item_id)


def _after(key: Sequence[Any], cursor: Sequence[Any], order: Order) -> bool:
    if key[0] != cursor[0]:
        return bool(key[0] > cursor[0])
    return tuple(key[1:]) > tuple(cursor[1:]) if order == "asc" else tuple(key[1:]) < tuple(cursor[1:])


def _first(keyed: list[tuple[tuple[Any, ...], Item]], n: int, order: Order) -> list[tuple[tuple[Any, ...], Item]]:
    """The first ``n`` of ``keyed`` in listing order (folders first, each group in
    ``order``), without sorting the rest: a page of a large folder is a small part of it."""
    pick = heapq.nlargest if order == "desc" else heapq.nsmallest
    chosen: list[tuple[tuple[Any, ...], Item]] = []
    for rank in (0, 1):
        if len(chosen) >= n:
            break
        group = [pair for pair in keyed if pair[0][0] == rank]
        chosen += pick(n - len(chosen), group, key=lambda pair: pair[0][1:])
    return chosen


def _encode(sort: Sort, order: Order, key: tuple[Any, ...]) -> str:
    return json.dumps([sort, order, *key[:-1], str(uuid.UUID(hex=key[-1]))], separators=(",", ":"))


def _well_formed(raw: Any) -> bool:
    """Whether ``raw`` has the shape ``_encode`` gives a cursor: an ordering, then a key
    whose values are of the kinds ``_key`` makes (compared with a listing's keys, a value
    of another kind would fail the comparison)."""
    if not isinstance(raw, list) or len(raw) != 7:
        return False
    sort, order, rank, primary, *rest = raw
    primary_kind = str if sort == "name" else int
    return (
        sort in ("name", "size", "created")
        and order in ("asc", "desc")
        and type(rank) is int
        and rank in (0, 1)
        and type(primary) is primary_kind
        and all(type(value) is str for value in rest)
    )


def _decode(cursor: str, sort: Sort, order: Order) -> list[Any]:
    try:
        raw = json.loads(cursor)
        if not isinstance(raw, list) or len(raw) != 7:
            raise ValueError
        rank, primary, folded, name, item_id = raw[2:]
        # Each part has the type of its place (a key compared with a cursor of other
        # types would not order): the rank and a size or a date are integers.
        primary_type = str if raw[0] == "name" else int
        if not (
            type(rank) is int and type(primary) is primary_type and isinstance(folded, str) and isinstance(name, str)
        ):
            raise ValueError
        raw[6] = uuid.UUID(item_id).hex
    except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: deeply nested JSON
        raise InvalidInput("the cursor is not valid") from None
    if not _well_formed(raw):
        raise InvalidInput("the cursor is not valid")
    if raw[:2] != [sort, order]:
        raise InvalidInput("the cursor belongs to a listing in another order; start again without it")
    return list(raw[2:])


def _seal(cipher: NameCipher, owner: UserId, cursor: str) -> str:
    """A cursor as it travels: it holds the last item's name (to sort by), so it is
    sealed under the account's name key, bound to the account (URLs reach logs)."""
    return base64.urlsafe_b64encode(cipher.encrypt(owner.bytes, "cursor", cursor)).decode().rstrip("=")


def _unseal(cipher: NameCipher | None, owner: UserId, sealed: str) -> str:
    try:
        if cipher is None:
            raise ValueError
        return cipher.decrypt(owner.bytes, "cursor", base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    except (ValueError, IntegrityError, UnicodeDecodeError):
        raise InvalidInput("the cursor is not valid") from None


def folder_ref(value: str | None) -> uuid.UUID | None:
    """A folder id from a client, or ``None`` for the top of the files (``null`` or
    ``"top"``); anything malformed is a folder that does not exist (``NotFound``)."""
    return None if value is None or value == "top" else parse_folder_id(value)


def parse_folder_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("folder not found") from None


class FolderService:
    def __init__(self, files: FileService) -> None:
        self.files = files
        self.db = files.db
        self.audit = files.audit
        self.names = files.names

    # -- reading ---------------------------------------------------------------------

    async def _cipher(self, owner: UserId) -> NameCipher | None:
        found = await self.db.rows(NAME_KEY, {"owner": owner})
        return self.names.of(owner, found[0] if found else None)

    async def _folder(self, owner: UserId, cipher: NameCipher | None, folder_id: uuid.UUID) -> FolderRead:
        found = await self.db.rows(FOLDER_ROW, {"id": folder_id, "owner": owner})
        if not found or cipher is None:
            raise NotFound("folder not found")
        parent, sealed, created_at = found[0]
        return FolderRead(
            id=str(folder_id),
            name=decrypt_name(cipher, folder_id, sealed),
            parent_id=str(parent) if parent else None,
            created_at=created_at,
        )

    async def get(self, owner: UserId, folder_id: uuid.UUID) -> FolderRead:
        return await self._folder(owner, await self._cipher(owner), folder_id)

    async def path(self, owner: UserId, folder_id: uuid.UUID | None) -> list[Crumb]:
        """The folders from the top down to ``folder_id`` (included)."""
        cipher = await self._cipher(owner)
        crumbs: list[Crumb] = []
        current = folder_id
        while current is not None and len(crumbs) <= MAX_DEPTH:
            folder = await self._folder(owner, cipher, current)
            crumbs.append(Crumb(id=folder.id, name=folder.name))
            current = uuid.UUID(folder.parent_id) if folder.parent_id else None
        return crumbs[::-1]

    async def entries(self, owner: UserId, folder_id: uuid.UUID | None) -> list[Entry]:
        """Everything directly in ``folder_id`` (``None``: the top), unsorted."""
        return [_entry(item) for item in await self._items(owner, folder_id)]

    async def _items(self, owner: UserId, folder_id: uuid.UUID | None) -> list[Item]:
        cipher = await self._cipher(owner)
        values = {"owner": owner, "folder": folder_id}
        inside = folder_id is not None
        folders = await self.db.rows(FOLDERS_IN[inside], values)
        files = await self.db.rows(FILES_IN[inside], values)
        if folders and cipher is None:
            raise NotFound("folder not found")
        items: list[Item] = []
        if cipher is not None:
            items += [(0, decrypt_name(cipher, fid, sealed), None, at, fid.hex, None) for fid, sealed, at in folders]
            for raw_id, size, at, tag, sealed in files:
                if sealed is not None:
                    file_id = _hex(raw_id)
                    items.append((1, _name(cipher, file_id, sealed), size, at, file_id, tag))
        # Stored by an older server and not filled in yet (``files.legacy``): named by
        # their own key, one unwrap each.
        unlisted = [uuid.UUID(hex=_hex(row[0])) for row in files if row[4] is None or cipher is None]
        if unlisted:
            for found in await self.db.rows(FILE_ROWS, {"ids": unlisted}):
                row = FILES.build(found)
                info = self.files.describe(row)
                items.append((1, info.name, info.size, info.created_at, row.id.hex, row.header_tag))
        return items

    async def page(
        self,
        owner: UserId,
        folder_id: uuid.UUID | None,
        *,
        sort: Sort = "name",
        order: Order = "asc",
        query: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> FolderPage:
        """One page of a folder (``None``: the top): folders first, then files, each
        sorted by ``sort`` in ``order`` (then by name), those whose name contains
        ``query`` (ignoring case) if given."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if query is not None and len(query) > MAX_QUERY:
            raise InvalidInput(f"the filter is at most {MAX_QUERY} characters")
        cipher = await self._cipher(owner)
        after = _decode(_unseal(cipher, owner, cursor), sort, order) if cursor else None
        folder = await self.get(owner, folder_id) if folder_id is not None else None
        items = await self._items(owner, folder_id)
        if query:
            # Stored names are NFC (``names.text``): so is the filter, however it was typed.
            needle = unicodedata.normalize("NFC", query).casefold()
            items = [item for item in items if needle in item[1].casefold()]
        keyed = [(_key(item, sort), item) for item in items]
        if after is not None:
            keyed = [pair for pair in keyed if _after(pair[0], after, order)]
        page = _first(keyed, limit, order)
        more = len(keyed) > limit
        return FolderPage(
            folder=folder,
            path=await self.path(owner, folder_id) if folder_id is not None else [],
            items=[_entry(item) for _, item in page],
            total=len(items),
            next_cursor=_seal(cipher or await self.ensure_cipher(owner), owner, _encode(sort, order, page[-1][0]))
            if more
            else None,
        )

    async def lookup(self, owner: UserId, path: str) -> Entry:
        """The file or folder at ``path`` ("a/b/c.txt", from the top)."""
        parts = split_path(path.strip("/"))
        cipher = await self._cipher(owner)
        if not parts or cipher is None:
            raise NotFound("nothing is at that path")
        parent: uuid.UUID | None = None
        for depth, name in enumerate(parts):
            tag = cipher.tag(parent.bytes if parent else None, name)
            found = await self.db.rows(FOLDER_BY_TAG, {"owner": owner, "tag": tag})
            if found:
                parent = found[0][0]
                continue
            if depth == len(parts) - 1:
                rows = await self.db.rows(
                    select(*FILES.columns).where(File.owner_id == owner, File.name_tag == tag), {}
                )
                if rows:
                    info = self.files.describe(FILES.build(rows[0]))
                    return Entry(
                        kind="file",
                        id=info.id,
                        name=info.name,
                        size=info.size,
                        created_at=info.created_at,
                        etag=info.etag,
                    )
            raise NotFound("nothing is at that path")
        assert parent is not None
        folder = await self._folder(owner, cipher, parent)
        return Entry(kind="folder", id=folder.id, name=folder.name, size=None, created_at=folder.created_at)

    async def members(
        self, owner: UserId, folder_id: uuid.UUID, most: int | None = None
    ) -> tuple[list[str], list[Member]]:
        """Every folder (as a relative path ending in "/") and every file below
        ``folder_id``, with paths relative to it, in path order. With ``most``, a tree
        of more files or folders than that is refused (``TooLarge``) before any of it
        is read."""
        cipher = await self._cipher(owner)
        if cipher is None:
            raise NotFound("folder not found")
        values = {"root": folder_id, "owner": owner}
        if most is not None:
            counted = await self.db.rows(SUBTREE_COUNTS, values)
            if max(int(counted[0][0]), int(counted[0][1])) > most:
                raise TooLarge(f"a link or an archive holds at most {most} files and {most} folders")
        folders = await self.db.rows(SUBTREE_FOLDERS, values)
        files = await self.db.rows(SUBTREE_FILES, values)
        parents = {fid: (parent, sealed) for fid, parent, sealed in folders}
        if folder_id not in parents:
            raise NotFound("folder not found")
        paths: dict[uuid.UUID, str] = {folder_id: ""}

        def path_of(fid: uuid.UUID) -> str:
            known = paths.get(fid)
            if known is not None:
                return known
            parent, sealed = parents[fid]
            assert parent is not None
            value = path_of(parent) + decrypt_name(cipher, fid, sealed) + "/"
            paths[fid] = value
            return value

        dirs = sorted(path_of(fid) for fid in parents if fid != folder_id)
        members = []
        for found in files:
            row = FILES.build(found)
            assert row.folder_id is not None
            members.append(Member(path_of(row.folder_id) + self.listed_name(cipher, row), row))
        members.sort(key=lambda member: member.path)
        return dirs, members

    def listed_name(self, cipher: NameCipher | None, row: File) -> str:
        """A file's name, from the listing copy when it has one."""
        if row.listed_name_enc is not None and cipher is not None:
            return decrypt_name(cipher, row.id, row.listed_name_enc)
        return self.files.describe(row).name

    async def cipher(self, owner: UserId) -> NameCipher | None:
        return await self._cipher(owner)

    async def ensure_cipher(self, owner: UserId) -> NameCipher:
        """The account's name key, made now if it has none yet."""
        found = await self._cipher(owner)
        if found is not None:
            return found

        def step(tx: Tx) -> NameCipher:
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            return self.names.in_tx(tx, owner)

        return await self.db.transact(step)

    # -- changing ---------------------------------------------------------------------

    async def _run(self, event: Event, step: Callable[[Tx], None]) -> None:
        await self.audit.record(event, work=(step,))

    async def create(self, owner: UserId, parent: uuid.UUID | None, name: str, actor: Actor) -> FolderRead:
        """A new folder in ``parent`` (``None``: the top); ``Conflict`` if the name is taken."""
        name = names.folder_name(name)
        folder_id = uuid.uuid4()

        def step(tx: Tx) -> None:
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            depth = len(ancestors(tx, owner, parent))
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"folders nest at most {MAX_DEPTH} deep")
            cipher = self.names.in_tx(tx, owner)
            tag = claim(tx, owner, cipher, parent, name)
            make_folder(tx, owner, cipher, parent, name, tag, folder_id)
            made[:] = [self._folder_in_tx(tx, owner, cipher, folder_id)]

        # The answer is what the transaction wrote: read again after the commit, a folder
        # deleted meanwhile would answer 404 for a change that took place.
        made: list[FolderRead] = []
        await self._run(Event("folder.create", actor, owner, None, str(folder_id), {}), step)
        return made[0]

    @staticmethod
    def _folder_in_tx(tx: Tx, owner: UserId, cipher: NameCipher, folder_id: uuid.UUID) -> FolderRead:
        parent, sealed, created_at = tx.conn.execute(FOLDER_ROW, {"id": folder_id, "owner": owner}).one()
        return FolderRead(
            id=str(folder_id),
            name=decrypt_name(cipher, folder_id, sealed),
            parent_id=str(parent) if parent else None,
            created_at=created_at,
        )

    async def update(
        self, owner: UserId, folder_id: uuid.UUID, actor: Actor, *, name: str | None = None, parent: Any = _UNSET
    ) -> FolderRead:
        """Rename ``folder_id`` and/or move it into ``parent`` (``None``: the top)."""
        new_name = names.folder_name(name) if name is not None else None
        moving = parent is not _UNSET

        def step(tx: Tx) -> None:
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            current = folder_in(tx, owner, folder_id)
            target = parent if moving else current
            if moving:
                if target is not None and folder_id in ancestors(tx, owner, target):
                    raise Conflict("a folder cannot be moved into itself or into a folder inside it")
                height = tx.conn.execute(SUBTREE_HEIGHT, {"root": folder_id, "owner": owner}).scalar_one()
                if len(ancestors(tx, owner, target)) + 1 + int(height) > MAX_DEPTH:
                    raise InvalidInput(f"folders nest at most {MAX_DEPTH} deep")
            cipher = self.names.in_tx(tx, owner)
            row = tx.conn.execute(select(Folder.name_enc, Folder.name_tag).where(Folder.id == folder_id)).one()
            final = new_name if new_name is not None else decrypt_name(cipher, folder_id, row[0])
            tag = cipher.tag(target.bytes if target else None, final)
            if tag != row[1]:  # else nothing changes
                claim(tx, owner, cipher, target, final)
                tx.conn.execute(
                    update(Folder)
                    .where(Folder.id == folder_id)
                    .values(parent_id=target, name_enc=cipher.encrypt(folder_id.bytes, "name", final), name_tag=tag)
                )
            changed[:] = [self._folder_in_tx(tx, owner, cipher, folder_id)]

        changed: list[FolderRead] = []  # what the transaction wrote (see ``create``)
        action = "folder.move" if moving and new_name is None else "folder.rename" if not moving else "folder.update"
        await self._run(Event(action, actor, owner, None, str(folder_id), {}), step)
        return changed[0]

    async def update_file(
        self, owner: UserId, file_id: FileId, actor: Actor, *, name: str | None = None, folder: Any = _UNSET
    ) -> FileRead:
        """Rename a file and/or move it into ``folder`` (``None``: the top)."""
        new_name = names.file_name(name) if name is not None else None
        moving = folder is not _UNSET

        def step(tx: Tx) -> None:
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            found = tx.conn.execute(FILE_ROW, {"id": file_id, "owner": owner}).first()
            if found is None:
                raise NotFound("file not found")
            row = FILES.build(found)
            target = folder if moving else row.folder_id
            if target is not None:
                folder_in(tx, owner, target)
            cipher = self.names.in_tx(tx, owner)
            dek = self.files.dek(row)
            fields = FieldCipher(dek, row.id.bytes)
            final = new_name if new_name is not None else self.files.describe(row, dek).name
            tag = cipher.tag(target.bytes if target else None, final)
            if tag != row.name_tag:  # else nothing changes
                claim(tx, owner, cipher, target, final)
                tx.conn.execute(
                    update(File)
                    .where(File.id == file_id)
                    .values(
                        folder_id=target,
                        name_enc=fields.encrypt("name", final) if new_name is not None else row.name_enc,
                        listed_name_enc=cipher.encrypt(row.id.bytes, "name", final),
                        name_tag=tag,
                    )
                )
            written = tx.conn.execute(FILE_ROW, {"id": file_id, "owner": owner}).one()
            changed[:] = [(FILES.build(written), dek)]

        changed: list[tuple[File, bytes]] = []  # what the transaction wrote (see ``create``)
        action = "file.move" if moving and new_name is None else "file.rename" if not moving else "file.update"
        await self._run(Event(action, actor, owner, file_id, None, {}), step)
        return self.files.describe(*changed[0])

    async def delete(self, owner: UserId, folder_id: uuid.UUID, actor: Actor) -> Deleted:
        """Delete ``folder_id`` and everything below it, in one transaction: the files'
        rows (with their keys: their blobs are unreadable from the commit on), their
        links and grants, the folders, links to them, unfinished uploads into them;
        then the blobs and parts (the sweeper removes any left behind)."""
        keys: list[str] = []
        # Filled by the step, read when the event is appended after it (same transaction).
        counts: dict[str, int] = {}

        def step(tx: Tx) -> None:
            tx.conn.execute(LOCK_OWNER, {"owner": owner})
            folder_in(tx, owner, folder_id)
            values = {"root": folder_id, "owner": owner}
            files = tx.conn.execute(SUBTREE_USAGE, values).all()
            folders = tx.conn.execute(SUBTREE_IDS, values).all()
            keys[:] = [blob_key(fid) for fid, _ in files]
            keys.extend(row[0] for row in tx.conn.execute(SUBTREE_SEGMENTS, values))
            # Uploads still in progress into it go too, keys, names and parts: the
            # deletion leaves nothing of what was under the folder readable.
            keys.extend(row[0] for row in tx.conn.execute(SUBTREE_UPLOAD_PARTS, values))
            tx.conn.execute(delete(Upload).where(Upload.id.in_(SUBTREE_UPLOADS)), values)
            # By the subtree, not a list of ids: a folder may hold more files than a
            # statement may bind values (PostgreSQL: 65,535).
            tx.conn.execute(delete(File).where(File.folder_id.in_(SUBTREE_IDS), File.owner_id == owner), values)
            tx.conn.execute(delete(Folder).where(Folder.id == folder_id, Folder.owner_id == owner))
            counts.update(files=len(files), folders=len(folders), bytes=sum(size for _, size in files))

        await self._run(Event("folder.delete", actor, owner, None, str(folder_id), counts), step)
        for key in keys:
            with contextlib.suppress(StorageUnavailable):
                await self.files.store.delete(key)
        return Deleted(counts["folders"], counts["files"], counts["bytes"])
