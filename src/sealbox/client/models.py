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

    @classmethod
    def of(cls, data: dict[str, Any]) -> FileInfo:
        created = _when(data["created_at"])
        assert created is not None
        return cls(data["id"], data["name"], int(data["size"]), data["content_type"], created)


@dataclass(frozen=True)
class Link:
    """A share link as its owner sees it; ``url`` (with the secret token) only on creation."""

    id: str
    file_id: str
    status: str
    expires_at: datetime
    download_limit: int | None
    downloads: int
    downloads_left: int | None
    password: bool
    url: str | None = None

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
        )


@dataclass(frozen=True)
class LinkInfo:
    """What a share link offers to whoever holds it."""

    name: str
    size: int
    expires_at: datetime
    downloads_left: int | None
    note: str | None

    @classmethod
    def of(cls, data: dict[str, Any]) -> LinkInfo:
        expires = _when(data["expires_at"])
        assert expires is not None
        return cls(data["name"], int(data["size"]), expires, data.get("downloads_left"), data.get("note"))


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
