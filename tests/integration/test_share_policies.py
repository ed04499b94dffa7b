"""Link passwords are rate limited in the database; administrators' policies hold."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login, named, pass_the_window

# A window far longer than any test: its passing is simulated (pass_the_window).
MAX, WINDOW = 3, 600
QUOTA, MAX_FILE = 5000, 3000
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    return Installation(
        tmp_path_factory.mktemp("policies"),
        {
            "SEALBOX_LINK_MAX_FAILURES": str(MAX),
            "SEALBOX_LINK_WINDOW_SECONDS": str(WINDOW),
            "SEALBOX_LINK_MAX_DAYS": "2",
            "SEALBOX_LINK_DEFAULT_DAYS": "1",
            "SEALBOX_LINK_MAX_DOWNLOADS": "10",
            "SEALBOX_USER_QUOTA": str(QUOTA),
            "SEALBOX_MAX_UPLOAD_SIZE": str(MAX_FILE),
            "SEALBOX_TRUSTED_PROXIES": "127.0.0.9",
        },
    )


@pytest.fixture(scope="module")
def server(install: Installation) -> Iterator[Server]:
    server = Server(install).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def new_link(client: httpx.Client, **body: object) -> dict[str, str]:
    file_id = client.post("/api/v1/files", headers=named("p.bin"), content=b"secret bytes").json()["id"]
    response = client.post(f"/api/v1/files/{file_id}/shares", json={"password": PASSWORD, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def unlock(server: Server, token: str, password: str, source: str = "127.0.0.1", forwarded: str = "") -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as client:
        return client.post(f"{server.url}/s/{token}/unlock", json={"password": password}, headers=headers)


@pytest.fixture(autouse=True)
def _fresh_window(install: Installation) -> None:
    """Each test starts with no recent failures: earlier tests' have left the window."""
    pass_the_window(install)


def test_password_guessing_is_limited_per_link(server: Server, client: httpx.Client, install: Installation) -> None:
    token = new_link(client)["token"]
    for i in range(MAX):
        assert unlock(server, token, f"guess-{i}", forwarded=f"203.0.113.{i}").status_code == 401
    # Neither a new X-Forwarded-For from an untrusted address nor another address resets it.
    for source, forwarded in (("127.0.0.1", "198.51.100.7"), ("127.0.0.2", ""), ("127.0.0.1", "")):
        limited = unlock(server, token, PASSWORD, source=source, forwarded=forwarded)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert "too many wrong passwords" in limited.json()["detail"]
        assert 1 <= int(limited.headers["retry-after"]) <= WINDOW
    # The bytes stay locked meanwhile.
    assert httpx.get(f"{server.url}/s/{token}/download").status_code == 401
    pass_the_window(install)
    opened = unlock(server, token, PASSWORD)
    assert opened.status_code == 200
    grant = {"Authorization": f"Bearer {opened.json()['grant']}"}
    assert httpx.get(f"{server.url}/s/{token}/download", headers=grant).content == b"secret bytes"


def test_parallel_guesses_cannot_overshoot_the_limit(server: Server, client: httpx.Client) -> None:
    token = new_link(client)["token"]
    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(
            pool.map(lambda i: unlock(server, token, f"guess-{i}", source="127.0.0.5").status_code, range(20))
        )
    assert statuses == [401] * MAX + [429] * (20 - MAX)


def test_password_guessing_is_limited_per_address_across_links(server: Server, client: httpx.Client) -> None:
    source = "127.0.0.3"
    for _ in range(5):  # under each link's own limit, over the address's
        token = new_link(client)["token"]
        for i in range(MAX):
            assert unlock(server, token, f"guess-{i}", source=source, forwarded=f"192.0.2.{i}").status_code == 401
    fresh = new_link(client)["token"]
    assert unlock(server, fresh, PASSWORD, source=source).status_code == 429
    assert unlock(server, fresh, PASSWORD, source="127.0.0.4").status_code == 200


def test_a_trusted_proxy_is_believed(server: Server, client: httpx.Client) -> None:
    token = new_link(client)["token"]
    for _ in range(5):
        link = new_link(client)["token"]
        for _ in range(MAX):
            assert unlock(server, link, "nope-nope", source="127.0.0.9", forwarded="203.0.113.50").status_code == 401
    # The proxy's own address is not what was counted, so another client behind it is fine.
    assert unlock(server, token, PASSWORD, source="127.0.0.9", forwarded="203.0.113.51").status_code == 200
    assert unlock(server, token, PASSWORD, source="127.0.0.9", forwarded="203.0.113.50").status_code == 429


def test_link_policies(client: httpx.Client, install: Installation) -> None:
    file_id = client.post("/api/v1/files", headers=named("pol.bin"), content=b"x").json()["id"]
    before = install.sql("SELECT count(*) FROM shares")
    cases = [
        ({"expires_in_seconds": 3 * 86400}, "at most 172800 seconds (the maximum link lifetime)"),
        ({"download_limit": 11}, "at most 10 (the download-limit cap)"),
    ]
    for body, message in cases:
        response = client.post(f"/api/v1/files/{file_id}/shares", json=body)
        assert response.status_code == 400
        assert message in response.json()["detail"]
    assert install.sql("SELECT count(*) FROM shares") == before
    capped = client.post(f"/api/v1/files/{file_id}/shares", json={}).json()
    assert capped["download_limit"] == 10  # the cap applies when no limit is asked for
    created = client.post("/api/v1/upload-requests", json={"expires_in_seconds": 3 * 86400})
    assert created.status_code == 400
    assert "maximum link lifetime" in created.json()["detail"]


def test_password_required_policy(tmp_path_factory: pytest.TempPathFactory) -> None:
    install = Installation(tmp_path_factory.mktemp("pw"), {"SEALBOX_LINK_PASSWORD_REQUIRED": "true"})
    server = Server(install).start()
    try:
        assert server.admin_password is not None
        token = login(server.url, "admin", server.admin_password)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            file_id = client.post("/api/v1/files", headers=named("a"), content=b"a").json()["id"]
            for path, body in ((f"/api/v1/files/{file_id}/shares", {}), ("/api/v1/upload-requests", {})):
                refused = client.post(path, json=body)
                assert refused.status_code == 400
                assert refused.json()["detail"] == "links must have a password (the password policy)"
                assert client.post(path, json={"password": PASSWORD}).status_code == 201
        assert install.sql("SELECT count(*) FROM shares WHERE password_hash IS NULL") == [(0,)]
    finally:
        server.stop()


def test_quota_and_file_size(client: httpx.Client, install: Installation) -> None:
    blobs = len(install.blobs.stored())
    too_big = client.post("/api/v1/files", headers=named("big"), content=b"x" * (MAX_FILE + 1))
    assert too_big.status_code == 413
    assert f"limit of {MAX_FILE} bytes" in too_big.json()["detail"]
    assert len(install.blobs.stored()) == blobs
    used = sum(f["size"] for f in client.get("/api/v1/files", params={"limit": 1000}).json()["items"])
    room = QUOTA - used
    while room > 10:  # fill up to 10 bytes short of the quota
        size = min(room - 10, MAX_FILE)
        assert client.post("/api/v1/files", headers=named("fill"), content=b"x" * size).status_code == 201
        room -= size
    blobs = len(install.blobs.stored())
    over = client.post("/api/v1/files", headers=named("over"), content=b"x" * 11)
    assert over.status_code == 413
    assert f"storage quota of {QUOTA} bytes" in over.json()["detail"]
    assert len(install.blobs.stored()) == blobs
    assert client.post("/api/v1/files", headers=named("last"), content=b"x" * 10).status_code == 201
    full = client.post("/api/v1/files", headers=named("more"), content=b"x")
    assert full.status_code == 413
    assert "is used up" in full.json()["detail"]
    # Uploads through a link count against the owner's quota too, and the sender learns
    # only that there is no room, nothing of the owner's account.
    token = client.post("/api/v1/upload-requests", json={}).json()["token"]
    via_link = httpx.post(f"{install_url(client)}/r/{token}/files", headers=named("l"), content=b"x")
    assert via_link.status_code == 413
    assert via_link.json()["detail"] == "the link's owner has no room for this file"


def install_url(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")
