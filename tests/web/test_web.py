"""The web interface end to end in Chromium: the sharing journey, resumable uploads that
survive a cut network and a reload, CSRF, strict CSP with no foreign request, keyboard use,
and screenshots for the README."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from tests.integration.server import Installation, Server, login, named
from tests.web.conftest import sign_in

MIB = 1 << 20
# The page's part size, read from its script so these tests follow it.
_CHUNK = re.search(
    r"const CHUNK = (\d+) \* 1024 \* 1024;",
    (Path(__file__).parents[2] / "src" / "sealbox" / "web" / "static" / "js" / "tus.js").read_text(),
)
assert _CHUNK is not None
PART = int(_CHUNK.group(1)) * MIB
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
MakeFile = Callable[[str, int], Path]
XSS_NAME = '"><img src=x onerror="document.title=1">.txt'


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def file_id_of(page: Page, name: str) -> str:
    href = page.get_by_role("link", name=name, exact=True).first.get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[-1]


def upload_through_page(page: Page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    row = page.locator(".upload", has_text=path.name)
    expect(row.locator(".status")).to_have_text(re.compile(r"^done"), timeout=60_000)


def test_journey(context: BrowserContext, browser: object, server: Server, random_file: MakeFile) -> None:
    page = context.new_page()
    sign_in(page, server)
    source = random_file("report-2026.bin", 2 * PART + 4 * MIB)
    slowed: list[str] = []

    def slow_patch(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            slowed.append(request.url)
            time.sleep(0.3)  # long enough to see progress on loopback
        route.continue_()

    page.route("**/api/v1/uploads/**", slow_patch)
    page.set_input_files("#file-input", str(source))
    status = page.locator(".upload", has_text=source.name).locator(".status")
    expect(page.locator(".upload progress")).to_be_visible()
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while not any(text.startswith("done") for text in seen) and time.monotonic() < deadline:
        seen.add(status.text_content() or "")
        page.wait_for_timeout(30)
    assert any(text.startswith("done") for text in seen)
    progress = re.compile(r"^\d+% · [\d.]+ (bytes|KiB|MiB|GiB)/s · \d+ (s|min) left$")  # percent, speed, time left
    assert any(progress.match(text) for text in seen), seen
    assert len(slowed) == 3  # two whole parts and a bit: three PATCHes
    page.wait_for_load_state()
    expect(page.get_by_role("link", name=source.name, exact=True)).to_be_visible(timeout=10_000)

    page.get_by_role("link", name=source.name, exact=True).click()
    open_dialog(page, "New link…")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Download limit").fill("1")
    dialog.get_by_label("Password").fill("open sesame 2026")
    dialog.get_by_label("Note for the recipient").fill("The numbers for Q3.")
    dialog.get_by_role("button", name="Create link").click()
    link = page.get_by_label("The new link").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/s/[A-Za-z0-9_-]{{24}}", link)
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()

    stranger = context.browser.new_context(accept_downloads=True)  # type: ignore[union-attr]
    try:
        visitor = stranger.new_page()
        visitor.goto(link)
        expect(visitor.get_by_role("heading", name="This link is protected")).to_be_visible()
        expect(visitor.get_by_text("report-2026.bin")).to_have_count(0)  # nothing shown before the password
        visitor.get_by_label("Password").fill("not the password")
        with visitor.expect_response(link) as refused:
            visitor.get_by_role("button", name="Open").click()
        assert refused.value.status == 401
        expect(visitor.get_by_role("alert")).to_have_text("wrong password")
        visitor.get_by_label("Password").fill("open sesame 2026")
        visitor.get_by_role("button", name="Open").click()
        expect(visitor.get_by_role("heading", name=source.name)).to_be_visible()
        expect(visitor.get_by_text("The numbers for Q3.")).to_be_visible()
        with visitor.expect_download() as download:
            visitor.get_by_role("link", name="Download").click()
        saved = Path(download.value.path())
        assert download.value.suggested_filename == source.name
        assert saved.read_bytes() == source.read_bytes()
        visitor.goto(link)
        expect(visitor.get_by_role("heading", name="This link no longer works")).to_be_visible()
        expect(visitor.get_by_text("This link's download limit has been reached.")).to_be_visible()
        again = stranger.request.get(f"{link}/download")
        assert again.status == 410
    finally:
        stranger.close()


def test_upload_resumes_after_a_cut_network_and_a_reload(
    context: BrowserContext, server: Server, random_file: MakeFile
) -> None:
    page = context.new_page()
    sign_in(page, server)
    token = login(server.url, "admin", server.admin_password or "")

    # The network drops for a while in the middle of an upload: it goes on by itself.
    source = random_file("cut.bin", PART + 4 * MIB)
    patches: list[int] = []

    def drop_after_first(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            patches.append(1)
            if 2 <= len(patches) <= 4:
                route.abort("internetdisconnected")
                return
        route.continue_()

    page.route("**/api/v1/uploads/**", drop_after_first)
    upload_through_page(page, source)
    assert len(patches) >= 5
    page.unroute("**/api/v1/uploads/**")
    page.wait_for_load_state()
    with api(server, token) as client:
        file_id = file_id_of(page, "cut.bin")
        assert client.get(f"/api/v1/files/{file_id}/content").content == source.read_bytes()

    # The page is reloaded mid-upload: choosing the same file again continues it.
    second = random_file("reload.bin", PART + 4 * MIB)
    sent: list[str] = []

    def only_first_patch(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            sent.append(request.url)
            if len(sent) > 1:  # the network is gone after the first part
                route.abort("internetdisconnected")
                return
        route.continue_()

    page.route("**/api/v1/uploads/**", only_first_patch)
    page.set_input_files("#file-input", str(second))
    status = page.locator(".upload", has_text="reload.bin").locator(".status")
    expect(status).to_have_text(re.compile(r"^\d+%"), timeout=30_000)
    # A part is stored, the next ones fail and are retried (waited for, not timed: a
    # 64 MiB part takes a while on a loaded machine).
    deadline = time.monotonic() + 60
    while len(sent) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(sent) >= 2
    page.unroute("**/api/v1/uploads/**")
    page.reload()
    page.set_input_files("#file-input", str(second))
    expect(page.locator(".upload", has_text="reload.bin").locator(".status")).to_have_text(
        "done (resumed)", timeout=60_000
    )
    page.wait_for_load_state()
    with api(server, token) as client:
        file_id = file_id_of(page, "reload.bin")
        assert client.get(f"/api/v1/files/{file_id}/content").content == second.read_bytes()


def test_a_cross_origin_form_post_is_refused(context: BrowserContext, server: Server, random_file: MakeFile) -> None:
    page = context.new_page()
    sign_in(page, server)
    token = login(server.url, "admin", server.admin_password or "")
    with api(server, token) as client:
        file_id = client.post("/api/v1/files", headers=named("keep-me.txt"), content=b"keep").json()["id"]
    attack = f"""<!doctype html><form id="f" method="post" action="{server.url}/files/{file_id}/delete"></form>
    <script>document.getElementById("f").submit()</script>"""
    page.route("http://evil.test/**", lambda route: route.fulfill(content_type="text/html", body=attack))
    with page.expect_response(f"{server.url}/files/{file_id}/delete") as answer:
        page.goto("http://evil.test/")
    # SameSite=Lax: the browser sends no session cookie with a cross-site post, and the
    # post is refused anyway (with or without a cookie).
    assert answer.value.status == 403
    session = next(c for c in context.cookies() if c["name"] == "sealbox_session")
    # And when a cookie does come along (an older browser), the origin check refuses it.
    forged = httpx.post(
        f"{server.url}/files/{file_id}/delete",
        headers={"Origin": "http://evil.test", "Cookie": f"sealbox_session={session['value']}"},
    )
    assert forged.status_code == 403
    assert forged.json()["detail"] == "cross-site request refused"
    with api(server, token) as client:
        assert client.get(f"/api/v1/files/{file_id}").status_code == 200


def visit_every_page(page: Page, server: Server) -> list[str]:
    """Visit each kind of page once; return their URLs."""
    token = login(server.url, "admin", server.admin_password or "")
    with api(server, token) as client:
        file_id = client.post("/api/v1/files", headers=named("tour.txt"), content=b"hello").json()["id"]
        client.post(f"/api/v1/files/{file_id}/grants", json={"username": "bob"})
        share = client.post(f"/api/v1/files/{file_id}/shares", json={"note": "hi"}).json()
        locked = client.post(f"/api/v1/files/{file_id}/shares", json={"password": "a password!"}).json()
        request = client.post("/api/v1/upload-requests", json={}).json()
        client.post("/api/v1/files", headers=named(XSS_NAME), content=b"<script>alert(1)</script>")
        folder = client.post("/api/v1/folders", json={"name": XSS_NAME.removesuffix(".txt")}).json()
        client.post("/api/v1/files", params={"folder": folder["id"]}, headers=named(XSS_NAME), content=b"in")
        folder_link = client.post("/api/v1/shares", json={"folder_id": folder["id"]}).json()
        items = [{"kind": "file", "id": file_id}, {"kind": "folder", "id": folder["id"]}]
        selection_link = client.post("/api/v1/shares", json={"items": items, "password": "a password!"}).json()
    urls = [
        f"/files?folder={folder['id']}",
        f"/folders/{folder['id']}/rename",
        f"/folders/{folder['id']}/delete",
        f"/files/{file_id}/rename",
        folder_link["url"],
        selection_link["url"],
        "/files",
        f"/files/{file_id}",
        f"/files/{file_id}/delete",
        "/shared",
        "/links",
        "/requests",
        f"/requests/{request['id']}",
        "/account",
        "/audit",
        share["url"],
        locked["url"],
        request["url"],
    ]
    for url in urls:
        response = page.goto(server.url + url)
        assert response is not None
        assert response.status == 200, url
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
    return urls


def test_no_console_error_no_csp_violation_no_foreign_request(context: BrowserContext, server: Server) -> None:
    problems: list[str] = []
    foreign: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: problems.append(message.text) if message.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: foreign.append(request.url) if not request.url.startswith(server.url) else None)
    page.goto(f"{server.url}/login")
    sign_in(page, server)
    visit_every_page(page, server)
    page.goto(f"{server.url}/files")
    expect(page.get_by_role("link", name=XSS_NAME, exact=True)).to_be_visible()  # shown as text, not markup
    assert page.locator("img").count() == 0
    page.get_by_role("link", name="tour.txt").first.click()
    open_dialog(page, "New link…")
    expect(page.get_by_role("dialog")).to_be_visible()
    assert [p for p in problems if "favicon" not in p] == []
    assert foreign == []


def test_keyboard_only(context: BrowserContext, server: Server, random_file: MakeFile) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.keyboard.type("admin")  # the user name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(server.admin_password or "")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/files")

    def tab_to(selector: str, text: str | None = None) -> None:
        check = (
            "([s, t]) => document.activeElement.matches(s) && (t === null || document.activeElement.textContent === t)"
        )
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate(check, [selector, text]):
                return
        raise AssertionError(f"could not reach {selector} with Tab")

    source = random_file("keyboard.txt", 1000)
    tab_to("#file-input")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(str(source))
    expect(page.locator(".upload", has_text="keyboard.txt").locator(".status")).to_have_text(re.compile("^done"))
    page.wait_for_load_state()
    expect(page.get_by_role("link", name="keyboard.txt", exact=True)).to_be_visible(timeout=10_000)
    tab_to('a[href^="/files/"]', "keyboard.txt")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/files/[0-9a-f-]{36}$"))
    tab_to('button[data-dialog="share-dialog"]')
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    tab_to("#limit")
    page.keyboard.type("3")
    tab_to('dialog button[type="submit"]')
    page.keyboard.press("Enter")
    expect(page.get_by_label("The new link")).to_have_value(re.compile(r"/s/"))
    expect(page.get_by_text("3 times")).to_be_visible()


def test_screenshots(browser: object, tmp_path: Path) -> None:
    """Screenshots of the main pages at desktop and phone widths, for the README."""
    SCREENSHOTS.mkdir(exist_ok=True)
    server = Server(Installation(tmp_path / "screenshots")).start()
    try:
        shoot(browser, server)
    finally:
        server.stop()


def shoot(browser: object, server: Server) -> None:
    token = login(server.url, "admin", server.admin_password or "")
    with api(server, token) as client:
        for name, size in (("Quarterly report.pdf", 2_400_000), ("Team photo.jpg", 5_100_000), ("notes.txt", 1200)):
            client.post("/api/v1/files", headers=named(name), content=b"x" * size)
        file_id = client.get("/api/v1/files").json()["items"][0]["id"]
        share = client.post(
            f"/api/v1/files/{file_id}/shares", json={"download_limit": 3, "note": "Here you go!"}
        ).json()
        trip = client.post("/api/v1/folders", json={"name": "Trip 2026"}).json()
        photos = client.post("/api/v1/folders", json={"name": "photos", "parent_id": trip["id"]}).json()
        for folder, name, size in (
            (trip, "itinerary.txt", 2_000),
            (trip, "budget.ods", 40_000),
            (photos, "harbour.jpg", 3_100_000),
            (photos, "sunset.jpg", 2_700_000),
        ):
            client.post("/api/v1/files", params={"folder": folder["id"]}, headers=named(name), content=b"x" * size)
        trip_link = client.post("/api/v1/shares", json={"folder_id": trip["id"], "note": "Our trip"}).json()
    sizes = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
    for label, viewport in sizes.items():
        context = browser.new_context(viewport=viewport, device_scale_factor=1)  # type: ignore[attr-defined]
        try:
            page = context.new_page()
            page.goto(f"{server.url}/login")
            page.screenshot(path=SCREENSHOTS / f"login-{label}.png")
            sign_in(page, server)
            page.screenshot(path=SCREENSHOTS / f"files-{label}.png", full_page=True)
            page.goto(f"{server.url}/files/{file_id}")
            open_dialog(page, "New link…")
            page.screenshot(path=SCREENSHOTS / f"share-dialog-{label}.png")
            page.goto(f"{server.url}/files?folder={trip['id']}")
            page.get_by_label("Select photos").check()
            page.get_by_label("Select itinerary.txt").check()
            page.screenshot(path=SCREENSHOTS / f"folder-{label}.png", full_page=True)
            visitor = context.browser.new_context(viewport=viewport).new_page()  # type: ignore[union-attr]
            visitor.goto(server.url + share["url"])
            visitor.screenshot(path=SCREENSHOTS / f"public-link-{label}.png")
            visitor.goto(server.url + trip_link["url"])
            visitor.screenshot(path=SCREENSHOTS / f"public-folder-link-{label}.png", full_page=True)
            visitor.context.close()
        finally:
            context.close()
    for label in sizes:
        for name in ("login", "files", "share-dialog", "public-link", "folder", "public-folder-link"):
            assert (SCREENSHOTS / f"{name}-{label}.png").stat().st_size > 5000


def test_the_public_upload_page(browser: object, server: Server, random_file: MakeFile) -> None:
    """An outsider sends a file through an upload-request link with a password; the owner
    sees who sent what."""
    token = login(server.url, "admin", server.admin_password or "")
    with api(server, token) as client:
        created = client.post("/api/v1/upload-requests", json={"max_files": 1, "password": "drop it here"}).json()
    source = random_file("invoice.pdf", 3 * MIB)
    outsider = browser.new_context()  # type: ignore[attr-defined]
    try:
        page = outsider.new_page()
        page.goto(server.url + created["url"])
        page.get_by_label("Password").fill("drop it here")
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_text("You can send 1 more file")).to_be_visible()
        page.get_by_label("Your name").fill("Dana from Accounting")
        upload_through_page(page, source)
        page.reload()
        expect(page.get_by_role("heading", name="This upload link no longer works")).to_be_visible()
    finally:
        outsider.close()
    with api(server, token) as client:
        received = client.get(f"/api/v1/upload-requests/{created['id']}/files").json()
        assert [(f["name"], f["uploader"]) for f in received] == [("invoice.pdf", "Dana from Accounting")]
        assert client.get(f"/api/v1/files/{received[0]['id']}/content").content == source.read_bytes()


def test_forms_only_send_the_browser_back_within_the_site(server: Server) -> None:
    token = login(server.url, "admin", server.admin_password or "")
    with api(server, token) as client:
        file_id = client.post("/api/v1/files", headers=named("back.txt"), content=b"b").json()["id"]
        shares = [client.post(f"/api/v1/files/{file_id}/shares", json={}).json()["id"] for _ in range(4)]
    with httpx.Client(base_url=server.url) as browser:
        signed = browser.post("/login", data={"username": "admin", "password": server.admin_password or ""})
        assert signed.status_code == 303
        backs = ["//evil.test/x", "/\\evil.test", "https://evil.test/", f"/files/{file_id}"]
        for share_id, back in zip(shares, backs, strict=True):
            answer = browser.post(f"/links/{share_id}/revoke", data={"back": back})
            assert answer.status_code == 303
            assert answer.headers["location"] == (back if back.startswith("/files/") else "/links")


def test_unknown_links_get_a_page_not_a_document(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    for path in ("/s/no-such-link-at-all-000000", "/r/no-such-link-at-all-000000"):
        response = page.goto(server.url + path)
        assert response is not None
        assert response.status == 404
        expect(page.get_by_text("There is no such link.")).to_be_visible()
    assert httpx.get(f"{server.url}/s/no-such-link-at-all-000000").json()["detail"] == "link not found"


def open_dialog(page: Page, opener: str) -> None:
    """Click a button that opens a dialog, once the page's scripts have run (a click
    before they attach their handler does nothing, as it would for a person)."""
    page.wait_for_load_state("load")
    page.get_by_role("button", name=opener).click()
