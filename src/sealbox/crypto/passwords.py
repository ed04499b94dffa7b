"""Password hashing with argon2id.

``verify`` costs the same whether or not a hash exists: pass ``None`` for an unknown
user and it checks against a fixed dummy hash, so timing does not reveal which
accounts exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("sealbox-dummy-password-for-unknown-users")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches ``stored_hash`` (``None``: unknown user)."""
    try:
        ok = _hasher.verify(_DUMMY_HASH if stored_hash is None else stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None
