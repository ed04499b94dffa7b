"""``SEALBOX_COOKIE_SECURE``: every cookie the server sets carries ``Secure`` when told
to, also behind a TLS proxy whose ``X-Forwarded-Proto`` is not believed."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login, named

SRC = Path(__file__).parents[2] / "src" / "sealbox"
COOKIES = {"sealbox_session", "sealbox_flash", "sealbox_grant"}
# What an untrusted TLS proxy adds: sealbox must not believe it, and still mark cookies.
PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}


@pytest.fixture(scope="module", params=["auto", "always"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install = Installation(tmp_path_factory.mktemp("cookies"), {"SEALBOX_COOKIE_SECURE": request.param})
    server = Server(install).start()
    yield server
    server.stop()


def every_cookie(server: Server) -> list[str]:
    """The ``Set-Cookie`` headers of sign-in, a flash, a link unlock and sign-out."""
    token = login(server.url, "admin", server.admin_password or "")
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})
    file_id = api.post("/api/v1/files", headers=named("c.txt"), content=b"c").json()["id"]
    link = api.post(f"/api/v1/files/{file_id}/shares", json={"password": "link-password-1"}).json()["token"]
    seen: list[str] = []
    # Cookies are carried by hand: a client honours Secure and would not send them back
    # over the plain HTTP this test speaks.
    with httpx.Client(base_url=server.url, headers=PROXIED) as browser:
        signed = browser.post("/login", data={"username": "admin", "password": server.admin_password or ""})
        session = {"Cookie": signed.headers["set-cookie"].split(";", 1)[0]}
        browser.cookies.clear()
        shared = browser.post(f"/files/{file_id}/share", data={}, headers=session)
        flash = shared.headers["set-cookie"].split(";", 1)[0]
        shown = browser.get(shared.headers["location"], headers={"Cookie": f"{session['Cookie']}; {flash}"})
        browser.cookies.clear()
        unlocked = browser.post(f"/s/{link}", data={"password": "link-password-1"})
        browser.cookies.clear()
        out = browser.post("/logout", headers=session)
        for response in (signed, shared, shown, unlocked, out):
            assert response.status_code in (200, 303), response.text
            seen += response.headers.get_list("set-cookie")
    return seen


def test_every_cookie_follows_the_setting(server: Server) -> None:
    cookies = every_cookie(server)
    names = {header.split("=", 1)[0] for header in cookies}
    assert names == COOKIES
    assert len(cookies) >= 5  # three set, the flash and the session deleted
    secure = [bool(re.search(r";\s*secure\b", header, re.IGNORECASE)) for header in cookies]
    if server.install.extra_env["SEALBOX_COOKIE_SECURE"] == "always":
        assert all(secure), cookies
    else:
        # The proxy is not trusted, so the request counts as plain HTTP; the server says so.
        assert not any(secure), cookies
        assert "cookies.not_secure" in server.log.read_text()
        assert "SEALBOX_COOKIE_SECURE=always" in server.log.read_text()


def test_an_unknown_mode_is_refused_at_start(tmp_path: Path) -> None:
    install = Installation(tmp_path, {"SEALBOX_COOKIE_SECURE": "sometimes"})
    result = install.cli("serve", "--port", "0")
    assert result.returncode != 0
    assert "cookie_secure" in (result.stdout + result.stderr).lower()
    assert not (install.data_dir / "sealbox.db").exists()


def test_every_cookie_call_asks_the_one_decision() -> None:
    """Each ``set_cookie``/``delete_cookie`` in the code passes ``secure=secure_cookies(request)``."""
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("set_cookie", "delete_cookie"):
                secure = next((k.value for k in node.keywords if k.arg == "secure"), None)
                calls.append((path.name, node.lineno, ast.unparse(secure) if secure is not None else None))
    assert len(calls) >= 5
    assert [c for c in calls if c[2] != "secure_cookies(request)"] == []
