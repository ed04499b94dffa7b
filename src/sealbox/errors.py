"""The sealbox error tree. ``str(exc)`` is always safe to show to a client.

    SealboxError
     ├─ InvalidInput          the request is malformed or a value is not acceptable
     │   ├─ TooLarge          a body exceeds the configured limit
     │   └─ ChecksumMismatch  a body does not match the checksum sent with it
     ├─ AuthenticationFailed  no credentials, or wrong ones
     ├─ PermissionDenied      authenticated, but not allowed (an admin action, say)
     ├─ NotFound              missing, or someone else's: the two are never told apart
     ├─ Conflict              the change clashes with what is stored (a taken user name)
     ├─ Gone                  a link that was revoked, has expired or is used up
     ├─ RateLimited           too many failed attempts; try again after ``retry_after`` seconds
     ├─ IntegrityFailure      stored data failed authentication; never served
     ├─ Unavailable           the database or blob store cannot be reached right now
     │   └─ KeyMissing        this process lacks a master key that stored data names
     └─ SetupError            the server must not start (keys missing, unsafe, mismatched)

HTTP statuses live in ``sealbox.api.errors`` and exit codes in ``sealbox.cli``.
"""

from __future__ import annotations


class SealboxError(Exception):
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SealboxError):
    code = "invalid_input"


class TooLarge(InvalidInput):
    code = "too_large"


class ChecksumMismatch(InvalidInput):
    code = "checksum_mismatch"


class AuthenticationFailed(SealboxError):
    code = "authentication_failed"


class PermissionDenied(SealboxError):
    code = "permission_denied"


class NotFound(SealboxError):
    code = "not_found"


class Conflict(SealboxError):
    code = "conflict"


class Gone(SealboxError):
    code = "gone"


class RateLimited(SealboxError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IntegrityFailure(SealboxError):
    code = "integrity_failure"


class Unavailable(SealboxError):
    code = "unavailable"


class KeyMissing(Unavailable):
    """This process does not hold a master key that a stored file names (its keyring is
    out of date): the data is intact and another process, or this one once its keyring
    is completed, can read it."""

    code = "key_missing"

    def __init__(self, key_ids: set[str] | frozenset[str]) -> None:
        names = ", ".join(sorted(key_ids))
        super().__init__(
            f"this server does not hold master key {names}: add it to this server's keyring "
            "(sealbox keys import, see docs/keys.md); the stored data is intact"
        )
        self.key_ids = frozenset(key_ids)


class SetupError(SealboxError):
    code = "setup_error"
