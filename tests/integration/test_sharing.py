"""Share links, grants and upload-request links end to end, on both backends."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, named


def upload(account: Account, name: str, data: bytes) -> str:
    response = account.client.post("/api/v1/files", headers=named(name), content=data)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def share(account: Account, file_id: str, **body: object) -> dict[str, object]:
    response = account.client.post(f"/api/v1/files/{file_id}/shares", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def link_state(account: Account, share_id: object) -> dict[str, object]:
    found = [s for s in account.client.get("/api/v1/shares").json() if s["id"] == share_id]
    assert len(found) == 1
    return dict(found[0])


def test_fifty_parallel_downloads_against_a_limit_of_five(server: Server, alice: Account) -> None:
    data = os.urandom(300_000)
    link = share(alice, upload(alice, "popular.bin", data), download_limit=5)

    def fetch(_: int) -> tuple[int, bytes]:
        response = httpx.get(f"{server.url}/s/{link['token']}/download", timeout=60)
        return response.status_code, response.content

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(fetch, range(50)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 5 + [410] * 45
    assert all(body == data for status, body in results if status == 200)
    state = link_state(alice, link["id"])
    assert (state["downloads"], state["downloads_left"], state["status"]) == (5, 0, "exhausted")
    ranged = httpx.get(f"{server.url}/s/{link['token']}/download", headers={"Range": "bytes=5-9"})
    assert ranged.status_code == 410


def test_ranges_cannot_fetch_more_than_the_limit_allows(server: Server, alice: Account) -> None:
    data = os.urandom(100_000)
    link = share(alice, upload(alice, "ranged.bin", data), download_limit=1)
    url = f"{server.url}/s/{link['token']}/download"
    halves = []
    for spec in ("bytes=0-49999", "bytes=50000-"):
        response = httpx.get(url, headers={"Range": spec})
        assert response.status_code == 206
        halves.append(response.content)
    assert b"".join(halves) == data
    for spec in ("bytes=0-0", "bytes=99999-", "bytes=-1"):
        refused = httpx.get(url, headers={"Range": spec})
        assert refused.status_code == 410, spec
    assert httpx.head(url).status_code == 410
    state = link_state(alice, link["id"])
    assert (state["downloads"], state["downloads_left"]) == (1, 0)


def test_an_interrupted_last_download_resumes_and_no_more(server: Server, alice: Account) -> None:
    data = os.urandom(48 << 20)
    link = share(alice, upload(alice, "resume.bin", data), download_limit=1)
    url = f"{server.url}/s/{link['token']}/download"
    received = bytearray()
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        for piece in response.iter_bytes():
            received += piece
            if len(received) >= 4 << 20:
                break
    # The server gives back what it had not delivered, just after the connection drops.
    deadline = time.monotonic() + 10
    while httpx.head(url).status_code == 410 and time.monotonic() < deadline:
        time.sleep(0.1)
    rest = httpx.get(url, headers={"Range": f"bytes={len(received)}-"}, timeout=60)
    assert rest.status_code == 206, rest.text
    assert bytes(received) + rest.content == data
    assert httpx.get(url).status_code == 410
    assert httpx.get(url, headers={"Range": f"bytes=0-{(8 << 20) - 1}"}).status_code == 410


def test_curl_downloads_a_link_with_its_name(server: Server, alice: Account, tmp_path: Path) -> None:
    data = os.urandom(70_000)
    link = share(alice, upload(alice, "report 2026.pdf", data))
    where = tmp_path
    done = subprocess.run(
        ["curl", "-sSfOJ", f"{server.url}/s/{link['token']}/download"], cwd=where, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (where / "report 2026.pdf").read_bytes() == data


def test_public_metadata_and_owner_listing(server: Server, alice: Account) -> None:
    file_id = upload(alice, "notes.txt", b"hello")
    link = share(alice, file_id, download_limit=3, note="for the team", expires_in_seconds=3600)
    assert str(link["url"]).startswith("/s/")
    assert len(str(link["token"])) >= 22
    public = httpx.get(f"{server.url}/s/{link['token']}").json()
    assert public["name"] == "notes.txt"
    assert public["size"] == 5
    assert public["downloads_left"] == 3
    assert public["note"] == "for the team"
    assert public["download_url"] == f"/s/{link['token']}/download"
    listed = link_state(alice, link["id"])
    assert listed["file_name"] == "notes.txt"
    assert "token" not in listed
    assert listed["note"] == "for the team"
    assert listed["status"] == "active"
    assert [s["id"] for s in alice.client.get("/api/v1/shares", params={"file_id": file_id}).json()] == [link["id"]]


def test_unknown_links_and_other_peoples_links(server: Server, alice: Account, bob: Account) -> None:
    assert httpx.get(f"{server.url}/s/not-a-real-token").status_code == 404
    assert httpx.get(f"{server.url}/s/not-a-real-token/download").status_code == 404
    file_id = upload(alice, "mine.bin", b"x")
    refused = bob.client.post(f"/api/v1/files/{file_id}/shares", json={})
    assert refused.status_code == 404
    link = share(alice, file_id)
    assert bob.client.delete(f"/api/v1/shares/{link['id']}").status_code == 404
    assert link_state(alice, link["id"])["status"] == "active"
    assert all(s["id"] != link["id"] for s in bob.client.get("/api/v1/shares").json())


def test_bad_link_requests_get_specific_errors(server: Server, alice: Account, install: Installation) -> None:
    file_id = upload(alice, "bad.bin", b"x")
    before = install.sql("SELECT count(*) FROM shares")
    cases = [
        ({"download_limit": 0}, 422, "download_limit"),
        ({"expires_in_seconds": 5}, 422, "expires_in_seconds"),
        ({"password": "short"}, 400, "a link password must be 8 to 1024 characters long"),
        ({"note": "x" * 1001}, 400, "the note is at most 1000 characters"),
        ({"note": "a\u202eb"}, 400, "the note must not contain control"),
    ]
    for body, status, message in cases:
        response = alice.client.post(f"/api/v1/files/{file_id}/shares", json=body)
        assert response.status_code == status, body
        assert message in response.json()["detail"]
    assert install.sql("SELECT count(*) FROM shares") == before
    unlock = httpx.post(f"{server.url}/s/{share(alice, file_id)['token']}/unlock", json={"password": "whatever1"})
    assert unlock.status_code == 400
    assert unlock.json()["detail"] == "this link has no password"


def test_grants(server: Server, alice: Account, bob: Account) -> None:
    data = os.urandom(5000)
    file_id = upload(alice, "for-bob.bin", data)
    content = f"/api/v1/files/{file_id}/content"
    assert bob.client.get(content).status_code == 404
    grant = alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"})
    assert grant.status_code == 201
    assert grant.json()["grantee"] == "bob"
    again = alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"})
    assert again.status_code == 409
    for username, status in (("nobody", 404), ("admin", 400)):
        refused = alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": username})
        assert refused.status_code == status
    shared = bob.client.get("/api/v1/shared-with-me").json()
    assert [(f["id"], f["name"], f["owner"]) for f in shared] == [(file_id, "for-bob.bin", "admin")]
    assert bob.client.get(content).content == data
    assert bob.client.get(f"/download/{file_id}").content == data
    # Read-only: a grantee cannot delete, share or re-grant.
    assert bob.client.delete(f"/api/v1/files/{file_id}").status_code == 404
    assert bob.client.post(f"/api/v1/files/{file_id}/shares", json={}).status_code == 404
    assert bob.client.get(f"/api/v1/files/{file_id}/grants").status_code == 404
    assert [g["grantee"] for g in alice.client.get(f"/api/v1/files/{file_id}/grants").json()] == ["bob"]
    assert alice.client.delete(f"/api/v1/files/{file_id}/grants/{grant.json()['id']}").status_code == 204
    assert bob.client.get(content).status_code == 404
    assert bob.client.get("/api/v1/shared-with-me").json() == []


def test_upload_requests(server: Server, alice: Account, install: Installation) -> None:
    created = alice.client.post("/api/v1/upload-requests", json={"max_files": 2, "max_bytes": 1000})
    assert created.status_code == 201, created.text
    token, request_id = created.json()["token"], created.json()["id"]
    base = f"{server.url}/r/{token}"
    assert httpx.get(base).json()["files_left"] == 2
    blobs_before = len(install.blobs.stored())
    too_big = httpx.post(f"{base}/files", headers=named("big.bin"), content=b"x" * 1001)
    assert too_big.status_code == 413
    assert "1000 bytes" in too_big.json()["detail"]
    assert len(install.blobs.stored()) == blobs_before
    first = httpx.post(f"{base}/files", headers={**named("a.txt"), "Sealbox-Uploader": "Dana"}, content=b"a" * 600)
    assert first.status_code == 201
    assert set(first.json()) == {"name", "size", "received_at"}
    over = httpx.post(f"{base}/files", headers=named("b.txt"), content=b"b" * 401)
    assert over.status_code == 413
    assert "400 bytes" in over.json()["detail"]
    second = httpx.post(f"{base}/files", files={"file": ("b.txt", b"b" * 400)})
    assert second.status_code == 201
    third = httpx.post(f"{base}/files", headers=named("c.txt"), content=b"c")
    assert third.status_code == 410
    assert "2 files" in third.json()["detail"]
    received = alice.client.get(f"/api/v1/upload-requests/{request_id}/files").json()
    assert sorted((f["name"], f["size"], f["uploader"]) for f in received) == [
        ("a.txt", 600, "Dana"),
        ("b.txt", 400, None),
    ]
    names = {f["name"] for f in alice.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]}
    assert {"a.txt", "b.txt"} <= names
    listed = next(r for r in alice.client.get("/api/v1/upload-requests").json() if r["id"] == request_id)
    assert (listed["files_received"], listed["bytes_received"], listed["status"]) == (2, 1000, "exhausted")


def test_upload_request_with_password_and_revocation(server: Server, alice: Account, bob: Account) -> None:
    created = alice.client.post("/api/v1/upload-requests", json={"password": "drop-box-pass"}).json()
    base = f"{server.url}/r/{created['token']}"
    locked = httpx.post(f"{base}/files", headers=named("x.txt"), content=b"x")
    assert locked.status_code == 401
    assert "password" in locked.json()["detail"]
    assert httpx.post(f"{base}/unlock", json={"password": "wrong-password"}).status_code == 401
    grant = httpx.post(f"{base}/unlock", json={"password": "drop-box-pass"}).json()["grant"]
    auth = {"Authorization": f"Bearer {grant}"}
    assert httpx.post(f"{base}/files", headers={**named("x.txt"), **auth}, content=b"x").status_code == 201
    # An upload link reads nothing: not the owner's files, not what was uploaded.
    assert httpx.get(f"{server.url}/api/v1/files", headers=auth).status_code == 401
    assert httpx.get(f"{server.url}/s/{created['token']}", headers=auth).status_code == 404
    assert bob.client.delete(f"/api/v1/upload-requests/{created['id']}").status_code == 404
    assert alice.client.delete(f"/api/v1/upload-requests/{created['id']}").status_code == 204
    gone = httpx.post(f"{base}/files", headers={**named("y.txt"), **auth}, content=b"y")
    assert gone.status_code == 410
    assert gone.json()["detail"] == "this link has been revoked"


def test_deleting_a_file_ends_its_links_and_grants(server: Server, alice: Account, bob: Account) -> None:
    file_id = upload(alice, "short-lived.bin", b"bye")
    link = share(alice, file_id)
    assert alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"}).status_code == 201
    assert alice.client.delete(f"/api/v1/files/{file_id}").status_code == 204
    assert httpx.get(f"{server.url}/s/{link['token']}/download").status_code == 404
    assert bob.client.get(f"/api/v1/files/{file_id}/content").status_code == 404
    assert all(f["id"] != file_id for f in bob.client.get("/api/v1/shared-with-me").json())


@pytest.mark.parametrize("table", ["shares", "upload_requests", "unlocks", "api_tokens"])
def test_the_database_holds_only_hashes_of_tokens(install: Installation, alice: Account, table: str) -> None:
    file_id = upload(alice, "hashed.bin", b"x")
    link = share(alice, file_id, password="hash-me-please")
    request = alice.client.post("/api/v1/upload-requests", json={}).json()
    grant = httpx.post(f"{install_url(alice)}/s/{link['token']}/unlock", json={"password": "hash-me-please"})
    secrets = [str(link["token"]), str(request["token"]), grant.json()["grant"], alice.token, "hash-me-please"]
    dump = b"".join(content for _, content in install.database_dump())
    for secret in secrets:
        assert secret.encode() not in dump
    rows = install.sql(f"SELECT * FROM {table}")  # noqa: S608 (a fixed table name)
    assert rows, table
    assert not any(secret in str(row) for row in rows for secret in secrets)


def install_url(account: Account) -> str:
    return str(account.client.base_url).rstrip("/")
