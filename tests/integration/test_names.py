"""One validator for every name a client supplies: each name-taking input (API, tus
metadata, link uploads, web forms) refuses control, bidirectional, invisible and
oversized names with a specific 400, and stores nothing."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from urllib.parse import quote

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account
from tests.integration.server import Server, named

PROBLEM = "application/problem+json"
INVISIBLE = "must not contain control characters, invisible characters or formatting characters"
HOSTILE = {
    "NUL": ("a\x00b.txt", INVISIBLE),
    "newline": ("a\nb.txt", INVISIBLE),
    "escape": ("a\x1b[31mb.txt", INVISIBLE),
    "bidi override": ("invoice\u202efdp.exe", INVISIBLE),
    "zero-width space": ("a\u200bb.txt", INVISIBLE),
    "line separator": ("a\u2028b.txt", INVISIBLE),
    "private use": ("a\ue000b.txt", INVISIBLE),
    "oversized": ("a" * 1001, "at most"),
}


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def counts(server: Server, alice: Account, request_id: str) -> tuple[object, ...]:
    """Everything a refused name could have created."""
    c = alice.client
    return (
        [f["id"] for f in c.get("/api/v1/files", params={"limit": 1000}).json()["items"]],
        [t["id"] for t in c.get("/api/v1/me/tokens").json()],
        [s["id"] for s in c.get("/api/v1/shares").json()],
        [u["id"] for u in c.get("/api/v1/admin/users").json()],
        [f["id"] for f in c.get(f"/api/v1/upload-requests/{request_id}/files").json()],
    )


@pytest.fixture(scope="module")
def targets(alice: Account) -> dict[str, str]:
    file_id = alice.client.post("/api/v1/files", headers=named("named.txt"), content=b"n").json()["id"]
    request = alice.client.post("/api/v1/upload-requests", json={"max_files": 100}).json()
    return {"file": file_id, "request": request["id"], "token": request["token"]}


Send = Callable[[Server, Account, dict[str, str], str], httpx.Response]


SESSIONS: dict[str, httpx.Client] = {}


def web_session(server: Server) -> httpx.Client:
    """A signed-in browser, one per server (signing in creates a session token)."""
    if server.url not in SESSIONS:
        browser = httpx.Client(base_url=server.url)
        assert browser.post("/login", data={"username": "admin", "password": server.admin_password}).status_code == 303
        SESSIONS[server.url] = browser
    return SESSIONS[server.url]


INPUTS: dict[str, Send] = {
    "raw upload filename*": lambda s, a, t, name: a.client.post(
        "/api/v1/files",
        content=b"x",
        headers={
            "Content-Disposition": "attachment; filename*=UTF-8''"
            + httpx.URL("", params={"n": name}).query.decode()[2:]
        },
    ),
    "tus filename": lambda s, a, t, name: a.client.post(
        "/api/v1/uploads/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": f"filename {b64(name)}"},
    ),
    "link tus filename": lambda s, a, t, name: httpx.post(
        f"{s.url}/r/{t['token']}/uploads/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": f"filename {b64(name)}"},
    ),
    "link tus uploader": lambda s, a, t, name: httpx.post(
        f"{s.url}/r/{t['token']}/uploads/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1",
            "Upload-Metadata": f"filename {b64('ok.txt')},uploader {b64(name)}",
        },
    ),
    "link upload filename*": lambda s, a, t, name: httpx.post(
        f"{s.url}/r/{t['token']}/files", headers=named(name), content=b"x"
    ),
    "link upload uploader header": lambda s, a, t, name: httpx.post(
        f"{s.url}/r/{t['token']}/files",
        headers={**named("ok.txt"), "Sealbox-Uploader": quote(name, safe="")},
        content=b"x",
    ),
    "API token name": lambda s, a, t, name: a.client.post("/api/v1/me/tokens", json={"name": name}),
    "API link note": lambda s, a, t, name: a.client.post(
        f"/api/v1/files/{t['file']}/shares", json={"note": name.replace("\n", "\r")}
    ),
    "API user name": lambda s, a, t, name: a.client.post(
        "/api/v1/admin/users", json={"username": name, "password": "long enough password"}
    ),
    "form token name": lambda s, a, t, name: web_session(s).post(
        "/account/tokens", data={"name": name, "scope": "read"}
    ),
    "form link note": lambda s, a, t, name: web_session(s).post(
        f"/files/{t['file']}/share", data={"note": name.replace("\n", "\r")}
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("where", INPUTS)
def test_every_name_input_refuses_hostile_names(
    server: Server, alice: Account, targets: dict[str, str], where: str, case: str
) -> None:
    name, detail = HOSTILE[case]
    status = 400
    if where == "API user name":
        detail = "a user name is 1-64"
    if case == "NUL" and where.startswith(("API ", "form ")):
        # A JSON or form body's text is first checked for what no database can store
        # (sealbox.inputs), before the name rules: a NUL is refused there, for any field.
        detail = "must not contain NUL characters"
        status = 422 if where.startswith("API ") else 400
    if where.startswith("form "):
        web_session(server)
    before = counts(server, alice, targets["request"])
    response = INPUTS[where](server, alice, targets, name)
    assert response.status_code == status, response.text
    if where.startswith("form "):
        assert detail in re.sub(r"&#39;", "'", response.text)
    else:
        assert response.headers["content-type"] == PROBLEM
        assert detail in response.json()["detail"]
    assert counts(server, alice, targets["request"]) == before


def test_a_user_name_with_a_trailing_newline_is_refused(alice: Account) -> None:
    response = alice.client.post("/api/v1/admin/users", json={"username": "carol\n", "password": "long enough pw"})
    assert response.status_code == 400
    assert "a user name is 1-64" in response.json()["detail"]
    assert "carol" not in [u["username"] for u in alice.client.get("/api/v1/admin/users").json()]


def test_names_are_stored_in_nfc(alice: Account) -> None:
    created = alice.client.post("/api/v1/files", headers=named("cafe\u0301.txt"), content=b"c").json()
    assert created["name"] == "café.txt"
