"""The benchmark run: systems interleaved round by round, each on a fresh server."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import measure
from bench.measure import MIB, Failed
from bench.systems import STARTERS, Running, Unavailable, free_port

SMALL = 4096


@dataclass
class Config:
    sizes_mib: list[int]
    rounds: int
    systems: list[str]
    small_n: int
    small_c: int
    range_count: int
    work: Path

    @property
    def range_size(self) -> int:
        """The file size whose last MiB is range-read: 1 GiB, or the largest below it."""
        fitting = [s for s in self.sizes_mib if s <= 1024]
        return max(fitting or self.sizes_mib) * MIB


@dataclass
class Results:
    # values[figure][system] -> one value per round (None where it failed)
    values: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, figure: str, system: str, value: float | None) -> None:
        self.values.setdefault(figure, {}).setdefault(system, []).append(value)


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:4.0f} s] {message}", file=sys.stderr, flush=True)


def random_file(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        remaining = size
        while remaining:
            block = os.urandom(min(MIB, remaining))
            f.write(block)
            remaining -= len(block)
    return path


def _start(config: Config, system: str, label: str) -> Running:
    work = config.work / f"{system}-{label}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return STARTERS[system](work, free_port())


def _warm_up(running: Running, warm: Path, scratch: Path) -> None:
    # The first large transfer after a start is much slower: send one untimed first.
    if running.raw_upload:
        transfer = measure.upload_raw(running, warm, "warm.bin", scratch)
    else:
        transfer = measure.upload_multipart(running, warm, "warm.bin", scratch)
    measure.download(running, transfer.file_id)


def _measure_size(config: Config, results: Results, running: Running, source: Path, size: int) -> None:
    mib = size // MIB
    scratch = config.work / "answer.json"
    name = running.name
    if running.owns_process and mib == config.sizes_mib[0]:
        results.add("rss_ready", name, measure.peak_rss(running) / MIB)
    _warm_up(running, config.work / "warm.bin", scratch)
    uploaded = None
    if running.raw_upload:
        transfer = measure.upload_raw(running, source, f"raw-{mib}.bin", scratch)
        results.add(f"upload_raw@{mib}", name, transfer.mib_per_s(size))
        results.add(f"cpu_upload@{mib}", name, transfer.server_cpu)
        uploaded = transfer.file_id
    if running.multipart_upload:
        transfer = measure.upload_multipart(running, source, f"multipart-{mib}.bin", scratch)
        results.add(f"upload_multipart@{mib}", name, transfer.mib_per_s(size))
        if uploaded is None:
            results.add(f"cpu_upload@{mib}", name, transfer.server_cpu)
            uploaded = transfer.file_id
    if running.tus_endpoint:
        _measure_tus(results, running, source, size)
    assert uploaded is not None
    transfer = measure.download(running, uploaded)
    results.add(f"download@{mib}", name, transfer.mib_per_s(size))
    results.add(f"ttfb@{mib}", name, transfer.first_byte * 1000)
    results.add(f"cpu_download@{mib}", name, transfer.server_cpu)
    if size == config.range_size and not running.transfers_only:
        count = config.range_count if name != "seed" else min(3, config.range_count)
        results.add(f"range@{mib}", name, measure.range_latency(running, uploaded, size, count))
    if running.owns_process:
        results.add(f"rss@{mib}", name, measure.peak_rss(running) / MIB)


def _measure_tus(results: Results, running: Running, source: Path, size: int) -> None:
    """tus uploads in 8 MiB parts and in the clients' default part size (once if they are
    the same), each as a ratio to the raw upload of the same server in the same round."""
    mib, name = size // MIB, running.name
    raw = results.values.get(f"upload_raw@{mib}", {}).get(name, [None])[-1]
    eight = measure.upload_tus(running, source, f"tus-{mib}.bin", measure.TUS_PATCH)
    default = eight
    if measure.default_part_size() != measure.TUS_PATCH:
        default = measure.upload_tus(running, source, f"tus-default-{mib}.bin", measure.default_part_size())
    for key, transfer in (("tus", eight), ("tus_default", default)):
        results.add(f"upload_{key}@{mib}", name, transfer.mib_per_s(size))
        results.add(f"cpu_upload_{key}@{mib}", name, transfer.server_cpu)
        results.add(f"{key}_vs_raw@{mib}", name, transfer.mib_per_s(size) / raw if raw else None)


def _measure_small(config: Config, results: Results, running: Running) -> None:
    body = config.work / "small.bin"
    scratch = config.work / "answer.json"
    _warm_up(running, body, scratch)
    n, c = config.small_n, config.small_c
    if running.raw_upload:
        method, path = running.raw_upload
        url = running.url + path.format(name="small.bin")
        named = dataclasses.replace(running, headers=running.raw_headers("small.bin"))
        up = measure.load(named, method, url, body, "application/octet-stream", n, c)
        file_id = measure.upload_raw(running, body, "small.bin", scratch).file_id
    else:
        assert running.multipart_upload is not None
        boundary = "sealbox-bench-boundary"
        multipart = config.work / "small.multipart"
        multipart.write_bytes(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + body.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        url = running.url + running.multipart_upload
        up = measure.load(running, "POST", url, multipart, f"multipart/form-data; boundary={boundary}", n, c)
        file_id = measure.upload_multipart(running, body, "small.bin", scratch).file_id
    down = measure.load(
        running, "GET", running.url + running.download_path.format(id=file_id), None, "text/plain", n, c
    )
    for kind, figures in (("upload", up), ("download", down)):
        results.add(f"small_{kind}_rps", running.name, figures.requests_per_s)
        results.add(f"small_{kind}_p50", running.name, figures.p50_ms)
        results.add(f"small_{kind}_p99", running.name, figures.p99_ms)
        if figures.errors:
            results.failures.append(f"{running.name}: {figures.errors} of {n} small {kind}s failed")


def _guarded(results: Results, system: str, what: str, action: Callable[[], None]) -> None:
    """Run one measurement; a failure is recorded (the figures stay empty), not raised."""
    try:
        action()
    except (Failed, RuntimeError, OSError) as exc:
        results.failures.append(f"{system}, {what}: {exc}")
        log(f"  {system} {what}: FAILED ({exc})")


def run(config: Config) -> Results:
    results = Results()
    config.work.mkdir(parents=True, exist_ok=True)
    random_file(config.work / "warm.bin", 4 * MIB)
    random_file(config.work / "small.bin", SMALL)
    sources = {size: random_file(config.work / f"source-{size}.bin", size * MIB) for size in config.sizes_mib}
    systems = list(config.systems)
    for round_no in range(1, config.rounds + 1):
        for size in config.sizes_mib:
            for system in list(systems):
                log(f"round {round_no}: {system}, {size} MiB")
                try:
                    running = _start(config, system, f"{size}")
                except Unavailable as exc:
                    results.skipped.append(f"{system}: {exc}")
                    log(f"  {system} skipped: {exc}")
                    systems.remove(system)
                    continue
                try:
                    _guarded(
                        results,
                        system,
                        f"{size} MiB",
                        lambda r=running, s=size: _measure_size(config, results, r, sources[s], s * MIB),
                    )
                finally:
                    running.stop()
        for system in systems if config.small_n else []:
            running = _start(config, system, "small")
            if running.transfers_only:
                running.stop()
                continue
            log(f"round {round_no}: {system}, {config.small_n} small files")
            try:
                _guarded(results, system, "small files", lambda r=running: _measure_small(config, results, r))
            finally:
                running.stop()
        _pad(results, round_no)
    for source in sources.values():
        source.unlink(missing_ok=True)
    return results


def _pad(results: Results, round_no: int) -> None:
    """Give every figure one value per round, ``None`` where nothing was measured."""
    for per_system in results.values.values():
        for values in per_system.values():
            values.extend([None] * (round_no - len(values)))
