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
# Folder names and the names files and folders are given later (renames, relative paths
# sent with uploads): each is a canary of its own.
TREE_NAMES = [
    f"canaryfolder-Ψυχή-{secrets.token_hex(4)}",
    f"canarysub-Δέλτα-{secrets.token_hex(4)}",
    f"canarypath-Ünïcode-{secrets.token_hex(4)}",
    f"canarytus-路径-{secrets.token_hex(4)}",
    f"canarylink-dropped-{secrets.token_hex(4)}",
    f"canaryrenamed-folder-{secrets.token_hex(4)}",
    f"canaryrenamed-file-{secrets.token_hex(4)}.pdf",
]


def canary_content(size: int) -> bytes:
    line = MARKER + b" plaintext that must never reach a disk\n"
    return (line * (size // len(line) + 1))[:size]


def needles() -> list[bytes]:
    name = NAME.encode()
    found = [MARKER, name, NAME.encode("utf-16-le"), NAME.split("-")[-1].encode(), "Ωmega-秘密".encode()]
    for tree_name in TREE_NAMES:
        found += [tree_name.encode(), tree_name.encode("utf-16-le"), tree_name.rsplit("-", 1)[1].encode()]
    return found


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
    # A folder of its own for each path: names are unique in a folder.
    made = alice.client.post("/api/v1/folders", json={"name": f"at-rest-{path}-{secrets.token_hex(3)}"})
    params = {"folder": made.json()["id"]}
    if path == "raw":
        response = alice.client.post("/api/v1/files", headers=named(NAME), content=data, params=params)
    else:
        url = "/upload" if path == "seed" else "/api/v1/files"
        response = alice.client.post(url, files={"file": (NAME, data, "text/plain")}, params=params)
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


def test_no_folder_or_file_name_at_rest(alice: Account, install: Installation, server: Server) -> None:
    """Folder names, file names in folders, relative paths sent with uploads (raw, tus,
    through an upload link), renames and moves, a name refused as taken, a lookup by
    path: none of these names reaches the database, its WAL, the blobs, the logs or
    $TMPDIR, and the audit trail records the operations without them."""
    top, sub, path, tus_path, dropped, renamed_folder, renamed_file = TREE_NAMES
    made = alice.client.post("/api/v1/folders", json={"name": top})
    assert made.status_code == 201, made.text
    top_id = made.json()["id"]
    sub_id = alice.client.post("/api/v1/folders", json={"name": sub, "parent_id": top_id}).json()["id"]
    data = canary_content(200_000)
    raw = alice.client.post(
        "/api/v1/files",
        params={"folder": sub_id},
        headers={**named(NAME), "Sealbox-Path": quote(f"{path}/{path}", safe="/")},
        content=data,
    )
    assert raw.status_code == 201, raw.text
    taken = alice.client.post(
        "/api/v1/files",
        params={"folder": sub_id, "on_conflict": "fail"},
        headers={**named(path)},
        content=b"x",
    )
    assert taken.status_code == 409, taken.text  # the folder made by the path above has the name
    refused = alice.client.post("/api/v1/folders", json={"name": path, "parent_id": sub_id})
    assert refused.status_code == 409
    assert path in refused.json()["detail"]  # told to its owner, and only to its owner
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {"filename": NAME, "folder": top_id, "path": tus_path}.items()
    )
    tus = {"Tus-Resumable": "1.0.0"}
    stream = {**tus, "Content-Type": "application/offset+octet-stream"}
    url = alice.client.post(
        "/api/v1/uploads/", headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": metadata}
    ).headers["location"]
    assert alice.client.patch(url, content=data[:100_000], headers={**stream, "Upload-Offset": "0"}).status_code == 204
    assert scan(install, server) == []  # the path of an unfinished upload is ciphertext too
    done = alice.client.patch(url, content=data[100_000:], headers={**stream, "Upload-Offset": "100000"})
    assert done.status_code == 204, done.text
    link = alice.client.post("/api/v1/upload-requests", json={"folder_id": sub_id, "max_files": 5}).json()
    sent = httpx.post(
        f"{server.url}/r/{link['token']}/files",
        headers={**named(NAME), "Sealbox-Path": quote(dropped, safe="")},
        content=data,
    )
    assert sent.status_code == 201, sent.text
    link_tus = httpx.post(
        f"{server.url}/r/{link['token']}/uploads/",
        content=data,
        headers={
            **stream,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata.replace(
                base64.b64encode(tus_path.encode()).decode(), base64.b64encode(dropped.encode()).decode()
            ),
        },
    )
    assert link_tus.status_code == 201, link_tus.text
    moved = alice.client.patch(f"/api/v1/files/{raw.json()['id']}", json={"name": renamed_file, "folder_id": top_id})
    assert moved.status_code == 200, moved.text
    assert (
        alice.client.patch(f"/api/v1/folders/{sub_id}", json={"name": renamed_folder, "parent_id": None}).status_code
        == 200
    )
    found = alice.client.post("/api/v1/lookup", json={"path": f"{renamed_folder}/{dropped}"})
    assert found.status_code == 200, found.text
    listed = alice.client.get(f"/api/v1/folders/{sub_id}", params={"q": dropped[:12]}).json()
    assert [item["name"] for item in listed["items"]] == [dropped]
    got = alice.client.get(f"/api/v1/files/{raw.json()['id']}/content")
    assert got.content == data
    assert scan(install, server) == []
    events = str(install.sql("SELECT action, target, detail FROM audit_events"))
    assert "folder.create" in events
    assert "file.update" in events
    assert alice.client.delete(f"/api/v1/folders/{top_id}").status_code == 204
    assert scan(install, server) == []
