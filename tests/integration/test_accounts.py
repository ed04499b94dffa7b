"""Accounts: administration, personal tokens, password changes; every change holds at the next request."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, blob_key, login, named

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, Server, httpx.Client]]:
    install = Installation(tmp_path_factory.mktemp("accounts"))
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as admin:
        try:
            yield install, server, admin
        finally:
            server.stop()


def as_user(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert detail in response.json()["detail"]


def make_user(admin: httpx.Client, name: str, password: str = "password-123") -> str:
    created = admin.post("/api/v1/admin/users", json={"username": name, "password": password})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_only_administrators_administer(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, server, admin = site
    make_user(admin, "carol")
    problem(admin.post("/api/v1/admin/users", json={"username": "carol", "password": "password-123"}), 409, "exists")
    problem(admin.post("/api/v1/admin/users", json={"username": "../x", "password": "password-123"}), 400, "user name")
    problem(admin.post("/api/v1/admin/users", json={"username": "dan", "password": "short"}), 400, "8 to 1024")
    with as_user(server, login(server.url, "carol", "password-123")) as carol:
        problem(carol.get("/api/v1/admin/users"), 403, "administrators only")
        problem(
            carol.post("/api/v1/admin/users", json={"username": "eve", "password": "password-123"}),
            403,
            "administrators only",
        )
    problem(httpx.get(f"{server.url}/api/v1/admin/users"), 401, "token")
    names = [user["username"] for user in admin.get("/api/v1/admin/users").json()]
    assert names == sorted(names)
    assert {"admin", "carol"} <= set(names)
    assert "eve" not in names


def test_disabling_an_account_takes_effect_at_the_next_request(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, server, admin = site
    user_id = make_user(admin, "frank")
    token = login(server.url, "frank", "password-123")
    with as_user(server, token) as frank:
        assert frank.get("/api/v1/files").status_code == 200
        assert admin.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": False}).json()["is_active"] is False
        problem(frank.get("/api/v1/files"), 401, "invalid or expired token")
        problem(
            httpx.post(f"{server.url}/api/v1/auth/token", data={"username": "frank", "password": "password-123"}),
            401,
            "wrong user name or password",
        )
        admin.patch(f"/api/v1/admin/users/{user_id}", json={"is_active": True})
        problem(frank.get("/api/v1/files"), 401, "invalid or expired token")  # its tokens went with the disabling
    assert login(server.url, "frank", "password-123")


def test_an_administrator_cannot_lock_themselves_out(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, _, admin = site
    me = admin.get("/api/v1/me").json()
    own = "administrators cannot change your own account's status or role here"
    problem(admin.patch(f"/api/v1/admin/users/{me['id']}", json={"is_active": False}), 409, own)
    problem(admin.patch(f"/api/v1/admin/users/{me['id']}", json={"is_admin": False}), 409, own)
    reset = admin.post(f"/api/v1/admin/users/{me['id']}/password", json={"password": "another-pass-1"})
    problem(reset, 409, "administrators cannot reset your own password")
    problem(admin.delete(f"/api/v1/admin/users/{me['id']}"), 409, "your own account")
    assert admin.get("/api/v1/me").json()["is_admin"] is True


def test_the_last_administrator_cannot_be_locked_out(site: tuple[Installation, Server, httpx.Client]) -> None:
    install, _, admin = site
    result = install.cli("user", "disable", "admin")
    assert result.returncode != 0
    assert "no active administrator" in result.stderr
    assert admin.get("/api/v1/me").json()["is_admin"] is True


def test_password_reset_revokes_every_token(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, server, admin = site
    user_id = make_user(admin, "gina")
    with as_user(server, login(server.url, "gina", "password-123")) as gina:
        assert (
            admin.post(f"/api/v1/admin/users/{user_id}/password", json={"password": "another-pass-1"}).status_code
            == 204
        )
        problem(gina.get("/api/v1/files"), 401, "invalid or expired token")
    assert login(server.url, "gina", "another-pass-1")
    problem(
        admin.post("/api/v1/admin/users/not-a-user/password", json={"password": "another-pass-1"}),
        404,
        "user not found",
    )


def test_personal_tokens_scopes_and_revocation(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, server, admin = site
    make_user(admin, "hank")
    with as_user(server, login(server.url, "hank", "password-123")) as hank:
        file_id = hank.post("/api/v1/files", headers=named("h.txt"), content=b"hank's").json()["id"]
        made = hank.post("/api/v1/me/tokens", json={"name": "backup script", "scope": "read", "expires_in_days": 30})
        assert made.status_code == 201
        body = made.json()
        assert body["token"].startswith("sbx_")
        assert len(body["token"]) >= 40
        with as_user(server, body["token"]) as reader:
            assert reader.get(f"/api/v1/files/{file_id}/content").content == b"hank's"
            assert reader.get("/api/v1/files").status_code == 200
            problem(reader.post("/api/v1/files", headers=named("x"), content=b"x"), 403, "read-only")
            problem(reader.delete(f"/api/v1/files/{file_id}"), 403, "read-only")
            problem(reader.post("/api/v1/me/tokens", json={"name": "escalate"}), 403, "read-only")
            listed = {t["name"]: t for t in reader.get("/api/v1/me/tokens").json()}
            assert listed["backup script"]["current"] is True
            assert listed["backup script"]["scope"] == "read"
            assert "token" not in listed["backup script"]
            assert hank.delete(f"/api/v1/me/tokens/{body['id']}").status_code == 204
            problem(reader.get("/api/v1/files"), 401, "invalid or expired token")
        problem(hank.delete(f"/api/v1/me/tokens/{body['id']}"), 404, "token not found")
        problem(hank.post("/api/v1/me/tokens", json={"name": "x", "expires_in_days": 0}), 422, "expires_in_days")
        problem(hank.post("/api/v1/me/tokens", json={"name": "x", "scope": "admin"}), 422, "scope")
    # Another account's token cannot be revoked by id: to hank it simply does not exist.
    other = admin.post("/api/v1/me/tokens", json={"name": "admin's"}).json()
    with as_user(server, login(server.url, "hank", "password-123")) as hank:
        problem(hank.delete(f"/api/v1/me/tokens/{other['id']}"), 404, "token not found")
    assert admin.delete(f"/api/v1/me/tokens/{other['id']}").status_code == 204


def test_changing_ones_password(site: tuple[Installation, Server, httpx.Client]) -> None:
    _, server, admin = site
    make_user(admin, "ivy")
    first, second = login(server.url, "ivy", "password-123"), login(server.url, "ivy", "password-123")
    with as_user(server, first) as ivy, as_user(server, second) as elsewhere:
        problem(
            ivy.post("/api/v1/me/password", json={"current_password": "nope-nope", "new_password": "new-pass-123"}),
            403,
            "current password is wrong",
        )
        problem(
            ivy.post("/api/v1/me/password", json={"current_password": "password-123", "new_password": "short"}),
            400,
            "8 to 1024",
        )
        assert (
            ivy.post(
                "/api/v1/me/password", json={"current_password": "password-123", "new_password": "new-pass-123"}
            ).status_code
            == 204
        )
        assert ivy.get("/api/v1/files").status_code == 200  # the token that changed it stays
        problem(elsewhere.get("/api/v1/files"), 401, "invalid or expired token")
    assert login(server.url, "ivy", "new-pass-123")


def test_deleting_an_account_deletes_its_files(site: tuple[Installation, Server, httpx.Client]) -> None:
    install, server, admin = site
    user_id = make_user(admin, "jack")
    token = login(server.url, "jack", "password-123")
    with as_user(server, token) as jack:
        ids = [
            jack.post("/api/v1/files", headers=named(f"j{i}"), content=os.urandom(1000)).json()["id"] for i in range(3)
        ]
        assert {blob_key(i) for i in ids} <= install.blobs.stored()
        assert admin.delete(f"/api/v1/admin/users/{user_id}").status_code == 204
        problem(jack.get("/api/v1/files"), 401, "invalid or expired token")
    assert not {blob_key(i) for i in ids} & install.blobs.stored()
    problem(admin.delete(f"/api/v1/admin/users/{user_id}"), 404, "user not found")
    assert "jack" not in [u["username"] for u in admin.get("/api/v1/admin/users").json()]


def test_tokens_are_stored_only_as_hashes(site: tuple[Installation, Server, httpx.Client]) -> None:
    install, _, admin = site
    secret = admin.post("/api/v1/me/tokens", json={"name": "probe"}).json()["token"]
    data = b"".join(p.read_bytes() for p in install.data_dir.glob("sealbox.db*"))
    assert secret.encode() not in data
    with sqlite3.connect(install.data_dir / "sealbox.db") as db:
        hashes = [row[0] for row in db.execute("SELECT token_hash FROM api_tokens")]
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in hashes)


def test_user_commands(site: tuple[Installation, Server, httpx.Client]) -> None:
    install, server, _ = site
    assert install.cli("user", "add", "kim", "--password-stdin", stdin="password-123\n").returncode == 0
    listed = install.cli("user", "list")
    assert listed.returncode == 0
    assert "kim" in listed.stdout
    token = login(server.url, "kim", "password-123")
    assert install.cli("user", "disable", "kim").returncode == 0
    problem(httpx.get(f"{server.url}/api/v1/files", headers={"Authorization": f"Bearer {token}"}), 401, "invalid")
    assert install.cli("user", "enable", "kim").returncode == 0
    reset = install.cli("user", "reset-password", "kim", "--password-stdin", stdin="password-456\n")
    assert reset.returncode == 0, reset.stderr
    assert login(server.url, "kim", "password-456")
    missing = install.cli("user", "disable", "nobody")
    assert missing.returncode == 1
    assert "user not found" in missing.stderr
    deleted = install.cli("user", "delete", "kim")
    assert deleted.returncode == 0, deleted.stderr
    assert "kim" not in install.cli("user", "list").stdout
