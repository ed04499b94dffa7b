"""Accounts' name keys through key management, end to end: a rotation, a rewrap and a
retirement leave every folder and file name readable after a restart; a key that still
wraps a name key is not retired; a server whose keyring lacks a name key's master key
does not start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx2 as httpx

from tests.integration.server import SEALBOX, Installation, Server, login, named


def _primary(install: Installation) -> str:
    return str(json.loads(install.keyring.read_text())["keys"][0]["id"])


def _names(client: httpx.Client, folder: str = "top") -> list[str]:
    got = client.get(f"/api/v1/folders/{folder}")
    assert got.status_code == 200, got.text
    return [item["name"] for item in got.json()["items"]]


def _status_row(install: Installation, key_id: str) -> list[str]:
    status = install.cli("keys", "status")
    assert status.returncode == 0, status.stderr
    line = next(line for line in status.stdout.splitlines() if key_id in line)
    return [cell.strip() for cell in line.strip("│┃ ").split("│")]


def test_rotate_rewrap_retire_keep_every_folder_name_readable_after_a_restart(tmp_path: Path) -> None:
    install = Installation(tmp_path / "install")
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth) as client:
        trip = client.post("/api/v1/folders", json={"name": "Reise 2026 ✈", "parent_id": None}).json()["id"]
        client.post("/api/v1/folders", json={"name": "Tag 1", "parent_id": trip})
        made = client.post("/api/v1/files", headers=named("plan.txt"), params={"folder": trip}, content=b"plan")
        assert made.status_code == 201, made.text
    old = _primary(install)
    assert _status_row(install, old)[-2:] == ["1", "1"]  # one file, one name key

    assert install.cli("keys", "rotate").returncode == 0
    new = _primary(install)
    refused = install.cli("keys", "retire", old)
    assert refused.returncode == 1
    assert f"key '{old}' still wraps 1 file and 1 account name key" in refused.stderr

    rewrap = install.cli("keys", "rewrap")
    assert rewrap.returncode == 0, rewrap.stderr
    assert "2 keys" in rewrap.stderr
    assert _status_row(install, new)[-2:] == ["1", "1"]
    assert _status_row(install, old)[-2:] == ["0", "0"]
    assert install.sql("SELECT key_id FROM name_keys") == [(new,)]
    retired = install.cli("keys", "retire", old)
    assert retired.returncode == 0, retired.stderr

    server.stop()
    server = Server(install).start()
    try:
        with httpx.Client(base_url=server.url, headers=auth) as client:
            assert _names(client) == ["Reise 2026 ✈"]
            assert _names(client, trip) == ["Tag 1", "plan.txt"]
            assert client.get(f"/api/v1/files/{made.json()['id']}/content").content == b"plan"
    finally:
        server.stop()


def test_a_key_wrapping_only_a_name_key_is_not_retired(tmp_path: Path) -> None:
    install = Installation(tmp_path / "install")
    server = Server(install).start()
    try:
        assert server.admin_password is not None
        token = login(server.url, "admin", server.admin_password)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.post("/api/v1/folders", json={"name": "only a folder", "parent_id": None}).status_code == 201
        old = _primary(install)
        assert install.cli("keys", "rotate").returncode == 0
        before = install.keyring.read_bytes()
        refused = install.cli("keys", "retire", old)
        assert refused.returncode == 1
        assert f"key '{old}' still wraps 1 account name key; run 'sealbox keys rewrap' first" in refused.stderr
        assert install.keyring.read_bytes() == before
        assert install.sql("SELECT count(*) FROM retired_keys") == [(0,)]
    finally:
        server.stop()


def test_start_refuses_a_keyring_without_a_name_keys_master_key(tmp_path: Path) -> None:
    install = Installation(tmp_path / "install")
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.post("/api/v1/folders", json={"name": "kept", "parent_id": None}).status_code == 201
    server.stop()
    # No file at all: only the account's name key names the master key.
    assert install.sql("SELECT count(*) FROM files") == [(0,)]
    install.sql("UPDATE name_keys SET key_id = 'gone-key'")
    started = subprocess.run(
        [*SEALBOX, "serve", "--port", "1"], env=install.env(), capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 78, started.stderr
    assert "gone-key" in started.stderr
    assert "which the keyring does not hold" in started.stderr
    status = install.cli("keys", "status")
    assert status.returncode == 78
    assert "gone-key (0 files, 1 name keys)" in status.stderr
