"""Opaque bearer tokens: random, shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

BEARER_PREFIX = "sbx_"


def new_token() -> str:
    """A new token with 256 bits from ``secrets``."""
    return BEARER_PREFIX + secrets.token_urlsafe(32)


def new_link_token() -> str:
    """A token for a share or upload-request link: 144 bits from ``secrets``, in 24
    URL-safe characters (short enough to paste, far beyond guessing)."""
    return secrets.token_urlsafe(18)


def token_hash(token: str) -> str:
    """The value stored in the database for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()
