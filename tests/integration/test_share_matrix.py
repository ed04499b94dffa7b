"""Who may read a shared file, through which route, in which state of its link.

Actors reach the file the way each of them can: anonymous (no credentials, by file id),
the owner, another user and a grantee (each with their own token, by file id), and the
holder of a link (its token, and a grant if they unlocked it). Every cell is one request
against a real server, on both backends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, login, named

DATA = os.urandom(1000)
RANGE = (10, 19)
PASSWORD = "open sesame 42"
STATES = ["active", "expired", "exhausted", "revoked", "password-missing", "password-wrong", "password-right"]
OPERATIONS = ["metadata", "full", "range", "head", "seed"]
ACTORS = ["anonymous", "owner", "other", "grantee", "link"]

OK = {"metadata": 200, "full": 200, "range": 206, "head": 200, "seed": 200}
GONE_MESSAGES = {
    "expired": "this link has expired",
    "exhausted": "this link's download limit has been reached",
    "revoked": "this link has been revoked",
}


def expected(actor: str, state: str, operation: str) -> int:
    if actor == "anonymous":
        return 401
    if actor == "other":
        return 404
    if actor in ("owner", "grantee"):
        return OK[operation]
    if operation == "seed":
        return 401  # a link opens /s/ routes only; the seed route needs an account
    if state in GONE_MESSAGES:
        return 410
    if state in ("password-missing", "password-wrong"):
        return 401
    return OK[operation]


@dataclass
class World:
    server: Server
    file_id: str
    tokens: dict[str, str]  # state -> link token
    grants: dict[str, str]  # state -> grant sent with the link's requests
    credentials: dict[str, str]  # actor -> bearer token


@pytest.fixture(scope="module")
def world(server: Server, install: Installation, alice: Account) -> Iterator[World]:
    for name in ("mallory", "grace"):
        assert install.cli("user", "add", name, "--password-stdin", stdin=f"{name}-password-1\n").returncode == 0
    created = alice.client.post("/api/v1/files", headers=named("matrix.bin"), content=DATA)
    assert created.status_code == 201
    file_id = created.json()["id"]
    assert alice.client.post(f"/api/v1/files/{file_id}/grants", json={"username": "grace"}).status_code == 201

    def share(**body: object) -> dict[str, str]:
        response = alice.client.post(f"/api/v1/files/{file_id}/shares", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    tokens: dict[str, str] = {}
    grants: dict[str, str] = {}
    tokens["active"] = share()["token"]
    expired = share()
    install.sql("UPDATE shares SET expires_at = created_at WHERE id = :id", id=expired["id"].replace("-", ""))
    tokens["expired"] = expired["token"]
    exhausted = share(download_limit=1)
    first = httpx.get(f"{server.url}/s/{exhausted['token']}/download")
    assert first.status_code == 200
    assert first.content == DATA
    tokens["exhausted"] = exhausted["token"]
    revoked = share()
    assert alice.client.delete(f"/api/v1/shares/{revoked['id']}").status_code == 204
    tokens["revoked"] = revoked["token"]
    for state in ("password-missing", "password-wrong", "password-right"):
        tokens[state] = share(password=PASSWORD)["token"]
    wrong = httpx.post(f"{server.url}/s/{tokens['password-wrong']}/unlock", json={"password": "not the password"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "wrong password"
    # A grant is bound to the link that issued it: one for another link opens nothing here.
    other_link = share(password=PASSWORD)["token"]
    grants["password-wrong"] = unlock(server, other_link)
    grants["password-right"] = unlock(server, tokens["password-right"])
    credentials = {
        "owner": alice.token,
        "other": login(server.url, "mallory", "mallory-password-1"),
        "grantee": login(server.url, "grace", "grace-password-1"),
    }
    return World(server, file_id, tokens, grants, credentials)


def unlock(server: Server, token: str) -> str:
    response = httpx.post(f"{server.url}/s/{token}/unlock", json={"password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["grant"])


def request(world: World, actor: str, state: str, operation: str) -> httpx.Response:
    headers: dict[str, str] = {}
    if operation == "range":
        headers["Range"] = f"bytes={RANGE[0]}-{RANGE[1]}"
    if actor in world.credentials:
        headers["Authorization"] = f"Bearer {world.credentials[actor]}"
    if actor == "link" and operation != "seed":
        if state in world.grants:
            headers["Authorization"] = f"Bearer {world.grants[state]}"
        base = f"/s/{world.tokens[state]}"
        path = base if operation == "metadata" else f"{base}/download"
    elif operation == "seed":
        path = f"/download/{world.file_id}"
    else:
        base = f"/api/v1/files/{world.file_id}"
        path = base if operation == "metadata" else f"{base}/content"
    method = "HEAD" if operation == "head" else "GET"
    return httpx.request(method, world.server.url + path, headers=headers)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("actor", ACTORS)
def test_access(world: World, actor: str, state: str, operation: str) -> None:
    response = request(world, actor, state, operation)
    want = expected(actor, state, operation)
    assert response.status_code == want, (actor, state, operation, response.text)
    if want == 200 and operation in ("full", "seed"):
        assert response.content == DATA
    elif want == 206:
        assert response.content == DATA[RANGE[0] : RANGE[1] + 1]
        assert response.headers["content-range"] == f"bytes {RANGE[0]}-{RANGE[1]}/{len(DATA)}"
    elif want == 200 and operation == "metadata":
        body = response.json()
        assert body["name"] == "matrix.bin"
        assert body["size"] == len(DATA)
    elif want == 200 and operation == "head":
        assert response.headers["content-length"] == str(len(DATA))
        assert response.content == b""
    elif operation != "head":
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        if want == 410:
            assert detail == GONE_MESSAGES[state]
        assert "matrix.bin" not in response.text  # refusals leak nothing about the file
