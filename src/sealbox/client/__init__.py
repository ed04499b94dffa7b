"""The sealbox SDK: ``Client`` and ``AsyncClient`` over HTTP (httpx2).

It speaks only HTTP and imports nothing from the server side, so it can ship on its own.
Every operation is written once, as a generator of HTTP calls (``sealbox.client._ops``);
the two clients only differ in how they perform a call.
"""

from sealbox.client._clients import AsyncClient, Client
from sealbox.client.errors import (
    ApiError,
    AuthenticationError,
    ChecksumMismatch,
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TooLargeError,
    TransportError,
    UnsafePathError,
    ValidationError,
)
from sealbox.client.models import (
    Event,
    FileInfo,
    Folder,
    FolderPage,
    Grant,
    Item,
    Link,
    LinkEntry,
    LinkInfo,
    Me,
    Progress,
    TreeDownload,
    TreeUpload,
    UploadRequest,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "ChecksumMismatch",
    "Client",
    "ConflictError",
    "Event",
    "FileInfo",
    "Folder",
    "FolderPage",
    "ForbiddenError",
    "GoneError",
    "Grant",
    "Item",
    "Link",
    "LinkEntry",
    "LinkInfo",
    "Me",
    "NotFoundError",
    "Progress",
    "RateLimitedError",
    "ServerError",
    "TooLargeError",
    "TransportError",
    "TreeDownload",
    "TreeUpload",
    "UnsafePathError",
    "UploadRequest",
    "ValidationError",
]
