"""Someone sending files through an upload link learns that they arrived, and nothing that
addresses anything in the owner's space: no answer to them carries a file's id."""

from __future__ import annotations

import base64
import os

import httpx2 as httpx

from tests.integration.conftest import Account
from tests.integration.server import Server, named

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def assert_reveals_none(response: httpx.Response, file_ids: list[str]) -> None:
    assert "sealbox-file-id" not in response.headers
    seen = " ".join(f"{k}: {v}" for k, v in response.headers.items()) + response.text
    for file_id in file_ids:
        assert file_id not in seen
        assert file_id.replace("-", "") not in seen


def test_no_answer_to_a_link_uploader_names_the_new_file(alice: Account, server: Server) -> None:
    created = alice.client.post("/api/v1/upload-requests", json={"max_files": 10}).json()
    base = f"{server.url}/r/{created['token']}/uploads/"
    answers: list[httpx.Response] = []
    data = os.urandom(30_000)
    # tus: creation, then a completing PATCH.
    headers = {**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta(filename="a.bin")}
    first = httpx.post(base, headers=headers)
    url = server.url + first.headers["location"]
    answers += [first, httpx.patch(url, content=data[:1000], headers={**TUS, **STREAM, "Upload-Offset": "0"})]
    answers.append(httpx.patch(url, content=data[1000:], headers={**TUS, **STREAM, "Upload-Offset": "1000"}))
    # tus: creation-with-upload that completes at once, and an empty file.
    answers.append(httpx.post(base, content=data, headers={**headers, **STREAM}))
    answers.append(httpx.post(base, headers={**TUS, "Upload-Length": "0", "Upload-Metadata": meta(filename="e")}))
    # Raw and multipart uploads.
    answers.append(httpx.post(f"{server.url}/r/{created['token']}/files", headers=named("raw.bin"), content=data))
    answers.append(httpx.post(f"{server.url}/r/{created['token']}/files", files={"file": ("m.bin", data)}))
    assert [a.status_code for a in answers] == [201, 204, 204, 201, 201, 201, 201]
    received = alice.client.get(f"/api/v1/upload-requests/{created['id']}/files").json()
    assert sorted(f["name"] for f in received) == ["a.bin", "a.bin", "e", "m.bin", "raw.bin"]
    for answer in answers:
        assert_reveals_none(answer, [f["id"] for f in received])
    # The owner's own tus uploads still learn the id.
    own = alice.client.post(
        "/api/v1/uploads/", content=data, headers={**TUS, **STREAM, "Upload-Length": str(len(data))}
    )
    assert own.headers["sealbox-file-id"]
