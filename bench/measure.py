"""Client-side measurements: curl for large transfers, httpx2 for ranges, hey for load."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx2 as httpx

from bench.systems import Running, upload_id

MIB = 1 << 20
CLK_TCK = 100


class Failed(Exception):
    """A measurement that could not be taken (the server failed or refused)."""


@dataclass
class Transfer:
    seconds: float
    first_byte: float
    server_cpu: float
    file_id: str = ""

    def mib_per_s(self, size: int) -> float:
        return size / MIB / self.seconds


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds spent so far by the processes ``pids`` (those gone are skipped)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / CLK_TCK


def cpu_seconds(running: Running) -> float:
    return process_cpu_seconds(running.pids())


def peak_rss(running: Running) -> int:
    """Sum of VmHWM over the server's process tree, in bytes."""
    total = 0
    for pid in running.pids():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _curl(running: Running, args: list[str]) -> tuple[str, str]:
    headers = [f"{k}: {v}" for k, v in running.headers.items()]
    cmd = ["curl", "-sS", "--fail-with-body", "--max-time", "900", "-w", "%{time_total} %{time_starttransfer}"]
    for header in headers:
        cmd += ["-H", header]
    cmd += running.curl_args
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Failed(f"curl exit {result.returncode}: {result.stderr.strip()[:200]}")
    return result.stdout, result.stderr


def _timed(running: Running, args: list[str], answer_file: Path) -> tuple[Transfer, str]:
    before = cpu_seconds(running)
    out, _ = _curl(running, [*args, "-o", str(answer_file)])
    total, first = (float(x) for x in out.split()[-2:])
    answer = (
        answer_file.read_text(errors="replace") if answer_file.exists() and answer_file.stat().st_size < 65536 else ""
    )
    return Transfer(total, first, cpu_seconds(running) - before), answer


def upload_raw(running: Running, source: Path, name: str, scratch: Path) -> Transfer:
    assert running.raw_upload is not None
    method, path = running.raw_upload
    named = [f"-H{key}: {value}" for key, value in running.raw_headers(name).items() if key not in running.headers]
    url = running.url + path.format(name=name)
    transfer, answer = _timed(running, ["-X", method, *named, "-T", str(source), url], scratch)
    transfer.file_id = upload_id(running, answer, name)
    return transfer


def upload_multipart(running: Running, source: Path, name: str, scratch: Path) -> Transfer:
    assert running.multipart_upload is not None
    transfer, answer = _timed(
        running, ["-F", f"file=@{source};filename={name}", running.url + running.multipart_upload], scratch
    )
    transfer.file_id = upload_id(running, answer, name)
    return transfer


TUS_PATCH = 8 * MIB


def default_part_size() -> int:
    """The part size the clients (SDK and CLI) upload over tus by default."""
    from sealbox.client._ops import CHUNK

    return CHUNK


def upload_tus(running: Running, source: Path, name: str, part: int = TUS_PATCH) -> Transfer:
    """A resumable upload over tus: one creation, then PATCHes of ``part`` bytes on one
    kept-alive connection, each streamed from disk as it is sent."""
    assert running.tus_endpoint is not None
    size = source.stat().st_size
    tus = {**running.headers, "Tus-Resumable": "1.0.0"}
    encoded = base64.b64encode(name.encode()).decode()
    before = cpu_seconds(running)
    start = time.perf_counter()
    with httpx.Client(timeout=900) as client, source.open("rb") as f:
        created = client.post(
            running.url + running.tus_endpoint,
            headers={**tus, "Upload-Length": str(size), "Upload-Metadata": f"filename {encoded}"},
        )
        if created.status_code != 201:
            raise Failed(f"tus creation answered {created.status_code}")
        url = running.url + created.headers["location"]
        offset, file_id = 0, ""
        first = 0.0
        while offset < size:
            length = min(part, size - offset)
            headers = {
                **tus,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Content-Length": str(length),
            }
            f.seek(offset)
            answer = client.patch(url, content=_read(f, length), headers=headers)
            if answer.status_code != 204:
                raise Failed(f"tus PATCH answered {answer.status_code}: {answer.text[:200]}")
            first = first or time.perf_counter() - start
            offset = int(answer.headers["upload-offset"])
            file_id = answer.headers.get("sealbox-file-id", file_id)
    elapsed = time.perf_counter() - start
    return Transfer(elapsed, first, cpu_seconds(running) - before, file_id)


def _read(f: BinaryIO, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``f`` in blocks of at most 1 MiB."""
    while length:
        block = f.read(min(MIB, length))
        if not block:
            raise Failed("the source file ended early")
        length -= len(block)
        yield block


def download(running: Running, file_id: str) -> Transfer:
    transfer, _ = _timed(running, [running.url + running.download_path.format(id=file_id)], Path("/dev/null"))
    return transfer


def range_latency(running: Running, file_id: str, size: int, count: int) -> float:
    """Median milliseconds for the last MiB of the file, over a kept-alive connection."""
    url = running.url + running.download_path.format(id=file_id)
    headers = {**running.headers, "Range": f"bytes={size - MIB}-{size - 1}"}
    timings = []
    with httpx.Client(timeout=900) as client:
        for i in range(count + 1):
            start = time.perf_counter()
            response = client.get(url, headers=headers)
            elapsed = time.perf_counter() - start
            if response.status_code != 206 or len(response.content) != MIB:
                raise Failed(f"range read answered {response.status_code} with {len(response.content)} bytes")
            if i:  # the first one warms the connection up
                timings.append(elapsed * 1000)
    return statistics.median(timings)


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(running: Running, method: str, url: str, body: Path | None, content_type: str, n: int, c: int) -> Load:
    """``n`` requests, ``c`` at a time: hey where installed, else an httpx2 client.

    hey sends ``n // c`` requests per client, so ``n`` should be a multiple of ``c``.
    """
    if shutil.which("hey"):
        cmd = ["hey", "-n", str(n), "-c", str(c), "-m", method, "-o", "csv", "-T", content_type]
        for k, v in running.headers.items():
            cmd += ["-H", f"{k}: {v}"]
        if body is not None:
            cmd += ["-D", str(body)]
        start = time.perf_counter()
        result = subprocess.run([*cmd, url], capture_output=True, text=True, check=False, timeout=900)
        wall = time.perf_counter() - start
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        times = [float(r["response-time"]) * 1000 for r in rows]
        errors = sum(1 for r in rows if not r["status-code"].startswith("2"))
    else:
        times, errors, wall = asyncio.run(_python_load(running, method, url, body, content_type, n, c))
    if not times:
        raise Failed("no request completed")
    return Load(len(times) / wall, _percentile(times, 0.5), _percentile(times, 0.99), errors)


async def _python_load(
    running: Running, method: str, url: str, body: Path | None, content_type: str, n: int, c: int
) -> tuple[list[float], int, float]:
    data = body.read_bytes() if body else None
    headers = {**running.headers, "Content-Type": content_type}
    times: list[float] = []
    errors = 0
    remaining = iter(range(n))

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in remaining:
            start = time.perf_counter()
            response = await client.request(method, url, content=data, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            errors += response.status_code >= 300

    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(c)))
    return times, errors, time.perf_counter() - start
