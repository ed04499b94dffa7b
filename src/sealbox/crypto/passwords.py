"""Password hashing with argon2id.

Parameters: m = 9 MiB, t = 4, p = 1, one of the equivalent argon2id configurations OWASP
recommends (trading memory for passes). The library default (64 MiB, p = 4) would make
every sign-in cost the server more memory than its whole idle footprint; hashes record
their parameters, so these can be raised later without breaking stored hashes: a hash
made with other parameters still verifies, and is replaced with one made with these the
next time its right password is given (``rehash_async``; sign-ins and link passwords).

``verify_password`` costs the same whether or not a hash exists: pass ``None`` for an
unknown user and it checks against a fixed dummy hash, so timing does not reveal which
accounts exist.
"""

from __future__ import annotations

import functools

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=4, memory_cost=9 * 1024, parallelism=1)
# Argon2 takes ~50-100 ms of CPU and memory per call: run it in worker threads, a few
# at a time, so a burst of sign-ins or link unlocks cannot starve the event loop or
# exhaust memory.
_LIMIT = anyio.CapacityLimiter(2)
MAX_PASSWORD = 1024


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


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with other parameters (or another variant) than
    ``hash_password`` uses now: such a hash is replaced on the next right password."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return False  # not an argon2 hash at all: it never verifies, so it is never replaced


async def rehash_async(stored_hash: str, password: str) -> str | None:
    """A fresh hash of ``password`` if ``stored_hash`` (which ``password`` has just been
    verified against) uses outdated parameters, else ``None``. Costs a second Argon2
    call, once per stored hash, only when the parameters have changed."""
    if not needs_rehash(stored_hash):
        return None
    return await hash_password_async(password[:MAX_PASSWORD])


async def hash_password_async(password: str) -> str:
    """``hash_password`` in a worker thread, at most two at a time."""
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_LIMIT)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """``verify_password`` in a worker thread, at most two at a time; passwords longer
    than ``MAX_PASSWORD`` are cut there, so no one can make a check cost more."""
    return await anyio.to_thread.run_sync(verify_password, stored_hash, password[:MAX_PASSWORD], limiter=_LIMIT)
