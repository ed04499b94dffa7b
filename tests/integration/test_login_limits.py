"""Sign-in failures are rate limited per user name and per client address, in the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, pass_the_window

# A window far longer than any test: its passing is simulated (pass_the_window).
MAX, WINDOW = 3, 600


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install = Installation(
        tmp_path_factory.mktemp("limits"),
        {"SEALBOX_LOGIN_MAX_FAILURES": str(MAX), "SEALBOX_LOGIN_WINDOW_SECONDS": str(WINDOW)},
    )
    server = Server(install).start()
    for name in ("lee", "mo"):
        assert install.cli("user", "add", name, "--password-stdin", stdin="right-password\n").returncode == 0
    yield server
    server.stop()


def sign_in(
    server: Server, user: str, password: str, source: str = "127.0.0.1", forwarded: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source)) as client:
        return client.post(
            f"{server.url}/api/v1/auth/token", data={"username": user, "password": password}, headers=headers
        )


@pytest.fixture(autouse=True)
def _fresh_window(server: Server) -> None:
    """Each test starts with no recent failures: earlier tests' have left the window."""
    pass_the_window(server.install)


def test_a_user_name_is_locked_after_the_limit_then_recovers(server: Server) -> None:
    for _ in range(MAX):
        assert sign_in(server, "lee", "wrong-password").status_code == 401
    for forwarded in (None, "203.0.113.7", "198.51.100.1"):
        limited = sign_in(server, "lee", "right-password", forwarded=forwarded)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert "too many failed sign-ins" in limited.json()["detail"]
        assert 1 <= int(limited.headers["retry-after"]) <= WINDOW
    # The user name is limited from every address, not only the one that failed.
    assert sign_in(server, "lee", "right-password", source="127.0.0.2").status_code == 429
    pass_the_window(server.install)
    assert sign_in(server, "lee", "right-password").status_code == 200
    assert sign_in(server, "lee", "wrong-password").status_code == 401  # counting starts again


def test_an_address_is_limited_across_user_names(server: Server) -> None:
    source = "127.0.0.3"
    for i in range(5 * MAX):
        forwarded = f"192.0.2.{i}"  # an untrusted client cannot reset its count with this header
        assert sign_in(server, f"guess{i}", "whatever-pass", source=source, forwarded=forwarded).status_code == 401
    assert sign_in(server, "mo", "right-password", source=source).status_code == 429
    assert sign_in(server, "mo", "right-password", source="127.0.0.4").status_code == 200


def test_no_password_is_kept_with_the_failures(server: Server) -> None:
    assert sign_in(server, "mo", "a-very-distinct-wrong-password").status_code == 401
    with sqlite3.connect(server.install.data_dir / "sealbox.db") as db:
        subjects = [row[0] for row in db.execute("SELECT subject FROM login_failures")]
    assert "user:mo" in subjects
    assert all(s.startswith(("user:", "addr:")) for s in subjects)
    raw = b"".join(p.read_bytes() for p in server.install.data_dir.glob("sealbox.db*"))
    assert b"a-very-distinct-wrong-password" not in raw
