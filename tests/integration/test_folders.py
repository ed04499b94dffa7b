"""Folders end to end: make, list, rename, move, delete; files placed, renamed, moved."""

from __future__ import annotations

from urllib.parse import quote

import httpx2 as httpx

from tests.integration.conftest import Account
from tests.integration.server import named


def mkdir(account: Account, name: str, parent: str | None = None) -> httpx.Response:
    return account.client.post("/api/v1/folders", json={"name": name, "parent_id": parent})


def put(
    account: Account, name: str, data: bytes, folder: str | None = None, path: str | None = None, **q: str
) -> httpx.Response:
    params = dict(q)
    if folder:
        params["folder"] = folder
    headers = named(name)
    if path is not None:
        headers["Sealbox-Path"] = quote(path, safe="/")
    return account.client.post("/api/v1/files", headers=headers, content=data, params=params)


def listing(account: Account, folder: str = "top", **params: object) -> dict:  # type: ignore[type-arg]
    got = account.client.get(f"/api/v1/folders/{folder}", params=params)  # type: ignore[arg-type]
    assert got.status_code == 200, got.text
    return got.json()  # type: ignore[no-any-return]


def names_in(account: Account, folder: str = "top", **params: object) -> list[str]:
    return [item["name"] for item in listing(account, folder, **params)["items"]]


def test_tree_round_trip(alice: Account) -> None:
    top = mkdir(alice, "Trip")
    assert top.status_code == 201, top.text
    trip = top.json()["id"]
    assert mkdir(alice, "Trip").status_code == 409
    sub = mkdir(alice, "Day 1", trip).json()["id"]
    created = put(alice, "a.txt", b"alpha", folder=sub)
    assert created.status_code == 201, created.text
    assert created.json()["folder_id"] == sub
    again = put(alice, "a.txt", b"alpha2", folder=sub)
    assert again.json()["name"] == "a (2).txt"
    refused = put(alice, "a.txt", b"x", folder=sub, on_conflict="fail")
    assert refused.status_code == 409, refused.text
    deep = put(alice, "b.txt", b"beta", folder=trip, path="Day 2/morning")
    assert deep.status_code == 201, deep.text
    assert names_in(alice, trip) == ["Day 1", "Day 2"]
    page = listing(alice, sub)
    assert [c["name"] for c in page["path"]] == ["Trip", "Day 1"]
    assert [i["name"] for i in page["items"]] == ["a (2).txt", "a.txt"]
    # rename and move a file
    moved = alice.client.patch(f"/api/v1/files/{created.json()['id']}", json={"folder_id": trip, "name": "c.txt"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "c.txt"
    assert moved.json()["folder_id"] == trip
    got = alice.client.get(f"/api/v1/files/{created.json()['id']}/content")
    assert got.content == b"alpha"
    assert got.headers["content-disposition"].endswith("c.txt")
    # a folder cannot go inside itself
    day2 = alice.client.post("/api/v1/folders/lookup", json={"path": "Trip/Day 2"}).json()["id"]
    morning = alice.client.post("/api/v1/folders/lookup", json={"path": "Trip/Day 2/morning"}).json()["id"]
    loop = alice.client.patch(f"/api/v1/folders/{day2}", json={"parent_id": morning})
    assert loop.status_code == 409, loop.text
    assert alice.client.patch(f"/api/v1/folders/{day2}", json={"parent_id": None}).status_code == 200
    assert "Day 2" in names_in(alice)
    # delete recursively
    assert alice.client.delete(f"/api/v1/folders/{trip}").status_code == 204
    assert alice.client.get(f"/api/v1/files/{created.json()['id']}").status_code == 404
    assert alice.client.get(f"/api/v1/folders/{sub}").status_code == 404
    assert alice.client.delete(f"/api/v1/folders/{day2}").status_code == 204
