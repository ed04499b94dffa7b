"""Every parser of client-supplied headers and forms either returns a value or raises
its documented error: never anything else, whatever the input."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sealbox.api.http import (
    MAX_INT64,
    Unsatisfiable,
    content_disposition,
    filename_from_disposition,
    parse_count,
    parse_range,
)
from sealbox.api.routes.tus import parse_metadata
from sealbox.errors import InvalidInput
from sealbox.inputs import made_storable, storable
from sealbox.web.forms import MAX_FIELDS, parse_form

# Header values as uvicorn hands them over: latin-1 text.
header_text = st.text(st.characters(max_codepoint=0xFF), max_size=200)
digits = st.text("0123456789", min_size=1, max_size=40)


@given(
    header=st.one_of(header_text, st.builds(lambda a, b: f"bytes={a}-{b}", digits, digits)),
    size=st.integers(0, MAX_INT64),
)
@example(header="bytes=" + "9" * 5000 + "-", size=10)
@example(header="bytes=-" + "9" * 5000, size=10)
@example(header="bytes=0-" + "9" * 5000, size=10)
@example(header="bytes=²-3", size=10)
def test_range_is_a_range_inside_the_file_or_unsatisfiable(header: str, size: int) -> None:
    try:
        selected = parse_range(header, size)
    except Unsatisfiable:
        return
    if selected is not None:
        start, end = selected
        assert 0 <= start <= end < size


@given(start=st.integers(0, MAX_INT64), length=st.integers(1, 1000), size=st.integers(1, MAX_INT64))
def test_range_round_trips(start: int, length: int, size: int) -> None:
    end = start + length - 1
    if start >= size:
        with pytest.raises(Unsatisfiable):
            parse_range(f"bytes={start}-{end}", size)
    else:
        assert parse_range(f"bytes={start}-{end}", size) == (start, min(end, size - 1))


@given(value=header_text)
@example(value="²")
@example(value="١٢")
@example(value=str(MAX_INT64 + 1))
@example(value="9" * 5000)
def test_tus_integer_headers_are_bounded_ascii_counts(value: str) -> None:
    try:
        parsed = parse_count(value, "Upload-Length")
    except InvalidInput as exc:
        message = str(exc)
        assert "Upload-Length" in message
        return
    assert 0 <= parsed <= MAX_INT64
    assert value.isascii()
    assert str(parsed) == value.lstrip("0").rjust(1, "0")


@given(value=st.integers(0, MAX_INT64))
def test_counts_round_trip(value: int) -> None:
    assert parse_count(str(value), "Upload-Offset") == value


@given(value=header_text)
def test_upload_metadata_parses_or_is_invalid_input(value: str) -> None:
    try:
        result = parse_metadata(value)
    except InvalidInput:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


metadata_keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=","), min_size=1)


@given(pairs=st.dictionaries(metadata_keys, st.text().filter(storable), max_size=5))
def test_upload_metadata_round_trips(pairs: dict[str, str]) -> None:
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())
    assert parse_metadata(header) == pairs


@given(header=header_text)
def test_content_disposition_filename_parses_or_is_value_error(header: str) -> None:
    try:
        name = filename_from_disposition(header)
    except ValueError:
        return
    assert name is None or isinstance(name, str)


@given(name=st.text(min_size=1, max_size=300).filter(storable))
def test_content_disposition_round_trips(name: str) -> None:
    header = content_disposition(name)
    header.encode("latin-1")  # a header value must be sendable as such
    assert filename_from_disposition(header) == name


@given(body=st.binary(max_size=500))
@example(body=b"a=%ff")
@example(body=b"a=%ed%a0%80")  # a lone surrogate, encoded
@example(body=b"&".join([b"a=1"] * (MAX_FIELDS + 1)))
def test_form_parses_or_is_invalid_input(body: bytes) -> None:
    try:
        fields = parse_form(body)
    except InvalidInput:
        return
    assert len(fields) <= MAX_FIELDS
    assert all(storable(v) or "\x00" in v for v in fields.values())


@given(
    fields=st.dictionaries(st.text(min_size=1), st.text(), max_size=MAX_FIELDS).map(
        lambda d: {made_storable(k): made_storable(v) for k, v in d.items()}
    )
)
def test_form_round_trips(fields: dict[str, str]) -> None:
    assert parse_form(urlencode(fields).encode()) == fields
