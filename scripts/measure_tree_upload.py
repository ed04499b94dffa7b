"""Server CPU seconds per small file for the ways the SDK can upload a tree.

Starts one server (SQLite, local disk) and uploads the same N small files three ways, each
into a folder of its own: over tus one by one (create + PATCH, as ``upload`` does), in one
raw request each one by one (``upload_file``), and with ``upload_dir`` (raw requests, four
at a time). Reports the server process's user+system CPU seconds (from /proc) and the
client's wall time for each; CPU is what to compare on a shared machine.

    PYTHONPATH=src python scripts/measure_tree_upload.py [N]
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sealbox.client import Client  # noqa: E402
from tests.integration.server import Installation, Server  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: Server, label: str, files: int, run: Callable[[], object]) -> None:
    pids = server.worker_pids()
    before, start = sum(cpu_seconds(p) for p in pids), time.monotonic()
    run()
    used, wall = sum(cpu_seconds(p) for p in pids) - before, time.monotonic() - start
    print(f"{label:<28} server CPU {used:7.2f} s  {used / files * 1000:6.2f} ms/file   client wall {wall:6.1f} s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = random.Random(16)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        tree = root / "tree"
        for n in range(count):
            folder = tree / f"d{n % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{n}.bin").write_bytes(rng.randbytes(rng.randrange(0, 2048)))
        files = sorted(p for p in tree.rglob("*") if p.is_file())
        server = Server(Installation(root / "install")).start()
        try:
            with Client(server.url) as sdk:
                sdk.login("admin", server.admin_password or "")
                tus = sdk.make_path("tus")
                raw = sdk.make_path("raw")
                assert tus is not None and raw is not None
                measure(server, "tus, one by one", count, lambda: [sdk.upload(p, folder_id=tus.id) for p in files])
                measure(server, "raw POST, one by one", count,
                        lambda: [sdk.upload_file(p, folder_id=raw.id) for p in files])  # fmt: skip
                measure(server, "upload_dir (raw, 4 at a time)", count, lambda: sdk.upload_dir(tree, "dir"))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
