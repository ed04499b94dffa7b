from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from sealbox.files.schemas import FileRead
from sealbox.inputs import MAX_INT64, Input

LinkStatus = Literal["active", "expired", "exhausted", "revoked"]
# A bound on lifetimes in requests: far past any policy's maximum, and far inside what
# dates can hold (the policy's own maximum is checked by the service).
MAX_LIFETIME_SECONDS = 100 * 366 * 86400


class ShareCreate(Input):
    expires_in_seconds: int | None = Field(
        default=None,
        ge=60,
        le=MAX_LIFETIME_SECONDS,
        description="Lifetime of the link; default and maximum are set by policy.",
    )
    download_limit: int | None = Field(
        default=None, ge=1, le=1_000_000, description="How many times the file may be downloaded."
    )
    password: str | None = Field(default=None, description="8 to 1024 characters; recipients must unlock with it.")
    note: str | None = Field(default=None, description="A message shown to recipients (at most 1000 characters).")


class ItemRef(Input):
    kind: Literal["file", "folder"]
    id: str = Field(max_length=36)


class LinkCreate(ShareCreate):
    """A link to one file (``file_id``), a folder (``folder_id``: what is in it whenever
    the link is opened) or a selection of your files and folders (``items``: fixed now)."""

    file_id: str | None = Field(default=None, max_length=36)
    folder_id: str | None = Field(default=None, max_length=36)
    items: list[ItemRef] | None = Field(default=None, min_length=1, max_length=1000)


class ShareRead(BaseModel):
    id: str
    kind: Literal["file", "folder", "selection"] = "file"
    file_id: str | None = Field(description="The file of a link to one file; null otherwise.")
    folder_id: str | None = Field(default=None, description="The folder of a link to a folder; null otherwise.")
    items: int = Field(default=1, description="How many items the link was made for (1 unless a selection).")
    file_name: str = Field(description="The name of the file or folder, or 'N items' for a selection.")
    status: LinkStatus
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    password: bool = Field(description="Whether the link needs a password.")
    download_limit: int | None
    downloads: int = Field(description="Downloads started from the first byte.")
    downloads_left: int | None = Field(description="Whole downloads the limit still allows (null: no limit).")
    note: str | None


class ShareCreated(ShareRead):
    token: str = Field(description="The secret of the link; shown only here.")
    url: str = Field(description="Path of the link: /s/{token}.")


class PublicShare(BaseModel):
    """What a link shows to whoever holds it (after unlocking, if it has a password)."""

    kind: Literal["file"] = "file"
    name: str
    size: int
    content_type: str
    expires_at: datetime
    downloads_left: int | None
    note: str | None
    download_url: str


class PublicEntry(BaseModel):
    path: str = Field(description="Relative path; a folder's ends with '/'.")
    kind: Literal["file", "folder"]
    size: int | None
    download_url: str | None
    downloads_left: int | None = Field(
        description="Whole downloads of this file the link still allows (null: no limit)."
    )


class PublicCollection(BaseModel):
    """What a link to several files shows to whoever holds it (after unlocking)."""

    kind: Literal["folder", "selection"]
    name: str
    expires_at: datetime
    note: str | None
    files: int
    size: int
    entries: list[PublicEntry]
    archive_url: str


class UnlockRequest(Input):
    password: str = Field(description="The link's password.")


class UnlockIssued(BaseModel):
    grant: str = Field(description="Send as 'Authorization: Bearer <grant>' to this link's routes.")
    expires_at: datetime


class GrantCreate(Input):
    username: str = Field(description="The account to share with (read-only).")


class GrantRead(BaseModel):
    id: str
    file_id: str
    grantee: str
    created_at: datetime


class SharedFile(FileRead):
    owner: str
    grant_id: str


class RequestCreate(Input):
    expires_in_seconds: int | None = Field(
        default=None,
        ge=60,
        le=MAX_LIFETIME_SECONDS,
        description="Lifetime of the link; default and maximum are set by policy.",
    )
    max_files: int = Field(default=10, ge=1, le=10_000, description="How many files may be uploaded.")
    max_bytes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT64,
        description="How many bytes may be uploaded in all; default: the file size limit.",
    )
    password: str | None = Field(default=None, description="8 to 1024 characters; uploaders must unlock with it.")
    folder_id: str | None = Field(
        default=None, max_length=36, description="The folder of yours received files go to (default: the top)."
    )


class RequestRead(BaseModel):
    id: str
    status: LinkStatus
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    password: bool
    max_files: int
    max_bytes: int
    files_received: int
    bytes_received: int
    folder_id: str | None = None


class RequestCreated(RequestRead):
    token: str = Field(description="The secret of the link; shown only here.")
    url: str = Field(description="Path of the link: /r/{token}.")


class PublicRequest(BaseModel):
    expires_at: datetime
    files_left: int
    bytes_left: int
    upload_url: str


class ReceivedFile(FileRead):
    uploader: str | None = Field(description="What the uploader said about themselves, if anything.")


class Receipt(BaseModel):
    """What an uploader learns: that the file arrived, and nothing about anything else."""

    name: str
    size: int
    received_at: datetime
