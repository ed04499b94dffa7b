"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from sealbox.models.audit import AuditEvent, AuditHead
from sealbox.models.file import File, FileSegment
from sealbox.models.key import KeyHolder, RetiredKey
from sealbox.models.login_failure import LoginFailure
from sealbox.models.share import Grant, Share, Unlock, UploadRequest
from sealbox.models.token import ApiToken
from sealbox.models.upload import Upload, UploadPart
from sealbox.models.user import User

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "File",
    "FileSegment",
    "Grant",
    "KeyHolder",
    "LoginFailure",
    "RetiredKey",
    "Share",
    "Unlock",
    "Upload",
    "UploadPart",
    "UploadRequest",
    "User",
]
