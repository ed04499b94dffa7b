"""Playwright for Python driving Debian's Chromium (/usr/bin/chromium) against a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.integration.server import Installation, Server

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install = Installation(tmp_path_factory.mktemp("web"))
    server = Server(install).start()
    assert install.cli("user", "add", "bob", "--password-stdin", stdin="bob-password-1\n").returncode == 0
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(accept_downloads=True)
    yield context
    context.close()


def sign_in(page: Page, server: Server, username: str = "admin", password: str | None = None) -> None:
    page.goto(f"{server.url}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password or server.admin_password or "")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/files")


@pytest.fixture
def random_file(tmp_path: Path) -> Iterator[object]:
    def make(name: str, size: int) -> Path:
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return path

    return make
