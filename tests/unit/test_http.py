"""Range parsing (RFC 9110 §14) and Content-Disposition (RFC 6266)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox.api.http import Unsatisfiable, content_disposition, filename_from_disposition, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=8-100", 10, (8, 9)),
        ("BYTES = 1 - 2", 10, (1, 2)),
        ("bytes=0-1,4-5", 10, None),  # several ranges: ignored, whole file
        ("items=0-1", 10, None),
        ("bytes=5-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=abc", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-0", 0), ("bytes=-1", 0)]
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_content_disposition_keeps_the_exact_name_and_a_safe_fallback() -> None:
    value = content_disposition('résumé "final"; v2/../x.pdf')
    assert value.startswith('attachment; filename="resume _final__ v2_.._x.pdf"')
    assert value.endswith("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B%20v2%2F..%2Fx.pdf")
    assert content_disposition("a\r\nb") == "attachment; filename=\"a__b\"; filename*=UTF-8''a%0D%0Ab"
    assert (
        content_disposition("日本語")
        == "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E"
    )


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf", "résumé.pdf"),
        ("attachment; filename=\"fallback.pdf\"; filename*=UTF-8''real.pdf", "real.pdf"),
        ('attachment; filename="a \\"q\\".txt"', 'a "q".txt'),
        ("attachment; filename=plain.txt", "plain.txt"),
        ("attachment", None),
    ],
)
def test_filename_from_disposition(header: str, name: str | None) -> None:
    assert filename_from_disposition(header) == name


@pytest.mark.parametrize("name", ["．．", "．", "..", "‥", "…", "_.", " . ", "．／．．"])
def test_content_disposition_fallback_never_names_a_directory(name: str) -> None:
    assert content_disposition(name).startswith('attachment; filename="download";')


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200))
def test_content_disposition_fallback_is_a_plain_safe_name_for_any_name(name: str) -> None:
    header = content_disposition(name)
    match = re.fullmatch(r'attachment; filename="([^"]*)"; filename\*=UTF-8\'\'(\S+)', header)
    assert match is not None
    fallback = match.group(1)
    assert fallback.isascii()
    assert fallback.isprintable()
    assert fallback.strip("._ ") != ""
    assert not any(c in fallback for c in '"\\/;%')
    assert filename_from_disposition(header) == name  # the exact name survives in filename*
