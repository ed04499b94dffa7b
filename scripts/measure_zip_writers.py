"""CPU seconds per GiB of a stored ZIP archive, for sealbox.archive and the streaming-ZIP libraries.

Usage (from the repository root, with stream-zip and zipstream-ng installed for the comparison):

    PYTHONPATH=src python scripts/measure_zip_writers.py [--rounds 3] [--members 1000] [--piece 65536]

Each candidate makes an archive of ``--members`` members of 1 MiB of random bytes, fed from
memory in ``--piece``-byte pieces by an async producer (as sealbox's decryption yields them),
and the output is counted and dropped. Candidates run interleaved, round by round; the figure
is the median of the process CPU time (user + system, all threads) per GiB of archive.

- ``sealbox``: ``sealbox.archive.zip_stream``, async, CRC-32 while streaming.
- ``zipstream-ng``, ``stream-zip``: the synchronous generator fed from memory directly (no
  async producer: the least these libraries can cost).
- ``... bridged``: the synchronous generator in a worker thread, pulling each piece from the
  async producer on the event loop and handing each output piece back to it, which is how
  an async server would have to drive it (stream-zip's own ``async_stream_zip`` does this).
- stream-zip's stored modes either buffer each member whole (to write its CRC before the
  data) or take the CRC in advance; it is measured with the CRC given in advance, computed
  outside the timed region, which favours it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sealbox.archive import Member, archive_size, zip_stream

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
MIB = 1 << 20


def pieces_of(data: bytes, piece: int) -> list[bytes]:
    return [data[i : i + piece] for i in range(0, len(data), piece)]


async def async_pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


def bridged(
    make: Callable[[Callable[[AsyncIterator[bytes]], Iterable[bytes]]], Iterable[bytes]],
) -> AsyncIterator[bytes]:
    """A synchronous ZIP generator driven from an event loop through a worker thread."""

    async def run() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()

        def pull(source: AsyncIterator[bytes]) -> Iterator[bytes]:
            while True:
                try:
                    yield asyncio.run_coroutine_threadsafe(source.__anext__(), loop).result()
                except StopAsyncIteration:
                    return

        output = iter(make(pull))
        done = object()
        while True:
            chunk = await loop.run_in_executor(None, next, output, done)
            if chunk is done:
                return
            yield chunk  # type: ignore[misc]

    return run()


def zipstream_ng(
    members: int, pieces: list[bytes], size: int, sync: Callable[[Any], Iterable[bytes]]
) -> Iterable[bytes]:
    import zipstream  # type: ignore[import-not-found]

    zs = zipstream.ZipStream(sized=True)
    for i in range(members):
        zs.add(sync(async_pieces(pieces)) if sync else iter(pieces), f"dir/file{i}.bin", size=size)
    assert len(zs) > 0
    return zs


def stream_zip_files(members: int, pieces: list[bytes], size: int, crc: int, sync: Any) -> Iterable[bytes]:
    from stream_zip import NO_COMPRESSION_64, stream_zip  # type: ignore[import-not-found]

    return stream_zip(
        (
            f"dir/file{i}.bin",
            WHEN,
            0o600,
            NO_COMPRESSION_64(size, crc),
            sync(async_pieces(pieces)) if sync else iter(pieces),
        )
        for i in range(members)
    )


async def consume_async(stream: AsyncIterator[bytes]) -> int:
    total = 0
    async for chunk in stream:
        total += len(chunk)
    return total


def consume(stream: Iterable[bytes]) -> int:
    return sum(len(c) for c in stream)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--piece", type=int, default=1 << 16)
    args = parser.parse_args()
    data = os.urandom(MIB)
    pieces = pieces_of(data, args.piece)
    crc = zlib.crc32(data)
    n = args.members

    def sealbox() -> int:
        members = [Member(f"dir/file{i}.bin", MIB, WHEN, lambda: async_pieces(pieces)) for i in range(n)]
        total = asyncio.run(consume_async(zip_stream(members)))
        assert total == archive_size(members)
        return total

    candidates: dict[str, Callable[[], int]] = {"sealbox": sealbox}
    try:
        import zipstream  # noqa: F401

        candidates["zipstream-ng"] = lambda: consume(zipstream_ng(n, pieces, MIB, None))  # type: ignore[arg-type]
        candidates["zipstream-ng bridged"] = lambda: asyncio.run(
            consume_async(bridged(lambda pull: zipstream_ng(n, pieces, MIB, pull)))
        )
    except ImportError:
        print("zipstream-ng is not installed")
    try:
        import stream_zip  # noqa: F401

        candidates["stream-zip"] = lambda: consume(stream_zip_files(n, pieces, MIB, crc, None))
        candidates["stream-zip bridged"] = lambda: asyncio.run(
            consume_async(bridged(lambda pull: stream_zip_files(n, pieces, MIB, crc, pull)))
        )
    except ImportError:
        print("stream-zip is not installed")

    for run in candidates.values():  # warm up
        run()
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, run in candidates.items():
            start = time.process_time()
            total = run()
            results[name].append((time.process_time() - start) / (total / 2**30))
    base = statistics.median(results["sealbox"])
    print(f"{n} members of 1 MiB in {args.piece}-byte pieces, {args.rounds} rounds, CPU s per GiB (median):")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:22} {median:6.3f}  ({median / base:4.2f}×)  rounds: {', '.join(f'{v:.3f}' for v in values)}")


if __name__ == "__main__":
    main()
