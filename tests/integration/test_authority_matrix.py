"""Every state-changing route × every kind of credential (DESIGN promise 8).

The routes come from the application's own route table: a state-changing route that
has no entry in ``ROUTES`` fails ``test_every_state_changing_route_is_in_the_matrix``,
so a new route cannot skip the matrix. Each cell is one request against a real server,
with its own freshly made targets; where the authority refuses, the database and the
blob store are compared before and after, byte for byte.

What each credential is:
- ``none``: no credentials.
- ``read_bearer`` / ``full_bearer``: personal tokens of the owner, as ``Authorization: Bearer``.
- ``read_as_cookie``: the read-only token planted in the session cookie.
- ``session``: the owner's web session cookie.
- ``grant``: a link's unlock grant (as a bearer token for the API, as the grant cookie for pages).
- ``disabled_session``: the session of an account that was disabled after signing in.
- ``other_session``: the session of another, ordinary account.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.routing import APIRoute

from sealbox.accounts.authority import Action
from sealbox.api.app import create_app
from sealbox.config import Settings
from sealbox.web.auth import Caller
from tests.integration.server import Installation, Server, login

CREDENTIALS = [
    "none",
    "read_bearer",
    "full_bearer",
    "read_as_cookie",
    "session",
    "grant",
    "disabled_session",
    "other_session",
]
PASSWORD = "link-password-1"
SAFE = {"GET", "HEAD", "OPTIONS"}
# What the authority answers when it refuses (anything else went past it).
REFUSALS = {"this token is read-only", "administrators only"}


@dataclass(frozen=True)
class Entry:
    """How a route is reached, and who may reach it.

    ``kind``: ``account`` (any signed-in account, acting on itself), ``owned`` (acts on
    an item of the owner's: others get 404), ``reading`` (a read of the owner's items
    sent as a POST: read-only credentials may; others get 404), ``admin``, or ``public`` (a link's or
    sign-in's own rules decide; credentials change nothing, so every credential gets the
    same status, ``public_status``).
    """

    kind: str
    surface: str  # "api" or "page"
    needs: tuple[str, ...] = ()
    body: Callable[[dict[str, str]], dict[str, Any]] = lambda _: {}
    public_status: int | None = None


def _json(value: dict[str, Any]) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda _: {"json": value}


def _form(value: dict[str, str]) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda _: {"data": value}


def _multipart(_: dict[str, str]) -> dict[str, Any]:
    return {"files": {"file": ("matrix.txt", b"matrix body", "text/plain")}}


def _tus_create(_: dict[str, str]) -> dict[str, Any]:
    name = base64.b64encode(b"matrix.txt").decode()
    return {"headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "3", "Upload-Metadata": f"filename {name}"}}


def _tus_patch(_: dict[str, str]) -> dict[str, Any]:
    headers = {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    return {"headers": headers, "content": b"abc"}


def _tus_delete(_: dict[str, str]) -> dict[str, Any]:
    return {"headers": {"Tus-Resumable": "1.0.0"}}


def _sign_in(names: dict[str, str]) -> dict[str, Any]:
    return {"data": {"username": names["nobody"], "password": "wrong-password"}}


WRONG_CURRENT = {"current_password": "wrong-password", "new_password": "another-password-1"}

ROUTES: dict[tuple[str, str], Entry] = {
    # The JSON API.
    ("POST", "/api/v1/auth/token"): Entry("public", "api", ("nobody",), _sign_in, 401),
    ("POST", "/api/v1/me/password"): Entry("account", "api", (), _json(WRONG_CURRENT)),
    ("POST", "/api/v1/me/tokens"): Entry("account", "api", (), _json({"name": "m", "scope": "read"})),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): Entry("owned", "api", ("token_id",)),
    ("POST", "/api/v1/admin/users"): Entry(
        "admin", "api", ("nobody",), lambda n: {"json": {"username": n["nobody"], "password": "password-123"}}
    ),
    ("PATCH", "/api/v1/admin/users/{user_id}"): Entry("admin", "api", ("user_id",), _json({"is_active": True})),
    ("POST", "/api/v1/admin/users/{user_id}/password"): Entry(
        "admin", "api", ("user_id",), _json({"password": "password-456"})
    ),
    ("DELETE", "/api/v1/admin/users/{user_id}"): Entry("admin", "api", ("user_id",)),
    ("POST", "/api/v1/files"): Entry("account", "api", (), _multipart),
    ("DELETE", "/api/v1/files/{file_id}"): Entry("owned", "api", ("file_id",)),
    ("PATCH", "/api/v1/files/{file_id}"): Entry("owned", "api", ("file_id",), _json({"name": "renamed.txt"})),
    ("POST", "/api/v1/folders"): Entry("account", "api", ("nobody",), lambda n: {"json": {"name": n["nobody"]}}),
    ("PATCH", "/api/v1/folders/{folder_id}"): Entry("owned", "api", ("folder_id",), _json({"name": "renamed"})),
    ("DELETE", "/api/v1/folders/{folder_id}"): Entry("owned", "api", ("folder_id",)),
    # A read sent as a POST (names travel in bodies, never in URLs): read credentials may.
    ("POST", "/api/v1/lookup"): Entry("reading", "api", ("folder_id",), lambda n: {"json": {"path": n["folder_name"]}}),
    ("POST", "/api/v1/files/{file_id}/shares"): Entry("owned", "api", ("file_id",), _json({})),
    ("POST", "/api/v1/shares"): Entry("owned", "api", ("file_id",), lambda n: {"json": {"file_id": n["file_id"]}}),
    ("POST", "/api/v1/archive"): Entry(
        "reading", "api", ("file_id",), lambda n: {"json": {"items": [{"kind": "file", "id": n["file_id"]}]}}
    ),
    ("DELETE", "/api/v1/shares/{share_id}"): Entry("owned", "api", ("share_id",)),
    ("POST", "/api/v1/files/{file_id}/grants"): Entry("owned", "api", ("file_id",), _json({"username": "bob"})),
    ("DELETE", "/api/v1/files/{file_id}/grants/{grant_id}"): Entry("owned", "api", ("file_id", "grant_id")),
    ("POST", "/api/v1/upload-requests"): Entry("account", "api", (), _json({})),
    ("DELETE", "/api/v1/upload-requests/{request_id}"): Entry("owned", "api", ("request_id",)),
    ("POST", "/api/v1/uploads/"): Entry("account", "api", (), _tus_create),
    ("PATCH", "/api/v1/uploads/{upload_id}"): Entry("owned", "api", ("upload_id",), _tus_patch),
    ("DELETE", "/api/v1/uploads/{upload_id}"): Entry("owned", "api", ("upload_id",), _tus_delete),
    ("POST", "/upload"): Entry("account", "api", (), _multipart),
    # Links: their token (and password grant) decide, not an account.
    ("POST", "/s/{token}/unlock"): Entry("public", "api", ("share_token",), _json({"password": "wrong-pass"}), 401),
    ("POST", "/r/{token}/unlock"): Entry("public", "api", ("request_token",), _json({"password": "wrong-pass"}), 401),
    ("POST", "/r/{token}/files"): Entry("public", "api", ("open_request_token",), _multipart, 201),
    ("POST", "/r/{token}/uploads/"): Entry("public", "api", ("open_request_token",), _tus_create, 201),
    ("PATCH", "/r/{token}/uploads/{upload_id}"): Entry(
        "public", "api", ("open_request_token", "link_upload_id"), _tus_patch, 204
    ),
    ("DELETE", "/r/{token}/uploads/{upload_id}"): Entry(
        "public", "api", ("open_request_token", "link_upload_id"), _tus_delete, 204
    ),
    # The pages.
    ("POST", "/login"): Entry("public", "page", ("nobody",), _sign_in, 401),
    ("POST", "/logout"): Entry("public", "page", (), public_status=303),
    ("POST", "/files/{file_id}/share"): Entry("owned", "page", ("file_id",), _form({"expires": "3600"})),
    ("POST", "/links/{share_id}/revoke"): Entry("owned", "page", ("share_id",), _form({"back": "/links"})),
    ("POST", "/files/{file_id}/grants"): Entry("owned", "page", ("file_id",), _form({"username": "bob"})),
    ("POST", "/files/{file_id}/grants/{grant_id}/revoke"): Entry("owned", "page", ("file_id", "grant_id")),
    ("POST", "/files/{file_id}/delete"): Entry("owned", "page", ("file_id",)),
    ("POST", "/requests"): Entry("account", "page", (), _form({"max_files": "1"})),
    ("POST", "/requests/{request_id}/revoke"): Entry("owned", "page", ("request_id",)),
    ("POST", "/account/password"): Entry("account", "page", (), _form(WRONG_CURRENT)),
    ("POST", "/account/tokens"): Entry("account", "page", (), _form({"name": "m", "scope": "read"})),
    ("POST", "/account/tokens/{token_id}/revoke"): Entry("owned", "page", ("token_id",)),
    ("POST", "/folders"): Entry("account", "page", ("nobody",), lambda n: {"data": {"name": n["nobody"]}}),
    ("POST", "/folders/{folder_id}/rename"): Entry("owned", "page", ("folder_id",), _form({"name": "renamed"})),
    ("POST", "/folders/{folder_id}/delete"): Entry("owned", "page", ("folder_id",)),
    ("POST", "/files/{file_id}/rename"): Entry("owned", "page", ("file_id",), _form({"name": "renamed.txt"})),
    # The selection forms: the owner's items, in the body.
    ("POST", "/files/move"): Entry(
        "owned",
        "page",
        ("file_id", "folder_id"),
        lambda n: {"data": {"item": f"file:{n['file_id']}", "to": n["folder_id"]}},
    ),
    ("POST", "/files/delete"): Entry(
        "owned", "page", ("file_id",), lambda n: {"data": {"item": f"file:{n['file_id']}", "confirmed": "yes"}}
    ),
    ("POST", "/files/share"): Entry(
        "owned", "page", ("file_id",), lambda n: {"data": {"item": f"file:{n['file_id']}"}}
    ),
    # Download as ZIP: a read of the owner's items, posted from the listing.
    ("POST", "/files/archive"): Entry(
        "reading", "page", ("file_id",), lambda n: {"data": {"item": f"file:{n['file_id']}"}}
    ),
    ("POST", "/s/{token}"): Entry("public", "page", ("share_token",), _form({"password": "wrong-pass"}), 401),
    ("POST", "/r/{token}"): Entry("public", "page", ("request_token",), _form({"password": "wrong-pass"}), 401),
}


def route_table(tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """(method, path, dependant) of every route of the application, as it is built."""
    app = create_app(Settings(data_dir=tmp_path))
    for route in app.routes:
        candidates = list(route.effective_candidates()) if hasattr(route, "effective_candidates") else [route]
        for candidate in candidates:
            if isinstance(candidate, APIRoute) or hasattr(candidate, "dependant"):
                for method in sorted(candidate.methods or ()):
                    yield method, candidate.path, candidate.dependant


def _callers(dependant: Any) -> list[Caller]:
    found = [dependant.call] if isinstance(dependant.call, Caller) else []
    for sub in dependant.dependencies:
        found += _callers(sub)
    return found


def test_every_state_changing_route_is_in_the_matrix(tmp_path: Path) -> None:
    changing = {(method, path) for method, path, _ in route_table(tmp_path) if method not in SAFE}
    assert changing == set(ROUTES), (
        f"routes missing from the matrix: {sorted(changing - set(ROUTES))}; "
        f"entries for routes that do not exist: {sorted(set(ROUTES) - changing)}"
    )


def test_every_state_changing_route_asks_the_authority_for_a_write(tmp_path: Path) -> None:
    """A route that changes something and is not a link's or sign-in's asks for WRITE
    (or ADMIN) on its own surface, so a read-only credential can never change anything."""
    for method, path, dependant in route_table(tmp_path):
        if method in SAFE:
            continue
        entry = ROUTES[(method, path)]
        actions = {(caller.action, caller.surface) for caller in _callers(dependant)}
        if entry.kind == "public":
            assert not actions, (method, path)
            continue
        if entry.kind == "reading":
            assert actions == {(Action.READ, entry.surface)}, (method, path, actions)
            continue
        wanted = Action.ADMIN if entry.kind == "admin" else Action.WRITE
        assert (wanted, entry.surface) in actions, (method, path, actions)
        assert all(action is not Action.READ for action, _ in actions), (method, path, actions)


# Against a real server.


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("matrix"))).start()
    yield server
    server.stop()


class World:
    """The server's accounts and the credentials of the matrix, and fresh targets."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.install = server.install
        assert server.admin_password is not None
        self.admin = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {login(server.url, 'admin', server.admin_password)}"},
        )
        for name in ("bob", "dave"):
            made = self.admin.post("/api/v1/admin/users", json={"username": name, "password": f"{name}-password-1"})
            assert made.status_code == 201, made.text
        self.counter = itertools.count()
        # The jar is emptied before each cell: a request carries exactly its cell's credential.
        self.client = httpx.Client(base_url=server.url, timeout=60)
        read = self._token("read")
        dave = self.session("dave", "dave-password-1")
        dave_id = self.admin.get("/api/v1/admin/users").json()
        dave_id = next(u["id"] for u in dave_id if u["username"] == "dave")
        assert self.admin.patch(f"/api/v1/admin/users/{dave_id}", json={"is_active": False}).status_code == 200
        share = self.admin.post(f"/api/v1/files/{self.file()}/shares", json={"password": PASSWORD}).json()
        unlocked = httpx.post(f"{server.url}/s/{share['token']}/unlock", json={"password": PASSWORD})
        assert unlocked.status_code == 200, unlocked.text
        self.bearer = {"read_bearer": read, "full_bearer": self._token("full"), "grant": unlocked.json()["grant"]}
        self.cookie = {
            "read_as_cookie": f"sealbox_session={read}",
            "session": f"sealbox_session={self.session('admin', server.admin_password)}",
            "grant": f"sealbox_grant={unlocked.json()['grant']}",
            "disabled_session": f"sealbox_session={dave}",
            "other_session": f"sealbox_session={self.session('bob', 'bob-password-1')}",
        }

    def session(self, username: str, password: str) -> str:
        response = httpx.post(f"{self.server.url}/login", data={"username": username, "password": password})
        assert response.status_code == 303, response.text
        return str(response.cookies["sealbox_session"])

    def _token(self, scope: str) -> str:
        made = self.admin.post("/api/v1/me/tokens", json={"name": f"matrix-{scope}", "scope": scope})
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    def file(self) -> str:
        # A name of its own: one name is numbered at most 100 times in a folder.
        name = f"target-{next(self.counter)}.txt"
        made = self.admin.post("/api/v1/files", files={"file": (name, b"target", "text/plain")})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def targets(self, needs: tuple[str, ...]) -> dict[str, str]:
        """Fresh items of the owner's for one request's path."""
        n = next(self.counter)
        values: dict[str, str] = {}
        if {"file_id", "share_id", "grant_id"} & set(needs):
            values["file_id"] = self.file()
        for need in needs:
            if need == "nobody":
                values[need] = f"nobody-{n}"
            elif need == "token_id":
                made = self.admin.post("/api/v1/me/tokens", json={"name": "target"})
                values[need] = made.json()["id"]
            elif need == "user_id":
                made = self.admin.post("/api/v1/admin/users", json={"username": f"target-{n}", "password": "pw-123456"})
                values[need] = made.json()["id"]
            elif need == "share_id":
                values[need] = self.admin.post(f"/api/v1/files/{values['file_id']}/shares", json={}).json()["id"]
            elif need == "grant_id":
                grant = self.admin.post(f"/api/v1/files/{values['file_id']}/grants", json={"username": "bob"})
                values[need] = grant.json()["id"]
            elif need == "folder_id":
                values["folder_name"] = f"matrix-folder-{n}"
                made = self.admin.post("/api/v1/folders", json={"name": values["folder_name"]})
                assert made.status_code == 201, made.text
                values[need] = made.json()["id"]
            elif need == "request_id":
                values[need] = self.admin.post("/api/v1/upload-requests", json={}).json()["id"]
            elif need == "upload_id":
                made = self.admin.post("/api/v1/uploads/", **_tus_create({}))
                assert made.status_code == 201, made.text
                values[need] = made.headers["Location"].rsplit("/", 1)[1]
            elif need == "share_token":
                file_id = values.get("file_id") or self.file()
                made = self.admin.post(f"/api/v1/files/{file_id}/shares", json={"password": PASSWORD})
                values["token"] = made.json()["token"]
            elif need == "request_token":
                made = self.admin.post("/api/v1/upload-requests", json={"password": PASSWORD})
                values["token"] = made.json()["token"]
            elif need == "open_request_token":
                made = self.admin.post("/api/v1/upload-requests", json={"max_files": 5})
                values["token"] = made.json()["token"]
            elif need == "link_upload_id":
                made = httpx.post(f"{self.server.url}/r/{values['token']}/uploads/", **_tus_create({}))
                assert made.status_code == 201, made.text
                values["upload_id"] = made.headers["Location"].rsplit("/", 1)[1]
        return values

    def headers(self, credential: str, surface: str) -> dict[str, str]:
        if credential == "none":
            return {}
        if surface == "api" and credential in self.bearer:
            return {"Authorization": f"Bearer {self.bearer[credential]}"}
        if credential in self.cookie:
            return {"Cookie": self.cookie[credential]}
        # A bearer token sent to a page: pages read only the session cookie.
        return {"Authorization": f"Bearer {self.bearer[credential]}"}

    def state(self) -> tuple[str, frozenset[str]]:
        """A digest of every table of the database, and the stored blobs."""
        digest = hashlib.sha256()
        with sqlite3.connect(f"file:{self.install.data_dir / 'sealbox.db'}?mode=ro", uri=True) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
            # Not stored state but the server's heartbeat (the key ids it holds, every few seconds).
            tables.remove("key_holders")
            for table in tables:
                digest.update(table.encode())
                for row in db.execute(f'SELECT * FROM "{table}" ORDER BY 1'):  # noqa: S608 - our own table names
                    digest.update(repr(row).encode())
        return digest.hexdigest(), frozenset(self.install.blobs.stored())


@pytest.fixture(scope="module")
def world(matrix_server: Server) -> Iterator[World]:
    world = World(matrix_server)
    yield world
    world.admin.close()
    world.client.close()


def refused(response: httpx.Response, surface: str) -> bool:
    """Whether the authority (or authentication) turned the request away."""
    if surface == "page":
        return response.status_code == 303 and response.headers.get("location") == "/login"
    if response.status_code == 401:
        return True
    return response.status_code == 403 and response.json().get("detail") in REFUSALS


def expected(entry: Entry, credential: str) -> str:
    """``refused``, ``missing`` (404: another account's item) or ``allowed``."""
    if entry.kind == "reading":
        # A page takes only its session; the API any credential that may read.
        readers = {"session"} if entry.surface == "page" else {"read_bearer", "full_bearer", "session"}
        if credential in readers:
            return "allowed"
        return "missing" if credential == "other_session" else "refused"
    allowed_here = "session" if entry.surface == "page" else {"full_bearer", "session"}
    if credential in allowed_here:
        return "allowed"
    if credential == "other_session":
        return {"owned": "missing", "admin": "refused"}.get(entry.kind, "allowed")
    return "refused"


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_by_credential(world: World, method: str, path: str, credential: str) -> None:
    entry = ROUTES[(method, path)]
    targets = world.targets(entry.needs)
    headers = world.headers(credential, entry.surface)
    if path == "/logout" and credential in ("session", "other_session"):
        # Signing out ends the session it is sent with: use one made for the purpose.
        user, password = (
            ("admin", world.server.admin_password or "") if credential == "session" else ("bob", "bob-password-1")
        )
        headers = {"Cookie": f"sealbox_session={world.session(user, password)}"}
    body = entry.body(targets)
    before = world.state()
    world.client.cookies.clear()
    response = world.client.request(
        method, path.format(**targets), headers=headers | body.pop("headers", {}), follow_redirects=False, **body
    )
    assert response.status_code < 500, response.text
    if entry.kind == "public":
        assert response.status_code == entry.public_status, response.text
        return
    outcome = expected(entry, credential)
    if outcome == "allowed":
        assert not refused(response, entry.surface), (response.status_code, response.text)
        assert response.status_code != 404, response.text
        return
    if outcome == "missing":
        assert response.status_code == 404, response.text
    else:
        assert refused(response, entry.surface), (response.status_code, response.text)
    assert world.state() == before, "a refused request changed stored state"
