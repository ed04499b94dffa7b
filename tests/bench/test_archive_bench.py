"""``python -m bench.archive`` keeps working, and its archive check can fail. No timing is asserted."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.archive import Source, check

from sealbox.archive import Member, zip_stream

ROOT = Path(__file__).parents[2]


def archive_of(files: dict[str, bytes]) -> bytes:
    def opener(data: bytes) -> AsyncIterator[bytes]:
        async def content() -> AsyncIterator[bytes]:
            for at in range(0, len(data), 1000):
                yield data[at : at + 1000]

        return content()

    now = datetime.now(UTC)
    members = [Member("sub/", 0, now, None)]
    members += [Member(f"sub/{name}", len(data), now, lambda d=data: opener(d)) for name, data in files.items()]

    async def collect() -> bytes:
        return b"".join([piece async for piece in zip_stream(members)])

    return asyncio.run(collect())


def sources_of(files: dict[str, bytes]) -> list[Source]:
    return [Source(name, Path(name), len(data), zlib.crc32(data)) for name, data in files.items()]


FILES = {"a.bin": bytes(range(256)) * 40, "b.bin": b"b" * 5000, "empty.bin": b""}


def pieces(data: bytes, size: int = 777) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def test_check_accepts_the_archive_of_its_sources() -> None:
    data = archive_of(FILES)
    assert check(iter(pieces(data)), sources_of(FILES)) == len(data)


def test_check_rejects_a_changed_byte_a_cut_end_a_missing_file_and_a_tail() -> None:
    data = archive_of(FILES)
    changed = bytearray(data)
    changed[data.index(b"bbbb") + 10] ^= 1
    bad = {
        "its bytes or its data descriptor": bytes(changed),
        "ends early": data[:-5],
        "bytes after": data + b"x",
    }
    for message, archive in bad.items():
        with pytest.raises(RuntimeError, match=message):
            check(iter(pieces(archive)), sources_of(FILES))
    with pytest.raises(RuntimeError, match="not one of the files"):
        check(iter(pieces(data)), sources_of({"a.bin": FILES["a.bin"]}))
    with pytest.raises(RuntimeError, match="1 files missing"):
        check(iter(pieces(data)), sources_of({**FILES, "c.bin": b"c"}))


@pytest.mark.skipif(shutil.which("curl") is None, reason="the harness drives transfers with curl")
def test_a_small_archive_run_reports_every_download(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.archive", "--files", "3", "--file-mib", "1", "--systems", "sealbox",
         "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = ("| link archive |", "| owner's archive |", "| the same files one by one |", "| link archive, verified |")
    for row in rows:
        assert row in result.stdout
    assert "link archive / the same files one by one:" in result.stdout
    assert "target: server peak RSS under 150 MiB while an archive streams: met" in result.stdout
    assert not list(tmp_path.iterdir()), "scratch space is removed"
