"""Promise 1: no plaintext at rest, during an upload or after it, on any upload path.

A content canary and a Unicode name canary are uploaded through every path; the data
directory, the database files (``-wal`` included), ``$TMPDIR``, the keyring's directory
and the server log are scanned for them while a multipart upload is in flight and after.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, named

MARKER = b"CANARY-" + secrets.token_hex(8).encode()
NAME = f"canary-Ωmega-秘密-{secrets.token_hex(4)}.txt"


def canary_content(size: int) -> bytes:
    line = MARKER + b" plaintext that must never reach a disk\n"
    return (line * (size // len(line) + 1))[:size]


def needles() -> list[bytes]:
    name = NAME.encode()
    return [MARKER, name, NAME.encode("utf-16-le"), NAME.split("-")[-1].encode(), "Ωmega-秘密".encode()]


def scan(install: Installation, server: Server) -> list[str]:
    hits = []
    # The server runs with TMPDIR=install.tmpdir, so that is where any spooled file would go.
    files = {p for root in (install.data_dir, install.tmpdir, install.keyring.parent) for p in root.rglob("*")}
    files |= {server.log, install.root / f"server-{server.port}.out", *install.blobs.raw_files()}
    contents = [(str(path), path.read_bytes()) for path in files if path.is_file()]
    for name, data in contents + install.database_dump():
        hits += [f"{name}: {needle!r}" for needle in needles() if needle in data]
    return hits


def test_the_scan_sees_the_database_and_finds_a_planted_canary(
    alice: Account, install: Installation, server: Server
) -> None:
    dumped = [name for name, _ in install.database_dump()]
    if install.postgres is None:
        assert {"sealbox.db", "sealbox.db-wal"} <= set(dumped)
    else:
        assert "pg_dump" in dumped
        assert any("pg_wal" in name for name in dumped)
    planted = install.tmpdir / "planted"
    planted.write_bytes(b"xx" + MARKER + b"xx")
    try:
        assert scan(install, server) == [f"{planted}: {MARKER!r}"]
    finally:
        planted.unlink()


@pytest.mark.parametrize("path", ["raw", "multipart", "seed"])
def test_no_plaintext_at_rest_after_upload(alice: Account, install: Installation, server: Server, path: str) -> None:
    data = canary_content(3 << 20)
    if path == "raw":
        response = alice.client.post("/api/v1/files", headers=named(NAME), content=data)
    else:
        url = "/upload" if path == "seed" else "/api/v1/files"
        response = alice.client.post(url, files={"file": (NAME, data, "text/plain")})
    assert response.status_code == 201
    assert response.json()["name"] == NAME
    got = alice.client.get(f"/api/v1/files/{response.json()['id']}/content")
    assert got.content == data
    assert NAME.encode() not in got.headers["content-disposition"].encode("latin-1")
    assert scan(install, server) == []


@pytest.mark.parametrize("path", ["/api/v1/files", "/upload"])
def test_no_plaintext_at_rest_during_a_multipart_upload(
    alice: Account, install: Installation, server: Server, path: str
) -> None:
    """Scan while the server holds 6 MiB of an unfinished multipart body: past the 1 MiB
    where a spooled temporary file would have gone to $TMPDIR, and past the first 5 MiB
    part of an S3 multipart upload."""
    boundary = "canary-boundary"
    halfway = threading.Event()
    scanned = threading.Event()
    hits: list[str] = []
    temp_files: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{NAME}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        yield canary_content(6 << 20)
        halfway.set()
        while not scanned.is_set():
            await asyncio.sleep(0.05)
        yield canary_content(1 << 20)
        yield f"\r\n--{boundary}--\r\n".encode()

    def stored_bytes() -> int:
        return sum(path.stat().st_size for path in install.blobs.raw_files() if path.exists())

    baseline = stored_bytes()

    def watcher() -> None:
        halfway.wait(30)
        deadline = 100
        # Wait until an unfinished write holds over 1 MiB, so the scan sees real data.
        while deadline:
            temp_files[:] = install.blobs.partial()
            if temp_files and stored_bytes() - baseline > (1 << 20):
                break
            deadline -= 1
            threading.Event().wait(0.1)
        hits.extend(scan(install, server))
        scanned.set()

    async def upload() -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=str(alice.client.base_url), headers=alice.client.headers, timeout=60
        ) as client:
            return await client.post(
                path, content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
            )

    thread = threading.Thread(target=watcher)
    thread.start()
    response = asyncio.run(upload())
    thread.join()
    assert temp_files, "the in-flight upload never reached the blob store"
    assert hits == []
    assert response.status_code == 201
    assert response.json()["size"] == 7 << 20
    assert scan(install, server) == []


def test_no_plaintext_at_rest_through_links(alice: Account, install: Installation, server: Server) -> None:
    """Files uploaded through an upload-request link, uploaders' names, link notes and
    downloads through a share link leave no plaintext either."""
    data = canary_content(1 << 20)
    token = alice.client.post("/api/v1/upload-requests", json={}).json()["token"]
    sent = httpx.post(
        f"{server.url}/r/{token}/files", headers={**named(NAME), "Sealbox-Uploader": quote(NAME, safe="")}, content=data
    )
    assert sent.status_code == 201
    request_id = alice.client.get("/api/v1/upload-requests").json()[0]["id"]
    received = alice.client.get(f"/api/v1/upload-requests/{request_id}/files").json()
    mine = next(f for f in received if f["uploader"] == NAME)
    link = alice.client.post(f"/api/v1/files/{mine['id']}/shares", json={"note": NAME}).json()
    assert httpx.get(f"{server.url}/s/{link['token']}").json()["note"] == NAME
    assert httpx.get(f"{server.url}/s/{link['token']}/download").content == data
    assert scan(install, server) == []


def test_no_plaintext_at_rest_in_a_resumable_upload(alice: Account, install: Installation, server: Server) -> None:
    """A tus upload half done, and then finished: parts, metadata and the file are ciphertext."""
    data = canary_content(3 << 20)
    name = base64.b64encode(NAME.encode()).decode()
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)), "Upload-Metadata": f"filename {name}"}
    url = alice.client.post("/api/v1/uploads/", headers=headers).headers["location"]
    stream = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
    half = alice.client.patch(url, content=data[: 1 << 20], headers={**stream, "Upload-Offset": "0"})
    assert half.status_code == 204
    assert scan(install, server) == []
    done = alice.client.patch(url, content=data[1 << 20 :], headers={**stream, "Upload-Offset": str(1 << 20)})
    assert alice.client.get(f"/api/v1/files/{done.headers['sealbox-file-id']}/content").content == data
    assert scan(install, server) == []
