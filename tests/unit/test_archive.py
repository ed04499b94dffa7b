"""Streamed ZIP archives: exact length, and accepted by Python's zipfile, unzip, bsdtar and 7-Zip."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.archive import ArchiveError, Member, archive_size, zip_stream

WHEN = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
SEVEN_ZIP = shutil.which("7z") or shutil.which("7zz")
TOOLS = {"unzip": shutil.which("unzip"), "bsdtar": shutil.which("bsdtar"), "7z": SEVEN_ZIP}
needs_tools = pytest.mark.skipif(
    None in TOOLS.values(), reason="unzip, bsdtar (libarchive-tools) or 7z (p7zip-full) is not installed"
)

Piece = bytes | bytearray | memoryview


def content(
    data: bytes, piece: int = 1 << 16, kind: Callable[[bytes], Piece] = bytes
) -> Callable[[], AsyncIterator[Piece]]:
    async def pieces() -> AsyncIterator[Piece]:
        for start in range(0, len(data), piece):
            yield kind(data[start : start + piece])

    return pieces


def file(path: str, data: bytes, **kwargs: object) -> Member:
    return Member(path=path, size=len(data), modified=WHEN, open=content(data, **kwargs))  # type: ignore[arg-type]


def folder(path: str) -> Member:
    return Member(path=path, size=0, modified=WHEN, open=None)


async def collect(members: Iterable[Member]) -> bytes:
    out = bytearray()
    async for piece in zip_stream(members):
        assert type(piece) is bytes
        out += piece
    return bytes(out)


def build(members: list[Member]) -> bytes:
    archive = asyncio.run(collect(members))
    assert archive_size(members) == len(archive)
    return archive


def expected_tree(members: list[Member], contents: dict[str, bytes]) -> dict[str, bytes | None]:
    return {m.path: (None if m.path.endswith("/") else contents[m.path]) for m in members}


def check_with_zipfile(archive: bytes, expected: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert z.testzip() is None
        assert [i.filename for i in z.infolist()] == list(expected)
        for info in z.infolist():
            want = expected[info.filename]
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.flag_bits & 0x800, "names are flagged as UTF-8"
            if want is None:
                assert info.is_dir()
            else:
                assert not info.is_dir()
                assert info.flag_bits & 0x8, "files carry a data descriptor"
                assert z.read(info) == want


def check_with_tools(archive: bytes, expected: dict[str, bytes | None], tmp_path: Path, extract: bool = True) -> None:
    path = tmp_path / "archive.zip"
    path.write_bytes(archive)
    unzip = subprocess.run(["unzip", "-t", path], capture_output=True, text=True, check=False)
    assert unzip.returncode == 0, unzip.stdout + unzip.stderr
    assert "No errors detected" in unzip.stdout
    listing = subprocess.run(["bsdtar", "-tf", path], capture_output=True, text=True, check=True)
    assert listing.stdout.splitlines() == list(expected)
    if extract:
        # From a pipe, bsdtar reads as a stream: local headers and data descriptors only.
        out = tmp_path / "extracted"
        out.mkdir()
        subprocess.run(["bsdtar", "-xf", "-", "-C", out], input=archive, check=True)
        extracted = {
            p.relative_to(out).as_posix() + ("/" if p.is_dir() else ""): (None if p.is_dir() else p.read_bytes())
            for p in out.rglob("*")
        }
        assert extracted == expected
    seven = subprocess.run([SEVEN_ZIP, "t", path], capture_output=True, text=True, check=False)  # type: ignore[list-item]
    assert seven.returncode == 0, seven.stdout + seven.stderr
    assert "Everything is Ok" in seven.stdout


NAMES = {
    "nested": ["a/", "a/b/", "a/b/c/", "a/b/c/deep.txt", "a/top.txt", "root.bin", "a/10:30 notes.txt"],
    "utf8": ["Ελληνικά/", "Ελληνικά/αρχείο.txt", "日本語のファイル.txt", "café ☕.md", "emoji 📁/", "emoji 📁/🎉.bin"],
    "empty file": ["empty.txt"],
    "empty directory": ["nothing here/"],
}


@needs_tools
@pytest.mark.parametrize("case", list(NAMES))
def test_archive_is_accepted_by_every_reader(case: str, tmp_path: Path) -> None:
    contents = {name: (b"" if case == "empty file" else os.urandom(i * 1000 + 7)) for i, name in enumerate(NAMES[case])}
    members = [folder(n) if n.endswith("/") else file(n, contents[n]) for n in NAMES[case]]
    archive = build(members)
    expected = expected_tree(members, contents)
    check_with_zipfile(archive, expected)
    check_with_tools(archive, expected, tmp_path)


def test_empty_archive_is_an_end_record_alone() -> None:
    archive = build([])
    assert archive == struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0, 0, 0, 0, 0)
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert z.namelist() == []


@needs_tools
def test_content_in_uneven_pieces_of_every_buffer_type(tmp_path: Path) -> None:
    # Pieces smaller and larger than the writer's batch, as bytes, bytearray and memoryview.
    data = os.urandom(3 * 1024 * 1024 + 17)
    members = [
        file("small pieces", data, piece=1000, kind=bytearray),
        file("large pieces", data, piece=1 << 20, kind=memoryview),
        file("odd pieces", data, piece=70_001),
    ]
    archive = build(members)
    expected = {m.path: data for m in members}
    check_with_zipfile(archive, expected)
    check_with_tools(archive, expected, tmp_path)


@pytest.mark.slow
@needs_tools
def test_zip64_for_more_than_65535_members(tmp_path: Path) -> None:
    # Flat names keep the check cheap: extracting 65,536 files is left to the smaller cases.
    members = [file(f"f{i}", bytes([i % 256]) * (i % 2)) for i in range(65_536)]
    members += [folder(f"empty{i}/") for i in range(3)]
    archive = build(members)
    assert struct.pack("<I", 0x06064B50) in archive[-200:], "a ZIP64 end record"
    # The classic end record saturates its 16-bit count.
    assert struct.unpack("<H", archive[-12:-10])[0] == 0xFFFF
    expected = {m.path: (None if m.open is None else bytes([i % 256]) * (i % 2)) for i, m in enumerate(members)}
    check_with_zipfile(archive, expected)
    check_with_tools(archive, expected, tmp_path, extract=False)


names = st.text(st.sampled_from("ab.é日 -_"), min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(names, min_size=1, max_size=3), st.booleans(), st.integers(0, 5000), st.integers(1, 3000)),
        max_size=8,
    )
)
def test_any_members_give_an_archive_of_the_announced_length_and_content(
    specs: list[tuple[list[str], bool, int, int]],
) -> None:
    members: list[Member] = []
    expected: dict[str, bytes | None] = {}
    for parts, is_dir, size, piece in specs:
        path = "/".join(parts) + ("/" if is_dir else "")
        if path in expected:
            continue
        data = bytes([len(expected) % 256]) * size
        members.append(folder(path) if is_dir else file(path, data, piece=piece))
        expected[path] = None if is_dir else data
    archive = build(members)  # checks the announced length
    check_with_zipfile(archive, expected)


def test_modification_times_are_written_as_dos_time_and_unix_time() -> None:
    times = {
        "utc": WHEN,
        "other zone": datetime(2026, 3, 14, 17, 9, 26, tzinfo=timezone(timedelta(hours=2))),
        "before 1980": datetime(1970, 1, 2, tzinfo=UTC),
        "after 2038": datetime(2100, 1, 1, tzinfo=UTC),
        "after 2107": datetime(2200, 1, 1, tzinfo=UTC),
    }
    members = [Member(path=k, size=1, modified=v, open=content(b"x")) for k, v in times.items()]
    archive = build(members)
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        infos = {i.filename: i for i in z.infolist()}
    assert infos["utc"].date_time == (2026, 3, 14, 15, 9, 26)
    assert infos["other zone"].date_time == (2026, 3, 14, 15, 9, 26)
    assert infos["before 1980"].date_time == (1980, 1, 1, 0, 0, 0)
    assert infos["after 2038"].date_time == (2100, 1, 1, 0, 0, 0)
    assert infos["after 2107"].date_time == (2107, 12, 31, 23, 59, 58)

    def unix_time(info: zipfile.ZipInfo) -> int | None:
        extra = info.extra
        while extra:
            tag, length = struct.unpack("<HH", extra[:4])
            if tag == 0x5455:
                return int(struct.unpack("<I", extra[5:9])[0])
            extra = extra[4 + length :]
        return None

    assert unix_time(infos["utc"]) == int(WHEN.timestamp())
    assert unix_time(infos["other zone"]) == int(WHEN.timestamp())
    assert unix_time(infos["before 1980"]) == 86400
    assert unix_time(infos["after 2038"]) is None, "beyond a signed 32-bit Unix time: DOS time only"


@pytest.mark.parametrize(("declared", "actual"), [(10, 9), (10, 0), (10, 11), (0, 1), (70_000, 140_000)])
def test_content_of_the_wrong_length_raises(declared: int, actual: int) -> None:
    data = os.urandom(actual)
    members = [
        file("before", b"fine"),
        Member(path="liar", size=declared, modified=WHEN, open=content(data, piece=max(1, actual // 2))),
        file("after", b"never reached"),
    ]
    limit = archive_size(members[:1]) + 100 + declared  # headers of the second member included
    received = bytearray()

    async def run() -> None:
        async for piece in zip_stream(members):
            received.extend(piece)

    with pytest.raises(ArchiveError, match=r"archive member 1: the content is (longer|shorter) than its size") as e:
        asyncio.run(run())
    assert "liar" not in str(e.value)
    assert len(received) <= limit, "no byte beyond the declared size is sent"
    assert b"never reached" not in received


UNFIT = {
    "empty path": Member(path="", size=0, modified=WHEN, open=content(b"")),
    "absolute": Member(path="/etc/passwd", size=0, modified=WHEN, open=content(b"")),
    "parent": Member(path="a/../../b", size=0, modified=WHEN, open=content(b"")),
    "leading parent": Member(path="../b", size=0, modified=WHEN, open=content(b"")),
    "dot": Member(path="./b", size=0, modified=WHEN, open=content(b"")),
    "empty part": Member(path="a//b", size=0, modified=WHEN, open=content(b"")),
    "root directory": Member(path="/", size=0, modified=WHEN, open=None),
    "backslash": Member(path="a\\..\\b", size=0, modified=WHEN, open=content(b"")),
    "nul": Member(path="a\0b", size=0, modified=WHEN, open=content(b"")),
    "too long": Member(path="é" * 32_768, size=0, modified=WHEN, open=content(b"")),
    "directory with content": Member(path="secret dir/", size=1, modified=WHEN, open=content(b"x")),
    "directory with opener": Member(path="secret dir/", size=0, modified=WHEN, open=content(b"")),
    "file without content": Member(path="secret.txt", size=0, modified=WHEN, open=None),
    "negative size": Member(path="secret.txt", size=-1, modified=WHEN, open=content(b"")),
    "naive time": Member(path="secret.txt", size=0, modified=datetime(2026, 1, 1), open=content(b"")),
}


@pytest.mark.parametrize("case", list(UNFIT))
def test_unfit_members_are_refused_before_any_byte(case: str) -> None:
    members = [UNFIT[case]]
    with pytest.raises(ArchiveError, match=r"^archive member 0: ") as e:
        archive_size(members)
    assert not members[0].path or members[0].path not in str(e.value), "paths are never in messages"
    received: list[bytes] = []

    async def run() -> None:
        async for piece in zip_stream(members):
            received.append(piece)

    with pytest.raises(ArchiveError, match=r"^archive member 0: "):
        asyncio.run(run())
    assert received == []


def test_duplicate_paths_are_refused() -> None:
    members = [file("a/b", b"1"), folder("a/"), file("a/b", b"2")]
    with pytest.raises(ArchiveError, match="archive member 2: the path appears twice"):
        archive_size(members)
    with pytest.raises(ArchiveError, match="archive member 2: the path appears twice"):
        asyncio.run(collect(members))


def test_content_is_opened_only_when_reached_and_closed_when_the_consumer_stops() -> None:
    events: list[str] = []

    def opener(name: str) -> Callable[[], AsyncIterator[bytes]]:
        def open_content() -> AsyncIterator[bytes]:
            events.append(f"open {name}")
            return pieces(name)

        return open_content

    async def pieces(name: str) -> AsyncIterator[bytes]:
        try:
            for _ in range(4):
                yield b"\0" * 65536
        finally:
            events.append(f"closed {name}")

    members = [Member(path=n, size=4 * 65536, modified=WHEN, open=opener(n)) for n in ("one", "two", "three")]

    async def run() -> None:
        stream = zip_stream(members)
        received = 0
        async for piece in stream:
            received += len(piece)
            events.append("piece")
            if received > 5 * 65536:  # inside the second member
                break
        await stream.aclose()

    asyncio.run(run())
    assert events.index("open one") == 0
    assert events.index("open two") > events.index("closed one") > events.index("piece")
    assert events[-1] == "closed two"
    assert "open three" not in events


def test_an_error_from_the_content_passes_through_and_closes_it() -> None:
    closed: list[bool] = []

    class Tampered(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        try:
            yield b"good"
            raise Tampered("chunk 2 failed authentication")
        finally:
            closed.append(True)

    members = [Member(path="f", size=100, modified=WHEN, open=failing), file("never", b"x")]
    with pytest.raises(Tampered):
        asyncio.run(collect(members))
    assert closed == [True]


def test_memory_stays_bounded_whatever_the_size() -> None:
    # 256 MiB in 1 MiB pieces, as bytes and as a reused bytearray (as decrypt_into fills).
    piece = os.urandom(1 << 20)
    buffer = bytearray(piece)

    async def pieces(kind: bytes | bytearray) -> AsyncIterator[bytes | bytearray]:
        for _ in range(128):
            yield kind

    members = [
        Member(path="bytes", size=128 << 20, modified=WHEN, open=lambda: pieces(piece)),
        Member(path="reused buffer", size=128 << 20, modified=WHEN, open=lambda: pieces(buffer)),
    ]

    async def run() -> tuple[int, int]:
        total = crc = 0
        async for out in zip_stream(members):
            total += len(out)
            crc = zlib.crc32(out, crc)
        return total, crc

    tracemalloc.start()
    try:
        total, _ = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == archive_size(members) > 256 << 20
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_the_writer_touches_no_file() -> None:
    opened: list[str] = []
    watching = False

    def hook(event: str, args: tuple[object, ...]) -> None:
        if watching and (event in ("open", "os.mkdir", "os.rename", "shutil.copyfile") or event.startswith("tempfile")):
            opened.append(event)

    sys.addaudithook(hook)  # hooks cannot be removed; this one is inert once `watching` is False
    members = [folder("a/"), file("a/b", os.urandom(1 << 20)), file("c", b"")]
    watching = True
    try:
        archive = asyncio.run(collect(members))
    finally:
        watching = False
    assert len(archive) == archive_size(members)
    assert opened == []


@pytest.mark.slow
@needs_tools
def test_offsets_and_members_past_4_gib(tmp_path: Path) -> None:
    # A 4.1 GiB member of zeros, written as a sparse file, puts the members after it past
    # the 32-bit offsets and needs a ZIP64 size itself.
    zeros = bytes(8 << 20)
    big = 4 * 2**30 + 100 * 2**20

    async def zero_pieces() -> AsyncIterator[bytes]:
        for _ in range(big // len(zeros)):
            yield zeros
        yield zeros[: big % len(zeros)]

    tail = os.urandom(12345)
    members = [
        file("first.txt", b"first"),
        Member(path="zeros.bin", size=big, modified=WHEN, open=zero_pieces),
        file("after/tail.bin", tail),
        folder("after/empty/"),
    ]
    path = tmp_path / "big.zip"

    async def write() -> int:
        with path.open("wb") as out:
            async for piece in zip_stream(members):
                if piece is zeros:
                    out.seek(len(piece), os.SEEK_CUR)  # a hole reads back as zeros
                else:
                    out.write(piece)
            out.truncate()
            return out.tell()

    assert asyncio.run(write()) == archive_size(members) == path.stat().st_size
    with zipfile.ZipFile(path) as z:
        infos = {i.filename: i for i in z.infolist()}
        assert infos["zeros.bin"].file_size == big
        assert infos["after/tail.bin"].header_offset > 2**32
        assert z.read("after/tail.bin") == tail
        assert z.read("first.txt") == b"first"
        assert infos["after/empty/"].is_dir()
    for command in (["unzip", "-l", path], ["bsdtar", "-tf", path], [SEVEN_ZIP, "l", path]):
        listing = subprocess.run(command, capture_output=True, text=True, check=False)  # type: ignore[arg-type]
        assert listing.returncode == 0, listing.stdout + listing.stderr
        assert "after/tail.bin" in listing.stdout
    subprocess.run(["bsdtar", "-xf", path, "-C", tmp_path, "after/tail.bin"], check=True)
    assert (tmp_path / "after/tail.bin").read_bytes() == tail
    seven = subprocess.run([SEVEN_ZIP, "t", path, "after/tail.bin"], capture_output=True, text=True, check=False)  # type: ignore[list-item]
    assert "Everything is Ok" in seven.stdout, seven.stdout
    unzip = subprocess.run(["unzip", "-t", path, "after/tail.bin"], capture_output=True, text=True, check=False)
    assert unzip.returncode == 0, unzip.stdout
