from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login


@dataclass
class Account:
    name: str
    token: str
    client: httpx.Client


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    return Installation(tmp_path_factory.mktemp("sealbox"))


@pytest.fixture(scope="module")
def server(install: Installation) -> Iterator[Server]:
    server = Server(install).start()
    yield server
    server.stop()


def _account(server: Server, name: str, password: str) -> Iterator[Account]:
    token = login(server.url, name, password)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        yield Account(name, token, client)


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Account]:
    assert server.admin_password is not None
    yield from _account(server, "admin", server.admin_password)


@pytest.fixture(scope="module")
def bob(server: Server, install: Installation) -> Iterator[Account]:
    result = install.cli("user", "add", "bob", "--password-stdin", stdin="bob-password-1\n")
    assert result.returncode == 0, result.stderr
    yield from _account(server, "bob", "bob-password-1")


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path
