"""The SDK against a real server: one suite, run with ``Client`` and with ``AsyncClient``."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sealbox.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    Progress,
    TransportError,
    UnsafePathError,
    ValidationError,
)
from sealbox.client._ops import CHUNK
from sealbox.client._tree import SMALL, local_target
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
    # Names are unique per folder: the sync and async runs share one account.
    name = f"shared-{uuid.uuid4().hex[:8]}.bin"
    created = sdk.upload(iter([data]), name)
    link = sdk.share(created.id, download_limit=1, password="open sesame 42", note="for you")
    assert link.url is not None
    assert link.url.startswith(f"{server.url}/s/")
    stranger = make(server.url)
    with pytest.raises(AuthenticationError, match="needs its password"):
        stranger.link_info(link.url)
    with pytest.raises(AuthenticationError, match="wrong password"):
        stranger.download_link(link.url, tmp_path / "x.bin", password="guess guess")
    info = stranger.link_info(link.url, password="open sesame 42")
    assert (info.name, info.size, info.downloads_left, info.note) == (name, len(data), 1, "for you")
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
    source = tmp_path / f"scan-{uuid.uuid4().hex[:8]}.pdf"  # names are unique per folder
    source.write_bytes(data)
    # A folder of this link's own: a link's path enters only folders made through it.
    scans = f"scans-{uuid.uuid4().hex[:8]}"
    request = sdk.create_request(max_files=1, password="drop box pass")
    outsider = make(server.url)
    with pytest.raises(AuthenticationError, match="needs its password"):
        outsider.upload_to_link(server.url + request.url, source)
    assert (
        outsider.upload_to_link(
            server.url + request.url, source, password="drop box pass", uploader="Eve", path=f"{scans}/2026"
        )
        is None
    )
    received = sdk.received(request.id)
    assert [(f.name, f.size) for f in received] == [(source.name, len(data))]
    assert sdk.lookup(f"{scans}/2026/{source.name}").id == received[0].id  # below the link's folder (the top)
    sdk.download(received[0].id, tmp_path / "scan-copy.pdf")
    assert (tmp_path / "scan-copy.pdf").read_bytes() == data


def test_folders_files_renamed_and_moved(sdk: Any, tmp_path: Path) -> None:
    top = f"tree-{uuid.uuid4().hex[:8]}"
    deep = sdk.make_path(f"{top}/a/b")
    assert sdk.make_path(f"/{top}/a/b/").id == deep.id  # there already: the same folder
    with pytest.raises(ConflictError, match="already exists"):
        sdk.make_folder("b", deep.parent_id)
    (tmp_path / "doc.txt").write_bytes(b"tus into a path")
    by_tus = sdk.upload(tmp_path / "doc.txt", folder_id=deep.id, path="c/d")
    assert sdk.lookup(f"{top}/a/b/c/d/doc.txt").id == by_tus.id
    one = sdk.upload_file(io.BytesIO(b"12345"), "one.txt", folder_id=deep.id)
    assert (one.folder_id, one.content_type) == (deep.id, "text/plain")
    with pytest.raises(ConflictError):
        sdk.upload_file(io.BytesIO(b"other"), "one.txt", folder_id=deep.id, on_conflict="fail")
    renamed = sdk.upload_file(io.BytesIO(b"other"), "one.txt", folder_id=deep.id)
    assert renamed.name == "one (2).txt"
    sdk.upload_file(io.BytesIO(b"x" * 100), "big.txt", folder_id=deep.id)
    first = sdk.list_folder(deep.id, limit=2)
    assert ([i.name for i in first.items], first.total) == (["c", "big.txt"], 4)
    assert first.path == ((sdk.lookup(top).id, top), (deep.parent_id, "a"), (deep.id, "b"))
    rest = sdk.list_folder(deep.id, limit=2, cursor=first.next_cursor)
    assert ([i.name for i in rest.items], rest.next_cursor) == (["one (2).txt", "one.txt"], None)
    by_size = sdk.folder_items(deep.id, sort="size", order="desc", query="ONE")
    assert [(i.name, i.size) for i in by_size] == [("one.txt", 5), ("one (2).txt", 5)] or [
        (i.name, i.size) for i in by_size
    ] == [("one (2).txt", 5), ("one.txt", 5)]
    moved = sdk.move_file(one.id, None, "top-one.txt")
    assert (moved.folder_id, moved.name) == (None, "top-one.txt")
    assert sdk.rename_file(one.id, f"{top}.txt").name == f"{top}.txt"
    assert sdk.rename_folder(deep.id, "bee").name == "bee"
    assert sdk.move_folder(deep.id, None, f"{top}-moved").parent_id is None
    with pytest.raises(ConflictError, match="into itself"):
        sdk.move_folder(sdk.lookup(top).id, sdk.lookup(top).id)
    sdk.delete_folder(deep.id)
    with pytest.raises(NotFoundError):
        sdk.lookup(f"{top}-moved")
    with pytest.raises(NotFoundError):
        sdk.file(by_tus.id)  # went with its folder
    assert sdk.file(one.id).name == f"{top}.txt"  # moved out before: still there
    assert sdk.lookup("") is None  # the top


def test_upload_dir_stopped_midway_goes_on_and_keeps_the_tree(sdk: Any, tmp_path: Path) -> None:
    source = tmp_path / "Album"
    rng = random.Random(5)
    for n in range(60):
        folder = source / ("raw" if n % 3 else "édité") / ("deep" if n % 4 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img {n}.jpg").write_bytes(rng.randbytes(n * 100))
    (source / "empty").mkdir()
    (source / "raw" / "large.bin").write_bytes(rng.randbytes(SMALL + 1))
    (source / "link").symlink_to("/etc")  # left out: it could lead outside the tree
    remote = f"albums-{uuid.uuid4().hex[:8]}/2026"
    calls = 0

    def stop_midway(progress: Progress) -> None:
        nonlocal calls
        calls += 1
        if calls == 20:
            raise Stop

    with pytest.raises(Stop):
        sdk.upload_dir(source, remote, workers=3, on_progress=stop_midway)
    seen: list[Progress] = []
    urls: dict[str, str | None] = {}
    done = sdk.upload_dir(source, remote, workers=3, on_progress=seen.append, on_upload_url=urls.__setitem__)
    assert done.skipped >= 19
    assert done.uploaded + done.skipped == 61
    assert done.conflicts == ()
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1].done == seen[-1].total == done.bytes
    assert urls == {"raw/large.bin": None}  # remembered while it went, forgotten once complete
    again = sdk.upload_dir(source, remote)
    assert (again.uploaded, again.skipped, again.bytes) == (0, 61, 0)
    found = {}
    queue = [("", done.folder_id)]
    while queue:
        rel, folder_id = queue.pop()
        for item in sdk.folder_items(folder_id):
            sub = f"{rel}/{item.name}" if rel else item.name
            if item.kind == "folder":
                found[sub] = None
                queue.append((sub, item.id))
            else:
                found[sub] = item.size
    assert found == {
        p.relative_to(source).as_posix(): (None if p.is_dir() else p.stat().st_size)
        for p in source.rglob("*")
        if not p.is_symlink()
    }
    (source / "raw" / "img 1.jpg").write_bytes(b"changed")
    clash = sdk.upload_dir(source, remote)
    assert (clash.uploaded, clash.conflicts) == (0, ("raw/img 1.jpg",))


@pytest.mark.parametrize(
    "path", ["../x", "a/../../x", "/etc/passwd", "a//b", ".", "a/./b", "a\\..\\b", "a\0b", "", "..\\x"]
)
def test_a_link_path_that_could_leave_the_directory_is_refused(path: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="unsafe path"):
        local_target(str(tmp_path), path)
    assert local_target(str(tmp_path), "a/b c/d.txt") == str(tmp_path / "a" / "b c" / "d.txt")
    assert local_target(str(tmp_path), "folder/") == str(tmp_path / "folder")


def test_a_folder_link_downloads_into_a_directory_and_as_a_zip(make: Make, sdk: Any, tmp_path: Path) -> None:
    source = tmp_path / "Reports"
    expected = {}
    for n in range(12):
        rel = f"{'q1' if n % 2 else 'q2/late'}/report {n} é.txt"
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(os.urandom(n * 1000))
        expected[rel] = (source / rel).read_bytes()
    done = sdk.upload_dir(source, f"links-{uuid.uuid4().hex[:8]}")
    link = sdk.share(folder_id=done.folder_id, password="folder pass 1", download_limit=3)
    assert (link.kind, link.file_id, link.folder_id) == ("folder", None, done.folder_id)
    stranger = make(sdk.url)
    with pytest.raises(AuthenticationError, match="needs its password"):
        stranger.download_link_dir(link.url, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    info = stranger.link_info(link.url, password="folder pass 1")
    assert (info.kind, info.files, info.size) == ("folder", 12, sum(map(len, expected.values())))
    assert {e.path for e in info.entries if e.kind == "file"} == set(expected)
    target = tmp_path / "got"
    seen: list[Progress] = []
    got = stranger.download_link_dir(link.url, target, password="folder pass 1", on_progress=seen.append)
    assert (got.downloaded, got.skipped, got.conflicts) == (12, 0, ())
    assert seen[-1] == Progress(info.size, info.size)
    files = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert files == expected
    cut = target / "q1" / "report 11 é.txt"
    cut.rename(cut.with_name(cut.name + ".part"))
    cut.with_name(cut.name + ".part").write_bytes(expected["q1/report 11 é.txt"][:5000])
    again = stranger.download_link_dir(link.url, target, password="folder pass 1")
    assert (again.downloaded, again.skipped, again.bytes) == (1, 11, 11_000)
    assert cut.read_bytes() == expected["q1/report 11 é.txt"]
    size = stranger.download_link_archive(link.url, tmp_path / "all.zip", password="folder pass 1")
    assert size == (tmp_path / "all.zip").stat().st_size
    with zipfile.ZipFile(tmp_path / "all.zip") as archive:
        assert {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")} == expected
    # A limit of 3 counts per file: the directory, the resumed file and the ZIP leave the
    # resumed file with less than a whole download, so a second ZIP is refused.
    with pytest.raises(GoneError):
        stranger.download_link_archive(link.url, tmp_path / "again.zip", password="folder pass 1")
