from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox import names
from sealbox.errors import InvalidInput
from sealbox.files.names import check_content_type, servable_content_type

# One example of each kind of character the validator refuses, for every name kind.
HOSTILE = {
    "NUL": "a\x00b",
    "newline": "a\nb",
    "DEL": "a\x7fb",
    "C1 control": "a\x85b",
    "bidi override": "invoice\u202efdp.exe",
    "bidi isolate": "a\u2066b",
    "zero-width space": "a\u200bb",
    "zero-width joiner": "a\u200db",
    "byte order mark": "\ufeffa",
    "line separator": "a\u2028b",
    "paragraph separator": "a\u2029b",
    "private use": "a\ue000b",
    "unassigned": "a\U000e0fffb",
    "lone surrogate": "a\ud800b",
}
NAME_KINDS = {
    "file name": (names.file_name, names.MAX_FILE_NAME),
    "uploader": (names.uploader_name, names.MAX_UPLOADER),
    "token name": (lambda v: names.label(v, "a token's name"), names.MAX_LABEL),
}


@pytest.mark.parametrize("name", ["report.pdf", "été 2026.txt", "..hidden", "a" * 255, "名前.png", "x y (1).tar.gz"])
def test_acceptable_names(name: str) -> None:
    assert names.file_name(name) == name


def test_names_are_normalised_to_nfc() -> None:
    decomposed = "e\u0301te\u0301.txt"
    assert names.file_name(decomposed) == "été.txt"
    assert names.uploader_name("Zoe\u0308") == "Zoë"


@pytest.mark.parametrize("kind", NAME_KINDS)
@pytest.mark.parametrize("case", HOSTILE)
def test_every_name_kind_refuses_control_format_and_invisible_characters(kind: str, case: str) -> None:
    check, _ = NAME_KINDS[kind]
    with pytest.raises(
        InvalidInput, match=r"must not contain control characters, invisible characters or formatting characters \(U\+"
    ):
        check(HOSTILE[case])


@pytest.mark.parametrize("kind", NAME_KINDS)
def test_every_name_kind_is_bounded_and_not_blank(kind: str) -> None:
    check, limit = NAME_KINDS[kind]
    assert check("a" * limit) == "a" * limit
    with pytest.raises(InvalidInput, match=f"at most {limit} characters"):
        check("a" * (limit + 1))
    for blank in ("", "   "):
        with pytest.raises(InvalidInput, match="is required"):
            check(blank)


@pytest.mark.parametrize(("name", "message"), [("../etc/passwd", "'/'"), ("a\\b", "'/'"), ("..", "'/'"), (".", "'/'")])
def test_file_names_that_look_like_paths_are_refused(name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        names.file_name(name)


def test_notes_keep_line_breaks_but_refuse_other_controls() -> None:
    assert names.note("line one\n\tline two") == "line one\n\tline two"
    assert names.note("  ") is None
    for case in ("a\x00", "a\u202eb", "a\rb", "x" * (names.MAX_NOTE + 1)):
        with pytest.raises(InvalidInput):
            names.note(case)


@pytest.mark.parametrize("name", ["bob\n", "bob\r\n", "\nbob", "bo b", "bob\x00", "ｂｏｂ", "", "-bob", "b" * 65])
def test_user_names_match_as_a_whole(name: str) -> None:
    with pytest.raises(InvalidInput, match="a user name is 1-64"):
        names.user_name(name)


@given(st.text(max_size=300))
def test_whatever_a_name_is_the_validator_accepts_only_clean_nfc_text(name: str) -> None:
    try:
        cleaned = names.file_name(name)
    except InvalidInput:
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert 0 < len(cleaned) <= names.MAX_FILE_NAME
    assert not any(unicodedata.category(c) in names.REFUSED_CATEGORIES for c in cleaned)
    assert "/" not in cleaned
    assert "\\" not in cleaned


def test_content_types() -> None:
    assert check_content_type(None, "a.pdf") == "application/pdf"
    assert check_content_type("", "noext") == "application/octet-stream"
    assert check_content_type('text/plain; charset="utf-8"', "a") == 'text/plain; charset="utf-8"'
    for bad in ["text", "text/plain\r\nX-Evil: 1", "a/b; c", "<b>/x"]:
        with pytest.raises(InvalidInput):
            check_content_type(bad, "a")


@pytest.mark.parametrize("bad", ["text/plain\n", "text/html\r", "a/b;\nc=d", 'a/b; c="\u4e2d"', "a/b\t\n"])
def test_content_types_that_cannot_be_a_header_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_content_type(bad, "a")
    assert servable_content_type(bad) == "application/octet-stream"


@given(value=st.text(max_size=80))
def test_every_accepted_content_type_is_a_valid_header_value(value: str) -> None:
    try:
        accepted = check_content_type(value, "a")
    except InvalidInput:
        return
    encoded = accepted.encode("latin-1")  # what the HTTP server sends: no other characters fit
    assert all(0x20 <= byte < 0x7F or byte == 0x09 for byte in encoded)
    assert servable_content_type(accepted) == accepted


@pytest.mark.parametrize(
    "name",
    [
        "invoice\u3164\u3164.pdf\u3164.exe",  # Hangul fillers: letters drawn as nothing
        "\u115f\u1160.txt",
        "a\u034fb.txt",  # combining grapheme joiner
        "a\u17b4b.txt",
        "a\u180bb.txt",  # Mongolian variation selector
        "a\ufe00b.txt",  # a variation selector that is no emoji's
        "a\U000e0100b.txt",
        "\uffa0.txt",
    ],
)
def test_default_ignorable_characters_are_refused_in_every_kind_of_name(name: str) -> None:
    for check in (names.file_name, names.uploader_name, lambda n: names.label(n, "a token name")):
        with pytest.raises(InvalidInput, match="invisible characters"):
            check(name)


@pytest.mark.parametrize("name", ["\u2800", " \u2800 ", "\u0338.txt", "\u20dd"])
def test_blank_names_and_names_starting_with_a_combining_mark_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=r"required|combining mark"):
        names.file_name(name)


@pytest.mark.parametrize("name", ["\u2764\ufe0f.png", "caf\u00e9.txt", "\u2800x.txt", "\u0915\u093f.txt"])
def test_emoji_accents_and_braille_stay_allowed(name: str) -> None:
    assert names.file_name(name) == name
