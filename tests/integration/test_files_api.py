"""The file API end to end, against a real server: round trips, ranges, listing, deletion."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, blob_key, named

SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536 + 7]
PROBLEM = "application/problem+json"


def upload_raw(account: Account, data: bytes, name: str = "file.bin", **kw: object) -> httpx.Response:
    return account.client.post("/api/v1/files", headers=named(name), content=data, **kw)  # type: ignore[arg-type]


def upload_multipart(
    account: Account, data: bytes, name: str = "file.bin", path: str = "/api/v1/files"
) -> httpx.Response:
    return account.client.post(path, files={"file": (name, data, "application/octet-stream")})


def download(account: Account, file_id: str, seed: bool = False, **headers: str) -> httpx.Response:
    path = f"/download/{file_id}" if seed else f"/api/v1/files/{file_id}/content"
    return account.client.get(path, headers=headers)


UPLOADERS = {
    "raw": lambda a, d, n: upload_raw(a, d, n),
    "multipart": lambda a, d, n: upload_multipart(a, d, n),
    "seed": lambda a, d, n: upload_multipart(a, d, n, path="/upload"),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("path", list(UPLOADERS))
def test_round_trip_is_byte_identical(alice: Account, path: str, size: int) -> None:
    data = os.urandom(size)
    created = UPLOADERS[path](alice, data, f"round-{path}-{size}.bin")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["size"] == size
    assert body["name"] == f"round-{path}-{size}.bin"
    assert set(body) == {"id", "name", "size", "content_type", "created_at", "etag", "folder_id"}
    assert body["folder_id"] is None
    for seed in (False, True):
        got = download(alice, body["id"], seed=seed)
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-length"] == str(size)
        assert got.headers["etag"] == body["etag"]


def _stream_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def _sha256_download(account: Account, url: str) -> str:
    digest = hashlib.sha256()
    with account.client.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_256_mib_round_trips_through_every_upload_path(alice: Account, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as f:
        for _ in range(256):
            block = os.urandom(1 << 20)
            digest.update(block)
            f.write(block)
    expected = digest.hexdigest()

    def multipart_body(boundary: str) -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'.encode()
        yield from _stream_file(source)
        yield f"\r\n--{boundary}--\r\n".encode()

    ids = []
    raw = alice.client.post("/api/v1/files", headers=named("big.bin"), content=_stream_file(source))
    ids.append(raw.json()["id"])
    for path in ("/api/v1/files", "/upload"):
        boundary = "sealbox-test-boundary"
        response = alice.client.post(
            path,
            content=multipart_body(boundary),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for file_id in ids:
        assert _sha256_download(alice, f"/api/v1/files/{file_id}/content") == expected
        assert _sha256_download(alice, f"/download/{file_id}") == expected


@pytest.fixture(scope="module")
def ranged(alice: Account) -> tuple[str, bytes, str]:
    data = os.urandom(3 * 65536 + 7)
    body = upload_raw(alice, data, "ranged.bin").json()
    return body["id"], data, body["etag"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=65530-65545", 65530, 65545),  # across a chunk boundary
        ("bytes=131072-", 131072, 3 * 65536 + 6),  # open-ended
        ("bytes=-10", 3 * 65536 - 3, 3 * 65536 + 6),  # suffix
        ("bytes=100-999999999", 100, 3 * 65536 + 6),  # end past the file: clamped
    ],
)
@pytest.mark.parametrize("seed", [False, True])
def test_ranges(alice: Account, ranged: tuple[str, bytes, str], header: str, start: int, end: int, seed: bool) -> None:
    file_id, data, _ = ranged
    got = download(alice, file_id, seed=seed, Range=header)
    assert got.status_code == 206
    assert got.content == data[start : end + 1]
    assert got.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert got.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=196615-", "bytes=999999-1000000", "bytes=-0"])
def test_unsatisfiable_range_is_416(alice: Account, ranged: tuple[str, bytes, str], header: str) -> None:
    file_id, data, _ = ranged
    got = download(alice, file_id, Range=header)
    assert got.status_code == 416
    assert got.headers["content-range"] == f"bytes */{len(data)}"
    assert got.headers["content-type"] == PROBLEM
    assert "outside the file" in got.json()["detail"]


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "pages=1-2", "bytes=9-3"])
def test_multi_or_invalid_ranges_are_ignored_with_200(
    alice: Account, ranged: tuple[str, bytes, str], header: str
) -> None:
    file_id, data, _ = ranged
    got = download(alice, file_id, Range=header)
    assert got.status_code == 200
    assert got.content == data


def test_if_range_serves_the_range_only_for_the_current_etag(alice: Account, ranged: tuple[str, bytes, str]) -> None:
    file_id, data, etag = ranged
    partial = download(alice, file_id, Range="bytes=0-9", **{"If-Range": etag})
    assert partial.status_code == 206
    assert partial.content == data[:10]
    stale = download(alice, file_id, Range="bytes=0-9", **{"If-Range": '"0000"'})
    assert stale.status_code == 200
    assert stale.content == data


def test_empty_file_range_is_416(alice: Account) -> None:
    file_id = upload_raw(alice, b"", "empty.bin").json()["id"]
    assert download(alice, file_id, Range="bytes=0-0").status_code == 416


def test_head_gives_headers_without_body(alice: Account, ranged: tuple[str, bytes, str]) -> None:
    file_id, data, etag = ranged
    for path in (f"/api/v1/files/{file_id}/content", f"/download/{file_id}"):
        head = alice.client.head(path)
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["etag"] == etag
        ranged_head = alice.client.head(path, headers={"Range": "bytes=0-9"})
        assert ranged_head.status_code == 206
        assert ranged_head.headers["content-length"] == "10"


def test_download_headers_are_safe(alice: Account) -> None:
    name = 'Ünïcode "quoted" report.html'
    created = alice.client.post(
        "/api/v1/files",
        headers={**named(name), "Content-Type": "text/html"},
        content=b"<script>alert(1)</script>",
    ).json()
    got = download(alice, created["id"])
    assert got.headers["content-type"] == "text/html"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["cache-control"] == "private, no-store"
    assert got.headers["accept-ranges"] == "bytes"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Unicode _quoted_ report.html"')
    assert "filename*=UTF-8''%C3%9Cn%C3%AFcode%20%22quoted%22%20report.html" in disposition


def test_raw_upload_name_from_content_disposition(alice: Account) -> None:
    headers = {"Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf"}
    created = alice.client.post("/api/v1/files", content=b"%PDF", headers=headers)
    assert created.status_code == 201
    assert created.json()["name"] == "résumé final.pdf"
    assert created.json()["content_type"] == "application/pdf"
    quoted = alice.client.post(
        "/api/v1/files", content=b"x", headers={"Content-Disposition": 'attachment; filename="a b.txt"'}
    )
    assert quoted.json()["name"] == "a b.txt"


def test_content_type_is_guessed_when_absent_and_kept_when_given(alice: Account) -> None:
    guessed = upload_raw(alice, b"%PDF-1.4", "doc.pdf").json()
    assert guessed["content_type"] == "application/pdf"
    given = alice.client.post("/api/v1/files", files={"file": ("x.dat", b"1", "image/png")}).json()
    assert given["content_type"] == "image/png"


def test_list_is_paginated_newest_first(bob: Account) -> None:
    ids = [upload_raw(bob, str(i).encode(), f"page-{i}.txt").json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = bob.client.get("/api/v1/files", params=params).json()
        seen += [item["id"] for item in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    first = bob.client.get("/api/v1/files", params={"limit": 1}).json()["items"][0]
    assert first["name"] == "page-4.txt"
    assert bob.client.get(f"/api/v1/files/{ids[0]}").json()["name"] == "page-0.txt"


def test_delete_removes_row_and_blob(bob: Account, install: Installation) -> None:
    file_id = upload_raw(bob, b"to be deleted", "gone.txt").json()["id"]
    assert blob_key(file_id) in install.blobs.stored()
    assert bob.client.delete(f"/api/v1/files/{file_id}").status_code == 204
    assert blob_key(file_id) not in install.blobs.stored()
    for response in (
        bob.client.get(f"/api/v1/files/{file_id}"),
        download(bob, file_id),
        bob.client.delete(f"/api/v1/files/{file_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "file not found"
    ids = [item["id"] for item in bob.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]]
    assert file_id not in ids


def test_healthz(server_url: str) -> None:
    assert httpx.get(f"{server_url}/healthz").json() == {"status": "ok"}


@pytest.fixture
def server_url(alice: Account) -> str:
    return str(alice.client.base_url).rstrip("/")


def test_openapi_declares_every_error(server_url: str) -> None:
    spec = httpx.get(f"{server_url}/openapi.json").json()
    content = spec["paths"]["/api/v1/files/{file_id}/content"]["get"]["responses"]
    assert {"200", "206", "401", "404", "416", "500", "503"} <= set(content)
    upload = spec["paths"]["/api/v1/files"]["post"]
    assert {"201", "400", "401", "413"} <= set(upload["responses"])
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream", "multipart/form-data"}
    assert (
        spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"]
        == "/api/v1/auth/token"
    )
