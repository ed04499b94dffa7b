"""Exceptions raised by ``sealbox.crypto``.

CryptoError
 ├─ IntegrityError     stored data failed authentication (tampered, truncated, swapped)
 ├─ FormatError        stored data is not sealbox stream v1 (bad magic, version, sizes)
 └─ KeyringError       master keys are missing, malformed or unsafe
     └─ UnknownKeyId   a wrapped key names a master key the keyring lacks
"""


class CryptoError(Exception):
    """Base class of every error raised by ``sealbox.crypto``."""


class IntegrityError(CryptoError):
    """Authentication failed: the data was altered, truncated, reordered or swapped."""


class FormatError(IntegrityError):
    """The data is not a well-formed sealbox stream v1 blob.

    A subclass of ``IntegrityError``: a malformed header is treated exactly like tampering.
    """


class KeyringError(CryptoError):
    """The master keyring cannot be used; the message says what is wrong and how to fix it."""


class UnknownKeyId(KeyringError):
    """A wrapped key refers to a master key id that the keyring does not hold."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"master key {key_id!r} is not in the keyring")
        self.key_id = key_id
