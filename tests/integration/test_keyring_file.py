"""The keyring file cannot be swapped under a server: a symbolic link, a file of another
owner, a directory others may write and a malformed file are refused at start and on
reload; a refused reload is logged once, and shown by /readyz and ``keys status``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import SEALBOX, Installation, Server, login, named

Damage = Callable[[Path], None]


def symlink(path: Path) -> None:
    real = path.with_name("real-keyring.json")
    path.rename(real)
    path.symlink_to(real)


def other_owner(path: Path) -> None:
    os.chown(path, 65534, 65534)


def open_directory(path: Path) -> None:
    path.parent.chmod(0o777)


def bad_json(path: Path) -> None:
    tmp = path.with_name("new.json")
    tmp.write_text('{"format": "sealbox-keyring", "keys": [')
    tmp.chmod(0o600)
    tmp.replace(path)


CASES: dict[str, tuple[Damage, str]] = {
    "symlink": (symlink, "is a symbolic link"),
    "other-owner": (other_owner, "belongs to another user (uid 65534)"),
    "open-directory": (open_directory, "which other users may write (mode 0777)"),
    "bad-json": (bad_json, "is malformed"),
}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
PARAMS = [pytest.param(name, marks=[needs_root] if name == "other-owner" else []) for name in CASES]


def restore(install: Installation, saved: bytes) -> None:
    install.keyring.parent.chmod(0o700)
    install.keyring.unlink(missing_ok=True)
    install.keyring.with_name("real-keyring.json").unlink(missing_ok=True)
    install.keyring.write_bytes(saved)
    install.keyring.chmod(0o600)


def secrets_of(saved: bytes) -> list[str]:
    """Every master key, as written and as raw bytes in hex and base64."""
    forms = []
    for key in json.loads(saved)["keys"]:
        raw = base64.urlsafe_b64decode(key["key"])
        forms += [key["key"], raw.hex(), base64.b64encode(raw).decode(), key["key"].rstrip("=")[:30]]
    return forms


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Installation, Server, str, bytes]]:
    install = Installation(tmp_path_factory.mktemp("keyring-file"))
    server = Server(install).start()
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    try:
        yield install, server, token, install.keyring.read_bytes()
    finally:
        server.stop()


@pytest.mark.parametrize("case", PARAMS)
def test_an_unsafe_keyring_is_refused_at_start(running: tuple[Installation, Server, str, bytes], case: str) -> None:
    install, server, _, saved = running
    damage, message = CASES[case]
    server.stop()
    try:
        damage(install.keyring)
        refused = subprocess.run(
            [*SEALBOX, "serve", "--port", "1"], env=install.env(), capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 78
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        restore(install, saved)
        server.start()


@pytest.mark.parametrize("case", PARAMS)
def test_an_unsafe_keyring_is_refused_on_reload_logged_once_and_shown(
    running: tuple[Installation, Server, str, bytes], case: str
) -> None:
    install, server, token, saved = running
    damage, message = CASES[case]
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    logged_before = server.log.read_text().count('"keyring.refused"')
    try:
        damage(install.keyring)
        for _ in range(3):
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503
            assert message in ready.json()["detail"]
        # The server keeps its own keys: files still go in and come out.
        data = os.urandom(1000)
        up = httpx.post(f"{server.url}/api/v1/files", content=data, headers={**auth, **named("x")})
        assert up.status_code == 201
        down = httpx.get(f"{server.url}/api/v1/files/{up.json()['id']}/content", headers=auth)
        assert down.content == data
        assert server.log.read_text().count('"keyring.refused"') == logged_before + 1, "logged once per change"
        status = install.cli("keys", "status")
        if case != "other-owner":  # root's key commands trust the file's owner (docs/keys.md)
            assert status.returncode == 78
            assert message in status.stderr
            assert "report not ready" in status.stderr
    finally:
        restore(install, saved)
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    assert server.log.read_text().count('"keyring.reloaded"') >= 1
    log = server.log.read_text()
    assert not [s for s in secrets_of(saved) if s in log], "no key in any log line"


def test_importing_a_malformed_backup_fails_with_one_line_and_changes_nothing(
    running: tuple[Installation, Server, str, bytes],
) -> None:
    install, _, _, saved = running
    good = install.root / "good.backup"
    made = install.cli("keys", "export", "-o", str(good), "--passphrase-stdin", stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    doc = json.loads(good.read_bytes())
    bad = {
        "truncated": good.read_bytes()[:100],
        "oversized": b" " * (2 << 20),
        "negative n": json.dumps({**doc, "kdf": {**doc["kdf"], "n": -1}}).encode(),
        "2 GiB scrypt": json.dumps({**doc, "kdf": {**doc["kdf"], "n": 2**20, "r": 16}}).encode(),
        "short salt": json.dumps({**doc, "kdf": {**doc["kdf"], "salt": "AAAA"}}).encode(),
        "long nonce": json.dumps({**doc, "nonce": base64.b64encode(b"n" * 24).decode()}).encode(),
        "not a backup": b'{"hello": "world"}',
    }
    for name, data in bad.items():
        path = install.root / f"{name}.backup"
        path.write_bytes(data)
        result = install.cli("keys", "import", str(path), "--passphrase-stdin", stdin="correct horse battery\n")
        assert result.returncode == 1, name
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert result.stderr.startswith("error: "), (name, result.stderr)
        assert "Traceback" not in result.stderr
        assert install.keyring.read_bytes() == saved, name
