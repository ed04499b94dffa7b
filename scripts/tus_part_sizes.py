"""Server CPU per GiB of a 1 GiB tus upload at several part sizes, and of one raw upload.

    PYTHONPATH=src python scripts/tus_part_sizes.py DIR [SIZES_MIB [ROUNDS]]

Starts one ``sealbox serve`` (SQLite + local disk under DIR), uploads DIR/data.bin
(1 GiB of random bytes, made once) raw and over tus at each part size (default
8,32,64,128 MiB), interleaved, ROUNDS times (default 3), deleting each file after it,
and prints the median of the server process's user + system CPU seconds (from
/proc/PID/stat) per upload. The server runs whatever ``sealbox`` PYTHONPATH points at,
so two checkouts can be compared. Wall time is printed too, but on a shared machine
only the CPU figures and ratios within one run are worth comparing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).parents[1]))
from bench.measure import process_cpu_seconds as cpu_seconds
from tests.integration.server import Installation, Server, login, named

SIZE = 1 << 30
TUS = {"Tus-Resumable": "1.0.0"}


def body(data: Path, start: int, length: int) -> Iterator[bytes]:
    with data.open("rb") as f:
        f.seek(start)
        while length:
            piece = f.read(min(1 << 20, length))
            length -= len(piece)
            yield piece


def tus(client: httpx.Client, data: Path, part: int) -> None:
    created = client.post("/api/v1/uploads/", headers={**TUS, "Upload-Length": str(SIZE)})
    assert created.status_code == 201, created.text
    url, offset = created.headers["location"], 0
    while offset < SIZE:
        n = min(part, SIZE - offset)
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(n),
        }
        sent = client.patch(url, content=body(data, offset, n), headers=headers)
        assert sent.status_code == 204, sent.text
        offset = int(sent.headers["upload-offset"])
    client.delete(f"/api/v1/files/{sent.headers['sealbox-file-id']}")


def raw(client: httpx.Client, data: Path, _: int) -> None:
    headers = {**named("raw.bin"), "Content-Length": str(SIZE)}
    sent = client.post("/api/v1/files", headers=headers, content=body(data, 0, SIZE))
    assert sent.status_code == 201, sent.text
    client.delete(f"/api/v1/files/{sent.json()['id']}")


def main() -> None:
    root = Path(sys.argv[1])
    parts = [int(x) << 20 for x in (sys.argv[2] if len(sys.argv) > 2 else "8,32,64,128").split(",")]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data.bin"
    if not data.exists():
        with data.open("wb") as f:
            for _ in range(SIZE >> 20):
                f.write(os.urandom(1 << 20))
    server = Server(Installation(root / f"install-{time.time_ns()}")).start()
    try:
        token = login(server.url, "admin", server.admin_password or "")
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=600)
        pids = server.worker_pids()
        runs: list[tuple[str, Callable[[httpx.Client, Path, int], None], int]] = [("raw", raw, 0)]
        runs += [(f"tus {part >> 20} MiB", tus, part) for part in parts]
        raw(client, data, 0)  # warm up: the first large transfer after a start is slow
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in runs}
        for _ in range(rounds):
            for name, run, part in runs:
                cpu, wall = cpu_seconds(pids), time.monotonic()
                run(client, data, part)
                seen[name].append((cpu_seconds(pids) - cpu, time.monotonic() - wall))
        base = statistics.median(c for c, _ in seen["raw"])
        for name, rows in seen.items():
            cpu = statistics.median(c for c, _ in rows)
            wall = statistics.median(w for _, w in rows)
            every = ", ".join(f"{c:.2f}" for c, _ in rows)
            print(f"{name:14s} server CPU s/GiB {cpu:5.2f} ({every}) = {cpu / base:.2f}x raw; wall {wall:.1f} s")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
