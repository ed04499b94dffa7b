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
    assert sorted(f["name"] for f in received) == [
        "a (2).bin",
        "a.bin",
        "e",
        "m.bin",
        "raw.bin",
    ]  # names are unique in a folder
    for answer in answers:
        assert_reveals_none(answer, [f["id"] for f in received])
    # The owner's own tus uploads still learn the id.
    own = alice.client.post(
        "/api/v1/uploads/", content=data, headers={**TUS, **STREAM, "Upload-Length": str(len(data))}
    )
    assert own.headers["sealbox-file-id"]


def test_a_link_uploader_cannot_tell_which_names_the_links_folder_holds(alice: Account, server: Server) -> None:
    """Names are unique in a folder, so an upload may be stored under another name, or a
    dropped folder meet a file of its name. Someone uploading through a link to a folder
    gets the same answer whether or not the owner's folder holds the name: the receipt
    names the file as it was sent, and a file in the way of a dropped folder is stepped
    around ("name (2)"), never refused."""
    box = alice.client.post("/api/v1/folders", json={"name": "inbox-probe"}).json()["id"]
    owned = alice.client.post("/api/v1/files", params={"folder": box}, headers=named("plan.pdf"), content=b"own")
    assert owned.status_code == 201, owned.text
    token = alice.client.post("/api/v1/upload-requests", json={"folder_id": box, "max_files": 10}).json()["token"]
    url = f"{server.url}/r/{token}/files"
    taken = httpx.post(url, headers=named("plan.pdf"), content=b"x")
    free = httpx.post(url, headers=named("absent.pdf"), content=b"x")
    assert (taken.status_code, free.status_code) == (201, 201)
    assert (taken.json()["name"], free.json()["name"]) == ("plan.pdf", "absent.pdf")
    for sent in (
        httpx.post(url, headers={**named("a.txt"), "Sealbox-Path": "plan.pdf"}, content=b"a"),
        httpx.post(url, headers={**named("b.txt"), "Sealbox-Path": "plan.pdf"}, content=b"b"),
        httpx.post(url, headers={**named("c.txt"), "Sealbox-Path": "absent-dir"}, content=b"c"),
    ):
        assert sent.status_code == 201, sent.text
    data = b"through tus"
    tus = httpx.post(
        f"{server.url}/r/{token}/uploads/",
        content=data,
        headers={
            **TUS,
            **STREAM,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta(filename="t", path="plan.pdf"),
        },
    )
    assert tus.status_code == 201, tus.text
    listed = alice.client.get(f"/api/v1/folders/{box}").json()["items"]
    assert [(i["kind"], i["name"]) for i in listed] == [
        ("folder", "absent-dir"),
        ("folder", "plan (3).pdf"),  # "plan.pdf" and "plan (2).pdf" are files
        ("file", "absent.pdf"),
        ("file", "plan (2).pdf"),
        ("file", "plan.pdf"),
    ]
    inner = alice.client.post("/api/v1/lookup", json={"path": "inbox-probe/plan (3).pdf"}).json()["id"]
    assert [i["name"] for i in alice.client.get(f"/api/v1/folders/{inner}").json()["items"]] == ["a.txt", "b.txt", "t"]


def test_a_link_uploader_cannot_put_files_in_the_owners_own_folders(alice: Account, server: Server) -> None:
    """A path sent through an upload link enters only folders made through that link:
    the owner's own folder of that name (which they may have shared) is stepped around,
    and a second file of the same dropped tree joins the first."""
    press = f"Press-{os.urandom(3).hex()}"
    own = alice.client.post("/api/v1/folders", json={"name": press}).json()["id"]
    created = alice.client.post("/api/v1/upload-requests", json={"max_files": 10}).json()
    for name in ("brochure.pdf", "flyer.pdf"):
        sent = httpx.post(
            f"{server.url}/r/{created['token']}/files",
            headers={**named(name), "Sealbox-Path": press},
            content=b"from a stranger",
        )
        assert sent.status_code == 201, sent.text
    assert alice.client.get(f"/api/v1/folders/{own}").json()["items"] == []
    made = alice.client.post("/api/v1/lookup", json={"path": f"{press} (2)"})
    assert made.status_code == 200, made.text
    names = [item["name"] for item in alice.client.get(f"/api/v1/folders/{made.json()['id']}").json()["items"]]
    assert names == ["brochure.pdf", "flyer.pdf"]
