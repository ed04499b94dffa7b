"""Links to one file, a folder and a selection × every state of a link × every content
route (listing, one file, a range, HEAD, the archive, a file outside the link): the
same gate answers each cell, on both backends.

A link's holder is the actor (a link needs no account); ``bogus`` is someone guessing a
token. Each cell is one request against a real server.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server
from tests.integration.test_folders import mkdir, put

DATA = os.urandom(3000)
OTHER = os.urandom(500)
RANGE = (10, 19)
PASSWORD = "open sesame 42"
KINDS = ["file", "folder", "selection"]
STATES = ["active", "expired", "exhausted", "revoked", "password-missing", "password-wrong", "password-right"]
OPERATIONS = ["listing", "file", "range", "head", "archive", "archive-head", "outside"]
ACTORS = ["holder", "bogus"]
GONE = {
    "expired": "this link has expired",
    "revoked": "this link has been revoked",
}
EXHAUSTED = {
    # one file: its allowance is spent; several: each file's own
    "file": "this link's download limit has been reached",
    "file-of-several": "this link's download limit has been reached for this file",
    "archive-of-several": "this link's download limit has been reached for 2 of the files asked for",
}


@dataclass
class World:
    server: Server
    file_id: str  # DATA, in every link
    outside_id: str  # a file of the same owner in no link
    tokens: dict[tuple[str, str], str]  # (kind, state) -> token
    grants: dict[tuple[str, str], str]


def unlock(server: Server, token: str) -> str:
    response = httpx.post(f"{server.url}/s/{token}/unlock", json={"password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["grant"])


@pytest.fixture(scope="module")
def world(server: Server, install: Installation, alice: Account) -> World:
    folder = mkdir(alice, f"matrix-{os.urandom(3).hex()}").json()["id"]
    file_id = put(alice, "matrix.bin", DATA, folder=folder).json()["id"]
    put(alice, "second.bin", OTHER, folder=folder, path="inner")
    outside_id = put(alice, f"outside-{os.urandom(3).hex()}.bin", b"not shared").json()["id"]
    targets = {
        "file": {"file_id": file_id},
        "folder": {"folder_id": folder},
        "selection": {"items": [{"kind": "folder", "id": folder}]},
    }
    tokens: dict[tuple[str, str], str] = {}
    grants: dict[tuple[str, str], str] = {}
    for kind, target in targets.items():

        def share(**body: object) -> dict[str, str]:
            response = alice.client.post("/api/v1/shares", json={**target, **body})  # noqa: B023
            assert response.status_code == 201, response.text
            return dict(response.json())

        tokens[kind, "active"] = share()["token"]
        expired = share()
        install.sql("UPDATE shares SET expires_at = created_at WHERE id = :id", id=expired["id"].replace("-", ""))
        tokens[kind, "expired"] = expired["token"]
        exhausted = share(download_limit=1)
        spent = httpx.get(f"{server.url}/s/{exhausted['token']}/download")
        assert spent.status_code == 200
        tokens[kind, "exhausted"] = exhausted["token"]
        revoked = share()
        assert alice.client.delete(f"/api/v1/shares/{revoked['id']}").status_code == 204
        tokens[kind, "revoked"] = revoked["token"]
        for state in ("password-missing", "password-wrong", "password-right"):
            tokens[kind, state] = share(password=PASSWORD)["token"]
        grants[kind, "password-wrong"] = unlock(server, share(password=PASSWORD)["token"])
        grants[kind, "password-right"] = unlock(server, tokens[kind, "password-right"])
    return World(server, file_id, outside_id, tokens, grants)


def expected(kind: str, state: str, operation: str, actor: str) -> tuple[int, str | None]:
    if actor == "bogus":
        return 404, "link not found"
    if state in GONE:
        return 410, GONE[state]
    if state in ("password-missing", "password-wrong"):
        return 401, None
    if state == "exhausted":
        if kind == "file":
            return 410, EXHAUSTED["file"]  # a link to one file is used up as a whole
        if kind != "file" and operation in ("file", "range"):
            return 410, EXHAUSTED["file-of-several"]
        if kind != "file" and operation == "archive":
            return 410, EXHAUSTED["archive-of-several"]
    if operation == "outside":
        return 404, "file not found"
    if kind == "file" and operation.startswith("archive"):
        # One allowance per link to one file: no archive beside its downloads.
        return 404, "this link is to one file: download it at the link's /download"
    return (206 if operation == "range" else 200), None


def request(world: World, kind: str, state: str, operation: str, actor: str) -> httpx.Response:
    token = world.tokens[kind, state] if actor == "holder" else "s" + os.urandom(16).hex()
    headers: dict[str, str] = {}
    if actor == "holder" and (kind, state) in world.grants:
        headers["Authorization"] = f"Bearer {world.grants[kind, state]}"
    base = f"{world.server.url}/s/{token}"
    paths = {
        "listing": base,
        "file": f"{base}/files/{world.file_id}",
        "range": f"{base}/files/{world.file_id}",
        "head": f"{base}/files/{world.file_id}",
        "archive": f"{base}/archive",
        "archive-head": f"{base}/archive",
        "outside": f"{base}/files/{world.outside_id}",
    }
    if operation == "range":
        headers["Range"] = f"bytes={RANGE[0]}-{RANGE[1]}"
    method = "HEAD" if operation.endswith("head") else "GET"
    return httpx.request(method, paths[operation], headers=headers, timeout=60)


CELLS = [
    (kind, state, operation, actor)
    for kind in KINDS
    for state in STATES
    for operation in OPERATIONS
    for actor in ACTORS
    if actor == "holder" or state == "active"  # a guessed token has no state
]


@pytest.mark.parametrize(("kind", "state", "operation", "actor"), CELLS)
def test_access(world: World, kind: str, state: str, operation: str, actor: str) -> None:
    response = request(world, kind, state, operation, actor)
    status, message = expected(kind, state, operation, actor)
    assert response.status_code == status, (kind, state, operation, actor, response.text)
    if operation.endswith("head"):
        assert response.content == b""
        return
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        if message is not None:
            assert response.json()["detail"] == message
        for leak in ("matrix.bin", "second.bin", "matrix-", "outside-"):
            assert leak not in response.text  # refusals say nothing of what the link holds
        return
    if operation == "file":
        assert response.content == DATA
    elif operation == "range":
        assert response.content == DATA[RANGE[0] : RANGE[1] + 1]
    elif operation == "archive":
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert archive.testzip() is None
            files = {i.filename: archive.read(i) for i in archive.infolist() if not i.filename.endswith("/")}
        want = {"matrix.bin": DATA, "inner/second.bin": OTHER}
        if kind == "selection":
            want = {f"{next(iter(files)).split('/')[0]}/{path}": data for path, data in want.items()}
        assert files == want
    elif operation == "listing":
        body = response.json()
        assert body["kind"] == kind
