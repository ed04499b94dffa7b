"""Peak server memory for a small and a large file: upload, then download, via curl.

    python -m bench.memory [--small 16] [--large 1024] [--dir PATH]

Starts a fresh ``sealbox serve`` (one worker) per size, uploads a random file of that
size with ``curl -T``, downloads it to ``/dev/null``, and reads the server's ``VmHWM``
(peak resident set). Promise 4 holds when the large file's peak is within 64 MiB of the
small file's; the exit status is 1 otherwise. Not a test: it measures, it asserts no time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.integration.server import Installation, Server, login

MIB = 1 << 20
ALLOWED_GROWTH = 64 * MIB


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(size // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def curl(*args: str) -> str:
    return subprocess.run(["curl", "-sS", "--fail", *args], check=True, capture_output=True, text=True).stdout


def measure(root: Path, size: int) -> int:
    install = Installation(root / f"run-{size}")
    server = Server(install).start()
    try:
        assert server.admin_password is not None
        token = login(server.url, "admin", server.admin_password)
        auth = f"Authorization: Bearer {token}"
        source = root / "payload.bin"
        expected = make_file(source, size)
        name = "Content-Disposition: attachment; filename=payload.bin"
        created = curl("-H", auth, "-H", name, "-X", "POST", "-T", str(source), f"{server.url}/api/v1/files")
        file_id = created.split('"id":"', 1)[1].split('"', 1)[0]
        source.unlink()
        target = root / "download.bin"
        curl("-H", auth, "-o", str(target), f"{server.url}/api/v1/files/{file_id}/content")
        if file_sha256(target) != expected:
            raise RuntimeError("downloaded bytes differ")
        target.unlink()
        assert server.proc is not None
        return vm_hwm(server.proc.pid)
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=16, help="small file size in MiB")
    parser.add_argument("--large", type=int, default=1024, help="large file size in MiB")
    parser.add_argument("--dir", type=Path, default=None, help="where to put data (default: a temp directory)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is required", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="sealbox-bench-", dir=args.dir))
    try:
        small = measure(root, args.small * MIB)
        large = measure(root, args.large * MIB)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    growth = large - small
    print(f"peak RSS, {args.small} MiB upload+download: {small / MIB:7.1f} MiB")
    print(f"peak RSS, {args.large} MiB upload+download: {large / MIB:7.1f} MiB")
    print(f"growth: {growth / MIB:+.1f} MiB (allowed: {ALLOWED_GROWTH // MIB} MiB)")
    return 0 if growth <= ALLOWED_GROWTH else 1


if __name__ == "__main__":
    sys.exit(main())
