"""Promise 1 for archives: a folder streamed as one ZIP writes nothing to temporary files.

A folder with a canary name holds 40 files of 1.2 MiB each (48 MiB in all), each with a
canary name and content full of a canary pattern. A link's archive of it is read slowly, in
small pieces; while the server is in the middle of it, its ``$TMPDIR`` (a directory of the
test's own), the entries made under ``/tmp`` since the transfer began, the data directory,
the database (files and WAL, or PostgreSQL's data directory and a dump), the blobs (the
directory, or SeaweedFS's data) and the server's log are scanned for the canaries, and the
files the server holds open are checked: none may be a temporary or deleted file. Then the
archive is finished and must hold every file, byte for byte.
"""

from __future__ import annotations

import io
import os
import secrets
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server
from tests.integration.test_folders import mkdir, put

TAG = secrets.token_hex(6)
MARKER = f"ZIPCANARY-{TAG}".encode()
FOLDER = f"zip-canary-Ωmega-{TAG}"
FILES = 40
FILE_SIZE = 48 * (1 << 20) // FILES


def file_name(index: int) -> str:
    return f"secret-秘密-{TAG}-{index:02d}.txt"


def content(index: int) -> bytes:
    line = MARKER + b" file %02d: plaintext that must never reach a disk\n" % index
    return (line * (FILE_SIZE // len(line) + 1))[:FILE_SIZE]


def needles() -> list[bytes]:
    names = [FOLDER, file_name(0), "Ωmega", "秘密"]
    return [MARKER, TAG.encode(), *(n.encode() for n in names), *(n.encode("utf-16-le") for n in names)]


def hits_in(path: Path) -> list[str]:
    """The needles found in ``path``, read in blocks (files of other processes under
    ``/tmp`` may be large), each block overlapping the last by a needle's length."""
    found: set[bytes] = set()
    overlap = max(len(needle) for needle in needles())
    try:
        with path.open("rb") as f:
            tail = b""
            while block := f.read(8 << 20):
                data = tail + block
                found |= {needle for needle in needles() if needle in data}
                tail = data[-overlap:]
    except OSError:  # gone since it was listed, or not a regular file
        return []
    return [f"{path}: {needle!r}" for needle in needles() if needle in found]


def tmp_entries() -> set[Path]:
    return set(Path("/tmp").iterdir())


def new_files(entries: set[Path], since: float) -> Iterator[Path]:
    """Regular files under the ``/tmp`` entries made since the transfer began, and
    changed since then (entries of other processes on this machine included)."""
    for entry in entries:
        for path in [entry, *entry.rglob("*")] if entry.is_dir() else [entry]:
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    yield path
            except OSError:
                continue


def scan(install: Installation, server: Server, tmp_before: set[Path], since: float) -> list[str]:
    roots = (install.data_dir, install.tmpdir, install.keyring.parent)
    files = {p for root in roots for p in root.rglob("*")}
    files |= {server.log, install.root / f"server-{server.port}.out", *install.blobs.raw_files()}
    files |= set(new_files(tmp_entries() - tmp_before, since))
    hits = [hit for path in sorted(files) for hit in hits_in(path)]
    for name, data in install.database_dump():
        hits += [f"{name}: {needle!r}" for needle in needles() if needle in data]
    return hits


def open_files(server: Server) -> list[str]:
    """The regular files the server's processes hold open."""
    assert server.proc is not None
    found = []
    for pid in {server.proc.pid, *server.worker_pids()}:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("/"):
                found.append(target)
    return found


def stray_open_files(install: Installation, server: Server) -> list[str]:
    """Files the server holds open that are neither its data, its logs nor its code:
    deleted files (an unlinked temporary file), and anything in a temporary directory."""
    logs = {str(server.log), str(install.root / f"server-{server.port}.out")}
    stray = []
    for path in open_files(server):
        ours = path.startswith(f"{install.data_dir}/") or path in logs
        if path.endswith(" (deleted)") or (not ours and path.startswith(("/tmp/", f"{install.root}/"))):
            stray.append(path)
    return stray


def test_an_archive_in_flight_leaves_no_plaintext_and_no_temporary_file(
    alice: Account, install: Installation, server: Server
) -> None:
    top = mkdir(alice, FOLDER).json()["id"]
    for index in range(FILES):
        assert put(alice, file_name(index), content(index), folder=top).status_code == 201
    link = alice.client.post("/api/v1/shares", json={"folder_id": top})
    assert link.status_code == 201, link.text
    url = f"{server.url}{link.json()['url']}/archive"

    # The scan can see: a canary planted in the server's TMPDIR is found.
    planted = install.tmpdir / "planted"
    planted.write_bytes(b"--" + MARKER + b"--")
    assert scan(install, server, tmp_entries(), time.time()) == [
        f"{planted}: {MARKER!r}",
        f"{planted}: {TAG.encode()!r}",
    ]
    planted.unlink()

    tmp_before, since = tmp_entries(), time.time() - 1
    in_tmpdir = set(install.tmpdir.iterdir())
    received = bytearray()
    with httpx.Client(timeout=120) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        length = int(response.headers["content-length"])
        pieces = response.iter_raw(16 << 10)
        for pause_at in (4 << 20, 20 << 20):
            # A slow reader: small pieces, with pauses, so the server is mid-archive.
            while len(received) < pause_at:
                received += next(pieces)
                if len(received) % (1 << 20) < (16 << 10):
                    time.sleep(0.01)  # about once a MiB
            assert len(received) < length, "the archive was not in flight"
            assert scan(install, server, tmp_before, since) == []
            assert set(install.tmpdir.iterdir()) == in_tmpdir
            assert stray_open_files(install, server) == []
        for piece in pieces:
            received += piece
    assert len(received) == length

    with zipfile.ZipFile(io.BytesIO(bytes(received))) as archive:
        assert archive.testzip() is None
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    assert members == {file_name(index): content(index) for index in range(FILES)}
    # The archive is made the same way every time: an unhurried download is identical.
    assert httpx.get(url, timeout=120).content == received
    assert scan(install, server, tmp_before, since) == []
    assert set(install.tmpdir.iterdir()) == in_tmpdir
