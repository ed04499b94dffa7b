"""A disabled account's links, grants and upload links stop working at the next request,
on every route that reaches them, and work again when the account is enabled."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login, named

DATA = b"owned by someone who may be disabled"
PASSWORD = "link-password-1"


@dataclass
class World:
    server: Server
    admin: httpx.Client
    owner_id: str
    file_id: str
    share: str
    locked_share: str
    request: str
    locked_request: str
    grantee: str  # bearer token of an account the file is shared with


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = Server(Installation(tmp_path_factory.mktemp("disabled"))).start()
    assert server.admin_password is not None
    admin = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {login(server.url, 'admin', server.admin_password)}"}
    )
    users = {}
    for name in ("olga", "gus"):
        made = admin.post("/api/v1/admin/users", json={"username": name, "password": f"{name}-password-1"})
        assert made.status_code == 201, made.text
        users[name] = made.json()["id"]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {login(server.url, 'olga', 'olga-password-1')}"}
    ) as olga:
        file_id = olga.post("/api/v1/files", headers=named("owned.bin"), content=DATA).json()["id"]
        assert olga.post(f"/api/v1/files/{file_id}/grants", json={"username": "gus"}).status_code == 201
        share = olga.post(f"/api/v1/files/{file_id}/shares", json={}).json()["token"]
        locked = olga.post(f"/api/v1/files/{file_id}/shares", json={"password": PASSWORD}).json()["token"]
        request = olga.post("/api/v1/upload-requests", json={"max_files": 50}).json()["token"]
        locked_request = olga.post("/api/v1/upload-requests", json={"password": PASSWORD}).json()["token"]
    world = World(
        server,
        admin,
        users["olga"],
        file_id,
        share,
        locked,
        request,
        locked_request,
        login(server.url, "gus", "gus-password-1"),
    )
    yield world
    admin.close()
    server.stop()


def _tus(_: World) -> dict[str, str]:
    name = base64.b64encode(b"dropped.txt").decode()
    return {"Tus-Resumable": "1.0.0", "Upload-Length": "4", "Upload-Metadata": f"filename {name}"}


Send = Callable[[World], httpx.Response]
# Every route through which a link or a grant reaches the owner's things, with what it
# answers while the owner is enabled.
ROUTES: dict[str, tuple[Send, int]] = {
    "share page data": (lambda w: httpx.get(f"{w.server.url}/s/{w.share}"), 200),
    "share download": (lambda w: httpx.get(f"{w.server.url}/s/{w.share}/download"), 200),
    "share range": (lambda w: httpx.get(f"{w.server.url}/s/{w.share}/download", headers={"Range": "bytes=0-3"}), 206),
    "share head": (lambda w: httpx.head(f"{w.server.url}/s/{w.share}/download"), 200),
    "share unlock": (
        lambda w: httpx.post(f"{w.server.url}/s/{w.locked_share}/unlock", json={"password": PASSWORD}),
        200,
    ),
    "share unlock form": (lambda w: httpx.post(f"{w.server.url}/s/{w.locked_share}", data={"password": PASSWORD}), 303),
    "upload link data": (lambda w: httpx.get(f"{w.server.url}/r/{w.request}"), 200),
    "upload link upload": (
        lambda w: httpx.post(f"{w.server.url}/r/{w.request}/files", headers=named("dropped.txt"), content=b"drop"),
        201,
    ),
    "upload link tus": (lambda w: httpx.post(f"{w.server.url}/r/{w.request}/uploads/", headers=_tus(w)), 201),
    "upload link unlock": (
        lambda w: httpx.post(f"{w.server.url}/r/{w.locked_request}/unlock", json={"password": PASSWORD}),
        200,
    ),
    "grantee metadata": (
        lambda w: httpx.get(f"{w.server.url}/api/v1/files/{w.file_id}", headers=_bearer(w.grantee)),
        200,
    ),
    "grantee content": (
        lambda w: httpx.get(f"{w.server.url}/api/v1/files/{w.file_id}/content", headers=_bearer(w.grantee)),
        200,
    ),
    "grantee seed download": (
        lambda w: httpx.get(f"{w.server.url}/download/{w.file_id}", headers=_bearer(w.grantee)),
        200,
    ),
}
# What each kind of route answers while the owner is disabled.
REFUSED = {"share": 410, "upload": 410, "grantee": 404}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _set_active(world: World, active: bool) -> None:
    response = world.admin.patch(f"/api/v1/admin/users/{world.owner_id}", json={"is_active": active})
    assert response.status_code == 200, response.text


def _shared_with_grantee(world: World) -> list[str]:
    listing = httpx.get(f"{world.server.url}/api/v1/shared-with-me", headers=_bearer(world.grantee))
    assert listing.status_code == 200, listing.text
    return [item["id"] for item in listing.json()]


def test_every_route_to_a_disabled_owners_things_refuses_until_enabled(world: World) -> None:
    for route, (send, ok) in ROUTES.items():
        assert send(world).status_code == ok, route
    assert _shared_with_grantee(world) == [world.file_id]

    _set_active(world, False)
    try:
        for route, (send, _) in ROUTES.items():
            response = send(world)
            expected = REFUSED[route.split()[0]]
            assert response.status_code == expected, (route, response.text)
            if expected == 410 and "form" not in route and route != "share head":
                assert response.json()["detail"] == "this link is suspended", route
        assert _shared_with_grantee(world) == []
    finally:
        _set_active(world, True)

    for route, (send, ok) in ROUTES.items():
        assert send(world).status_code == ok, route
    assert _shared_with_grantee(world) == [world.file_id]
