"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from sealbox.models.audit import AuditEvent, AuditHead
from sealbox.models.file import File, FileSegment
from sealbox.models.folder import Folder, NameKey
from sealbox.models.key import KeyHolder, RetiredKey
from sealbox.models.login_failure import LoginFailure
from sealbox.models.share import Grant, Share, ShareDelivery, ShareItem, Unlock, UploadRequest
from sealbox.models.token import ApiToken
from sealbox.models.upload import Upload, UploadPart
from sealbox.models.user import User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "File",
    "FileSegment",
    "Folder",
    "Grant",
    "KeyHolder",
    "LoginFailure",
    "NameKey",
    "RetiredKey",
    "Share",
    "ShareDelivery",
    "ShareItem",
    "Unlock",
    "Upload",
    "UploadPart",
    "UploadRequest",
    "User",
]
