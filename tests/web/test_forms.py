"""Every form of the web interface in Chromium: refused when posted from another site or
origin (with and without a session, /login included), never repeated by a reload, and
sending the browser back only within the site."""

from __future__ import annotations

import html
import inspect
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2 as httpx
import pytest
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, BrowserContext, Page, expect

from sealbox.api.routes import page_archive
from sealbox.web import browse, pages
from tests.integration.server import Server, login, named
from tests.web.conftest import sign_in

# What each form posts; the attacker fills in plausible values (for /login: their own account).
FIELDS: dict[str, dict[str, str]] = {
    "/login": {"username": "bob", "password": "bob-password-1"},
    "/files/{file_id}/share": {"note": "from elsewhere"},
    "/files/{file_id}/grants": {"username": "bob"},
    "/links/{share_id}/revoke": {"back": "/links"},
    "/account/password": {"current_password": "x", "new_password": "attacker-password"},
    "/account/tokens": {"name": "stolen", "scope": "full"},
    "/s/{token}": {"password": "a password!"},
    "/r/{token}": {"password": "a password!"},
    "/folders": {"name": "planted", "parent": ""},
    "/folders/{folder_id}/rename": {"name": "renamed from elsewhere"},
    "/files/{file_id}/rename": {"name": "renamed from elsewhere.txt"},
}
# The selection forms, filled in by ``selection_fields`` (they carry items).
SELECTION_FIELDS: dict[str, dict[str, str]] = {
    "/files/move": {"to": "{folder_id}"},
    "/files/delete": {"confirmed": "yes"},
    "/files/share": {"note": "from elsewhere"},
    "/files/archive": {},
}


def page_forms() -> list[str]:
    """The path of every state-changing route of the pages, from the route table, so a
    new form without a test fails here."""
    return sorted(
        route.path
        for route in [*pages.router.routes, *browse.router.routes, *page_archive.router.routes]
        if isinstance(route, APIRoute) and route.methods - {"GET", "HEAD", "OPTIONS"}
    )


def fields_of(form: str, items: dict[str, str]) -> dict[str, str | list[str]]:
    """What an attacker's form posts to ``form``: a selection form chooses every file and
    the folder too."""
    if form in SELECTION_FIELDS:
        chosen = [f"file:{items['file_id']}", f"folder:{items['folder_id']}"]
        return {**{k: concrete(v, items) for k, v in SELECTION_FIELDS[form].items()}, "folder": "", "item": chosen}
    return dict(FIELDS.get(form, {}))


class Attacker:
    """A web server on another origin that answers every GET with the page it is given."""

    def __init__(self) -> None:
        self.body = b""
        attacker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(attacker.body)))
                self.end_headers()
                self.wfile.write(attacker.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def form_page(self, action: str, fields: dict[str, str | list[str]]) -> None:
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, values in fields.items()
            for v in ([values] if isinstance(values, str) else values)
        )
        self.body = (
            f'<!doctype html><form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
            '<script>document.getElementById("f").submit()</script>'
        ).encode()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    served = Attacker()
    yield served
    served.httpd.shutdown()


def api(server: Server) -> httpx.Client:
    token = login(server.url, "admin", server.admin_password or "")
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def items(server: Server) -> dict[str, str]:
    """One of everything a form can act on, owned by admin."""
    with api(server) as client:
        file_id = client.post("/api/v1/files", headers=named("target.txt"), content=b"t").json()["id"]
        share = client.post(f"/api/v1/files/{file_id}/shares", json={"password": "a password!"}).json()
        grant = client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"}).json()
        request = client.post("/api/v1/upload-requests", json={"password": "a password!"}).json()
        token = client.post("/api/v1/me/tokens", json={"name": "kept"}).json()
        folder = client.post("/api/v1/folders", json={"name": "kept folder"}).json()
        client.post("/api/v1/files", params={"folder": folder["id"]}, headers=named("inside.txt"), content=b"i")
    return {
        "folder_id": folder["id"],
        "file_id": file_id,
        "share_id": share["id"],
        "share_token": share["token"],
        "grant_id": grant["id"],
        "request_id": request["id"],
        "request_token": request["token"],
        "token_id": token["id"],
    }


def concrete(path: str, items: dict[str, str]) -> str:
    kind = {"/s/": "share_token", "/r/": "request_token"}.get(path[:3])
    values = {**items, "token": items[kind] if kind else ""}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def state(server: Server, items: dict[str, str]) -> tuple[object, ...]:
    """What a forged form could change."""
    with api(server) as client:
        return (
            client.get(f"/api/v1/files/{items['file_id']}").status_code,
            [(s["id"], s["status"]) for s in client.get("/api/v1/shares").json()],
            [g["id"] for g in client.get(f"/api/v1/files/{items['file_id']}/grants").json()],
            [(r["id"], r["status"]) for r in client.get("/api/v1/upload-requests").json()],
            client.get("/api/v1/folders/top").json()["items"],
            client.get(f"/api/v1/folders/{items['folder_id']}").json()["items"],
            sorted(
                t["name"] for t in client.get("/api/v1/me/tokens").json() if t["name"] not in ("login", "web session")
            ),
        )


def test_every_form_refuses_posts_from_another_site_or_origin(
    browser: Browser, server: Server, attacker: Attacker, items: dict[str, str]
) -> None:
    forms = page_forms()
    assert "/login" in forms
    assert len(forms) >= 22
    before = state(server, items)
    # localhost is another site than 127.0.0.1; 127.0.0.1 on another port is the same
    # site but another origin (SameSite=Lax cookies go along there).
    origins = [f"http://localhost:{attacker.port}", f"http://127.0.0.1:{attacker.port}"]
    for signed_in in (True, False):
        context = browser.new_context()
        try:
            page = context.new_page()
            if signed_in:
                sign_in(page, server)
            session = [c["value"] for c in context.cookies() if c["name"] == "sealbox_session"]
            for origin in origins:
                for form in forms:
                    target = server.url + concrete(form, items)
                    attacker.form_page(target, fields_of(form, items))
                    with page.expect_response(lambda r, t=target: r.url == t and r.request.method == "POST") as answer:
                        page.goto(f"{origin}/attack")
                    assert answer.value.status == 403, (form, origin, signed_in)
                    assert page.get_by_text("cross-site request refused").count() == 1
            # The browser's session is the one it had: no login CSRF, no logout.
            assert [c["value"] for c in context.cookies() if c["name"] == "sealbox_session"] == session
            if signed_in:
                page.goto(f"{server.url}/account")
                expect(page.get_by_text("admin")).not_to_have_count(0)
        finally:
            context.close()
    assert state(server, items) == before
    # The same forms still work from the site itself.
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, server, "bob", "bob-password-1")
        page.goto(f"{server.url}/account")
        page.get_by_label("Name").fill("same-site")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_label("The new token (shown only now)")).to_be_visible()
    finally:
        context.close()


def count_rows(page: Page, url: str, selector: str) -> int:
    page.goto(url)
    return page.locator(selector).count()


def test_a_reload_never_repeats_a_form(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    sign_in(page, server)
    with api(server) as client:
        file_id = client.post("/api/v1/files", headers=named("reload.txt"), content=b"r").json()["id"]

    def links() -> int:
        with api(server) as client:
            return len(client.get("/api/v1/shares", params={"file_id": file_id}).json())

    def requests() -> int:
        with api(server) as client:
            return len(client.get("/api/v1/upload-requests").json())

    def tokens() -> int:
        with api(server) as client:
            return len([t for t in client.get("/api/v1/me/tokens").json() if t["name"] == "reload-token"])

    # A new link: shown once, the secret never in the URL.
    page.goto(f"{server.url}/files/{file_id}")
    page.get_by_role("button", name="New link…").click()
    page.get_by_role("dialog").get_by_role("button", name="Create link").click()
    page.wait_for_url(f"{server.url}/files/{file_id}")
    link = page.get_by_label("The new link").input_value()
    assert "/s/" in link
    assert link.rsplit("/", 1)[-1] not in page.url
    assert links() == 1
    page.reload()
    assert links() == 1
    expect(page.get_by_label("The new link")).to_have_count(0)  # shown only once

    # A new upload link.
    page.goto(f"{server.url}/requests")
    before = requests()
    page.get_by_role("button", name="Create upload link").click()
    page.wait_for_url(f"{server.url}/requests")
    expect(page.get_by_label("The new upload link")).to_be_visible()
    assert requests() == before + 1
    page.reload()
    assert requests() == before + 1
    expect(page.get_by_label("The new upload link")).to_have_count(0)

    # A new token.
    page.goto(f"{server.url}/account")
    page.get_by_label("Name").fill("reload-token")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_url(f"{server.url}/account")
    secret = page.get_by_label("The new token (shown only now)").input_value()
    assert secret.startswith("sbx_")
    assert secret not in page.url
    assert tokens() == 1
    page.reload()
    assert tokens() == 1
    expect(page.get_by_label("The new token (shown only now)")).to_have_count(0)

    # A password change answers with a redirect too: a reload does not post it again.
    page.get_by_label("Current password").fill(server.admin_password or "")
    page.get_by_label("New password").fill("a brand new password")
    with page.expect_response(f"{server.url}/account/password") as answer:
        page.get_by_role("button", name="Change password").click()
    assert answer.value.status == 303
    page.wait_for_url(f"{server.url}/account")
    expect(page.get_by_role("status")).to_contain_text("Password changed")
    with page.expect_response(f"{server.url}/account") as again:
        page.reload()
    assert again.value.request.method == "GET"
    with api_as(server, "a brand new password") as client:
        client.post(
            "/api/v1/me/password",
            json={"current_password": "a brand new password", "new_password": server.admin_password},
        )


def api_as(server: Server, password: str) -> httpx.Client:
    token = login(server.url, "admin", password)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


HOSTILE_BACKS = [
    "//x",
    "//2130706433/",
    "/\\x",
    "\\\\x",
    "http://x",
    "https://evil.test/",
    "/%2F/x",
    "javascript:alert(1)",
    "/files/../..//x",
    " /files",
    "/files\r\nSet-Cookie: a=b",
    "",
]


def back_routes() -> list[str]:
    """Every page route that reads a ``back`` field from its form."""
    return sorted(
        route.path
        for route in pages.router.routes
        if isinstance(route, APIRoute) and '"back"' in inspect.getsource(route.endpoint)
    )


def test_every_back_taking_form_sends_the_browser_only_within_the_site(server: Server) -> None:
    assert back_routes() == ["/links/{share_id}/revoke"]
    with api(server) as client:
        file_id = client.post("/api/v1/files", headers=named("back.txt"), content=b"b").json()["id"]
        shares = [client.post(f"/api/v1/files/{file_id}/shares", json={}).json()["id"] for _ in HOSTILE_BACKS]
    with httpx.Client(base_url=server.url) as browser:
        signed = browser.post("/login", data={"username": "admin", "password": server.admin_password or ""})
        assert signed.status_code == 303
        for share_id, back in zip(shares, HOSTILE_BACKS, strict=True):
            answer = browser.post(f"/links/{share_id}/revoke", data={"back": back})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/links", back
        kept = browser.post(f"/links/{shares[0]}/revoke", data={"back": f"/files/{file_id}"})
        assert kept.headers["location"] == f"/files/{file_id}"
