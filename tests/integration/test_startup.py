"""Promise 3: keys are created once, survive restarts, and a server without the right
keys refuses to start, says why, and generates nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from sealbox.crypto.keys import Keyring, new_master_key
from tests.integration.server import SEALBOX, Installation, Server, login, named


def serve_once(install: Installation, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``sealbox serve`` expecting it to refuse (it exits before listening)."""
    return subprocess.run(
        [*SEALBOX, "serve", "--port", "1"],
        env={**install.env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Installation, dict[str, bytes], str]:
    """An installation holding three files, with its server stopped."""
    install = Installation(tmp_path_factory.mktemp("restart"))
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    files = {}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for size in (0, 70_000, 1 << 20):
            data = os.urandom(size)
            files[client.post("/api/v1/files", headers=named(f"{size}.bin"), content=data).json()["id"]] = data
    server.stop()
    return install, files, server.admin_password


def test_first_start_creates_a_private_keyring_and_prints_the_admin_password_once(
    populated: tuple[Installation, dict[str, bytes], str],
) -> None:
    install, _, password = populated
    assert install.keyring.stat().st_mode & 0o777 == 0o600
    assert install.data_dir.stat().st_mode & 0o777 == 0o700
    for path in install.data_dir.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path
    first_output = next(install.root.glob("server-*.out")).read_text()
    assert "BACK UP THE KEYRING" in first_output
    assert password in first_output
    keyring_before = install.keyring.read_bytes()
    server = Server(install).start()
    try:
        assert server.admin_password is None
        assert "admin password" not in (install.root / f"server-{server.port}.out").read_text()
    finally:
        server.stop()
    assert install.keyring.read_bytes() == keyring_before
    assert password not in server.log.read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_files_survive_a_restart(populated: tuple[Installation, dict[str, bytes], str], workers: int) -> None:
    install, files, password = populated
    server = Server(install, workers=workers).start()
    try:
        token = login(server.url, "admin", password)
        pids = server.worker_pids()
        assert len(pids) == workers
        before = {pid: _read_bytes(pid) for pid in pids}
        for _ in range(10 * workers):
            for file_id, data in files.items():
                # A new connection each time, so the kernel spreads them over the workers.
                response = httpx.get(
                    f"{server.url}/api/v1/files/{file_id}/content", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200
                assert response.content == data
        served = [pid for pid in pids if _read_bytes(pid) - before[pid] > (1 << 20)]
        assert sorted(served) == sorted(pids), "every worker served downloads"
    finally:
        server.stop()


def _read_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.fixture
def keyring_backup(populated: tuple[Installation, dict[str, bytes], str]) -> Iterator[tuple[Installation, bytes]]:
    install = populated[0]
    saved = install.keyring.read_bytes()
    yield install, saved
    install.keyring.unlink(missing_ok=True)
    install.keyring.write_bytes(saved)
    install.keyring.chmod(0o600)


def _keys_in(install: Installation) -> list[Path]:
    return [p for p in install.root.rglob("*") if p.is_file() and b"sealbox-keyring" in p.read_bytes()]


def test_refuses_to_start_without_its_keyring(keyring_backup: tuple[Installation, bytes]) -> None:
    install, _ = keyring_backup
    install.keyring.unlink()
    result = serve_once(install)
    assert result.returncode == 78
    assert "is missing" in result.stderr
    assert "Restore the keyring" in result.stderr
    assert not install.keyring.exists()
    assert _keys_in(install) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text("{not json"), "malformed"),
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "malformed"),
        (lambda p: p.chmod(0o644), "chmod 600"),
        (lambda p: p.chmod(0o640), "chmod 600"),
    ],
    ids=["garbage", "truncated", "mode-0644", "mode-0640"],
)
def test_refuses_a_damaged_or_exposed_keyring(
    keyring_backup: tuple[Installation, bytes], damage: object, message: str
) -> None:
    install, _ = keyring_backup
    damage(install.keyring)  # type: ignore[operator]
    after_damage = install.keyring.read_bytes()
    result = serve_once(install)
    assert result.returncode == 78
    assert message in result.stderr
    assert "No key was generated" in result.stderr
    assert install.keyring.read_bytes() == after_damage


def test_refuses_a_keyring_without_the_keys_files_reference(keyring_backup: tuple[Installation, bytes]) -> None:
    install, saved = keyring_backup
    old_id = json.loads(saved)["keys"][0]["id"]
    install.keyring.unlink()
    install.keyring.write_text(Keyring([new_master_key("unrelated")]).to_json())
    install.keyring.chmod(0o600)
    replaced = install.keyring.read_bytes()
    result = serve_once(install)
    assert result.returncode == 78
    assert old_id in result.stderr
    assert install.keyring.read_bytes() == replaced
    with_env = serve_once(install, SEALBOX_MASTER_KEYS=f"other:{new_master_key().key}")
    assert with_env.returncode == 78
    assert old_id in with_env.stderr


def test_master_keys_from_the_environment(
    keyring_backup: tuple[Installation, bytes], populated: tuple[Installation, dict[str, bytes], str]
) -> None:
    install, saved = keyring_backup
    _, files, password = populated
    key = json.loads(saved)["keys"][0]
    install.keyring.unlink()
    server = Server(Installation(install.root, {"SEALBOX_MASTER_KEYS": f"{key['id']}:{key['key']}"})).start()
    try:
        token = login(server.url, "admin", password)
        file_id, data = next(iter(files.items()))
        got = httpx.get(f"{server.url}/api/v1/files/{file_id}/content", headers={"Authorization": f"Bearer {token}"})
        assert got.content == data
    finally:
        server.stop()
    assert not install.keyring.exists()


def test_a_keyring_inside_the_blob_directory_is_refused(tmp_path: Path) -> None:
    install = Installation(tmp_path)
    result = serve_once(install, SEALBOX_KEYRING=str(install.data_dir / "blobs" / "keyring.json"))
    assert result.returncode == 78
    assert "must not be inside the blob directory" in result.stderr
    assert _keys_in(install) == []


def test_init_and_db_upgrade_commands(tmp_path: Path) -> None:
    install = Installation(tmp_path)
    first = install.cli("init")
    assert first.returncode == 0, first.stderr
    assert "admin password:" in first.stdout
    again = install.cli("init")
    assert again.returncode == 0
    assert "already initialised" in again.stderr
    assert "admin password" not in again.stdout
    assert install.cli("db", "upgrade").returncode == 0
    added = install.cli("user", "add", "carol", "--admin", "--password-stdin", stdin="carol-password\n")
    assert added.returncode == 0, added.stderr
    duplicate = install.cli("user", "add", "carol", "--password-stdin", stdin="carol-password\n")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    short = install.cli("user", "add", "dave", "--password-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "8 to 1024" in short.stderr


def test_user_add_refuses_an_uninitialised_directory(tmp_path: Path) -> None:
    install = Installation(tmp_path)
    result = install.cli("user", "add", "erin", "--password-stdin", stdin="erin-password\n")
    assert result.returncode == 78
    assert "sealbox init" in result.stderr
    shutil.rmtree(install.data_dir, ignore_errors=True)


def test_a_keyring_inside_the_data_directory_starts_with_a_warning(tmp_path: Path) -> None:
    install = Installation(tmp_path)
    inside = install.data_dir / "keyring.json"
    result = install.cli("init", "--keyring", str(inside))
    assert result.returncode == 0, result.stderr
    assert inside.exists()
    server = Server(Installation(tmp_path, {"SEALBOX_KEYRING": str(inside)})).start()
    server.stop()
    assert "is inside the data directory" in server.log.read_text()
