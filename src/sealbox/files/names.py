"""Validation of client-supplied file names and content types.

A file name is only ever a display name: it is stored encrypted and never becomes part
of a path. It is still refused when it could mislead a person or a program that saves
the download (path separators, control and bidirectional-override characters).
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from sealbox.errors import InvalidInput

MAX_NAME = 255
DEFAULT_TYPE = "application/octet-stream"
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_MEDIA_WORD = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(
    rf'^{_MEDIA_WORD}/{_MEDIA_WORD}(\s*;\s*{_MEDIA_WORD}=({_MEDIA_WORD}|"[^"\\\x00-\x1f\x7f]*"))*$'
)


def check_name(name: str) -> str:
    """Return ``name`` if it is acceptable as a file name; raise ``InvalidInput``."""
    if not name:
        raise InvalidInput("a file name is required")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"a file name is at most {MAX_NAME} characters")
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in name):
        raise InvalidInput("a file name must not contain control characters")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise InvalidInput("a file name must not contain '/' or '\\' or be '.' or '..'")
    return name


def check_content_type(content_type: str | None, name: str) -> str:
    """Return the content type to store: the given one if valid, else a guess from ``name``."""
    if not content_type:
        return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_TYPE
    if len(content_type) > MAX_NAME or not _CONTENT_TYPE.match(content_type):
        raise InvalidInput("the content type is not a valid media type")
    return content_type
