"""Key management end to end: rotate and rewrap under load, resume, retire, backup and restore."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from cryptography.fernet import Fernet

from sealbox.crypto.errors import UnknownKeyId
from sealbox.crypto.keys import Keyring, WrapDomain, load_keyring_file, new_master_key
from tests.integration.server import SEALBOX, Installation, Server, login, named

FILES = 500


def rows(install: Installation) -> dict[str, tuple[str, bytes]]:
    """file id (hex) -> (key id, wrapped key), read straight from the database file."""
    with sqlite3.connect(install.data_dir / "sealbox.db") as db:
        return {fid: (kid, bytes(w)) for fid, kid, w in db.execute("SELECT id, key_id, wrapped_dek FROM files")}


def blob_fingerprints(install: Installation) -> dict[str, tuple[str, int]]:
    root = install.data_dir / "blobs"
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def primary(install: Installation) -> str:
    return str(json.loads(install.keyring.read_text())["keys"][0]["id"])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, Server, str, dict[str, bytes]]]:
    install = Installation(tmp_path_factory.mktemp("keys"))
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    files = {}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(FILES):
            data = os.urandom(3000 + i)
            files[client.post("/api/v1/files", headers=named(f"k{i}"), content=data).json()["id"]] = data
    try:
        yield install, server, token, files
    finally:
        server.stop()


def test_rotate_and_rewrap_under_load_touch_no_blob(loaded: tuple[Installation, Server, str, dict[str, bytes]]) -> None:
    install, server, token, files = loaded
    old = primary(install)
    before = blob_fingerprints(install)
    stop = threading.Event()
    failures: list[str] = []
    extra: dict[str, bytes] = {}

    def traffic() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            ids = list(files)
            i = 0
            while not stop.is_set():
                data = os.urandom(5000)
                up = client.post("/api/v1/files", headers=named(f"live{i}"), content=data)
                down = client.get(f"/api/v1/files/{ids[i % len(ids)]}/content")
                if up.status_code != 201 or down.status_code != 200 or down.content != files[ids[i % len(ids)]]:
                    failures.append(f"{up.status_code} {down.status_code}")
                else:
                    extra[up.json()["id"]] = data
                i += 1

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        rotated = install.cli("keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        new = primary(install)
        assert new != old
        rewrapped = install.cli("keys", "rewrap", "--batch", "50")
        assert rewrapped.returncode == 0, rewrapped.stderr
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert len(extra) > 10, "the client kept uploading and downloading throughout"
    assert {key_id for key_id, _ in rows(install).values()} == {new}
    after = blob_fingerprints(install)
    assert {key: after[key] for key in before} == before, "blobs are neither read into new files nor rewritten"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for file_id, data in {**files, **extra}.items():
            assert client.get(f"/api/v1/files/{file_id}/content").content == data
    status = install.cli("keys", "status")
    assert status.returncode == 0
    assert new in status.stdout
    assert f"keys wrapping no file and no name key: {old}" in status.stderr


def test_rewrap_killed_halfway_finishes_when_run_again(
    loaded: tuple[Installation, Server, str, dict[str, bytes]],
) -> None:
    install, server, token, files = loaded
    old = primary(install)
    saved_id, (saved_key, saved_wrapped) = next(iter(rows(install).items()))
    assert saved_key == old
    tus = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    upload = httpx.post(f"{server.url}/api/v1/uploads/", headers={**tus, "Upload-Length": "10"}).headers["location"]
    assert install.cli("keys", "rotate").returncode == 0
    new = primary(install)
    refused = install.cli("keys", "retire", old)
    assert refused.returncode == 1
    assert f"key '{old}' still wraps {len(rows(install))} files and 1 account name key" in refused.stderr

    first = subprocess.Popen(
        [*SEALBOX, "keys", "rewrap", "--batch", "5"], env=install.env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if sum(key == new for key, _ in rows(install).values()) >= 60:
            break
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    moved = sum(key == new for key, _ in rows(install).values())
    assert 0 < moved < len(rows(install)), "killed halfway"

    again = install.cli("keys", "rewrap")
    assert again.returncode == 0, again.stderr
    assert {key for key, _ in rows(install).values()} == {new}
    assert install.cli("keys", "retire", new).returncode == 1  # the primary cannot go
    in_progress = install.cli("keys", "retire", old)
    assert in_progress.returncode == 1
    assert "1 resumable uploads in progress still use key" in in_progress.stderr
    assert httpx.delete(server.url + upload, headers=tus).status_code == 204

    retired = install.cli("keys", "retire", old)
    assert retired.returncode == 0, retired.stderr
    ring = load_keyring_file(install.keyring)
    assert old not in ring.ids
    with pytest.raises(UnknownKeyId):
        ring.unwrap(old, bytes.fromhex(saved_id), saved_wrapped, WrapDomain.FILE)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for file_id, data in list(files.items())[:50]:
            assert client.get(f"/api/v1/files/{file_id}/content").content == data


def test_export_wipe_import(loaded: tuple[Installation, Server, str, dict[str, bytes]]) -> None:
    install, server, token, files = loaded
    backup = install.root / "keys.backup"
    exported = install.cli("keys", "export", "-o", str(backup), "--passphrase-stdin", stdin="correct horse battery\n")
    assert exported.returncode == 0, exported.stderr
    assert backup.stat().st_mode & 0o777 == 0o600
    assert install.keyring.read_text().split('"key": "')[1][:20] not in backup.read_text()
    server.stop()
    saved = install.keyring.read_bytes()
    install.keyring.unlink()
    refused = subprocess.run([*SEALBOX, "serve", "--port", "1"], env=install.env(), capture_output=True, text=True)
    assert refused.returncode == 78

    wrong = install.cli("keys", "import", str(backup), "--passphrase-stdin", stdin="wrong horse battery\n")
    assert wrong.returncode == 1
    assert "wrong passphrase, or the backup is damaged" in wrong.stderr
    assert not install.keyring.exists()

    restored = install.cli("keys", "import", str(backup), "--passphrase-stdin", stdin="correct horse battery\n")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(install.keyring.read_bytes()) == json.loads(saved)
    assert install.keyring.stat().st_mode & 0o777 == 0o600
    server.start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for file_id, data in files.items():
            assert client.get(f"/api/v1/files/{file_id}/content").content == data

    # Importing into a keyring that holds a different key under the same id is refused.
    clash = json.loads(saved)
    clash["keys"][0]["key"] = Fernet.generate_key().decode()
    other = install.root / "other.json"
    other.write_text(json.dumps(clash))
    other.chmod(0o600)
    env_keyring = {"SEALBOX_KEYRING": str(other)}
    clashing = subprocess.run(
        [*SEALBOX, "keys", "import", str(backup), "--passphrase-stdin"],
        env={**install.env(), **env_keyring}, input="correct horse battery\n", capture_output=True, text=True,
    )  # fmt: skip
    assert clashing.returncode == 1
    assert "differs from the key with that id here" in clashing.stderr


def test_two_servers_pick_up_a_rotation_without_restart(
    loaded: tuple[Installation, Server, str, dict[str, bytes]],
) -> None:
    install, first, token, _ = loaded
    second = Server(install).start()
    try:
        assert install.cli("keys", "rotate").returncode == 0
        new = primary(install)
        data = os.urandom(70_000)
        with (
            httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {token}"}) as a,
            httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {token}"}) as b,
        ):
            created = a.post("/api/v1/files", headers=named("after-rotate"), content=data).json()["id"]
            assert rows(install)[created.replace("-", "")][0] == new
            assert b.get(f"/api/v1/files/{created}/content").content == data
            again = b.post("/api/v1/files", headers=named("after-rotate-2"), content=data).json()["id"]
            assert rows(install)[again.replace("-", "")][0] == new
            assert a.get(f"/api/v1/files/{again}/content").content == data
    finally:
        second.stop()


def test_key_commands_refuse_keys_from_the_environment(
    loaded: tuple[Installation, Server, str, dict[str, bytes]],
) -> None:
    install = loaded[0]
    key = load_keyring_file(install.keyring).primary
    env = {**install.env(), "SEALBOX_MASTER_KEYS": f"{key.id}:{key.key}"}
    before = install.keyring.read_bytes()
    result = subprocess.run([*SEALBOX, "keys", "rotate"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "come from SEALBOX_MASTER_KEYS" in result.stderr
    assert install.keyring.read_bytes() == before


def test_status_reports_keys_that_files_need_but_the_keyring_lacks(
    loaded: tuple[Installation, Server, str, dict[str, bytes]],
) -> None:
    install = loaded[0]
    saved = install.keyring.read_bytes()
    ring = load_keyring_file(install.keyring)
    try:
        install.keyring.unlink()
        install.keyring.write_text(Keyring([new_master_key("stranger")]).to_json())
        install.keyring.chmod(0o600)
        status = install.cli("keys", "status")
        assert status.returncode == 78
        assert "keys used by stored data but missing from the keyring:" in status.stderr
        assert f"{ring.primary.id} (" in status.stderr
    finally:
        install.keyring.unlink()
        install.keyring.write_bytes(saved)
        install.keyring.chmod(0o600)
