"""tus 1.0.0 conformance: every MUST of the core protocol and of each extension offered
(creation, creation-with-upload, termination, checksum, expiration), on both backends,
plus what sealbox adds: encryption at rest of partial uploads, exactly-once completion,
policies and upload-request links.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx2 as httpx
import pytest

from sealbox.config import Settings
from sealbox.runtime import build, load_keyring
from tests.integration.conftest import Account
from tests.integration.server import Installation, Server

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}
BASE = "/api/v1/uploads/"


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(account: Account, length: int, name: str = "tus.bin", **headers: str) -> httpx.Response:
    return account.client.post(
        BASE, headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": meta(filename=name), **headers}
    )


def location(account: Account, length: int, name: str = "tus.bin") -> str:
    response = create(account, length, name)
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


def patch(account: Account, url: str, offset: int, body: bytes, **headers: str) -> httpx.Response:
    return account.client.patch(url, content=body, headers={**TUS, **STREAM, "Upload-Offset": str(offset), **headers})


def head(account: Account, url: str) -> httpx.Response:
    return account.client.head(url, headers=TUS)


def listed(account: Account) -> set[str]:
    return {f["name"] for f in account.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]}


def content(account: Account, file_id: str) -> bytes:
    response = account.client.get(f"/api/v1/files/{file_id}/content")
    assert response.status_code == 200
    return response.content


# Core protocol


def test_options_describes_the_server(alice: Account) -> None:
    response = alice.client.options(BASE)
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert response.headers["tus-max-size"] == str(16 << 30)  # SEALBOX_MAX_UPLOAD_SIZE
    assert set(response.headers["tus-checksum-algorithm"].split(",")) == {"sha1", "sha256"}


def test_every_response_carries_tus_resumable(alice: Account) -> None:
    url = location(alice, 10)
    responses = [
        create(alice, 10),
        head(alice, url),
        patch(alice, url, 0, b"12345"),
        patch(alice, url, 0, b"12345"),  # 409
        head(alice, BASE + "00000000-0000-0000-0000-000000000000"),  # 404
        alice.client.delete(url, headers=TUS),
    ]
    for response in responses:
        assert response.headers["tus-resumable"] == "1.0.0", response.status_code


def test_an_unsupported_version_is_refused_and_not_processed(alice: Account) -> None:
    for version in (None, "0.2.2", "2.0.0"):
        headers = {"Upload-Length": "5", "Upload-Metadata": meta(filename="v.bin")}
        if version:
            headers["Tus-Resumable"] = version
        refused = alice.client.post(BASE, headers=headers)
        assert refused.status_code == 412
        assert refused.headers["tus-version"] == "1.0.0"
        assert refused.headers["tus-resumable"] == "1.0.0"
        assert "location" not in refused.headers
    url = location(alice, 5)
    refused = alice.client.patch(url, content=b"abc", headers={**STREAM, "Upload-Offset": "0"})
    assert refused.status_code == 412
    assert head(alice, url).headers["upload-offset"] == "0"


def test_head_reports_offset_and_length_and_is_not_cached(alice: Account) -> None:
    url = location(alice, 100)
    response = head(alice, url)
    assert response.status_code == 200
    assert response.headers["upload-offset"] == "0"
    assert response.headers["upload-length"] == "100"
    assert response.headers["cache-control"] == "no-store"
    assert patch(alice, url, 0, b"x" * 40).headers["upload-offset"] == "40"
    assert head(alice, url).headers["upload-offset"] == "40"
    missing = head(alice, BASE + "00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert "upload-offset" not in missing.headers


def test_patch_appends_at_the_offset_and_only_there(alice: Account) -> None:
    data = os.urandom(300_000)
    url = location(alice, len(data), "core.bin")
    first = patch(alice, url, 0, data[:100_000])
    assert first.status_code == 204
    assert first.headers["upload-offset"] == "100000"
    for wrong in (0, 99_999, 100_001, 300_000):
        conflict = patch(alice, url, wrong, data[wrong : wrong + 10])
        assert conflict.status_code == 409
        assert conflict.json()["detail"] == f"the upload is at offset 100000, not {wrong}"
    assert head(alice, url).headers["upload-offset"] == "100000"
    assert "core.bin" not in listed(alice)  # visible only once complete
    last = patch(alice, url, 100_000, data[100_000:])
    assert last.status_code == 204
    assert last.headers["upload-offset"] == str(len(data))
    assert content(alice, last.headers["sealbox-file-id"]) == data
    assert "core.bin" in listed(alice)
    # The upload became a file, and says so until it expires: a client that asks again
    # hears there is nothing left to send; repeating the last PATCH creates nothing.
    done = head(alice, url)
    assert done.status_code == 200
    assert (done.headers["upload-offset"], done.headers["upload-length"]) == (str(len(data)), str(len(data)))
    assert done.headers["sealbox-file-id"] == last.headers["sealbox-file-id"]
    again = patch(alice, url, len(data), b"")
    assert again.status_code == 204
    assert again.headers["sealbox-file-id"] == last.headers["sealbox-file-id"]
    more = patch(alice, url, len(data), b"x")
    assert more.status_code == 413
    assert more.json()["detail"] == "the upload is complete: nothing may follow its end"
    names = [f["name"] for f in alice.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]]
    assert names.count("core.bin") == 1


def test_patch_needs_the_offset_stream_content_type(alice: Account) -> None:
    url = location(alice, 10)
    for content_type in ("application/octet-stream", "text/plain", None):
        headers = {**TUS, "Upload-Offset": "0"}
        if content_type:
            headers["Content-Type"] = content_type
        refused = alice.client.patch(url, content=b"abc", headers=headers)
        assert refused.status_code == 415
    missing_offset = alice.client.patch(url, content=b"abc", headers={**TUS, **STREAM})
    assert missing_offset.status_code == 400
    assert missing_offset.json()["detail"] == "upload-offset must be a non-negative integer"
    assert head(alice, url).headers["upload-offset"] == "0"


def test_a_body_past_the_length_is_refused_and_nothing_appended(alice: Account) -> None:
    url = location(alice, 10)
    assert patch(alice, url, 0, b"12345").status_code == 204
    refused = patch(alice, url, 5, b"1234567")
    assert refused.status_code == 413
    assert head(alice, url).headers["upload-offset"] == "5"


def test_two_concurrent_patches_one_wins(alice: Account) -> None:
    data = os.urandom(4 << 20)
    url = location(alice, 2 * len(data), "race.bin")

    def send(_: int) -> int:
        return patch(alice, url, 0, data).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(send, range(2)))
    assert statuses == [204, 409]
    assert head(alice, url).headers["upload-offset"] == str(len(data))


def test_uploads_belong_to_their_creator(alice: Account, bob: Account) -> None:
    url = location(alice, 10)
    assert head(bob, url).status_code == 404
    assert patch(bob, url, 0, b"x").status_code == 404
    assert bob.client.delete(url, headers=TUS).status_code == 404
    assert alice.client.head(url, headers=TUS).status_code == 200
    anonymous = httpx.head(str(alice.client.base_url).rstrip("/") + url, headers=TUS)
    assert anonymous.status_code == 401


# Creation, creation-with-upload


def test_creation_needs_a_length_within_the_maximum(alice: Account, server: Server) -> None:
    missing = alice.client.post(BASE, headers=TUS)
    assert missing.status_code == 400
    assert missing.json()["detail"] == "upload-length must be a non-negative integer"
    deferred = alice.client.post(BASE, headers={**TUS, "Upload-Defer-Length": "1"})
    assert deferred.status_code == 400
    maximum = int(alice.client.options(BASE).headers["tus-max-size"])
    too_big = create(alice, maximum + 1)
    assert too_big.status_code == 413
    assert "location" not in too_big.headers


def test_creation_reads_metadata(alice: Account) -> None:
    response = alice.client.post(
        BASE,
        headers={
            **TUS,
            **STREAM,
            "Upload-Length": "4",
            "Upload-Metadata": meta(filename="Résumé.txt", filetype="text/plain"),
        },
        content=b"cafe",
    )
    assert response.status_code == 201
    info = alice.client.get(f"/api/v1/files/{response.headers['sealbox-file-id']}").json()
    assert (info["name"], info["content_type"], info["size"]) == ("Résumé.txt", "text/plain", 4)
    for bad in ("filename !!!", "a YQ==,a YQ==", "filename YQ== extra"):
        refused = alice.client.post(BASE, headers={**TUS, "Upload-Length": "1", "Upload-Metadata": bad})
        assert refused.status_code == 400, bad
    unsafe = create(alice, 1, name="../etc/passwd")
    assert unsafe.status_code == 400


def test_creation_with_upload(alice: Account) -> None:
    data = os.urandom(70_000)
    partial = alice.client.post(
        BASE,
        headers={**TUS, **STREAM, "Upload-Length": str(len(data)), "Upload-Metadata": meta(filename="cwu.bin")},
        content=data[:30_000],
    )
    assert partial.status_code == 201
    assert partial.headers["upload-offset"] == "30000"
    url = partial.headers["location"]
    done = patch(alice, url, 30_000, data[30_000:])
    assert content(alice, done.headers["sealbox-file-id"]) == data
    empty = create(alice, 0, name="empty.bin")
    assert empty.status_code == 201
    assert content(alice, empty.headers["sealbox-file-id"]) == b""


# Checksum


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_checksums(alice: Account, algorithm: str) -> None:
    data = os.urandom(50_000)
    url = location(alice, len(data))
    digest = base64.b64encode(hashlib.new(algorithm, data[:20_000]).digest()).decode()
    wrong = base64.b64encode(hashlib.new(algorithm, b"other").digest()).decode()
    mismatch = patch(alice, url, 0, data[:20_000], **{"Upload-Checksum": f"{algorithm} {wrong}"})
    assert mismatch.status_code == 460
    assert head(alice, url).headers["upload-offset"] == "0"
    assert patch(alice, url, 0, data[:20_000], **{"Upload-Checksum": f"{algorithm} {digest}"}).status_code == 204
    assert head(alice, url).headers["upload-offset"] == "20000"


def test_an_unsupported_checksum_algorithm_is_a_bad_request(alice: Account) -> None:
    url = location(alice, 10)
    refused = patch(alice, url, 0, b"abc", **{"Upload-Checksum": "md5 kAFQmDzST7DWlj99KOF/cg=="})
    assert refused.status_code == 400
    assert "unsupported checksum algorithm 'md5'" in refused.json()["detail"]
    assert head(alice, url).headers["upload-offset"] == "0"


# Termination and expiration


def test_termination_removes_everything(alice: Account, install: Installation) -> None:
    url = location(alice, 1 << 20, "gone.bin")
    assert patch(alice, url, 0, os.urandom(300_000)).status_code == 204
    upload_id = url.rsplit("/", 1)[-1].replace("-", "")
    assert any(upload_id in key for key in install.blobs.stored())
    assert alice.client.delete(url, headers=TUS).status_code == 204
    assert not any(upload_id in key for key in install.blobs.stored())
    for response in (head(alice, url), patch(alice, url, 300_000, b"x"), alice.client.delete(url, headers=TUS)):
        assert response.status_code == 404


def test_expiration(alice: Account, install: Installation) -> None:
    created = create(alice, 100)
    expires = parsedate_to_datetime(created.headers["upload-expires"])
    url = created.headers["location"]
    moved = patch(alice, url, 0, b"x" * 10)
    assert parsedate_to_datetime(moved.headers["upload-expires"]) >= expires
    upload_id = url.rsplit("/", 1)[-1]
    install.sql("UPDATE uploads SET expires_at = created_at WHERE id = :id", id=upload_id.replace("-", ""))
    assert head(alice, url).status_code == 410
    assert patch(alice, url, 10, b"y").status_code == 410
    assert any(upload_id.replace("-", "") in key for key in install.blobs.stored())
    assert sweep(install) >= 1
    assert not any(upload_id.replace("-", "") in key for key in install.blobs.stored())
    assert head(alice, url).status_code == 404


def sweep(install: Installation) -> int:
    """Run the sweeper once against the installation's own database and store."""
    settings = Settings(_env_file=None, **settings_from_env(install))  # type: ignore[call-arg]

    async def run() -> int:
        runtime = build(settings, load_keyring(settings))
        try:
            return await runtime.uploads.sweep(timedelta(hours=1))
        finally:
            await runtime.close()

    return asyncio.run(run())


def settings_from_env(install: Installation) -> dict[str, object]:
    env = install.env()
    values: dict[str, object] = {"data_dir": env["SEALBOX_DATA_DIR"], "keyring": env["SEALBOX_KEYRING"]}
    if "SEALBOX_DATABASE_URL" in env:
        values["database_url"] = env["SEALBOX_DATABASE_URL"]
        values["storage"] = "s3"
        values["s3"] = {
            "bucket": env["SEALBOX_S3__BUCKET"],
            "endpoint": env["SEALBOX_S3__ENDPOINT"],
            "allow_http": True,
            "access_key_id": env["SEALBOX_S3__ACCESS_KEY_ID"],
            "secret_access_key": env["SEALBOX_S3__SECRET_ACCESS_KEY"],
        }
    return values


# Through an upload-request link


def test_uploads_through_an_upload_request_link(alice: Account, server: Server) -> None:
    created = alice.client.post("/api/v1/upload-requests", json={"max_files": 1, "max_bytes": 100_000}).json()
    base = f"{server.url}/r/{created['token']}/uploads/"
    data = os.urandom(60_000)
    headers = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta(filename="via-link.bin", uploader="Eve")}
    too_big = httpx.post(base, headers={**headers, "Upload-Length": "100001"})
    assert too_big.status_code == 413
    first = httpx.post(base, headers=headers)
    assert first.status_code == 201
    url = server.url + first.headers["location"]
    assert httpx.patch(url, content=data[:10_000], headers={**TUS, **STREAM, "Upload-Offset": "0"}).status_code == 204
    assert httpx.head(url, headers=TUS).headers["upload-offset"] == "10000"
    # The account API does not reach a link's upload, nor another link's.
    assert (
        alice.client.head(
            first.headers["location"].replace(f"/r/{created['token']}/uploads", "/api/v1/uploads"), headers=TUS
        ).status_code
        == 404
    )
    done = httpx.patch(url, content=data[10_000:], headers={**TUS, **STREAM, "Upload-Offset": "10000"})
    assert done.status_code == 204
    received = alice.client.get(f"/api/v1/upload-requests/{created['id']}/files").json()
    assert [(f["name"], f["size"], f["uploader"]) for f in received] == [("via-link.bin", len(data), "Eve")]
    assert content(alice, received[0]["id"]) == data
    assert httpx.post(base, headers=headers).status_code == 410  # its one file has arrived
