"""The one validator for names and short texts that people choose.

Every name a client supplies (file names, uploader names, user names, token names) and
every short text shown to someone else (a link's note) passes through here before it is
stored, so that what one person typed cannot mislead another person or a program:

- text is normalised to Unicode NFC (a name typed on two systems is one name);
- these Unicode categories are refused: ``Cc`` (controls, NUL, newlines), ``Cf`` (format:
  bidirectional overrides and isolates, zero-width spaces and joiners, soft hyphen),
  ``Zl``/``Zp`` (line and paragraph separators), ``Cs`` (lone surrogates, which no
  database can hold), ``Co`` (private use) and ``Cn`` (unassigned). A note may
  contain line breaks and tabs, nothing else of these;
- names are bounded in characters after normalisation, and a name that is only
  whitespace is no name.

This module sits beside ``sealbox.errors`` at the top of the package so every domain can
import it without importing another domain.
"""

from __future__ import annotations

import re
import unicodedata

from sealbox.errors import InvalidInput

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
MAX_FILE_NAME = 255
MAX_UPLOADER = 200
MAX_LABEL = 100
MAX_NOTE = 1000
# Account names are plain ASCII: they appear in URLs, logs and the audit trail.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_NOTE_ALLOWED = frozenset("\n\t")


def _refused(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    for char in value:
        if char not in allowed and unicodedata.category(char) in REFUSED_CATEGORIES:
            return char
    return None


def text(value: str, what: str, max_length: int, *, multiline: bool = False) -> str:
    """``value`` in NFC if it is an acceptable ``what``; raise ``InvalidInput`` naming the problem.

    ``what`` starts the message ("a file name", "the uploader's name"). Lone surrogates
    are refused before normalisation, which cannot handle them.
    """
    char = _refused(value, _NOTE_ALLOWED if multiline else frozenset())
    if char is None:
        value = unicodedata.normalize("NFC", value)
        char = _refused(value, _NOTE_ALLOWED if multiline else frozenset())
    if char is not None:
        raise InvalidInput(
            f"{what} must not contain control characters, invisible characters or formatting characters"
            f" (U+{ord(char):04X} found)"
        )
    if not value.strip():
        raise InvalidInput(f"{what} is required")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is at most {max_length} characters")
    return value


def file_name(name: str) -> str:
    """A file's display name, in NFC. It never becomes a path, but it is still refused
    when a program saving the download could take it for one."""
    name = text(name, "a file name", MAX_FILE_NAME)
    if "/" in name or "\\" in name or name.strip() in {".", ".."}:
        raise InvalidInput("a file name must not contain '/' or '\\' or be '.' or '..'")
    return name


def uploader_name(name: str | None) -> str | None:
    """What someone sending files through an upload link says about themselves (optional)."""
    return None if name is None else text(name, "the uploader's name", MAX_UPLOADER)


def label(name: str, what: str) -> str:
    """A short label an account gives to something of its own (a token's name)."""
    return text(name, what, MAX_LABEL)


def note(value: str | None) -> str | None:
    """A link's note for its recipients: several lines allowed; a blank note is no note."""
    return None if value is None or not value.strip() else text(value, "the note", MAX_NOTE, multiline=True)


def user_name(name: str) -> str:
    """An account name: 1-64 ASCII letters, digits or ``_.@-``, the whole string (no
    trailing newline slips through, unlike ``$``)."""
    if not USERNAME.fullmatch(name):
        raise InvalidInput("a user name is 1-64 letters, digits or '_.@-', starting with a letter or digit")
    return name
