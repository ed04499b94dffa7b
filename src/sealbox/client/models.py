"""What the SDK returns: small typed records built from the server's JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Me:
    id: str
    username: str
    is_admin: bool

    @classmethod
    def of(cls, data: dict[str, Any]) -> Me:
        return cls(data["id"], data["username"], bool(data["is_admin"]))


@dataclass(frozen=True)
class FileInfo:
    id: str
    name: str
    size: int
    content_type: str
    created_at: datetime
    folder_id: str | None = None  # None: at the top

    @classmethod
    def of(cls, data: dict[str, Any]) -> FileInfo:
        created = _when(data["created_at"])
        assert created is not None
        return cls(data["id"], data["name"], int(data["size"]), data["content_type"], created, data.get("folder_id"))


@dataclass(frozen=True)
class Link:
    """A share link as its owner sees it; ``url`` (with the secret token) only on creation.
    ``kind`` is ``file``, ``folder`` or ``selection``; ``file_id`` is None but for a file."""

    id: str
    file_id: str | None
    status: str
    expires_at: datetime
    download_limit: int | None
    downloads: int
    downloads_left: int | None
    password: bool
    url: str | None = None
    kind: str = "file"
    folder_id: str | None = None
    items: int | None = None

    @classmethod
    def of(cls, data: dict[str, Any], base: str = "") -> Link:
        expires = _when(data["expires_at"])
        assert expires is not None
        url = base + data["url"] if data.get("url") else None
        return cls(
            data["id"],
            data["file_id"],
            data["status"],
            expires,
            data.get("download_limit"),
            int(data.get("downloads", 0)),
            data.get("downloads_left"),
            bool(data.get("password")),
            url,
            str(data.get("kind") or "file"),
            data.get("folder_id"),
            data.get("items"),
        )


@dataclass(frozen=True)
class LinkEntry:
    """One thing a folder or selection link holds: ``path`` is relative ("sub/a.txt"; a
    folder's ends with "/"), ``download_url`` a path on the server (None for a folder)."""

    path: str
    kind: str
    size: int | None
    download_url: str | None
    downloads_left: int | None

    @classmethod
    def of(cls, data: dict[str, Any]) -> LinkEntry:
        size = data.get("size")
        return cls(
            str(data["path"]), str(data["kind"]), None if size is None else int(size), data.get("download_url"),
            data.get("downloads_left"),
        )  # fmt: skip


@dataclass(frozen=True)
class LinkInfo:
    """What a share link offers to whoever holds it. ``kind`` is ``file``, ``folder`` or
    ``selection``; the last two list their ``entries`` and have an ``archive_url``."""

    name: str
    size: int
    expires_at: datetime | None
    downloads_left: int | None
    note: str | None
    kind: str = "file"
    files: int = 1
    entries: tuple[LinkEntry, ...] = ()
    archive_url: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> LinkInfo:
        kind = str(data.get("kind") or "file")
        entries = tuple(LinkEntry.of(item) for item in data.get("entries") or ())
        files = int(data["files"]) if data.get("files") is not None else (1 if kind == "file" else len(entries))
        return cls(
            data["name"], int(data["size"]), _when(data.get("expires_at")), data.get("downloads_left"),
            data.get("note"), kind, files, entries, data.get("archive_url"),
        )  # fmt: skip


@dataclass(frozen=True)
class Folder:
    """One of your folders; ``parent_id`` is None at the top."""

    id: str
    name: str
    parent_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, data: dict[str, Any]) -> Folder:
        created = _when(data["created_at"])
        assert created is not None
        return cls(data["id"], data["name"], data.get("parent_id"), created)


@dataclass(frozen=True)
class Item:
    """What a folder holds: ``kind`` is ``folder`` (``size`` None) or ``file``."""

    kind: str
    id: str
    name: str
    size: int | None
    created_at: datetime

    @classmethod
    def of(cls, data: dict[str, Any]) -> Item:
        created = _when(data["created_at"])
        assert created is not None
        size = data.get("size")
        return cls(data["kind"], data["id"], data["name"], None if size is None else int(size), created)


@dataclass(frozen=True)
class FolderPage:
    """One page of a folder: the folder (None for the top), the path to it from the top
    (``(id, name)`` pairs), its items, how many it holds in all, and the cursor of the
    next page (None on the last)."""

    folder: Folder | None
    path: tuple[tuple[str, str], ...]
    items: tuple[Item, ...]
    total: int
    next_cursor: str | None

    @classmethod
    def of(cls, data: dict[str, Any]) -> FolderPage:
        folder = Folder.of(data["folder"]) if data.get("folder") else None
        path = tuple((crumb["id"], crumb["name"]) for crumb in data.get("path") or ())
        items = tuple(Item.of(item) for item in data["items"])
        return cls(folder, path, items, int(data["total"]), data.get("next_cursor"))


@dataclass(frozen=True)
class TreeUpload:
    """What ``upload_dir`` did: the folder the tree went to (None: the top), how many files
    and bytes it sent, how many files it skipped (already there with the same size), and
    the relative paths of files it left alone because a different file (another size, or
    a folder) holds their place."""

    folder_id: str | None
    uploaded: int
    skipped: int
    bytes: int
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class TreeDownload:
    """What ``download_link_dir`` did: files fetched, files skipped (complete already),
    the bytes of the files fetched (a resumed one counts whole), and the relative paths
    left alone because a different file (another size) is in the way."""

    downloaded: int
    skipped: int
    bytes: int
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    """Passed to progress callbacks: bytes done of the total."""

    done: int
    total: int


@dataclass(frozen=True)
class Grant:
    """Read access to one of your files for another account."""

    id: str
    file_id: str
    grantee: str
    created_at: datetime

    @classmethod
    def of(cls, data: dict[str, Any]) -> Grant:
        created = _when(data["created_at"])
        assert created is not None
        return cls(data["id"], data["file_id"], data["grantee"], created)


@dataclass(frozen=True)
class UploadRequest:
    """An upload-request link; ``url`` (with the secret token) only on creation."""

    id: str
    status: str
    expires_at: datetime
    max_files: int
    max_bytes: int
    files_received: int
    bytes_received: int
    password: bool
    url: str | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> UploadRequest:
        expires = _when(data["expires_at"])
        assert expires is not None
        return cls(
            data["id"],
            data["status"],
            expires,
            int(data["max_files"]),
            int(data["max_bytes"]),
            int(data["files_received"]),
            int(data["bytes_received"]),
            bool(data["password"]),
            data.get("url"),
        )


@dataclass(frozen=True)
class Event:
    """One row of the audit trail."""

    seq: int
    at: datetime
    action: str
    actor: str
    file_id: str | None
    target: str | None
    client: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> Event:
        at = _when(data["at"])
        assert at is not None
        return cls(
            int(data["seq"]), at, data["action"], data["actor"], data.get("file_id"), data.get("target"),
            data.get("client"), dict(data.get("detail") or {}),
        )  # fmt: skip
