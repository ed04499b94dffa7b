"""Folders end to end: make, list, rename, move, delete; files placed, renamed, moved.

Every refusal is checked for its status, its message, and that nothing stored changed
(``tree_state``: the folder and file rows, read from the database directly).
"""

from __future__ import annotations

import base64
import os
import secrets
import unicodedata
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, blob_key, named

TUS = {"Tus-Resumable": "1.0.0"}
STREAM = {"Content-Type": "application/offset+octet-stream"}


def mkdir(account: Account, name: str, parent: str | None = None) -> httpx.Response:
    return account.client.post("/api/v1/folders", json={"name": name, "parent_id": parent})


def folder(account: Account, name: str, parent: str | None = None) -> str:
    made = mkdir(account, name, parent)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


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


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def problem(response: httpx.Response, status: int, detail: str) -> None:
    """``response`` is a problem of ``status`` whose detail contains ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    assert detail in response.json()["detail"], response.json()


def _hex(value: object) -> str | None:
    return None if value is None else str(value).replace("-", "")


def _bytes(value: object) -> bytes | None:
    return None if value is None else bytes(value)  # type: ignore[call-overload]


def tree_state(install: Installation) -> tuple[Any, ...]:
    """Every folder and file row (ids, places, names as stored) and unfinished uploads."""
    folders = sorted(
        (_hex(i), _hex(o), _hex(p), _bytes(n), _bytes(t))
        for i, o, p, n, t in install.sql("SELECT id, owner_id, parent_id, name_enc, name_tag FROM folders")
    )
    files = sorted(
        (_hex(i), _hex(f), _bytes(n), _bytes(listed), _bytes(t))
        for i, f, n, listed, t in install.sql("SELECT id, folder_id, name_enc, listed_name_enc, name_tag FROM files")
    )
    uploads = install.sql("SELECT count(*) FROM uploads")
    return folders, files, uploads


def check_tree(install: Installation) -> None:
    """The tree is whole: every folder reaches the top of its own account through folders
    of that account (no cycle), every file's folder exists and is its owner's."""
    folders = {_hex(i): (_hex(o), _hex(p)) for i, o, p in install.sql("SELECT id, owner_id, parent_id FROM folders")}
    for folder_id, (owner, parent) in folders.items():
        seen = {folder_id}
        while parent is not None:
            assert parent in folders, f"folder {folder_id} hangs below a missing folder"
            assert folders[parent][0] == owner, f"folder {folder_id} hangs below another account's folder"
            assert parent not in seen, f"folder {folder_id} is in a cycle"
            seen.add(parent)
            parent = folders[parent][1]
    for file_id, owner, folder_id in install.sql("SELECT id, owner_id, folder_id FROM files"):
        if folder_id is not None:
            assert _hex(folder_id) in folders, f"file {file_id} is in a missing folder"
            assert folders[_hex(folder_id)][0] == _hex(owner), f"file {file_id} is in another account's folder"


# -- the folder API ---------------------------------------------------------------------


def test_tree_round_trip(alice: Account, install: Installation) -> None:
    trip = folder(alice, "Trip")
    problem(mkdir(alice, "Trip"), 409, "an item named 'Trip' already exists in that folder")
    sub = folder(alice, "Day 1", trip)
    created = put(alice, "a.txt", b"alpha", folder=sub)
    assert created.status_code == 201, created.text
    assert created.json()["folder_id"] == sub
    again = put(alice, "a.txt", b"alpha2", folder=sub)
    assert again.json()["name"] == "a (2).txt"
    refused = put(alice, "a.txt", b"x", folder=sub, on_conflict="fail")
    problem(refused, 409, "an item named 'a.txt' already exists in that folder")
    deep = put(alice, "b.txt", b"beta", folder=trip, path="Day 2/morning")
    assert deep.status_code == 201, deep.text
    assert names_in(alice, trip) == ["Day 1", "Day 2"]
    page = listing(alice, sub)
    assert [c["name"] for c in page["path"]] == ["Trip", "Day 1"]
    assert page["folder"]["name"] == "Day 1"
    assert page["folder"]["parent_id"] == trip
    assert [i["name"] for i in page["items"]] == ["a (2).txt", "a.txt"]
    # rename and move a file
    moved = alice.client.patch(f"/api/v1/files/{created.json()['id']}", json={"folder_id": trip, "name": "c.txt"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "c.txt"
    assert moved.json()["folder_id"] == trip
    got = alice.client.get(f"/api/v1/files/{created.json()['id']}/content")
    assert got.content == b"alpha"
    assert got.headers["content-disposition"].endswith("c.txt")
    # to the top and back by name only
    top = alice.client.patch(f"/api/v1/files/{created.json()['id']}", json={"folder_id": "top"})
    assert top.json()["folder_id"] is None
    assert "c.txt" in names_in(alice)
    assert alice.client.patch(f"/api/v1/files/{created.json()['id']}", json={"folder_id": trip}).status_code == 200
    lookup = alice.client.post("/api/v1/lookup", json={"path": "Trip/c.txt"})
    assert lookup.json()["id"] == created.json()["id"]
    assert lookup.json()["kind"] == "file"
    # a folder cannot go inside itself
    day2 = alice.client.post("/api/v1/lookup", json={"path": "Trip/Day 2"}).json()["id"]
    morning = alice.client.post("/api/v1/lookup", json={"path": "Trip/Day 2/morning"}).json()["id"]
    before = tree_state(install)
    for into in (day2, morning):
        loop = alice.client.patch(f"/api/v1/folders/{day2}", json={"parent_id": into})
        problem(loop, 409, "a folder cannot be moved into itself or into a folder inside it")
    assert tree_state(install) == before
    renamed = alice.client.patch(f"/api/v1/folders/{day2}", json={"name": "Day Two", "parent_id": None})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {**renamed.json(), "name": "Day Two", "parent_id": None}
    assert "Day Two" in names_in(alice)
    assert alice.client.post("/api/v1/lookup", json={"path": "Day Two/morning/b.txt"}).status_code == 200
    # delete recursively
    assert alice.client.delete(f"/api/v1/folders/{trip}").status_code == 204
    assert alice.client.get(f"/api/v1/files/{created.json()['id']}").status_code == 404
    assert alice.client.get(f"/api/v1/folders/{sub}").status_code == 404
    assert alice.client.delete(f"/api/v1/folders/{day2}").status_code == 204
    assert blob_key(created.json()["id"]) not in install.blobs.stored()
    check_tree(install)


def test_names_are_unique_in_a_folder_across_files_and_folders(alice: Account, install: Installation) -> None:
    box = folder(alice, "unique-box")
    other = folder(alice, "unique-other")
    file_id = put(alice, "Taken", b"x", folder=box).json()["id"]
    sub = folder(alice, "Sub", box)
    moving = put(alice, "Taken", b"y", folder=other).json()["id"]
    sub_elsewhere = folder(alice, "Sub", other)
    before = tree_state(install)
    cases = [
        (mkdir(alice, "Taken", box), "an item named 'Taken' already exists in that folder"),  # a file has it
        (mkdir(alice, "Sub", box), "an item named 'Sub' already exists in that folder"),  # a folder has it
        (alice.client.patch(f"/api/v1/folders/{sub}", json={"name": "Taken"}), "'Taken' already exists"),
        (alice.client.patch(f"/api/v1/files/{file_id}", json={"name": "Sub"}), "'Sub' already exists"),
        (alice.client.patch(f"/api/v1/files/{moving}", json={"folder_id": box}), "'Taken' already exists"),
        (alice.client.patch(f"/api/v1/folders/{sub_elsewhere}", json={"parent_id": box}), "'Sub' already exists"),
        (put(alice, "Sub", b"z", folder=box, on_conflict="fail"), "'Sub' already exists"),
        (put(alice, "f.txt", b"z", folder=box, path="Taken"), "a file named 'Taken' is where a folder"),
    ]
    for response, detail in cases:
        problem(response, 409, detail)
    assert tree_state(install) == before
    # Renaming to its own name, or moving to where it is, changes nothing and is no conflict.
    assert alice.client.patch(f"/api/v1/folders/{sub}", json={"name": "Sub"}).status_code == 200
    assert alice.client.patch(f"/api/v1/files/{file_id}", json={"folder_id": box}).status_code == 200
    assert tree_state(install) == before
    # Names differing only in case are two names (as on Linux); NFC and NFD spellings are one.
    assert mkdir(alice, "sub", box).status_code == 201
    assert mkdir(alice, "Café", box).status_code == 201
    problem(mkdir(alice, unicodedata.normalize("NFD", "Café"), box), 409, "already exists in that folder")


def test_another_accounts_items_are_not_found_on_every_route(
    alice: Account, bob: Account, install: Installation, server: Server
) -> None:
    """Bob's folders and files are 404 to Alice on every route (never 403, which would
    say they exist), used as the target or as the place to put something."""
    theirs = folder(bob, "bobs-private")
    their_file = put(bob, "bob.txt", b"bob", folder=theirs).json()["id"]
    mine = folder(alice, "alices")
    my_file = put(alice, "alice.txt", b"alice", folder=mine).json()["id"]
    tus_headers = {**TUS, "Upload-Length": "1", "Upload-Metadata": meta(filename="t.bin", folder=theirs)}
    before = tree_state(install)
    answers = {
        "list": alice.client.get(f"/api/v1/folders/{theirs}"),
        "rename": alice.client.patch(f"/api/v1/folders/{theirs}", json={"name": "mine now"}),
        "move theirs": alice.client.patch(f"/api/v1/folders/{theirs}", json={"parent_id": mine}),
        "move mine into theirs": alice.client.patch(f"/api/v1/folders/{mine}", json={"parent_id": theirs}),
        "delete": alice.client.delete(f"/api/v1/folders/{theirs}"),
        "mkdir inside": mkdir(alice, "x", theirs),
        "file rename": alice.client.patch(f"/api/v1/files/{their_file}", json={"name": "y"}),
        "file move": alice.client.patch(f"/api/v1/files/{their_file}", json={"folder_id": mine}),
        "file into theirs": alice.client.patch(f"/api/v1/files/{my_file}", json={"folder_id": theirs}),
        "raw upload": put(alice, "u.txt", b"u", folder=theirs),
        "multipart upload": alice.client.post(
            "/api/v1/files", params={"folder": theirs}, files={"file": ("m.txt", b"m", "text/plain")}
        ),
        "tus": alice.client.post("/api/v1/uploads/", headers=tus_headers),
        "upload link": alice.client.post("/api/v1/upload-requests", json={"folder_id": theirs}),
    }
    for what, response in answers.items():
        assert response.status_code == 404, (what, response.text)
        assert response.json()["detail"] in {"folder not found", "file not found"}, (what, response.json())
    lookup = alice.client.post("/api/v1/lookup", json={"path": "bobs-private/bob.txt"})
    problem(lookup, 404, "nothing is at that path")
    assert tree_state(install) == before
    # Unknown and malformed ids answer the same.
    for bad in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        problem(alice.client.get(f"/api/v1/folders/{bad}"), 404, "folder not found")
        problem(alice.client.delete(f"/api/v1/folders/{bad}"), 404, "folder not found")
        problem(mkdir(alice, "z", bad), 404, "folder not found")
    assert tree_state(install) == before


BAD_NAMES = [
    ("nul\x00byte", 400, "must not contain control characters"),
    ("new\nline", 400, "must not contain control characters"),
    ("tab\there", 400, "must not contain control characters"),
    ("bidi\u202eexe.txt", 400, "must not contain control characters"),
    ("zero\u200bwidth", 400, "must not contain control characters"),
    ("a/b", 400, "must not contain '/' or '\\' or be '.' or '..'"),
    ("a\\b", 400, "must not contain '/' or '\\' or be '.' or '..'"),
    (".", 400, "must not contain '/' or '\\' or be '.' or '..'"),
    ("..", 400, "must not contain '/' or '\\' or be '.' or '..'"),
    ("   ", 400, "is required"),
    ("", 400, "is required"),
    ("\u0301accent", 400, "must not start with a combining mark"),
    ("x" * 256, 400, "is at most 255 characters"),
    ("x" * 1001, 422, "at most 1000 characters"),
]


@pytest.mark.parametrize(("name", "status", "detail"), BAD_NAMES, ids=[repr(n[:12]) for n, _, _ in BAD_NAMES])
def test_bad_names_are_refused_everywhere_a_name_is_given(
    alice: Account, install: Installation, name: str, status: int, detail: str
) -> None:
    box = folder(alice, f"bad-names-{secrets.token_hex(4)}")
    sub = folder(alice, "sub", box)
    file_id = put(alice, "ok.txt", b"ok", folder=box).json()["id"]
    before = tree_state(install)
    for response in (
        mkdir(alice, name, box),
        alice.client.patch(f"/api/v1/folders/{sub}", json={"name": name}),
        alice.client.patch(f"/api/v1/folders/{sub}", json={"name": name, "parent_id": None}),
    ):
        problem(response, status, detail if status == 422 else detail.replace("a file", "a folder"))
        if status == 400:
            assert "a folder name" in response.json()["detail"]
    renamed = alice.client.patch(f"/api/v1/files/{file_id}", json={"name": name})
    problem(renamed, status, detail)
    if status == 400:
        assert "a file name" in renamed.json()["detail"]
    if len(name) < 300 and name not in ("", "a/b"):  # (those two are paths of their own)
        # In a relative path (raw upload header; tus metadata), names obey the same rules.
        sent = put(alice, "p.txt", b"p", folder=box, path=f"ok/{name}")
        assert sent.status_code == 400, sent.text
        tus = alice.client.post(
            "/api/v1/uploads/",
            headers={**TUS, "Upload-Length": "1", "Upload-Metadata": meta(filename="t", folder=box, path=name)},
        )
        assert tus.status_code == 400, tus.text
    assert tree_state(install) == before


def test_bad_listing_parameters(alice: Account, install: Installation) -> None:
    box = folder(alice, "listing-params")
    for i in range(3):
        put(alice, f"f{i}", b"x" * i, folder=box)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"sort": "owner"}, 422, ""),
        ({"order": "up"}, 422, ""),
        ({"limit": 0}, 422, ""),
        ({"limit": 1001}, 422, ""),
        ({"limit": -1}, 422, ""),
        ({"limit": "many"}, 422, ""),
        ({"q": "x" * 256}, 422, ""),
        ({"cursor": "not a cursor"}, 400, "the cursor is not valid"),
        ({"cursor": "W10"}, 400, "the cursor is not valid"),  # "[]"
        ({"cursor": base64.urlsafe_b64encode(b"[" * 3000).decode()}, 400, "the cursor is not valid"),
        ({"cursor": "x" * 4097}, 422, ""),
    ]
    for params, status, detail in cases:
        problem(alice.client.get(f"/api/v1/folders/{box}", params=params), status, detail)
    first = listing(alice, box, limit=1, sort="size", order="desc")
    assert first["next_cursor"]
    for sort, order in (("name", "desc"), ("size", "asc"), ("created", "desc")):
        other = alice.client.get(
            f"/api/v1/folders/{box}", params={"cursor": first["next_cursor"], "sort": sort, "order": order}
        )
        problem(other, 400, "the cursor belongs to a listing in another order")
    # A cursor of the right ordering whose values are of the wrong kinds is invalid, not a crash.
    for forged in (
        ["size", "desc", 1, "big", "f0", "f0", "id"],
        ["size", "desc", "1", 1, "f0", "f0", "id"],
        ["size", "desc", 1, 1, ["f0"], "f0", "id"],
        ["size", "desc", 1, 1, "f0", "f0", None],
        ["size", "desc", None, None, None, None, None],
    ):
        raw = base64.urlsafe_b64encode(str(forged).replace("'", '"').replace("None", "null").encode()).decode()
        got = alice.client.get(f"/api/v1/folders/{box}", params={"cursor": raw, "sort": "size", "order": "desc"})
        problem(got, 400, "the cursor is not valid")


def test_a_tree_is_at_most_64_folders_deep(alice: Account, install: Installation) -> None:
    root = folder(alice, "deep-0")
    chain = [root]
    for depth in range(1, 64):
        chain.append(folder(alice, f"deep-{depth}", chain[-1]))
    before = tree_state(install)
    problem(mkdir(alice, "deep-64", chain[-1]), 400, "folders nest at most 64 deep")
    problem(put(alice, "f.txt", b"f", folder=chain[-1], path="one-more"), 400, "folders nest at most 64 deep")
    problem(put(alice, "f.txt", b"f", folder=chain[-3], path="a/b/c"), 400, "folders nest at most 64 deep")
    # Moving a tree of height 2 below depth 63 would make it 65 deep.
    other = folder(alice, "deep-other")
    folder(alice, "child", other)
    after_other = tree_state(install)
    problem(alice.client.patch(f"/api/v1/folders/{other}", json={"parent_id": chain[-2]}), 400, "nest at most 64")
    assert tree_state(install) == after_other
    assert alice.client.patch(f"/api/v1/folders/{other}", json={"parent_id": chain[-3]}).status_code == 200
    # A path longer than 64 folders, or 4096 characters, is refused before anything else.
    problem(put(alice, "f.txt", b"f", path="/".join(["p"] * 65)), 400, "a folder path is at most 64 folders deep")
    problem(put(alice, "f.txt", b"f", path="/".join(["p" * 200] * 21)), 400, "at most 4096 characters")
    assert before[1] == tree_state(install)[1]
    deleted = alice.client.delete(f"/api/v1/folders/{root}")
    assert deleted.status_code == 204
    assert alice.client.get(f"/api/v1/folders/{chain[-1]}").status_code == 404
    check_tree(install)


def test_bad_upload_places_are_refused_and_store_nothing(alice: Account, install: Installation) -> None:
    box = folder(alice, "bad-places")
    before = tree_state(install), install.blobs.stored()
    headers = named("f.txt")
    cases = [
        (put(alice, "f.txt", b"f", folder=box, on_conflict="replace"), 400, "on_conflict is 'rename' or 'fail'"),
        (put(alice, "f.txt", b"f", folder=box, on_conflict=""), 400, "on_conflict is 'rename' or 'fail'"),
        (
            alice.client.post("/api/v1/files", headers={**headers, "Sealbox-Path": "%FF%FE"}, content=b"f"),
            400,
            "the Sealbox-Path header is not percent-encoded UTF-8",
        ),
        (
            # UTF-8 sent as it is, not percent-encoded: refused, not stored garbled.
            alice.client.post("/api/v1/files", headers={**headers, "Sealbox-Path": "café".encode()}, content=b"f"),
            400,
            "the Sealbox-Path header is not percent-encoded UTF-8",
        ),
        (put(alice, "f.txt", b"f", path="/abs"), 400, "a folder path is relative"),
        (put(alice, "f.txt", b"f", path="a//b"), 400, "a folder path is relative"),
        (put(alice, "f.txt", b"f", path="a/"), 400, "a folder path is relative"),
        (put(alice, "f.txt", b"f", path="a/../b"), 400, "must not contain '/' or '\\' or be '.' or '..'"),
    ]
    for response, status, detail in cases:
        problem(response, status, detail)
    assert (tree_state(install), install.blobs.stored()) == before


# -- listings -------------------------------------------------------------------------


def _expected(items: list[dict[str, Any]], sort: str, order: str) -> list[str]:
    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        name = item["name"]
        if sort == "name":
            primary: Any = name.casefold()
        elif sort == "size":
            primary = item["size"] or 0
        else:
            primary = int(datetime.fromisoformat(item["created_at"]).timestamp() * 1_000_000)
        return (primary, name.casefold(), name, item["id"])

    folders = sorted((i for i in items if i["kind"] == "folder"), key=key, reverse=order == "desc")
    files = sorted((i for i in items if i["kind"] == "file"), key=key, reverse=order == "desc")
    return [i["id"] for i in folders + files]


def _pages(account: Account, folder_id: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        page = listing(account, folder_id, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= params["limit"]
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert len(page["items"]) == params["limit"]


PAGED_NAMES = ["Straße", "STRASSE-2", "été", "Été-final", "ÉTÉ.txt", "résumé.pdf", "Ωmega", "ωmega-low", "日本語.txt"]


def test_paging_a_large_folder_in_every_order(alice: Account) -> None:
    """~250 items (folders and files of many sizes and names, some equal but for case)
    paged 7 at a time in each sort and order: the pages, joined, are the whole folder in
    exactly that order, with no item twice and none missing."""
    box = folder(alice, "paging")
    expected_names = set()
    for i in range(20):
        name = f"Folder {i:03d}" if i % 2 else f"folder {i:03d}b"
        folder(alice, name, box)
        expected_names.add(name)
    for i in range(232):
        name = PAGED_NAMES[i] if i < len(PAGED_NAMES) else (f"File {i:03d}.bin" if i % 3 else f"file {i:03d}.BIN")
        made = put(alice, name, b"z" * ((i * 37) % 101), folder=box)
        assert made.status_code == 201, made.text
        expected_names.add(name)
    full = listing(alice, box, limit=1000)
    assert full["total"] == 252
    assert {i["name"] for i in full["items"]} == expected_names
    for sort in ("name", "size", "created"):
        for order in ("asc", "desc"):
            items, pages = _pages(alice, box, sort=sort, order=order, limit=7)
            ids = [i["id"] for i in items]
            assert len(ids) == len(set(ids)) == 252, (sort, order)
            assert pages == 36
            assert ids == _expected(full["items"], sort, order), (sort, order)
    # The filter: a substring, any case (Unicode case folding), in NFC whatever was typed.
    for query, wanted in (
        ("strasse", {"Straße", "STRASSE-2"}),
        ("ÉTÉ", {"été", "Été-final", "ÉTÉ.txt"}),
        (unicodedata.normalize("NFD", "été"), {"été", "Été-final", "ÉTÉ.txt"}),
        ("ΩMEGA", {"Ωmega", "ωmega-low"}),
        ("本語", {"日本語.txt"}),
        ("FOLDER 01", {f"Folder 0{i}" for i in range(11, 20, 2)} | {f"folder 0{i}b" for i in range(10, 20, 2)}),
        ("no such name", set()),
    ):
        found, _ = _pages(alice, box, q=query, limit=3)
        assert {i["name"] for i in found} == wanted, query
        assert listing(alice, box, q=query, limit=3)["total"] == len(wanted)


# -- uploads into folders by every path -------------------------------------------------


def test_uploads_land_in_folders_by_every_path(alice: Account, server: Server, install: Installation) -> None:
    box = folder(alice, "by-every-path")
    data = b"every path " * 1000
    raw = put(alice, "raw.txt", data, folder=box, path="raw/deep")
    multipart = alice.client.post(
        "/api/v1/files",
        params={"folder": box},
        headers={"Sealbox-Path": quote("multi/déjà", safe="/")},
        files={"file": ("multi.txt", data, "text/plain")},
    )
    tus_headers = {**TUS, **STREAM, "Upload-Length": str(len(data))}
    tus = alice.client.post(
        "/api/v1/uploads/",
        content=data,
        headers={**tus_headers, "Upload-Metadata": meta(filename="tus.txt", folder=box, path="tus/日本")},
    )
    for response in (raw, multipart):
        assert response.status_code == 201, response.text
    assert tus.status_code == 201, tus.text
    # An upload-request link that targets a folder, a dropped tree below it.
    link = alice.client.post("/api/v1/upload-requests", json={"folder_id": box, "max_files": 10})
    assert link.status_code == 201, link.text
    assert link.json()["folder_id"] == box
    token = link.json()["token"]
    link_raw = httpx.post(
        f"{server.url}/r/{token}/files",
        headers={**named("link-raw.txt"), "Sealbox-Path": quote("dropped/a b", safe="/")},
        content=data,
    )
    assert link_raw.status_code == 201, link_raw.text
    link_tus = httpx.post(
        f"{server.url}/r/{token}/uploads/",
        content=data,
        # The link's folder holds: a folder in the metadata is not the uploader's to choose.
        headers={**tus_headers, "Upload-Metadata": meta(filename="link-tus.txt", path="dropped/c", folder="top")},
    )
    assert link_tus.status_code == 201, link_tus.text
    for path in (
        "by-every-path/raw/deep/raw.txt",
        "by-every-path/multi/déjà/multi.txt",
        "by-every-path/tus/日本/tus.txt",
        "by-every-path/dropped/a b/link-raw.txt",
        "by-every-path/dropped/c/link-tus.txt",
    ):
        found = alice.client.post("/api/v1/lookup", json={"path": path})
        assert found.status_code == 200, (path, found.text)
        assert alice.client.get(f"/api/v1/files/{found.json()['id']}/content").content == data
    assert names_in(alice, box) == ["dropped", "multi", "raw", "tus"]
    # Names are numbered in the link's folder too, never overwritten (the uploader's
    # receipt names the file as sent: see test_link_uploads).
    again = httpx.post(
        f"{server.url}/r/{token}/files",
        headers={**named("link-raw.txt"), "Sealbox-Path": quote("dropped/a b", safe="/")},
        content=b"second",
    )
    assert again.status_code == 201, again.text
    dropped = alice.client.post("/api/v1/lookup", json={"path": "by-every-path/dropped/a b"}).json()["id"]
    assert names_in(alice, dropped) == ["link-raw (2).txt", "link-raw.txt"]
    # A tus upload into a folder numbers a taken name (tus has no on_conflict).
    second = alice.client.post(
        "/api/v1/uploads/",
        content=b"2",
        headers={
            **TUS,
            **STREAM,
            "Upload-Length": "1",
            "Upload-Metadata": meta(filename="tus.txt", folder=box, path="tus/日本"),
        },
    )
    assert second.status_code == 201, second.text
    tus_dir = alice.client.post("/api/v1/lookup", json={"path": "by-every-path/tus/日本"}).json()["id"]
    assert names_in(alice, tus_dir) == ["tus (2).txt", "tus.txt"]
    check_tree(install)


def test_a_tus_upload_whose_folder_is_deleted_fails_cleanly(
    alice: Account, install: Installation, server: Server
) -> None:
    """The folder goes while uploads into it are half done (the owner's, and one through
    an upload link to a folder inside it): the deletion takes them with it, rows and
    parts, so nothing of them is left readable; their next PATCH is a 404."""
    box = folder(alice, "going-away")
    data = b"q" * 200_000
    created = alice.client.post(
        "/api/v1/uploads/",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta(filename="late.bin", folder=box)},
    )
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    half = alice.client.patch(url, content=data[:100_000], headers={**TUS, **STREAM, "Upload-Offset": "0"})
    assert half.status_code == 204, half.text
    inner = folder(alice, "inner", box)
    token = alice.client.post("/api/v1/upload-requests", json={"folder_id": inner}).json()["token"]
    linked = httpx.post(
        f"{server.url}/r/{token}/uploads/",
        headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": meta(filename="sent.bin")},
    )
    assert linked.status_code == 201, linked.text
    link_url = server.url + linked.headers["location"]
    sent = httpx.patch(link_url, content=data[:100_000], headers={**TUS, **STREAM, "Upload-Offset": "0"})
    assert sent.status_code == 204, sent.text
    ids = [u.rsplit("/", 1)[1].replace("-", "") for u in (url, link_url)]
    assert all(any(i in key for key in install.blobs.stored()) for i in ids)
    files_before = install.sql("SELECT count(*) FROM files")
    assert alice.client.delete(f"/api/v1/folders/{box}").status_code == 204
    # Gone at once, not when they would have expired: rows (with their keys) and parts.
    assert not {i for i in ids if i in {_hex(row[0]) for row in install.sql("SELECT id FROM uploads")}}
    assert not [key for key in install.blobs.stored() if any(i in key for i in ids)]
    done = alice.client.patch(url, content=data[100_000:], headers={**TUS, **STREAM, "Upload-Offset": "100000"})
    problem(done, 404, "upload not found")
    late = httpx.patch(link_url, content=data[100_000:], headers={**TUS, **STREAM, "Upload-Offset": "100000"})
    assert late.status_code == 404, late.text
    assert install.sql("SELECT count(*) FROM files") == files_before
    assert alice.client.head(url, headers=TUS).status_code == 404
    check_tree(install)


def test_percent_encoded_headers_refuse_raw_utf8(alice: Account, server: Server, install: Installation) -> None:
    """Sealbox-Path and Sealbox-Uploader are percent-encoded UTF-8: a value with raw
    non-ASCII bytes would be read as Latin-1 and stored garbled, so it is refused."""
    token = alice.client.post("/api/v1/upload-requests", json={"max_files": 5}).json()["token"]
    before = tree_state(install), install.blobs.stored()
    for header in ("Sealbox-Path", "Sealbox-Uploader"):
        sent = httpx.post(
            f"{server.url}/r/{token}/files", headers={**named("h.txt"), header: "Zoë".encode()}, content=b"h"
        )
        problem(sent, 400, f"the {header} header is not percent-encoded UTF-8")
    assert (tree_state(install), install.blobs.stored()) == before
    fine = httpx.post(
        f"{server.url}/r/{token}/files",
        headers={**named("h.txt"), "Sealbox-Path": quote("Zoë"), "Sealbox-Uploader": quote("Zoë")},
        content=b"h",
    )
    assert fine.status_code == 201, fine.text
    assert alice.client.post("/api/v1/lookup", json={"path": "Zoë/h.txt"}).status_code == 200


def test_a_name_uploaded_again_and_again_is_numbered_past_a_hundred(alice: Account) -> None:
    """A scanner that always writes "scan.pdf": every upload is kept, numbered in order,
    past the first batch of numbers the server looks up at once."""
    folder = mkdir(alice, f"scans-{os.urandom(3).hex()}").json()["id"]
    got = [put(alice, "scan.pdf", b"%d" % i, folder=folder).json()["name"] for i in range(103)]
    assert got == ["scan.pdf", *(f"scan ({n}).pdf" for n in range(2, 104))]


def test_a_listing_cursor_names_nothing(alice: Account) -> None:
    """A cursor travels in URLs (the next page's link): it is sealed, so the name of the
    last item it holds (to sort by) is in no form in it."""
    folder = mkdir(alice, f"cursor-{os.urandom(3).hex()}").json()["id"]
    canary = f"canary-{os.urandom(4).hex()}"
    for n in range(3):
        assert put(alice, f"{canary}-{n}.txt", b"x", folder=folder).status_code == 201
    cursor = listing(alice, folder, limit=1)["next_cursor"]
    assert cursor is not None
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert canary.encode() not in raw
    assert canary not in cursor
    assert [i["name"] for i in listing(alice, folder, limit=1, cursor=cursor)["items"]] == [f"{canary}-1.txt"]
    # a cursor sealed for one account opens for no other, and a changed one for none
    forged = cursor[:-4] + ("AAAA" if not cursor.endswith("AAAA") else "BBBB")
    refused = alice.client.get(f"/api/v1/folders/{folder}", params={"limit": 1, "cursor": forged})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "the cursor is not valid"
