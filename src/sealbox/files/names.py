"""Validation of client-supplied content types (file names: ``sealbox.names``)."""

from __future__ import annotations

import mimetypes
import re

from sealbox.errors import InvalidInput

MAX_TYPE = 255
DEFAULT_TYPE = "application/octet-stream"
_MEDIA_WORD = r"[A-Za-z0-9!#$&^_.+-]+"
# Spaces and tabs only between parameters (no line breaks: the value becomes a response
# header; quoted values printable ASCII only), and fullmatch: "$" would also match before a final newline.
_CONTENT_TYPE = re.compile(rf'{_MEDIA_WORD}/{_MEDIA_WORD}([ \t]*;[ \t]*{_MEDIA_WORD}=({_MEDIA_WORD}|"[ !#-\[\]-~]*"))*')


def check_content_type(content_type: str | None, name: str) -> str:
    """Return the content type to store: the given one if valid, else a guess from ``name``."""
    if not content_type:
        return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_TYPE
    if not valid_content_type(content_type):
        raise InvalidInput("the content type is not a valid media type")
    return content_type


def valid_content_type(content_type: str) -> bool:
    """Whether ``content_type`` is a media type that can be sent as a header as it is."""
    return len(content_type) <= MAX_TYPE and _CONTENT_TYPE.fullmatch(content_type) is not None


def servable_content_type(stored: str) -> str:
    """The ``Content-Type`` to send for a stored type: itself, or ``DEFAULT_TYPE`` for one
    stored before the check was as strict as it is now."""
    return stored if valid_content_type(stored) else DEFAULT_TYPE
