"""Folders in the web interface, in Chromium against a real server: a folder uploaded with
its tree, navigation by breadcrumbs, a listing paged by the server, folders made, renamed,
moved and deleted, and actions on a selection. Every check of what happened is asked of
the JSON API (the same services), not of the page."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import BrowserContext, Page, expect

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
    found = client.post("/api/v1/folders/lookup", json={"path": path})
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
        assert client.post("/api/v1/folders/lookup", json={"path": "projects/old/alpha.txt"}).status_code == 404


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
            ({"folder": ""}, "choose at least one file or folder first"),
            ({"folder": "", "item": "disk:" + kept["id"]}, "an item of the selection is not valid"),
            ({"folder": "", "item": "file:not-a-uuid"}, "an item of the selection is not valid"),
        ]
        for fields, message in cases:
            for action in ("/files/move", "/files/delete"):
                answer = browser.post(action, data={**fields, "confirmed": "yes", "to": "top"})
                assert answer.status_code == 400, (action, fields)
                assert message in answer.text
        too_many = "&".join(f"item=file:{kept['id']}" for _ in range(1001))
        answer = browser.post(
            "/files/delete",
            content=f"folder=&confirmed=yes&{too_many}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 400
        assert "choose at most 1000 items at once" in answer.text
    with api(server) as client:
        assert client.get(f"/api/v1/files/{kept['id']}").status_code == 200
