"""The SDK against a real server: one suite, run with ``Client`` and with ``AsyncClient``."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sealbox.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ForbiddenError,
    GoneError,
    NotFoundError,
    Progress,
    TransportError,
    ValidationError,
)
from sealbox.client._ops import CHUNK
from tests.integration.server import Installation, Server
from tests.proxy import Proxy


class Blocking:
    """``AsyncClient`` driven from a test, one event loop for its whole life."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._runner = asyncio.Runner()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._runner.run(attr(*args, **kwargs))

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("sdk"))).start()
    yield server
    server.stop()


Make = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    made: list[Any] = []

    def build(url: str, token: str | None = None) -> Any:
        if request.param == "sync":
            client: Any = Client(url, token, backoff=0.01)
        else:
            client = Blocking(AsyncClient(url, token, backoff=0.01))
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def sdk(make: Make, server: Server) -> Any:
    client = make(server.url)
    client.login("admin", server.admin_password)
    return client


def test_login_and_errors(make: Make, server: Server) -> None:
    client = make(server.url)
    with pytest.raises(AuthenticationError) as refused:
        client.login("admin", "not the password")
    assert refused.value.detail == "wrong user name or password"
    assert refused.value.status == 401
    token = client.login("admin", server.admin_password)
    assert token.startswith("sbx_")
    assert client.whoami().username == "admin"
    with pytest.raises(NotFoundError, match="file not found"):
        client.file("00000000-0000-0000-0000-000000000000")
    with pytest.raises(AuthenticationError, match="invalid or expired token"):
        make(server.url, "sbx_not-a-token").whoami()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(TransportError, match="cannot reach the server"):
        make(f"http://127.0.0.1:{closed}", token).whoami()


def test_upload_and_download_with_progress(sdk: Any, tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 1_000_000)
    source = tmp_path / "twenty.bin"
    source.write_bytes(data)
    seen: list[Progress] = []
    created = sdk.upload(source, on_progress=seen.append)
    assert (created.name, created.size) == ("twenty.bin", len(data))
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1] == Progress(len(data), len(data))
    assert len(seen) >= 3  # one report before the first part, then one per part
    target = tmp_path / "copy.bin"
    fetched: list[Progress] = []
    assert sdk.download(created.id, target, on_progress=fetched.append) == len(data)
    assert target.read_bytes() == data
    assert fetched[-1].done == len(data)
    assert created.id in {f.id for f in sdk.files()}
    sdk.delete(created.id)
    with pytest.raises(NotFoundError):
        sdk.file(created.id)


def test_upload_from_an_iterator(sdk: Any, tmp_path: Path) -> None:
    pieces = [os.urandom(100_000) for _ in range(30)]
    created = sdk.upload(iter(pieces), "streamed.bin")
    assert created.size == 3_000_000
    target = tmp_path / "streamed.bin"
    sdk.download(created.id, target)
    assert target.read_bytes() == b"".join(pieces)


class Stop(Exception):
    pass


def test_an_interrupted_upload_resumes(sdk: Any, tmp_path: Path) -> None:
    data = os.urandom(CHUNK + 1_000_000)
    source = tmp_path / "resume.bin"
    source.write_bytes(data)
    urls: list[str] = []

    def stop_after_first_part(progress: Progress) -> None:
        if progress.done > 0:
            raise Stop

    with pytest.raises(Stop):
        sdk.upload(source, on_upload_url=urls.append, on_progress=stop_after_first_part)
    seen: list[Progress] = []
    created = sdk.upload(source, upload_url=urls[0], on_progress=seen.append)
    assert seen[0].done == CHUNK  # it went on from the part already stored
    target = tmp_path / "resumed.bin"
    sdk.download(created.id, target)
    assert target.read_bytes() == data
    # Run again once finished: the server says it is complete; nothing is sent, the
    # same file comes back, and no second file appears.
    before = [f.id for f in sdk.files()]
    again: list[Progress] = []
    assert sdk.upload(source, upload_url=urls[0], on_progress=again.append).id == created.id
    assert [p.done for p in again] == [len(data)]
    assert [f.id for f in sdk.files()] == before


def test_a_partial_download_resumes(sdk: Any, tmp_path: Path) -> None:
    data = os.urandom(5_000_000)
    created = sdk.upload(iter([data]), "partial.bin")
    target = tmp_path / "partial.bin"
    target.write_bytes(data[:1_234_567])  # what an interrupted download left
    seen: list[Progress] = []
    assert sdk.download(created.id, target, on_progress=seen.append) == len(data)
    assert seen[0].done == len(data)
    assert target.read_bytes() == data
    assert sdk.download(created.id, target) == len(data)  # already complete: nothing to do
    assert target.read_bytes() == data


def test_a_download_cut_midway_resumes_by_itself(make: Make, sdk: Any, server: Server, tmp_path: Path) -> None:
    data = os.urandom(8_000_000)
    created = sdk.upload(iter([data]), "cut.bin")
    proxy = Proxy(server.port, cut=3_000_000)
    try:
        client = make(f"http://127.0.0.1:{proxy.port}", sdk.token)
        target = tmp_path / "cut.bin"
        assert client.download(created.id, target) == len(data)
        assert target.read_bytes() == data
        assert proxy.connections >= 2  # it reconnected and asked for the rest
    finally:
        proxy.close()


def test_share_links(make: Make, sdk: Any, server: Server, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    created = sdk.upload(iter([data]), "shared.bin")
    link = sdk.share(created.id, download_limit=1, password="open sesame 42", note="for you")
    assert link.url is not None
    assert link.url.startswith(f"{server.url}/s/")
    stranger = make(server.url)
    with pytest.raises(AuthenticationError, match="needs its password"):
        stranger.link_info(link.url)
    with pytest.raises(AuthenticationError, match="wrong password"):
        stranger.download_link(link.url, tmp_path / "x.bin", password="guess guess")
    info = stranger.link_info(link.url, password="open sesame 42")
    assert (info.name, info.size, info.downloads_left, info.note) == ("shared.bin", len(data), 1, "for you")
    target = tmp_path / "shared.bin"
    assert stranger.download_link(link.url, target, password="open sesame 42") == len(data)
    assert target.read_bytes() == data
    with pytest.raises(GoneError, match="download limit has been reached"):
        stranger.download_link(link.url, tmp_path / "again.bin", password="open sesame 42")
    assert [link.status for link in sdk.links(created.id)] == ["exhausted"]
    sdk.revoke_link(link.id)
    assert [link.status for link in sdk.links(created.id)] == ["revoked"]
    with pytest.raises(ValidationError, match="download_limit"):
        sdk.share(created.id, download_limit=0)


def test_grants_requests_and_audit(make: Make, sdk: Any, server: Server, tmp_path: Path) -> None:
    name = f"carol{id(sdk) % 100000}"
    assert server.install.cli("user", "add", name, "--password-stdin", stdin="carol-password-1\n").returncode == 0
    carol = make(server.url)
    carol.login(name, "carol-password-1")
    created = sdk.upload(iter([b"for carol"]), "granted.txt")
    grant = sdk.grant(created.id, name)
    assert [g.grantee for g in sdk.grants(created.id)] == [name]
    assert [f.id for f in carol.shared_with_me()] == [created.id]
    carol.download(created.id, tmp_path / "granted.txt")
    assert (tmp_path / "granted.txt").read_bytes() == b"for carol"
    sdk.revoke_grant(created.id, grant.id)
    assert carol.shared_with_me() == []

    request = sdk.create_request(max_files=1)
    assert request.url is not None
    assert request.url.startswith("/r/")
    assert [r.id for r in sdk.requests() if r.id == request.id] == [request.id]
    assert sdk.received(request.id) == []
    sdk.revoke_request(request.id)
    assert next(r for r in sdk.requests() if r.id == request.id).status == "revoked"

    actions = {event.action for event in sdk.audit(limit=200)}
    assert {"file.upload", "grant.give", "grant.revoke", "request.create", "request.revoke"} <= actions
    with pytest.raises(ForbiddenError, match="administrators only"):
        carol.audit(everything=True)


def test_accounts_tokens_and_administration(make: Make, sdk: Any, server: Server) -> None:
    name = f"dave{id(sdk) % 100000}"
    made = sdk.create_user(name, "dave-password-1")
    assert (made.username, made.is_admin) == (name, False)
    assert name in {user.username for user in sdk.users()}
    dave = make(server.url)
    dave.login(name, "dave-password-1")
    token = dave.create_token("ci", "read")
    reader = make(server.url, token)
    assert reader.whoami().username == name
    with pytest.raises(ForbiddenError, match="read-only"):
        reader.upload(iter([b"x"]), "nope.txt")
    listed = {t["name"]: t["id"] for t in dave.tokens()}
    dave.revoke_token(listed["ci"])
    with pytest.raises(AuthenticationError):
        reader.whoami()
    dave.change_password("dave-password-1", "dave-password-2")
    sdk.reset_password(made.id, "dave-password-3")
    with pytest.raises(AuthenticationError):
        dave.whoami()  # a reset revokes every token
    sdk.set_active(made.id, False)
    with pytest.raises(AuthenticationError):
        make(server.url).login(name, "dave-password-3")
    sdk.delete_user(made.id)
    assert name not in {user.username for user in sdk.users()}


def test_upload_through_an_upload_request_link(make: Make, sdk: Any, server: Server, tmp_path: Path) -> None:
    data = os.urandom(9_000_000)
    source = tmp_path / "scan.pdf"
    source.write_bytes(data)
    request = sdk.create_request(max_files=1, password="drop box pass")
    outsider = make(server.url)
    with pytest.raises(AuthenticationError, match="needs its password"):
        outsider.upload_to_link(server.url + request.url, source)
    assert outsider.upload_to_link(server.url + request.url, source, password="drop box pass", uploader="Eve") is None
    received = sdk.received(request.id)
    assert [(f.name, f.size) for f in received] == [("scan.pdf", len(data))]
    sdk.download(received[0].id, tmp_path / "scan-copy.pdf")
    assert (tmp_path / "scan-copy.pdf").read_bytes() == data
