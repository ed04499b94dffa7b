from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login, s3_installation
from tests.services import Postgres, Seaweed


@dataclass
class Account:
    name: str
    token: str
    client: httpx.Client


BACKENDS = ["sqlite-local", "postgres-s3"]


def make_installation(request: pytest.FixtureRequest, root: Path, backend: str) -> Installation:
    """A fresh installation on ``backend``: its own database and its own bucket."""
    if backend == "sqlite-local":
        return Installation(root)
    seaweed: Seaweed = request.getfixturevalue("seaweed")
    postgres: Postgres = request.getfixturevalue("postgres")
    return s3_installation(root, seaweed, postgres)


@pytest.fixture(scope="module", params=BACKENDS)
def install(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """The installation a test module runs against: once on each backend."""
    return make_installation(request, tmp_path_factory.mktemp("sealbox"), request.param)


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
