"""sealbox stream v1: round trips, ranges, and every kind of tampering."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.crypto.errors import FormatError, IntegrityError
from sealbox.crypto.stream import (
    ALLOWED_CHUNK_LOG2,
    HEADER_LEN,
    TAG_LEN,
    Opener,
    Sealer,
    chunk_log2_for,
    parse_header,
    plain_size_of,
    sealed_size,
)

DEK = bytes(range(32))
FILE_ID = bytes(range(100, 116))
C = 1 << 16


async def _pieces(data: bytes, sizes: Iterable[int]) -> AsyncIterator[bytes]:
    pos = 0
    for size in sizes:
        if pos >= len(data):
            break
        yield data[pos : pos + size]
        pos += size
    if pos < len(data):
        yield data[pos:]


async def _collect(source: AsyncIterator[bytes | bytearray | memoryview]) -> bytes:
    return b"".join([bytes(p) async for p in source])


def seal(data: bytes, sizes: Iterable[int] = (C,), chunk_log2: int = 16, dek: bytes = DEK) -> tuple[bytes, bytes]:
    sealer = Sealer(dek, FILE_ID, chunk_log2)
    blob = asyncio.run(_collect(sealer.seal(_pieces(data, sizes))))
    assert sealer.plain_size == len(data)
    return blob, sealer.header.tag


def open_blob(blob: bytes, start: int = 0, end: int | None = None, dek: bytes = DEK) -> bytes:
    header, k_pay = parse_header(blob[:HEADER_LEN], dek, FILE_ID)
    opener = Opener(header, k_pay, len(blob))
    last = opener.chunk_count - 1
    opener.verify_final(blob[slice(*_span(opener, last, last))])
    if opener.plain_size == 0:
        return b""
    end = opener.plain_size - 1 if end is None else end
    offset, length = opener.chunk_span(start // opener.chunk_size, end // opener.chunk_size)

    async def sealed() -> AsyncIterator[bytes]:
        for i in range(offset, offset + length, 40_000):  # odd piece size on purpose
            yield blob[i : min(i + 40_000, offset + length)]

    return asyncio.run(_collect(opener.open_range(sealed(), start, end)))


def _span(opener: Opener, first: int, last: int) -> tuple[int, int]:
    offset, length = opener.chunk_span(first, last)
    return offset, offset + length


@pytest.mark.parametrize("size", [0, 1, C - 1, C, C + 1, 3 * C + 7, 5 * C])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    blob, _ = seal(data)
    assert len(blob) == sealed_size(size)
    assert plain_size_of(len(blob), 16) == size
    assert open_blob(blob) == data


def test_header_layout_matches_the_spec() -> None:
    blob, tag = seal(b"hello")
    assert blob[:4] == b"SBOX"
    assert struct.unpack(">BBBB", blob[4:8]) == (1, 1, 16, 0)
    assert blob[8:24] == FILE_ID
    assert blob[56:88] == tag
    assert len(blob) == HEADER_LEN + 5 + TAG_LEN


def test_each_write_uses_a_fresh_salt() -> None:
    first, tag1 = seal(b"same plaintext")
    second, tag2 = seal(b"same plaintext")
    assert first[24:56] != second[24:56]
    assert tag1 != tag2
    assert first[HEADER_LEN:] != second[HEADER_LEN:]


@pytest.mark.parametrize("chunk_log2", [16, 18, 20])
def test_every_allowed_chunk_size_round_trips(chunk_log2: int) -> None:
    data = os.urandom((1 << chunk_log2) * 2 + 5)
    blob, _ = seal(data, sizes=[100_000] * 100, chunk_log2=chunk_log2)
    assert open_blob(blob) == data


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=5 * C + 3),
    sizes=st.lists(st.integers(min_value=1, max_value=3 * C), min_size=1, max_size=20),
    data=st.data(),
)
def test_random_sizes_chunkings_and_ranges_round_trip(size: int, sizes: list[int], data: st.DataObject) -> None:
    plain = os.urandom(size)
    blob, _ = seal(plain, sizes)
    assert open_blob(blob) == plain
    if size:
        start = data.draw(st.integers(min_value=0, max_value=size - 1))
        end = data.draw(st.integers(min_value=start, max_value=size - 1))
        assert open_blob(blob, start, end) == plain[start : end + 1]


def _flip(blob: bytes, offset: int) -> bytes:
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1 :]


DATA = os.urandom(3 * C + 7)


@pytest.mark.parametrize(
    "offset",
    [0, 4, 5, 6, 7, 8, 30, 60, HEADER_LEN, HEADER_LEN + C + TAG_LEN + 100, -1, -TAG_LEN, -TAG_LEN - 1],
    ids=lambda o: f"byte{o}",
)
def test_a_flipped_bit_anywhere_never_yields_plaintext(offset: int) -> None:
    blob, _ = seal(DATA)
    with pytest.raises(IntegrityError):
        open_blob(_flip(blob, offset % len(blob)))


def test_truncation_at_a_chunk_boundary_is_detected() -> None:
    blob, _ = seal(DATA)
    with pytest.raises(IntegrityError):
        open_blob(blob[: HEADER_LEN + 2 * (C + TAG_LEN)])


def test_an_appended_chunk_is_detected() -> None:
    blob, _ = seal(DATA)
    with pytest.raises(IntegrityError):
        open_blob(blob + blob[HEADER_LEN : HEADER_LEN + C + TAG_LEN])


def test_reordered_chunks_are_detected() -> None:
    blob, _ = seal(DATA)
    a = HEADER_LEN
    b = a + C + TAG_LEN
    swapped = blob[:a] + blob[b : b + C + TAG_LEN] + blob[a:b] + blob[b + C + TAG_LEN :]
    with pytest.raises(IntegrityError):
        open_blob(swapped, 0, C - 1)


def test_a_blob_opens_only_with_its_own_key_and_file_id() -> None:
    blob, _ = seal(b"x" * 100)
    with pytest.raises(IntegrityError):
        open_blob(blob, dek=bytes(32))
    with pytest.raises(IntegrityError):
        parse_header(blob[:HEADER_LEN], DEK, bytes(16))


def test_middle_chunk_damage_is_found_before_its_bytes_are_released() -> None:
    blob, _ = seal(DATA)
    damaged = _flip(blob, HEADER_LEN + 2 * (C + TAG_LEN) + 10)
    # The first chunk is fine and is served; the damaged one raises instead of yielding.
    assert open_blob(damaged, 0, C - 1) == DATA[:C]
    with pytest.raises(IntegrityError):
        open_blob(damaged, 2 * C, 2 * C + 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (slice(0, 4), b"XBOX"),
        (slice(4, 5), b"\x02"),
        (slice(5, 6), b"\x02"),
        (slice(6, 7), b"\x11"),
        (slice(7, 8), b"\x01"),
    ],
    ids=["magic", "version", "alg", "chunk_log2", "flags"],
)
def test_unknown_header_fields_are_rejected_before_use(field: slice, value: bytes) -> None:
    blob, _ = seal(b"abc")
    raw = bytearray(blob[:HEADER_LEN])
    raw[field] = value
    with pytest.raises(FormatError):
        parse_header(bytes(raw), DEK, FILE_ID)


def test_impossible_blob_sizes_are_rejected() -> None:
    with pytest.raises(FormatError):
        plain_size_of(HEADER_LEN + 3, 16)
    with pytest.raises(FormatError):
        plain_size_of(HEADER_LEN + C + TAG_LEN + TAG_LEN, 16)  # an empty chunk after a full one
    with pytest.raises(FormatError):
        plain_size_of(HEADER_LEN + 100, 17)


def test_plaintext_is_not_released_before_the_final_chunk_verifies() -> None:
    blob, _ = seal(DATA)
    header, k_pay = parse_header(blob[:HEADER_LEN], DEK, FILE_ID)
    opener = Opener(header, k_pay, len(blob))

    async def run() -> None:
        async def sealed() -> AsyncIterator[bytes]:
            yield blob[HEADER_LEN:]

        async for _ in opener.open_range(sealed(), 0, 10):
            pass

    with pytest.raises(RuntimeError):
        asyncio.run(run())


def test_source_errors_propagate_through_sealing() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"a" * (3 << 20)
        raise ConnectionResetError("client went away")

    async def run() -> None:
        async for _ in Sealer(DEK, FILE_ID).seal(failing()):
            pass

    with pytest.raises(ConnectionResetError):
        asyncio.run(run())


@pytest.mark.parametrize("size_hint", [None, 0, 1, 65536, 1 << 20, 4 << 20, 1 << 30, 64 << 30])
def test_chosen_chunk_size_is_one_readers_accept(size_hint: int | None) -> None:
    chunk_log2 = chunk_log2_for(size_hint)
    assert chunk_log2 in ALLOWED_CHUNK_LOG2
    data = os.urandom(3 * (1 << chunk_log2) + 5)
    blob, _ = seal(data, chunk_log2=chunk_log2)
    assert blob[6] == chunk_log2  # recorded in the header, so readers never guess it
    assert open_blob(blob) == data
