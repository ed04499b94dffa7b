"""Rotation end to end: an upload streaming through the runbook, and a staged rotation
over two `sealbox serve` processes that share a database but each have their own keyring
copy (two hosts), readable on both at every step."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pytest

from sealbox.crypto.keys import Keyring, load_keyring_file, new_master_key, replace_keyring_file
from tests.integration.conftest import BACKENDS, make_installation
from tests.integration.server import Installation, Server, login, named

PASSPHRASE = "correct horse battery staple\n"


def primary(path: Path) -> str:
    return str(json.loads(path.read_text())["keys"][0]["id"])


def key_ids(install: Installation) -> set[str]:
    return {str(row[0]) for row in install.sql("SELECT key_id FROM files")}


def ok(result: object) -> None:
    assert getattr(result, "returncode", None) == 0, getattr(result, "stderr", "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_upload_streaming_through_rotate_rewrap_retire_stays_readable_after_a_restart(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    install = make_installation(request, tmp_path, backend)
    server = Server(install).start()
    try:
        assert server.admin_password is not None
        headers = {"Authorization": f"Bearer {login(server.url, 'admin', server.admin_password)}"}
        old = primary(install.keyring)
        data = os.urandom(3 << 20)
        started, release = threading.Event(), threading.Event()

        def body() -> Iterator[bytes]:
            yield data[: 1 << 20]
            started.set()
            release.wait(120)
            yield data[1 << 20 :]

        answers: list[httpx.Response] = []
        sender = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{server.url}/api/v1/files", content=body(), headers={**headers, **named("slow")}, timeout=180
                )
            )
        )
        sender.start()
        try:
            assert started.wait(60)
            ok(install.cli("keys", "rotate"))
            new = primary(install.keyring)
            assert new != old
            ok(install.cli("keys", "rewrap"))
            ok(install.cli("keys", "retire", old))  # the streaming upload has no row yet
            assert load_keyring_file(install.keyring).ids == {new}
        finally:
            release.set()
            sender.join(180)
        assert answers[0].status_code == 201, answers[0].text
        file_id = answers[0].json()["id"]
        assert key_ids(install) == {new}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            assert client.get(f"/api/v1/files/{file_id}/content").content == data
        server.stop()
        server.start()
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            assert client.get(f"/api/v1/files/{file_id}/content").content == data
    finally:
        server.stop()


@dataclass
class Hosts:
    """Two servers over one database and blob directory, each with its own keyring."""

    a: Installation
    b: Installation
    server_a: Server
    server_b: Server
    token: str
    files: dict[str, bytes] = field(default_factory=dict)
    backup: Path = Path()

    def upload(self, server: Server) -> str:
        data = os.urandom(70_000 + len(self.files))
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.post(f"{server.url}/api/v1/files", content=data, headers={**headers, **named("f")})
        assert response.status_code == 201, response.text
        file_id = str(response.json()["id"])
        self.files[file_id] = data
        return file_id

    def key_of(self, file_id: str) -> str:
        return {str(fid).replace("-", ""): str(k) for fid, k in self.a.sql("SELECT id, key_id FROM files")}[
            file_id.replace("-", "")
        ]

    def all_readable(self) -> None:
        """Every file, through each server."""
        for server in (self.server_a, self.server_b):
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {self.token}"}) as client:
                for file_id, data in self.files.items():
                    response = client.get(f"/api/v1/files/{file_id}/content")
                    assert response.status_code == 200, (server.url, response.text)
                    assert response.content == data

    def copy_keys(self, source: Installation, target: Installation) -> None:
        """What the runbook says: export on one host, import on the other."""
        backup = source.root / f"keys-{time.monotonic_ns()}.backup"
        ok(source.cli("keys", "export", "-o", str(backup), "--passphrase-stdin", stdin=PASSPHRASE))
        ok(target.cli("keys", "import", str(backup), "--passphrase-stdin", stdin=PASSPHRASE))


def ready(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz")


def wait_for_keys(server: Server, expected: list[str]) -> None:
    """Until the server's /readyz lists ``expected`` (primary first): it re-reads its keyring by itself."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ready(server).json().get("keys") != expected:
        time.sleep(0.2)
    assert ready(server).json()["keys"] == expected


def process(server: Server) -> str:
    return f"process {server.worker_pids()[0]} on {socket.gethostname()}"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("hosts")
    fast = {"SEALBOX_KEY_REPORT_SECONDS": "1"}
    a = Installation(root, dict(fast))
    server_a = Server(a).start()
    b_keyring = root / "host-b" / "keyring.json"
    b_keyring.parent.mkdir(mode=0o700)
    shutil.copyfile(a.keyring, b_keyring)
    b_keyring.chmod(0o600)
    b = Installation(root, {**fast, "SEALBOX_KEYRING": str(b_keyring)})
    server_b = Server(b).start()
    assert server_a.admin_password is not None
    try:
        yield Hosts(a, b, server_a, server_b, login(server_a.url, "admin", server_a.admin_password))
    finally:
        server_a.stop()
        server_b.stop()


def b_keyring(hosts: Hosts) -> Path:
    return Path(hosts.b.env()["SEALBOX_KEYRING"])


def test_staged_rotation_over_two_hosts_keeps_every_file_readable_at_every_step(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    old = primary(a.keyring)
    hosts.upload(hosts.server_a), hosts.upload(hosts.server_b)
    hosts.all_readable()
    assert ready(hosts.server_a).json()["keys"] == ready(hosts.server_b).json()["keys"] == [old]

    # A one-step rotation on host A cannot promote: host B's process lacks the new key.
    refused = a.cli("keys", "rotate", "--wait", "3")
    assert refused.returncode == 1
    assert "do not hold it" in refused.stderr
    assert process(hosts.server_b) in refused.stderr
    assert primary(a.keyring) == old
    staged = next(k for k in load_keyring_file(a.keyring).ids if k != old)
    assert hosts.key_of(hosts.upload(hosts.server_a)) == old
    hosts.all_readable()

    # Step 1: stage the key on host B too (export there, import here).
    hosts.copy_keys(a, b)
    assert primary(b_keyring(hosts)) == old
    wait_for_keys(hosts.server_b, [old, staged])
    status = a.cli("keys", "status")
    assert status.returncode == 0, status.stderr
    assert str(hosts.server_a.worker_pids()[0]) in status.stdout
    assert str(hosts.server_b.worker_pids()[0]) in status.stdout
    hosts.all_readable()

    # Step 2: promote on each host in turn; in between each wraps under its own primary.
    ok(a.cli("keys", "promote", staged))
    wait_for_keys(hosts.server_a, [staged, old])
    assert hosts.key_of(hosts.upload(hosts.server_a)) == staged
    assert hosts.key_of(hosts.upload(hosts.server_b)) == old
    hosts.all_readable()
    ok(a.cli("keys", "rewrap"))  # every process holds the key: allowed
    assert {hosts.key_of(f) for f in hosts.files} == {staged}
    hosts.all_readable()
    refused = a.cli("keys", "retire", old)
    assert refused.returncode == 1
    assert f"'{old}' is still the primary key of 1 running server process" in refused.stderr
    assert process(hosts.server_b) in refused.stderr
    ok(b.cli("keys", "promote", staged))
    wait_for_keys(hosts.server_b, [staged, old])
    assert hosts.key_of(hosts.upload(hosts.server_b)) == staged
    hosts.all_readable()

    # Retire on each host; a restart of both still reads everything.
    ok(a.cli("keys", "retire", old))
    ok(b.cli("keys", "retire", old))
    wait_for_keys(hosts.server_a, [staged])
    wait_for_keys(hosts.server_b, [staged])
    hosts.all_readable()
    for server in (hosts.server_a, hosts.server_b):
        server.stop()
        server.start()
    hosts.all_readable()


def test_a_process_missing_a_key_answers_503_naming_it_and_is_not_ready_until_it_has_it(hosts: Hosts) -> None:
    a, b = hosts.a, hosts.b
    # Host A's keyring is given a new primary by hand, skipping the staged rotation.
    forced = new_master_key()
    replace_keyring_file(a.keyring, Keyring([forced, *load_keyring_file(a.keyring).keys]))
    wait_for_keys(hosts.server_a, [forced.id, primary(b_keyring(hosts))])
    file_id = hosts.upload(hosts.server_a)
    assert hosts.key_of(file_id) == forced.id

    headers = {"Authorization": f"Bearer {hosts.token}"}
    answer = httpx.get(f"{hosts.server_b.url}/api/v1/files/{file_id}/content", headers=headers)
    assert answer.status_code == 503
    assert answer.json()["code"] == "key_missing"
    assert forced.id in answer.json()["detail"]
    assert "integrity" not in answer.text
    not_ready = ready(hosts.server_b)
    assert not_ready.status_code == 503
    assert forced.id in not_ready.json()["detail"]
    assert ready(hosts.server_a).status_code == 200

    # The rewrap will not move files to a key that host B lacks.
    refused = a.cli("keys", "rewrap")
    assert refused.returncode == 1
    assert f"do not hold key '{forced.id}'" in refused.stderr
    assert process(hosts.server_b) in refused.stderr
    status = a.cli("keys", "status")
    assert f"{process(hosts.server_b)} lacks {forced.id}" in status.stderr

    # Host B gets the key: it reads its keyring again by itself, is ready and serves the file.
    hosts.copy_keys(a, b)
    deadline = time.monotonic() + 30
    while ready(hosts.server_b).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert forced.id in ready(hosts.server_b).json()["keys"]
    hosts.all_readable()
    ok(a.cli("keys", "rewrap"))
    hosts.all_readable()
