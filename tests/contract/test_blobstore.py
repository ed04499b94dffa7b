"""One contract, every ``BlobStore``: atomic durable puts, ranged reads, clean aborts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sealbox.storage.base import BlobNotFound, BlobStore
from sealbox.storage.local import TEMP_PREFIX, LocalStore
from sealbox.storage.memory import MemoryStore
from sealbox.storage.s3 import S3Store
from tests.services import Seaweed


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "blobs")
    elif request.param == "memory":
        yield MemoryStore()
    else:
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        yield S3Store(
            seaweed.create_bucket(),
            endpoint=seaweed.endpoint,
            access_key_id="test",
            secret_access_key="test",
            allow_http=True,
        )


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("client went away")


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _read_all(store: BlobStore, key: str, start: int, length: int) -> bytes:
    return b"".join([piece async for piece in store.get_range(key, start, length)])


def test_put_then_read_whole_and_ranges(store: BlobStore) -> None:
    data = os.urandom(3 << 20)
    assert run(store.put("files/ab/one", _chunks(data[:100], data[100:]))) == len(data)
    assert run(store.size("files/ab/one")) == len(data)
    assert run(_read_all(store, "files/ab/one", 0, len(data))) == data
    assert run(_read_all(store, "files/ab/one", 12345, 2 << 20)) == data[12345 : 12345 + (2 << 20)]
    assert run(store.read("files/ab/one", 10, 20)) == data[10:30]


def test_ranged_reads_at_sealed_chunk_boundaries(store: BlobStore) -> None:
    data = os.urandom(6 * 65552 + 100)
    run(store.put("files/cd/chunks", _chunks(data)))
    for start in (0, 88, 88 + 65552 - 1, 88 + 65552, 88 + 3 * 65552):
        for length in (1, 16, 65552, 65552 + 1):
            got = run(_read_all(store, "files/cd/chunks", start, length))
            assert got == data[start : start + length], (start, length)
            assert run(store.read("files/cd/chunks", start, length)) == data[start : start + length]


@pytest.mark.parametrize("piece", [65552, 1 << 20, 16 * (1 << 20) + 16], ids=["64k-chunk", "1mib", "16-chunks"])
def test_ranged_reads_come_in_pieces_of_the_size_asked(store: BlobStore, piece: int) -> None:
    # Readers decrypt pieces of exactly ``piece`` bytes where they lie; a piece of
    # another size costs them a copy. Only the last piece may be shorter.
    data = os.urandom(3 * (1 << 20) + 12345)
    run(store.put("files/ef/pieces", _chunks(data[:7], data[7:])))
    for start, length in ((0, len(data)), (88, len(data) - 88), (5000, 2 * (1 << 20) + 1)):

        async def pieces(start: int = start, length: int = length) -> list[bytes]:
            return [bytes(p) async for p in store.get_range("files/ef/pieces", start, length, piece)]

        got = run(pieces())
        assert b"".join(got) == data[start : start + length]
        assert all(len(p) == piece for p in got[:-1]), [len(p) for p in got]
        assert 0 < len(got[-1]) <= piece


# Spans of several MiB (longer than any read-ahead a store might do),
# with pieces that do not divide a range, a MiB, or the span.
SPAN_CASES = [(0, 11 << 20), (88, (11 << 20) - 88), ((4 << 20) - 1, (4 << 20) + 2), (12345, (9 << 20) + 7)]


@pytest.mark.parametrize("piece", [65552 * 3 + 7, 1_000_003, 5 << 20], ids=["odd-small", "odd-1m", "over-a-range"])
def test_spans_over_several_ranges_come_whole_in_pieces_of_odd_sizes(store: BlobStore, piece: int) -> None:
    data = os.urandom(11 << 20)
    run(store.put("files/ef/span", _chunks(data)))
    for start, length in SPAN_CASES:

        async def pieces(start: int = start, length: int = length) -> list[bytes]:
            return [bytes(p) async for p in store.get_range("files/ef/span", start, length, piece)]

        got = run(pieces())
        assert b"".join(got) == data[start : start + length], (start, length)
        assert all(len(p) == piece for p in got[:-1]), [len(p) for p in got]
        assert 0 < len(got[-1]) <= piece


def test_a_reader_that_stops_early_leaves_nothing_running(store: BlobStore) -> None:
    # A client that goes away, or a piece that fails authentication, ends the read
    # after its first piece: the requests read ahead for it must end with it.
    data = os.urandom(11 << 20)
    run(store.put("files/ef/early", _chunks(data)))

    async def first_then_stop() -> tuple[bytes, set[asyncio.Task[object]]]:
        reader = store.get_range("files/ef/early", 0, len(data), 1 << 20)
        first = bytes(await reader.__anext__())
        await reader.aclose()  # type: ignore[attr-defined]
        left = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
        return first, left

    first, left = run(first_then_stop())
    assert first == data[: 1 << 20]
    assert left == set()
    # The store still serves the same blob afterwards.
    assert run(_read_all(store, "files/ef/early", 5 << 20, 3 << 20)) == data[5 << 20 : 8 << 20]


def test_a_reader_that_stops_early_after_a_failure_leaves_nothing_running(store: BlobStore) -> None:
    data = os.urandom(11 << 20)
    run(store.put("files/ef/failing", _chunks(data)))

    async def consume_until_failure(reader: AsyncIterator[bytes | bytearray]) -> None:
        async with aclosing(reader):  # type: ignore[type-var]
            index = 0
            async for _piece in reader:
                index += 1
                if index == 2:
                    raise ValueError("piece failed")

    async def fail_on_second() -> set[asyncio.Task[object]]:
        reader = store.get_range("files/ef/failing", 0, len(data), 1 << 20)
        with pytest.raises(ValueError, match="piece failed"):
            await consume_until_failure(reader)
        return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}

    assert run(fail_on_second()) == set()


@pytest.mark.parametrize("length", [1, 9 << 20], ids=["one-byte", "several-ranges"])
def test_reading_a_missing_blob_raises_not_found(store: BlobStore, length: int) -> None:
    async def read() -> list[bytes]:
        return [bytes(p) async for p in store.get_range("files/ef/missing", 0, length, 1 << 20)]

    with pytest.raises(BlobNotFound):
        run(read())
    with pytest.raises(BlobNotFound):
        run(store.read("files/ef/missing", 0, length))


def test_concurrent_puts_of_different_keys(store: BlobStore) -> None:
    blobs = {f"files/{i:02x}/concurrent{i}": os.urandom(100_000 + i * 70_000) for i in range(12)}

    async def put_all() -> list[int]:
        return await asyncio.gather(
            *(store.put(key, _chunks(data[:50_000], data[50_000:])) for key, data in blobs.items())
        )

    assert run(put_all()) == [len(d) for d in blobs.values()]
    for key, data in blobs.items():
        assert run(_read_all(store, key, 0, len(data))) == data


@pytest.mark.parametrize("size", [0, 1, (256 << 10) - 1, 256 << 10, (256 << 10) + 1, 3 << 20])
def test_put_stores_every_byte_whether_held_whole_or_streamed(store: BlobStore, size: int) -> None:
    """Around the size up to which a local blob is held and written in one call."""
    data = os.urandom(size)
    pieces = [data[i : i + 100_000] for i in range(0, size, 100_000)] or [b""]
    assert run(store.put("files/ab/sized", _chunks(*pieces))) == size
    assert run(store.size("files/ab/sized")) == size
    assert run(_read_all(store, "files/ab/sized", 0, size)) == data


def test_put_replaces_atomically(store: BlobStore) -> None:
    run(store.put("k", _chunks(b"old")))
    run(store.put("k", _chunks(b"new!")))
    assert run(store.read("k", 0, 100)) == b"new!"


@pytest.mark.parametrize("size", [1000, 12 << 20], ids=["small", "multipart"])
def test_failed_put_leaves_nothing_behind(
    store: BlobStore, tmp_path: Path, size: int, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(ConnectionResetError):
        run(store.put("files/cd/two", _failing_after(b"x" * size)))
    with pytest.raises(BlobNotFound):
        run(store.size("files/cd/two"))
    if isinstance(store, LocalStore):
        assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
    if isinstance(store, S3Store):
        seaweed: Seaweed = request.getfixturevalue("seaweed")
        assert "<Upload>" not in seaweed.multipart_uploads(store.bucket), "the multipart upload was aborted"


def test_failed_put_keeps_the_previous_blob(store: BlobStore) -> None:
    run(store.put("k", _chunks(b"complete")))
    with pytest.raises(ConnectionResetError):
        run(store.put("k", _failing_after(b"partial")))
    assert run(store.read("k", 0, 100)) == b"complete"


def test_cancelled_put_leaves_nothing_behind(store: BlobStore, tmp_path: Path) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.sleep(10)
        yield b"never"

    async def scenario() -> None:
        task = asyncio.create_task(store.put("k", slow()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    with pytest.raises(BlobNotFound):
        run(store.size("k"))
    if isinstance(store, LocalStore):
        assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_missing_blobs(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        run(store.size("nope"))
    with pytest.raises(BlobNotFound):
        run(_read_all(store, "nope", 0, 1))
    run(store.delete("nope"))


def test_delete_and_list(store: BlobStore) -> None:
    run(store.put("files/aa/1", _chunks(b"1")))
    run(store.put("files/bb/2", _chunks(b"2")))
    run(store.put("other/3", _chunks(b"3")))

    async def keys() -> set[str]:
        return {key async for key, _ in store.list("files")}

    assert run(keys()) == {"files/aa/1", "files/bb/2"}
    assert run(store.holds_any("files"))
    assert not run(store.holds_any("nothing"))
    run(store.delete("files/aa/1"))
    assert run(keys()) == {"files/bb/2"}


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a b", "", "a\x00b"])
def test_keys_that_could_escape_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        run(store.put(key, _chunks(b"x")))


def test_local_blobs_are_private_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    run(store.put("files/ab/f", _chunks(b"data")))
    path = tmp_path / "blobs" / "files" / "ab" / "f"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_local_sweep_removes_only_stale_temporaries(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    run(store.put("files/ab/f", _chunks(b"data")))
    stale = tmp_path / "blobs" / "files" / "ab" / f"{TEMP_PREFIX}old"
    fresh = tmp_path / "blobs" / "files" / "ab" / f"{TEMP_PREFIX}new"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    hour_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(stale, (hour_ago, hour_ago))
    assert run(store.sweep_partial(datetime.now(UTC) - timedelta(hours=1))) == 1
    assert not stale.exists()
    assert fresh.exists()
    assert (tmp_path / "blobs" / "files" / "ab" / "f").exists()
