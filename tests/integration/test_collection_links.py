"""Links to folders and selections: the listing, each file and the archive, through one gate."""

from __future__ import annotations

import io
import os
import time
import zipfile

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.test_folders import mkdir, put


def anonymous(account: Account) -> httpx.Client:
    return httpx.Client(base_url=str(account.client.base_url), timeout=60)


@pytest.fixture
def tree(alice: Account) -> dict[str, object]:
    """A folder "Share-<random>" holding a.txt, empty.bin and sub/deep/b.bin."""
    name = f"Share-{os.urandom(4).hex()}"
    top = mkdir(alice, name).json()["id"]
    files = {"a.txt": b"alpha" * 1000, "empty.bin": b"", "sub/deep/b.bin": os.urandom(200_000)}
    ids = {}
    for path, data in files.items():
        folder, _, leaf = path.rpartition("/")
        created = put(alice, leaf, data, folder=top, path=folder or None)
        assert created.status_code == 201, created.text
        ids[path] = created.json()["id"]
    return {"name": name, "id": top, "files": files, "ids": ids}


def share(account: Account, **body: object) -> dict:  # type: ignore[type-arg]
    created = account.client.post("/api/v1/shares", json=body)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_folder_link_lists_serves_each_file_and_the_archive(alice: Account, tree: dict) -> None:  # type: ignore[type-arg]
    link = share(alice, folder_id=tree["id"])
    assert link["kind"] == "folder"
    assert link["file_id"] is None
    assert link["file_name"] == tree["name"]
    with anonymous(alice) as client:
        listed = client.get(link["url"])
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["kind"] == "folder"
        assert body["name"] == tree["name"]
        paths = {entry["path"]: entry for entry in body["entries"]}
        assert set(paths) == {"a.txt", "empty.bin", "sub/", "sub/deep/", "sub/deep/b.bin"}
        got = client.get(paths["sub/deep/b.bin"]["download_url"])
        assert got.status_code == 200
        assert got.content == tree["files"]["sub/deep/b.bin"]
        archive = client.get(body["archive_url"])
        assert archive.status_code == 200, archive.text
        assert archive.headers["content-type"] == "application/zip"
        assert int(archive.headers["content-length"]) == len(archive.content)
        contents = unzip(archive.content)
        assert {k: v for k, v in contents.items() if not k.endswith("/")} == tree["files"]
        # /download on a link to several files is the archive too
        assert unzip(client.get(f"{link['url']}/download").content) == contents
        # a file outside the folder is not reachable through the link
        outside = put(alice, "outside.txt", b"secret").json()["id"]
        assert client.get(f"{link['url']}/files/{outside}").status_code == 404
        # a file added later is (a folder link sees what is in it now)
        later = put(alice, "later.txt", b"later", folder=tree["id"]).json()["id"]
        assert client.get(f"{link['url']}/files/{later}").content == b"later"


def test_selection_with_password_and_limit(alice: Account, tree: dict) -> None:  # type: ignore[type-arg]
    loose = put(alice, "loose.txt", b"loose").json()["id"]
    sub = alice.client.post("/api/v1/lookup", json={"path": f"{tree['name']}/sub"}).json()["id"]
    items = [{"kind": "file", "id": loose}, {"kind": "folder", "id": sub}, {"kind": "file", "id": tree["ids"]["a.txt"]}]
    link = share(alice, items=items, password="correct horse", download_limit=1)
    assert link["kind"] == "selection"
    assert link["items"] == 3
    with anonymous(alice) as client:
        assert client.get(link["url"]).status_code == 401
        assert client.get(f"{link['url']}/archive").status_code == 401
        grant = client.post(f"{link['url']}/unlock", json={"password": "correct horse"}).json()["grant"]
        client.headers["Authorization"] = f"Bearer {grant}"
        body = client.get(link["url"]).json()
        assert {e["path"] for e in body["entries"]} == {"loose.txt", "sub/", "sub/deep/", "sub/deep/b.bin", "a.txt"}
        assert all(e["downloads_left"] == 1 for e in body["entries"] if e["kind"] == "file")
        first = client.get(f"{link['url']}/archive")
        assert first.status_code == 200, first.text
        contents = unzip(first.content)
        assert contents["loose.txt"] == b"loose"
        # each file had one download: now none is left, for the archive and for each file
        again = client.get(f"{link['url']}/archive")
        assert again.status_code == 410, again.text
        one = client.get(f"{link['url']}/files/{loose}")
        assert one.status_code == 410, one.text
        # revoked: every route says so
        alice.client.delete(f"/api/v1/shares/{link['id']}")
        for path in ("", "/archive", f"/files/{loose}", "/download"):
            assert client.get(f"{link['url']}{path}").status_code == 410


def _left(client: httpx.Client, url: str) -> dict[str, int | None]:
    return {e["path"]: e["downloads_left"] for e in client.get(url).json()["entries"] if e["kind"] == "file"}


def test_an_archive_cut_short_gives_back_what_it_did_not_send(alice: Account) -> None:
    folder = mkdir(alice, f"cut-{os.urandom(3).hex()}").json()["id"]
    files = {"one.bin": os.urandom(3 << 20), "two.bin": os.urandom(3 << 20)}
    for name, data in files.items():
        assert put(alice, name, data, folder=folder).status_code == 201
    link = share(alice, folder_id=folder, download_limit=1)
    with anonymous(alice) as client:
        with client.stream("GET", f"{link['url']}/archive") as response:
            assert response.status_code == 200
            for _ in response.iter_raw(64 << 10):
                break  # the client goes away after its first piece
        # What was not sent comes back (in the background, once the server sees the
        # connection gone): every file has its one download again.
        deadline = time.monotonic() + 60
        while _left(client, link["url"]) != {"one.bin": 1, "two.bin": 1} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _left(client, link["url"]) == {"one.bin": 1, "two.bin": 1}
        whole = client.get(f"{link['url']}/archive")
        assert whole.status_code == 200
        assert {k: v for k, v in unzip(whole.content).items() if not k.endswith("/")} == files
        assert _left(client, link["url"]) == {"one.bin": 0, "two.bin": 0}
        assert client.get(f"{link['url']}/archive").status_code == 410


def test_a_file_selected_twice_is_in_the_link_once(alice: Account, tree: dict) -> None:  # type: ignore[type-arg]
    """Selected, and inside a selected folder: one entry, one copy in the archive, one
    allowance (a second copy must not reset what the first used)."""
    items = [{"kind": "folder", "id": tree["id"]}, {"kind": "file", "id": tree["ids"]["a.txt"]}]
    link = share(alice, items=items, download_limit=1)
    with anonymous(alice) as client:
        entries = [e["path"] for e in client.get(link["url"]).json()["entries"] if e["kind"] == "file"]
        assert sorted(entries) == sorted(f"{tree['name']}/{path}" for path in tree["files"])
        got = client.get(f"{link['url']}/archive")
        assert got.status_code == 200
        assert len([k for k in unzip(got.content) if k.endswith("a.txt")]) == 1
        assert client.get(f"{link['url']}/archive").status_code == 410
