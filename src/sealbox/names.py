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
- so are the code points Unicode marks default-ignorable (drawn as nothing) outside those
  categories: Hangul fillers, Mongolian and other variation selectors, the combining
  grapheme joiner and their kind (emoji presentation selectors U+FE0E/U+FE0F stay
  allowed: emoji need them);
- names are bounded in characters after normalisation; a name that is only whitespace or
  blank signs (the braille blank) is no name, and a name cannot start with a combining
  mark (which would attach to whatever is shown before it).

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
# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties) outside the refused
# categories, but for the emoji presentation selectors U+FE0E and U+FE0F.
_IGNORABLE = frozenset(
    chr(c)
    for first, last in (
        (0x034F, 0x034F),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0D),
        (0xFFA0, 0xFFA0),
        (0xE0100, 0xE01EF),
    )
    for c in range(first, last + 1)
)
_BLANK = frozenset("\u2800")  # the braille pattern blank: a sign, drawn as a space
_MARKS = frozenset({"Mn", "Mc", "Me"})


def _refused(value: str, allowed: frozenset[str] = frozenset()) -> str | None:
    for char in value:
        if char in allowed:
            continue
        if char in _IGNORABLE or unicodedata.category(char) in REFUSED_CATEGORIES:
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
    if all(char.isspace() or char in _BLANK for char in value):
        raise InvalidInput(f"{what} is required")
    if unicodedata.category(value[0]) in _MARKS:
        raise InvalidInput(f"{what} must not start with a combining mark (U+{ord(value[0]):04X} found)")
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


def folder_name(name: str) -> str:
    """A folder's name: the rules of a file name (it becomes a directory when a folder
    is downloaded as an archive or into a directory)."""
    name = text(name, "a folder name", MAX_FILE_NAME)
    if "/" in name or "\\" in name or name.strip() in {".", ".."}:
        raise InvalidInput("a folder name must not contain '/' or '\\' or be '.' or '..'")
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
