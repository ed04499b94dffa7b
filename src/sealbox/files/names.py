"""Validation of client-supplied content types (file names: ``sealbox.names``)."""

from __future__ import annotations

import mimetypes
import re

from sealbox.errors import InvalidInput

MAX_TYPE = 255
DEFAULT_TYPE = "application/octet-stream"
_MEDIA_WORD = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(
    rf'^{_MEDIA_WORD}/{_MEDIA_WORD}(\s*;\s*{_MEDIA_WORD}=({_MEDIA_WORD}|"[^"\\\x00-\x1f\x7f]*"))*$'
)


def check_content_type(content_type: str | None, name: str) -> str:
    """Return the content type to store: the given one if valid, else a guess from ``name``."""
    if not content_type:
        return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_TYPE
    if len(content_type) > MAX_TYPE or not _CONTENT_TYPE.match(content_type):
        raise InvalidInput("the content type is not a valid media type")
    return content_type
