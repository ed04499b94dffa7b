"""Folders in the web interface, in Chromium against a real server: a folder uploaded with
its tree, navigation by breadcrumbs, a listing paged by the server, folders made, renamed,
moved and deleted, and actions on a selection. Every check of what happened is asked of
the JSON API (the same services), not of the page."""

from __future__ import annotations

import os
import re
import uuid
import zipfile
from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.integration.server import Server, login, named
from tests.web.conftest import sign_in


def api(server: Server) -> httpx.Client:
    token = login(server.url, "admin", server.admin_password or "")
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def make_tree(root: Path, files: dict[str, int]) -> dict[str, bytes]:
    """Files under ``root`` (relative path -> size) with random bytes; their contents."""
    made = {}
    for relative, size in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        made[relative] = data
    return made


def names_in(client: httpx.Client, folder: str) -> list[str]:
    listing = client.get(f"/api/v1/folders/{folder}", params={"limit": 1000}).json()
    return [item["name"] + ("/" if item["kind"] == "folder" else "") for item in listing["items"]]


def lookup(client: httpx.Client, path: str) -> dict[str, object]:
    found = client.post("/api/v1/lookup", json={"path": path})
    assert found.status_code == 200, (path, found.text)
    return dict(found.json())


def open_folder(page: Page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()


def select(page: Page, *names: str) -> None:
    for name in names:
        page.get_by_label(f"Select {name}", exact=True).check()


def upload_folder(page: Page, folder: Path, files: int) -> None:
    """Choose ``folder`` in the page's folder picker and wait for all its files."""
    page.set_input_files("#folder-input", str(folder))
    expect(page.locator(".upload-summary")).to_have_text(re.compile(rf"^{files} of {files} files done"), timeout=60_000)
    page.wait_for_load_state()


def test_a_chosen_folder_is_uploaded_with_its_tree(context: BrowserContext, server: Server, tmp_path: Path) -> None:
    source = tmp_path / "holiday"
    tree = {
        "notes.txt": 300,
        "day 1/beach.jpg": 70_000,
        "day 1/evening/stars.raw": 200_000,
        "day 2/map.pdf": 1_000,
        "day 2/empty.txt": 0,
    }
    contents = make_tree(source, tree)
    page = context.new_page()
    sign_in(page, server)
    upload_folder(page, source, len(tree))
    expect(page.get_by_role("link", name="holiday", exact=True)).to_be_visible(timeout=10_000)
    open_folder(page, "holiday")
    expect(page.get_by_role("link", name="day 1", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="notes.txt", exact=True)).to_be_visible()
    open_folder(page, "day 1")
    open_folder(page, "evening")
    expect(page.get_by_role("link", name="stars.raw", exact=True)).to_be_visible()
    crumbs = page.get_by_role("navigation", name="Folder path")
    expect(crumbs.get_by_role("listitem")).to_have_text(["Files", "holiday", "day 1", "evening"])
    assert re.search(r"/files\?folder=[0-9a-f-]{36}$", page.url)  # an id, never a name
    crumbs.get_by_role("link", name="holiday").click()
    expect(page.get_by_role("heading", level=1, name="holiday")).to_be_visible()
    with api(server) as client:
        for relative, data in contents.items():
            entry = lookup(client, f"holiday/{relative}")
            assert client.get(f"/api/v1/files/{entry['id']}/content").content == data, relative


def test_folders_are_made_renamed_moved_and_deleted_from_the_page(context: BrowserContext, server: Server) -> None:
    with api(server) as client:
        top = client.post("/api/v1/folders", json={"name": "projects"}).json()
        for name in ("alpha.txt", "beta.txt", "gamma.txt"):
            client.post("/api/v1/files", params={"folder": top["id"]}, headers=named(name), content=name.encode())
    page = context.new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/files?folder={top['id']}")

    # Make a folder; a taken name is refused with the service's message, nothing made.
    page.get_by_label("New folder").fill("archive")
    page.get_by_role("button", name="Make folder").click()
    expect(page.get_by_role("status")).to_have_text("Folder “archive” made.")
    page.get_by_label("New folder").fill("alpha.txt")
    with page.expect_response(f"{server.url}/folders") as refused:
        page.get_by_role("button", name="Make folder").click()
    assert refused.value.status == 409
    expect(page.get_by_role("alert")).to_be_visible()
    with api(server) as client:
        assert names_in(client, top["id"]) == ["archive/", "alpha.txt", "beta.txt", "gamma.txt"]

    # Move two files into it at once.
    select(page, "alpha.txt", "beta.txt")
    page.get_by_label("Move to").select_option(label="archive")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Moved 2 items.")
    with api(server) as client:
        assert names_in(client, top["id"]) == ["archive/", "gamma.txt"]
        archive = lookup(client, "projects/archive")
        assert names_in(client, str(archive["id"])) == ["alpha.txt", "beta.txt"]

    # Rename the folder.
    page.get_by_role("link", name="Rename archive").click()
    page.get_by_label("New name").fill("old")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_have_text("Renamed to “old”.")
    expect(page.get_by_role("link", name="old", exact=True)).to_be_visible()

    # Move a folder into itself: refused by the service, reported, nothing moved.
    select(page, "old", "gamma.txt")
    page.get_by_label("Move to").select_option(label="old")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Moved 1 of 2 items. Not done: old: a folder cannot be moved")
    with api(server) as client:
        assert names_in(client, top["id"]) == ["old/"]
        assert names_in(client, str(archive["id"])) == ["alpha.txt", "beta.txt", "gamma.txt"]

    # Delete the folder with what is in it, after a confirmation.
    select(page, "old")
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 1 item?")).to_be_visible()
    expect(page.get_by_text("old/")).to_be_visible()
    with api(server) as client:
        assert names_in(client, top["id"]) == ["old/"]  # asking changed nothing
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Deleted 1 item.")
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    with api(server) as client:
        assert names_in(client, top["id"]) == []
        assert client.post("/api/v1/lookup", json={"path": "projects/old/alpha.txt"}).status_code == 404


def test_the_listing_is_paged_by_the_server(context: BrowserContext, server: Server) -> None:
    with api(server) as client:
        folder = client.post("/api/v1/folders", json={"name": "many"}).json()
        for n in range(130):
            client.post("/api/v1/files", params={"folder": folder["id"]}, headers=named(f"f{n:03}.txt"), content=b"x")
    page = context.new_page()
    sign_in(page, server)
    page.goto(f"{server.url}/files?folder={folder['id']}")
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text("f000.txt")
    expect(page.get_by_text("130 items.")).to_be_visible()
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(30)
    expect(rows.first).to_contain_text("f100.txt")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    # A cursor that is not one: the first page, and why.
    answer = page.goto(f"{server.url}/files?folder={folder['id']}&cursor=not-a-cursor")
    assert answer is not None
    assert answer.status == 400
    expect(page.get_by_role("alert")).to_have_text("the cursor is not valid")
    expect(rows).to_have_count(100)
    # Filtered and sorted by the server, the folder kept.
    page.goto(f"{server.url}/files?folder={folder['id']}")
    page.get_by_label("Filter").fill("f12")
    page.get_by_label("Order").select_option("desc")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("f129.txt")
    assert f"folder={folder['id']}" in page.url


def test_bad_selections_are_refused_and_change_nothing(server: Server) -> None:
    with api(server) as client:
        kept = client.post("/api/v1/files", headers=named("kept.txt"), content=b"k").json()
    with httpx.Client(base_url=server.url) as browser:
        signed = browser.post("/login", data={"username": "admin", "password": server.admin_password or ""})
        assert signed.status_code == 303
        cases = [
            ({"folder": ""}, 400, "choose at least one file or folder first"),
            (
                {"folder": "", "item": "disk:" + kept["id"]},
                400,
                "an item&#39;s kind is &#39;file&#39; or &#39;folder&#39;",
            ),
            ({"folder": "", "item": "file:not-a-uuid"}, 404, "file not found"),
        ]
        for fields, status, message in cases:
            for action in ("/files/move", "/files/delete", "/files/share", "/files/archive"):
                answer = browser.post(action, data={**fields, "confirmed": "yes", "to": "top"})
                assert answer.status_code == status, (action, fields)
                assert message in answer.text
        too_many = "&".join(f"item=file:{uuid.uuid4()}" for _ in range(1001))
        twice = f"item=file:{kept['id']}&item=file:{kept['id']}"
        for body, message in (
            (too_many, "a selection has 1 to 1000 items"),
            (twice, "a selection names each item once"),
        ):
            for action in ("/files/move", "/files/delete", "/files/share", "/files/archive"):
                answer = browser.post(
                    action,
                    content=f"folder=&confirmed=yes&to=top&{body}",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                assert answer.status_code == 400, action
                assert message in answer.text
    with api(server) as client:
        assert client.get(f"/api/v1/files/{kept['id']}").status_code == 200
        assert client.get("/api/v1/shares", params={"file_id": kept["id"]}).json() == []


def zip_contents(path: Path) -> dict[str, bytes]:
    """The files of a ZIP (directories left out), each checked against its CRC-32."""
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def test_a_folder_shared_with_a_password_as_one_link_downloads_as_a_zip(
    context: BrowserContext, server: Server, tmp_path: Path
) -> None:
    """The acceptance path: a folder with nested subfolders uploaded from the page, its
    tree browsed, three items shared with a password, the link opened in a fresh
    context, unlocked, and its ZIP identical to the source."""
    source = tmp_path / "trip"
    tree = {
        "itinerary.txt": 2_000,
        "photos/harbour.jpg": 150_000,
        "photos/2026/May/sunset.jpg": 90_000,
        "photos/2026/übersicht.txt": 500,
        "docs/tickets.pdf": 40_000,
        "docs/empty.txt": 0,
        "left out.txt": 700,
    }
    contents = make_tree(source, tree)
    page = context.new_page()
    sign_in(page, server)
    upload_folder(page, source, len(tree))
    open_folder(page, "trip")
    open_folder(page, "photos")
    expect(page.get_by_role("link", name="harbour.jpg", exact=True)).to_be_visible()
    open_folder(page, "2026")
    expect(page.get_by_role("link", name="übersicht.txt", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="May", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Folder path").get_by_role("link", name="trip").click()
    expect(page.get_by_role("heading", level=1, name="trip")).to_be_visible()

    # The owner downloads the three items as one ZIP (a form post).
    chosen = ["itinerary.txt", "photos", "docs"]
    expected = {k: v for k, v in contents.items() if k.split("/")[0] in chosen}
    select(page, *chosen)
    with page.expect_download() as own:
        page.get_by_role("button", name="Download as ZIP").click()
    assert zip_contents(Path(own.value.path())) == expected

    # One link for the three, with a password.
    page.get_by_role("button", name="Share…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Password").fill("summer holiday 2026")
    dialog.get_by_label("Note for the recipient").fill("The trip, minus one file.")
    dialog.get_by_role("button", name="Create link").click()
    link = page.get_by_label("The new link").input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/s/[A-Za-z0-9_-]{{24}}", link)
    expect(page.get_by_text("download 3 items")).to_be_visible()

    stranger = context.browser.new_context(accept_downloads=True)  # type: ignore[union-attr]
    try:
        visitor = stranger.new_page()
        visitor.goto(link)
        expect(visitor.get_by_role("heading", name="This link is protected")).to_be_visible()
        expect(visitor.get_by_text("itinerary.txt")).to_have_count(0)  # nothing before the password
        assert stranger.request.get(f"{link}/archive").status == 401
        visitor.get_by_label("Password").fill("summer holiday 2026")
        visitor.get_by_role("button", name="Open").click()
        expect(visitor.get_by_role("heading", name="3 items")).to_be_visible()
        expect(visitor.get_by_text("The trip, minus one file.")).to_be_visible()
        files = visitor.get_by_role("list", name="Files of the link")
        for name in ("itinerary.txt", "photos/", "2026/", "May/", "sunset.jpg", "übersicht.txt", "docs/", "empty.txt"):
            expect(files.get_by_text(name, exact=True)).to_have_count(1)
        expect(files.get_by_text("left out.txt")).to_have_count(0)
        with visitor.expect_download() as single:
            visitor.get_by_role("link", name="Download photos/2026/May/sunset.jpg").click()
        assert single.value.suggested_filename == "sunset.jpg"
        assert Path(single.value.path()).read_bytes() == contents["photos/2026/May/sunset.jpg"]
        with visitor.expect_download() as everything:
            visitor.get_by_role("link", name="Download all as ZIP").click()
        assert everything.value.suggested_filename.endswith(".zip")
        assert zip_contents(Path(everything.value.path())) == expected
    finally:
        stranger.close()


def test_an_upload_link_takes_a_dropped_folder_into_its_folder(
    browser: Browser, server: Server, tmp_path: Path
) -> None:
    with api(server) as client:
        inbox = client.post("/api/v1/folders", json={"name": "inbox"}).json()
        created = client.post("/api/v1/upload-requests", json={"max_files": 5, "folder_id": inbox["id"]}).json()
    source = tmp_path / "scans"
    contents = make_tree(source, {"page 1.png": 3_000, "appendix/page 2.png": 4_000, "appendix/a/b.txt": 10})
    outsider = browser.new_context()
    try:
        page = outsider.new_page()
        page.goto(server.url + created["url"])
        upload_folder(page, source, 3)
    finally:
        outsider.close()
    with api(server) as client:
        assert names_in(client, inbox["id"]) == ["scans/"]
        for relative, data in contents.items():
            entry = lookup(client, f"inbox/scans/{relative}")
            assert client.get(f"/api/v1/files/{entry['id']}/content").content == data, relative


# A drop of a folder, as the page sees it: the items of the drop's DataTransfer give
# directory entries (webkitGetAsEntry) whose readers answer in batches, as Chromium does
# for large directories. Playwright cannot drag a folder from the disk, so the entries are
# built in the page, with real File objects, and dropped on the upload area.
DROP_FOLDER = """(tree) => {
  const file = (path, text) => ({
    isFile: true, isDirectory: false, fullPath: "/" + path,
    file: (ok) => ok(new File([text], path.split("/").pop())),
  });
  const dir = (path, children) => ({
    isFile: false, isDirectory: true, fullPath: "/" + path,
    createReader() {
      let next = 0;
      return { readEntries(ok) { ok(children.slice(next, next + 2)); next += 2; } };
    },
  });
  const build = (path, node) => typeof node === "string" ? file(path, node)
    : dir(path, Object.entries(node).map(([name, child]) => build(`${path}/${name}`, child)));
  const entries = Object.entries(tree).map(([name, node]) => build(name, node));
  const event = new Event("drop", { bubbles: true, cancelable: true });
  const items = entries.map((entry) => ({ webkitGetAsEntry: () => entry }));
  Object.defineProperty(event, "dataTransfer", { value: { items, files: [] } });
  document.querySelector(".dropzone").dispatchEvent(event);
}"""


def test_a_dropped_folder_is_walked_with_its_tree(context: BrowserContext, server: Server) -> None:
    tree = {
        "dropped": {
            "one.txt": "1",
            "two.txt": "22",
            "three.txt": "333",
            "inner": {"four.txt": "4444", "deeper": {"five.txt": "55555"}},
        },
        "beside.txt": "beside",
    }
    page = context.new_page()
    sign_in(page, server)
    with api(server) as client:
        target = client.post("/api/v1/folders", json={"name": "drops"}).json()
    page.goto(f"{server.url}/files?folder={target['id']}")
    page.wait_for_load_state("load")
    page.evaluate(DROP_FOLDER, tree)
    expect(page.locator(".upload-summary")).to_have_text(re.compile(r"^6 of 6 files done"), timeout=60_000)
    with api(server) as client:
        assert names_in(client, target["id"]) == ["dropped/", "beside.txt"]
        expected = {
            "dropped/one.txt": "1",
            "dropped/two.txt": "22",
            "dropped/three.txt": "333",
            "dropped/inner/four.txt": "4444",
            "dropped/inner/deeper/five.txt": "55555",
            "beside.txt": "beside",
        }
        for relative, text in expected.items():
            entry = lookup(client, f"drops/{relative}")
            assert client.get(f"/api/v1/files/{entry['id']}/content").text == text, relative
