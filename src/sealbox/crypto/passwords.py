"""Password hashing with argon2id.

Parameters: m = 9 MiB, t = 4, p = 1, one of the equivalent argon2id configurations OWASP
recommends (trading memory for passes). The library default (64 MiB, p = 4) would make
every sign-in cost the server more memory than its whole idle footprint; hashes record
their parameters, so these can be raised later without breaking stored hashes.

``verify_password`` costs the same whether or not a hash exists: pass ``None`` for an
unknown user and it checks against a fixed dummy hash, so timing does not reveal which
accounts exist.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=4, memory_cost=9 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: hashing costs memory and time.
    return _hasher.hash("sealbox-dummy-password-for-unknown-users")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches ``stored_hash`` (``None``: unknown user)."""
    try:
        ok = _hasher.verify(_dummy_hash() if stored_hash is None else stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None
