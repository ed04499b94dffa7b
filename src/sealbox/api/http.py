"""HTTP details of file downloads: Range (RFC 9110 §14), Content-Disposition (RFC 6266)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote

from sealbox.inputs import MAX_DIGITS, MAX_INT64
from sealbox.inputs import parse_count as parse_count

_FILENAME_STAR = re.compile(r"""(?:^|;)\s*filename\*\s*=\s*UTF-8'[^']*'([^;\s]*)""", re.IGNORECASE)
_FILENAME = re.compile(r"""(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))""", re.IGNORECASE)
# [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
_RANGE = re.compile(r"^[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$", re.IGNORECASE)
# No size or offset can be larger than a signed 64-bit column holds.


def _position(digits: str) -> int:
    """A Range position; anything past ``MAX_INT64`` is past every file, so it is read as
    ``MAX_INT64 + 1`` instead of converting thousands of digits."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else MAX_INT64 + 1


class Unsatisfiable(Exception):
    """The Range header is valid but selects nothing (answered with 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive byte range to send, or ``None`` for the whole file.

    Policy: one range is served as 206. A header that is not a single well-formed byte
    range (several ranges, another unit, bad syntax) is ignored and the whole file is
    sent with 200, as RFC 9110 allows. Raises ``Unsatisfiable`` for a range entirely
    past the end or an empty suffix.
    """
    if header is None:
        return None
    match = _RANGE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    start = _position(first)
    end = _position(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name in ``filename*``.

    The fallback is for old clients that save under it as given, so it is never a name
    that means a directory: a name that folds to nothing but dots, underscores and
    spaces (``．．`` becomes ``..`` under NFKD) falls back to ``download``.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = "".join(c if c.isprintable() and c not in '"\\/;%' else "_" for c in ascii_name).strip()
    if not fallback.strip("._ "):
        fallback = "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def percent_decoded(value: str) -> str:
    """A header value sent as percent-encoded UTF-8, decoded. Raises ``ValueError`` if it
    is not: bad escapes, or raw bytes beyond ASCII (the server reads those as Latin-1, so
    a UTF-8 name sent unencoded would be stored garbled rather than refused)."""
    if not value.isascii():
        raise ValueError("not percent-encoded")
    return unquote(value, errors="strict")


def filename_from_disposition(header: str) -> str | None:
    """The file name in a request's ``Content-Disposition`` (``filename*`` preferred).

    Raises ``ValueError`` when ``filename*`` is not valid percent-encoded UTF-8.
    """
    star = _FILENAME_STAR.search(header)
    if star:
        return unquote(star.group(1), errors="strict")
    plain = _FILENAME.search(header)
    if plain:
        quoted, bare = plain.groups()
        return re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    return None
