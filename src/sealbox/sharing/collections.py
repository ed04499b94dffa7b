"""Links to several files: a folder (what is in it when the link is opened) or a
selection of files and folders (fixed when the link is made), and archives of them.

What a collection is, is decided here once, for the listing, each file and the archive:
the gate (``sealbox.sharing.gate``) asks ``contains`` before it opens a file through a
link, and an archive holds exactly the files of ``gather``.

Paths are the names of the folders below the shared one, then the file's name; the
top-level names of a selection are made unique by numbering ("a (2).txt"), so an
archive or a directory can hold them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import bindparam, select

from sealbox.errors import InvalidInput, NotFound, TooLarge
from sealbox.files.folders import FILE_ROW, FolderService
from sealbox.files.repository import FILES
from sealbox.files.service import FileService
from sealbox.files.tree import FOLDER_OF, MAX_DEPTH, renamed
from sealbox.ids import UserId
from sealbox.models import File, Share, ShareItem

Kind = Literal["file", "folder"]
# The most items a selection may name, and the most files a link or an archive may hold.
MAX_ITEMS = 1000
MAX_FILES = 100_000

ITEMS_OF = select(ShareItem.file_id, ShareItem.folder_id).where(ShareItem.share_id == bindparam("share_id"))


@dataclass(frozen=True)
class Item:
    """A file of a collection, at its path."""

    path: str
    row: File


@dataclass(frozen=True)
class Collection:
    kind: Literal["file", "folder", "selection"]
    name: str  # the file's or the folder's name, or "N items"
    dirs: list[str] = field(default_factory=list)  # folders, each path ending in "/"
    files: list[Item] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(item.row.size for item in self.files)

    def zip_name(self) -> str:
        return self.name if self.kind == "file" else f"{self.name}.zip"


def parse_items(items: Sequence[tuple[str, str]]) -> list[tuple[Kind, uuid.UUID]]:
    """A client's selection as (kind, id) pairs, checked: 1 to ``MAX_ITEMS``, no repeats."""
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidInput(f"a selection has 1 to {MAX_ITEMS} items")
    parsed: list[tuple[Kind, uuid.UUID]] = []
    for kind, value in items:
        if kind not in ("file", "folder"):
            raise InvalidInput("an item's kind is 'file' or 'folder'")
        try:
            item_id = uuid.UUID(value)
        except ValueError:
            raise NotFound(f"{kind} not found") from None
        parsed.append(("file" if kind == "file" else "folder", item_id))
    if len(set(parsed)) != len(parsed):
        raise InvalidInput("a selection names each item once")
    return parsed


class Collections:
    def __init__(self, files: FileService, folders: FolderService) -> None:
        self.files = files
        self.folders = folders
        self.db = files.db

    async def _file(self, owner: uuid.UUID, file_id: uuid.UUID) -> File | None:
        found = await self.db.rows(FILE_ROW, {"id": file_id, "owner": owner})
        return FILES.build(found[0]) if found else None

    async def gather(
        self, owner: UserId, items: Sequence[tuple[Kind, uuid.UUID]], *, strict: bool = False
    ) -> Collection:
        """The files and folders of ``items`` (of ``owner``), at their paths. Items deleted
        since are left out, or, ``strict``, refused (``NotFound``)."""
        cipher = await self.folders.cipher(owner)
        taken: set[str] = set()
        dirs: list[str] = []
        files: list[Item] = []

        def unique(name: str) -> str:
            final, n = name, 1
            while final.casefold() in taken:
                n += 1
                final = renamed(name, n)
            taken.add(final.casefold())
            return final

        # A file reached twice (selected, and inside a selected folder; or in two selected
        # folders, one inside the other) is in the collection once, where it is first met:
        # its download limit is counted per file, and a copy must not reset that count.
        seen: set[uuid.UUID] = set()
        for kind, item_id in items:
            if kind == "file":
                row = await self._file(owner, item_id)
                if row is None:
                    if strict:
                        raise NotFound("file not found")
                    continue
                if row.id not in seen:
                    seen.add(row.id)
                    files.append(Item(unique(self.folders.listed_name(cipher, row)), row))
                continue
            try:
                folder = await self.folders.get(owner, item_id)
                below, members = await self.folders.members(owner, item_id, MAX_FILES)
            except NotFound:
                if strict:
                    raise
                continue
            prefix = unique(folder.name) + "/"
            dirs.append(prefix)
            dirs.extend(prefix + path for path in below)
            for member in members:
                if member.row.id not in seen:
                    seen.add(member.row.id)
                    files.append(Item(prefix + member.path, member.row))
            self._bound(files)
        if len(items) == 1 and items[0][0] == "folder" and dirs:
            name = dirs[0].rstrip("/")
        elif len(items) == 1 and files and not dirs:
            name = files[0].path
        else:
            name = f"{len(items)} items"
        return Collection("selection", name, dirs, files)

    async def folder(self, owner: UserId, folder_id: uuid.UUID) -> Collection:
        folder = await self.folders.get(owner, folder_id)
        dirs, members = await self.folders.members(owner, folder_id, MAX_FILES)
        files = [Item(member.path, member.row) for member in members]
        self._bound(files)
        return Collection("folder", folder.name, dirs, files)

    @staticmethod
    def _bound(files: list[Item]) -> None:
        if len(files) > MAX_FILES:
            raise TooLarge(f"a link or an archive holds at most {MAX_FILES} files")

    async def items_of(self, share: Share) -> list[tuple[Kind, uuid.UUID]]:
        found = await self.db.rows(ITEMS_OF, {"share_id": share.id})
        return [("file", file_id) if file_id is not None else ("folder", folder_id) for file_id, folder_id in found]

    async def of_share(self, share: Share) -> Collection:
        """What a link holds now (its owner's, whatever they have moved or deleted since
        it was made): a link to a folder, what is below it; to a selection, what is left
        of the items; to one file, that file."""
        owner = UserId(share.owner_id)
        if share.folder_id is not None:
            return await self.folder(owner, share.folder_id)
        if share.file_id is not None:
            row = await self._file(owner, share.file_id)
            if row is None:
                raise NotFound("link not found")
            name = self.files.describe(row).name
            return Collection("file", name, [], [Item(name, row)])
        gathered = await self.gather(owner, await self.items_of(share))
        return Collection("selection", gathered.name, gathered.dirs, gathered.files)

    async def _above(self, owner: uuid.UUID, folder_id: uuid.UUID | None) -> set[uuid.UUID]:
        """``folder_id`` and every folder above it."""
        found: set[uuid.UUID] = set()
        while folder_id is not None and len(found) <= MAX_DEPTH:
            found.add(folder_id)
            rows = await self.db.rows(FOLDER_OF, {"id": folder_id, "owner": owner})
            folder_id = rows[0][1] if rows else None
        return found

    async def contains(self, share: Share, file_id: uuid.UUID) -> File | None:
        """The file ``file_id`` if the link holds it now (as ``of_share`` would list it)."""
        row = await self._file(share.owner_id, file_id)
        if row is None:
            return None
        if share.file_id is not None:
            return row if row.id == share.file_id else None
        above = await self._above(share.owner_id, row.folder_id)
        if share.folder_id is not None:
            return row if share.folder_id in above else None
        for kind, item_id in await self.items_of(share):
            if (kind == "file" and item_id == row.id) or (kind == "folder" and item_id in above):
                return row
        return None
