"""Limits hold under concurrency, end to end: 100 parallel password guesses against a
server with two worker processes verify at most the limit, and unfinished resumable
uploads cannot hold more than a quota or an upload link allows. On SQLite and on
PostgreSQL (READ COMMITTED)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.integration.conftest import BACKENDS, make_installation
from tests.integration.server import Installation, Server, login

MAX = 10
MIB = 1 << 20
QUOTA = 3 * MIB
RIGHT = "the-right-password"
TUS = {"Tus-Resumable": "1.0.0"}
NAMED = {"Content-Disposition": "attachment; filename*=UTF-8''a.txt"}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install = make_installation(request, tmp_path_factory.mktemp("limits"), request.param)
    install.extra_env.update(
        SEALBOX_LOGIN_MAX_FAILURES=str(MAX), SEALBOX_LINK_MAX_FAILURES=str(MAX), SEALBOX_USER_QUOTA=str(QUOTA)
    )
    server = Server(install, workers=2).start()
    for name in ("lee", "mo", "owner", "saver", "full"):
        assert install.cli("user", "add", name, "--password-stdin", stdin=f"{RIGHT}\n").returncode == 0
    yield server
    server.stop()


def parallel(server: Server, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    """Send ``requests`` (keyword arguments of ``request``) all at once, each on its own connection."""

    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(requests))
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=300) as client:
            return list(await asyncio.gather(*(client.request(**r) for r in requests)))

    return asyncio.run(main())


def guesses(right: dict[str, Any], wrong: Any) -> list[dict[str, Any]]:
    """99 wrong attempts and the right one in the middle of them."""
    attempts = [wrong(f"wrong-{i:04}") for i in range(99)]
    attempts.insert(50, right)
    return attempts


def audited(install: Installation, action: str, actor: str | None = None, target: str | None = None) -> int:
    query = "SELECT count(*) FROM audit_events WHERE action = :action"
    query += " AND actor = :actor" if actor else ""
    query += " AND target = :target" if target else ""
    return int(install.sql(query, action=action, actor=actor, target=target)[0][0])  # type: ignore[call-overload]


def check_burst(responses: list[httpx.Response], refused: int, won: int) -> tuple[bool, int]:
    """At most ``MAX`` attempts were checked; every other got 429 unchecked. The right one
    either won (``won``) or got 429. Returns whether it won and how many wrong guesses
    were checked: ``MAX``, or ``MAX - 1`` when the right one took a slot and won (its slot
    is given back, and may or may not be taken again by a guess still in flight)."""
    statuses = Counter(r.status_code for r in responses)
    right_won = responses[50].status_code == won
    assert right_won or responses[50].status_code == 429
    wrong = statuses[refused]
    assert wrong == MAX or (right_won and wrong == MAX - 1), statuses
    assert statuses == Counter({refused: wrong, 429: 100 - wrong - right_won, won: right_won}) - Counter()
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    return right_won, wrong


def test_parallel_sign_ins_verify_at_most_the_limit(server: Server) -> None:
    def attempt(password: str) -> dict[str, Any]:
        return {"method": "POST", "url": "/api/v1/auth/token", "data": {"username": "lee", "password": password}}

    responses = parallel(server, guesses(attempt(RIGHT), attempt))
    right_won, wrong = check_burst(responses, 401, 200)
    assert "too many failed sign-ins" in next(r for r in responses if r.status_code == 429).json()["detail"]
    install = server.install
    assert audited(install, "login.failed", "lee") == wrong
    assert audited(install, "login.ok", "lee") == right_won
    assert install.sql("SELECT count(*) FROM login_failures WHERE subject = 'user:lee'") == [(wrong,)]
    if wrong < MAX:  # one more wrong guess reaches the limit
        assert parallel(server, [attempt("wrong-again")])[0].status_code == 401
    # Once the limit is reached, the right password gets no token either.
    again = parallel(server, [attempt(RIGHT) for _ in range(10)])
    assert {r.status_code for r in again} == {429}
    assert all("access_token" not in r.text for r in again)
    assert audited(install, "login.ok", "lee") == right_won


def test_parallel_current_password_checks_verify_at_most_the_limit(server: Server) -> None:
    headers = {"Authorization": f"Bearer {login(server.url, 'mo', RIGHT)}"}

    def attempt(current: str) -> dict[str, Any]:
        body = {"current_password": current, "new_password": "a-new-password"}
        return {"method": "POST", "url": "/api/v1/me/password", "json": body, "headers": headers}

    responses = parallel(server, guesses(attempt(RIGHT), attempt))
    right_won, wrong = check_burst(responses, 403, 204)
    assert audited(server.install, "password.change_failed", "mo") == wrong
    if wrong < MAX:  # one more wrong guess reaches the limit
        assert parallel(server, [attempt("wrong-again")])[0].status_code == 403
    assert audited(server.install, "password.change", "mo") == right_won
    # The same budget as signing in: neither way checks the password any more.
    new = "a-new-password" if right_won else RIGHT
    assert parallel(server, [attempt(new)])[0].status_code == 429
    response = httpx.post(f"{server.url}/api/v1/auth/token", data={"username": "mo", "password": new})
    assert response.status_code == 429


@pytest.mark.parametrize("kind", ["share", "upload request"])
def test_parallel_link_passwords_verify_at_most_the_limit(server: Server, kind: str) -> None:
    token = login(server.url, "owner", RIGHT)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as owner:
        if kind == "share":
            uploaded = owner.post("/api/v1/files", content=b"shared", headers=NAMED)
            assert uploaded.status_code == 201, uploaded.text
            link = owner.post(f"/api/v1/files/{uploaded.json()['id']}/shares", json={"password": RIGHT}).json()
        else:
            link = owner.post("/api/v1/upload-requests", json={"password": RIGHT}).json()
    path = link["url"]

    def attempt(password: str) -> dict[str, Any]:
        return {"method": "POST", "url": f"{path}/unlock", "json": {"password": password}}

    responses = parallel(server, guesses(attempt(RIGHT), attempt))
    right_won, wrong = check_burst(responses, 401, 200)
    assert audited(server.install, "link.password_failed", target=link["id"]) == wrong
    if wrong < MAX:  # one more wrong guess reaches the limit
        assert parallel(server, [attempt("wrong-again")])[0].status_code == 401
    assert audited(server.install, "link.unlock", target=link["id"]) == right_won
    assert parallel(server, [attempt(RIGHT)])[0].status_code == 429


def create(base: str, length: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"method": "POST", "url": f"{base}/", "headers": {**TUS, **(headers or {}), "Upload-Length": str(length)}}


def test_unfinished_uploads_hold_the_quota(server: Server) -> None:
    install = server.install
    auth = {"Authorization": f"Bearer {login(server.url, 'saver', RIGHT)}"}
    responses = parallel(server, [create("/api/v1/uploads", MIB, auth) for _ in range(8)])
    assert Counter(r.status_code for r in responses) == Counter({201: 3, 413: 5})
    refused = next(r for r in responses if r.status_code == 413)
    assert refused.headers["content-type"] == "application/problem+json"
    assert f"storage quota of {QUOTA} bytes" in refused.json()["detail"]
    held = [r.headers["Location"] for r in responses if r.status_code == 201]
    assert install.sql("SELECT sum(length) FROM uploads") == [(QUOTA,)]
    # A plain upload cannot take the room they hold.
    files = install.sql("SELECT count(*) FROM files")
    plain = httpx.post(f"{server.url}/api/v1/files", content=b"x", headers={**auth, **NAMED})
    assert plain.status_code == 413
    assert f"storage quota of {QUOTA} bytes" in plain.json()["detail"]
    assert install.sql("SELECT count(*) FROM files") == files
    # Cancelled, or expired, an upload gives its room back (to one of two racing for it).
    assert httpx.delete(f"{server.url}{held[0]}", headers={**TUS, **auth}).status_code == 204
    again = parallel(server, [create("/api/v1/uploads", MIB, auth) for _ in range(2)])
    assert sorted(r.status_code for r in again) == [201, 413]
    assert install.sql("SELECT count(*) FROM uploads") == [(3,)]
    # What the passing of SEALBOX_UPLOAD_EXPIRY_HOURS does to the oldest of them:
    install.sql(
        "UPDATE uploads SET expires_at = '2000-01-01 00:00:00' "
        "WHERE id = (SELECT id FROM uploads ORDER BY created_at LIMIT 1)"
    )
    assert httpx.post(f"{server.url}/api/v1/uploads/", headers=create("", MIB, auth)["headers"]).status_code == 201
    assert httpx.post(f"{server.url}/api/v1/uploads/", headers=create("", 1, auth)["headers"]).status_code == 413


def test_unfinished_uploads_hold_an_upload_links_files_and_bytes(server: Server) -> None:
    token = login(server.url, "owner", RIGHT)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as owner:
        one_file = owner.post("/api/v1/upload-requests", json={"max_files": 1, "max_bytes": MIB}).json()
        ten_files = owner.post("/api/v1/upload-requests", json={"max_files": 10, "max_bytes": MIB}).json()
    base = f"{one_file['url']}/uploads"
    responses = parallel(server, [create(base, MIB) for _ in range(8)])
    assert Counter(r.status_code for r in responses) == Counter({201: 1, 409: 7})
    assert "unfinished upload(s) hold them" in next(r for r in responses if r.status_code == 409).json()["detail"]
    location = next(r.headers["Location"] for r in responses if r.status_code == 201)
    assert httpx.delete(f"{server.url}{location}", headers=TUS).status_code == 204
    assert httpx.post(f"{server.url}{base}/", headers=create("", MIB)["headers"]).status_code == 201

    base = f"{ten_files['url']}/uploads"
    responses = parallel(server, [create(base, 300_000) for _ in range(8)])
    assert Counter(r.status_code for r in responses) == Counter({201: 3, 413: 5})
    detail = next(r for r in responses if r.status_code == 413).json()["detail"]
    assert f"of its {MIB} bytes (900000 held by unfinished uploads)" in detail


def test_an_upload_link_says_only_that_its_owner_has_no_room(server: Server) -> None:
    """Someone sending through an upload link learns nothing of the owner's account: not
    the quota, not what is stored; and the link shows only the room an upload can take."""
    auth = {"Authorization": f"Bearer {login(server.url, 'full', RIGHT)}"}
    link = httpx.post(f"{server.url}/api/v1/upload-requests", json={"max_files": 5}, headers=auth).json()["token"]
    base = f"{server.url}/r/{link}"
    before = httpx.get(base).json()
    assert before["files_left"] == 5
    held = httpx.post(f"{base}/uploads/", headers={**TUS, "Upload-Length": str(MIB)})
    assert held.status_code == 201, held.text
    shown = httpx.get(base).json()
    assert (shown["files_left"], shown["bytes_left"]) == (4, before["bytes_left"] - MIB)
    # The owner's own unfinished uploads take the rest of the quota.
    for _ in range(2):
        assert (
            httpx.post(f"{server.url}/api/v1/uploads/", headers={**TUS, **auth, "Upload-Length": str(MIB)}).status_code
            == 201
        )
    refusals = [
        httpx.post(f"{base}/files", content=b"x", headers=NAMED),
        httpx.post(f"{base}/uploads/", headers={**TUS, "Upload-Length": "1"}),
    ]
    for refused in refusals:
        assert refused.status_code == 413, refused.text
        assert refused.json()["detail"] == "the link's owner has no room for this file"
        assert str(QUOTA) not in refused.text
    assert httpx.get(base).json()["files_left"] == 4
