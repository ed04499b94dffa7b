"""What every value from a client must satisfy before it reaches a database.

Both databases store 64-bit signed integers at most, and PostgreSQL text can hold neither
NUL nor (as UTF-8 cannot) a lone surrogate, which Python strings may carry. Request
schemas derive from ``Input``, which refuses such text in any field, so a client gets a
422 naming the field instead of a driver error; ``sealbox.db`` turns what slips through
into ``InvalidInput`` as a safety net.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, field_validator

from sealbox.errors import InvalidInput

MAX_INT64 = 2**63 - 1
MAX_DIGITS = len(str(MAX_INT64))
# NUL, and any surrogate code point: in a str, a paired surrogate is one code point
# above U+FFFF, so a code point in D800-DFFF is always a lone one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """Whether ``text`` can be stored as text by every supported database."""
    return _UNSTORABLE.search(text) is None


def made_storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (for lookups of names
    that can never match a stored one, such as a user name typed with a NUL)."""
    return _UNSTORABLE.sub("\ufffd", text)


class Input(BaseModel):
    """Base of request bodies: every text field must be storable."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        if isinstance(value, str) and not storable(value):
            raise ValueError("must not contain NUL characters or unpaired surrogates")
        return value


def is_count(value: str) -> bool:
    """Whether ``value`` is a non-negative integer as clients must write one: ASCII digits
    only (no sign, space, underscore, or other scripts' digits such as ``²`` or ``١``), at
    most ``MAX_INT64``. The one rule for integers in text: headers, query, forms."""
    return 0 < len(value) <= MAX_DIGITS and value.isascii() and value.isdigit() and int(value) <= MAX_INT64


def parse_count(value: str, what: str) -> int:
    """``value`` as an integer if ``is_count``; else ``InvalidInput`` naming ``what``."""
    if not is_count(value):
        raise InvalidInput(f"{what} must be an integer from 0 to {MAX_INT64}")
    return int(value)


def _digits_only(value: Any) -> Any:
    # Text (a query parameter, a form field) must be a count as ``is_count`` says.
    if isinstance(value, str) and not is_count(value):
        raise ValueError(f"must be an integer from 0 to {MAX_INT64}, in ASCII digits")
    return value


Count = Annotated[int, BeforeValidator(_digits_only)]
"""A non-negative integer that, given as text, is ASCII digits only (bound it with ``le``)."""
