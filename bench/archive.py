"""A folder of several GiB downloaded as one streamed ZIP, through a link and by its owner.

    python -m bench.archive [--files 96] [--file-mib 64] [--systems sealbox,sealbox-pg-s3]

For each system, on a fresh server: ``--files`` random files of ``--file-mib`` MiB each
(6 GiB by default) are uploaded with ``curl`` raw POSTs into one folder; a link to the
folder is made; then it is downloaded four ways:

1. ``GET /s/{token}/archive`` with ``curl -o /dev/null`` (timed; its byte count must equal
   its ``Content-Length``);
2. ``GET /api/v1/folders/{id}/archive``, the owner's own, the same way;
3. each file's ``GET /api/v1/files/{id}/content``, one ``curl`` for all: the baseline, in
   the same run, for the archive's server CPU per GiB (printed as a ratio);
4. the link's archive again, read by a streaming ZIP reader here (its throughput says little:
   the reader shares the cores): every local header, each member's bytes against the CRC-32
   of its source file and its data descriptor, the central directory, and the (ZIP64)
   end-of-central-directory records.

Reported per download: throughput (MiB/s), server CPU seconds (user + system of the server's
process tree) per GiB, and the server's peak RSS (the sum of ``VmHWM`` over its process
tree). The peak is reset (``/proc/PID/clear_refs``) before each download, so each figure
belongs to that download alone; the peak of the uploads before it is reported apart. The
issue's target is a peak under 150 MiB while the archive streams; the exit status is 1 when
an archive's peak is over it, or a check fails. Not a test: it measures and asserts no time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from bench.measure import MIB, cpu_seconds, peak_rss
from bench.systems import STARTERS, Running, free_port, stop_shared

ROOT = Path(__file__).resolve().parent.parent
GIB = 1 << 30
TARGET = 150 * MIB


@dataclass
class Source:
    name: str
    path: Path
    size: int
    crc: int


def make_sources(root: Path, count: int, size: int) -> list[Source]:
    """``count`` files of ``size`` random bytes, each with its CRC-32."""
    root.mkdir(parents=True, exist_ok=True)
    sources = []
    for i in range(count):
        path = root / f"part-{i:03d}.bin"
        crc = 0
        with path.open("wb") as f:
            remaining = size
            while remaining:
                block = os.urandom(min(4 * MIB, remaining))
                crc = zlib.crc32(block, crc)
                f.write(block)
                remaining -= len(block)
        sources.append(Source(path.name, path, size, crc))
    return sources


def reset_peak(running: Running) -> bool:
    """Reset the peak RSS of the server's processes (Linux: ``clear_refs`` with 5)."""
    try:
        for pid in running.pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def curl(running: Running, *args: str, auth: bool = True) -> str:
    """``curl`` with ``args``, as the account that started ``running`` unless ``auth`` is false."""
    owned = running.headers if auth else {}
    headers = [arg for key, value in owned.items() for arg in ("-H", f"{key}: {value}")]
    cmd = ["curl", "-sS", "--fail-with-body", "--max-time", "3600", *headers, *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"curl exit {result.returncode}: {result.stderr.strip()[:300]} {result.stdout[:300]}")
    return result.stdout


def upload_folder(running: Running, sources: list[Source], folder: str) -> tuple[str, list[str]]:
    """A folder named ``folder`` holding ``sources``; its id and the files' ids."""
    made = curl(running, "-H", "Content-Type: application/json", "--data", json.dumps({"name": folder}),
                f"{running.url}/api/v1/folders")  # fmt: skip
    folder_id = str(json.loads(made)["id"])
    ids = []
    for source in sources:
        name = f"Content-Disposition: attachment; filename*=UTF-8''{source.name}"
        url = f"{running.url}/api/v1/files?folder={folder_id}"
        ids.append(str(json.loads(curl(running, "-X", "POST", "-H", name, "-T", str(source.path), url))["id"]))
    return folder_id, ids


def share(running: Running, folder_id: str) -> str:
    made = curl(running, "-H", "Content-Type: application/json", "--data", json.dumps({"folder_id": folder_id}),
                f"{running.url}/api/v1/shares")  # fmt: skip
    return str(json.loads(made)["token"])


@dataclass
class Download:
    what: str
    size: int
    seconds: float
    server_cpu: float
    peak: int | None

    def row(self) -> str:
        gib = self.size / GIB
        peak = "n/a" if self.peak is None else f"{self.peak / MIB:.1f}"
        return (
            f"| {self.what} | {self.size / GIB:.2f} | {self.size / MIB / self.seconds:.0f} "
            f"| {self.server_cpu / gib:.2f} | {peak} |"
        )


def download(running: Running, what: str, url: str, auth: bool) -> Download:
    """One timed ``curl -o /dev/null`` of an archive; its length must match ``Content-Length``."""
    fresh = reset_peak(running)
    before = cpu_seconds(running)
    args = ["-o", "/dev/null", "-D", "-", "-w", "\n%{size_download} %{time_total}", url]
    out = curl(running, *args, auth=auth)
    cpu = cpu_seconds(running) - before
    headers, last = out.rsplit("\n", 1)
    received, seconds = int(last.split()[0]), float(last.split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in headers.splitlines() if line.lower().startswith("content-length:")
    )
    if received != length:
        raise RuntimeError(f"{what}: received {received} bytes of a Content-Length of {length}")
    return Download(what, received, seconds, cpu, peak_rss(running) if fresh else None)


def download_files(running: Running, ids: list[str], total: int) -> Download:
    """The same files one by one (the owner's ``/content``, one ``curl`` for all, on one
    kept-alive connection): the baseline of the archive's figures, in the same run."""
    fresh = reset_peak(running)
    before = cpu_seconds(running)
    args = [arg for file_id in ids for arg in (f"{running.url}/api/v1/files/{file_id}/content", "-o", "/dev/null")]
    out = curl(running, "-w", "%{size_download} %{time_total}\n", *args)
    cpu = cpu_seconds(running) - before
    lines = [line.split() for line in out.splitlines() if line.strip()]
    received, seconds = sum(int(line[0]) for line in lines), sum(float(line[1]) for line in lines)
    if received != total:
        raise RuntimeError(f"files one by one: received {received} bytes of {total}")
    return Download("the same files one by one", received, seconds, cpu, peak_rss(running) if fresh else None)


class Reader:
    """Exact reads from a byte iterator."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.buffer = b""
        self.offset = 0

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            piece = next(self.pieces, b"")
            if not piece:
                raise RuntimeError(f"the archive ends early, at {self.offset + len(self.buffer)}")
            self.buffer += piece
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        self.offset += n
        return data

    def crc(self, n: int) -> int:
        """The CRC-32 of the next ``n`` bytes, taken piece by piece as they arrive."""
        crc = 0
        while n:
            if not self.buffer:
                self.buffer = next(self.pieces, b"")
                if not self.buffer:
                    raise RuntimeError(f"the archive ends early, at {self.offset}")
            take = min(n, len(self.buffer))
            crc = zlib.crc32(memoryview(self.buffer)[:take], crc)
            self.buffer = self.buffer[take:]
            self.offset += take
            n -= take
        return crc

    def at_end(self) -> bool:
        return not self.buffer and next(self.pieces, b"") == b""


def verify(url: str, sources: list[Source]) -> int:
    """Download the archive at ``url`` and ``check`` it; return its length."""
    with httpx.Client(timeout=3600) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        return check(response.iter_raw(1 << 20), sources)


def check(pieces: Iterator[bytes], sources: list[Source]) -> int:
    """Read an archive as a streaming reader would and check every byte of it against
    ``sources`` (``RuntimeError`` where it differs); return its length."""
    expected = {source.name: source for source in sources}
    reader = Reader(pieces)
    offsets: list[int] = []
    while True:
        at = reader.offset
        signature = struct.unpack("<I", reader.read(4))[0]
        if signature != 0x04034B50:
            break
        offsets.append(at)
        header = reader.read(26)
        flags, name_len, extra_len = struct.unpack("<2xH18xHH", header)
        name = reader.read(name_len).decode()
        reader.read(extra_len)
        if name.endswith("/"):
            continue
        source = expected.pop(name.rsplit("/", 1)[-1], None)
        if source is None:
            raise RuntimeError(f"{name}: not one of the files, or there twice")
        if not flags & 0x0008:
            raise RuntimeError(f"{name}: no data descriptor")
        crc = reader.crc(source.size)
        wide = source.size >= 0xFFFFFFFF
        descriptor = reader.read(24 if wide else 16)
        sig, stored_crc, size, _ = struct.unpack("<IIQQ" if wide else "<IIII", descriptor)
        if sig != 0x08074B50 or crc != source.crc or stored_crc != crc or size != source.size:
            raise RuntimeError(f"{name}: its bytes or its data descriptor do not match the source")
    if expected:
        raise RuntimeError(f"{len(expected)} files missing from the archive")
    directory_offset = reader.offset - 4
    count = 0
    while signature == 0x02014B50:
        fixed = reader.read(42)
        name_len, extra_len, comment_len = struct.unpack("<24xHHH12x", fixed)
        reader.read(name_len + extra_len + comment_len)
        count += 1
        signature = struct.unpack("<I", reader.read(4))[0]
    if count != len(offsets):
        raise RuntimeError(f"the central directory lists {count} entries, the archive holds {len(offsets)}")
    if signature == 0x06064B50:  # ZIP64 end of central directory, then its locator
        record = reader.read(52)
        entries, _, _, offset = struct.unpack("<20xQQQQ", record)
        if entries != count or offset != directory_offset:
            raise RuntimeError("the ZIP64 end record does not match the central directory")
        reader.read(20)
        signature = struct.unpack("<I", reader.read(4))[0]
    if signature != 0x06054B50:
        raise RuntimeError("no end-of-central-directory record")
    end = reader.read(18)
    entries32, _, offset32, _ = struct.unpack("<4xHHIIH", end)[1:]
    if entries32 != min(count, 0xFFFF) or offset32 != min(directory_offset, 0xFFFFFFFF):
        raise RuntimeError("the end-of-central-directory record does not match")
    if not reader.at_end():
        raise RuntimeError("bytes after the end-of-central-directory record")
    return reader.offset


def measure(system: str, work: Path, sources: list[Source], warm: list[Source]) -> tuple[list[Download], int]:
    """Upload, share and download on a fresh server of ``system``; the downloads, and the
    peak RSS from its start to the end of the uploads."""
    home = work / system
    home.mkdir(parents=True)
    running = STARTERS[system](home, free_port())
    try:
        log(f"{system}: uploading {len(sources)} files")
        # The first large transfer after a start is much slower: one small archive first.
        warm_token = share(running, upload_folder(running, warm, "warm")[0])
        download(running, "warm-up", f"{running.url}/s/{warm_token}/archive", auth=False)
        folder_id, ids = upload_folder(running, sources, "bench")
        token = share(running, folder_id)
        uploads_peak = peak_rss(running)
        log(f"{system}: downloading")
        downloads = [
            download(running, "link archive", f"{running.url}/s/{token}/archive", auth=False),
            download(running, "owner's archive", f"{running.url}/api/v1/folders/{folder_id}/archive", auth=True),
            download_files(running, ids, sum(source.size for source in sources)),
        ]
        reset_peak(running)
        before = cpu_seconds(running)
        start = time.perf_counter()
        size = verify(f"{running.url}/s/{token}/archive", sources)
        verified = Download("link archive, verified", size, time.perf_counter() - start, cpu_seconds(running) - before,
                            peak_rss(running))  # fmt: skip
        return [*downloads, verified], uploads_peak
    finally:
        running.stop()


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=96, help="files in the folder (default 96)")
    parser.add_argument("--file-mib", type=int, default=64, help="size of each file in MiB (default 64)")
    parser.add_argument("--systems", default="sealbox,sealbox-pg-s3", help="sealbox systems to run")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / ".work", help="scratch space (removed after)")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        print("curl is required", file=sys.stderr)
        return 2
    systems = args.systems.split(",")
    unknown = [s for s in systems if not s.startswith("sealbox") or s not in STARTERS]
    if unknown:
        parser.error(f"not a sealbox system: {', '.join(unknown)}")
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="archive-", dir=args.dir))
    results: dict[str, tuple[list[Download], int]] = {}
    try:
        log(f"writing {args.files} files of {args.file_mib} MiB")
        sources = make_sources(work / "source", args.files, args.file_mib * MIB)
        warm = make_sources(work / "warm", 2, 2 * MIB)
        for system in systems:
            results[system] = measure(system, work, sources, warm)
            shutil.rmtree(work / system, ignore_errors=True)
    finally:
        stop_shared()
        shutil.rmtree(work, ignore_errors=True)
    over = False
    total = args.files * args.file_mib
    print(f"\nA folder of {args.files} files of {args.file_mib} MiB ({total / 1024:.2f} GiB) as one ZIP\n")
    for system, (downloads, uploads_peak) in results.items():
        print(f"### {system} (peak RSS from start to the end of the uploads: {uploads_peak / MIB:.1f} MiB)\n")
        print("| download | GiB | MiB/s | server CPU s/GiB | server peak RSS, MiB |")
        print("|---|---|---|---|---|")
        for item in downloads:
            print(item.row())
            over |= "archive" in item.what and item.peak is not None and item.peak > TARGET
        archive, files = downloads[0], downloads[2]
        ratio = (archive.server_cpu / archive.size) / (files.server_cpu / files.size)
        print(f"\nserver CPU per GiB, link archive / the same files one by one: {ratio:.2f}x\n")
    print(f"target: server peak RSS under {TARGET // MIB} MiB while an archive streams: {'missed' if over else 'met'}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
