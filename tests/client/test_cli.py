"""The client commands of ``sealbox`` as a user runs them, against a real server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from sealbox.client._ops import CHUNK
from tests.integration.server import SEALBOX, Installation, Server, login
from tests.proxy import Proxy

SIZE = 50_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install = Installation(tmp_path_factory.mktemp("cli"))
    server = Server(install).start()
    assert install.cli("user", "add", "bob", "--password-stdin", stdin="bob-password-1\n").returncode == 0
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def env(home: Path, profile: str = "default") -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")},
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "SEALBOX_PROFILE": profile,
    }


def sealbox(
    home: Path, *args: str, stdin: str | None = None, profile: str = "default"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALBOX, *args], env=env(home, profile), cwd=home, input=stdin, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def sign_in(home: Path, url: str, user: str, password: str, profile: str = "default") -> None:
    done = sealbox(home, "login", url, "-u", user, "--password-stdin", stdin=password + "\n", profile=profile)
    assert done.returncode == 0, done.stderr


def test_login_keeps_a_private_token_per_profile(server: Server, home: Path) -> None:
    sign_in(home, server.url, "admin", server.admin_password or "")
    sign_in(home, server.url, "bob", "bob-password-1", profile="bob")
    for profile, name in (("default", "admin"), ("bob", "bob")):
        saved = home / "config" / "sealbox" / "profiles" / f"{profile}.json"
        assert saved.stat().st_mode & 0o777 == 0o600
        assert json.loads(sealbox(home, "whoami", "--json", profile=profile).stdout)["username"] == name


def test_errors_are_one_line_with_distinct_exit_codes(server: Server, home: Path) -> None:
    nobody = sealbox(home, "ls", profile="nobody")
    assert (nobody.returncode, nobody.stderr.strip()) == (
        4,
        "error: not signed in (profile 'nobody'): run 'sealbox login URL' first",
    )
    wrong = sealbox(home, "login", server.url, "-u", "admin", "--password-stdin", stdin="wrong-password\n")
    assert (wrong.returncode, wrong.stderr.strip()) == (4, "error: wrong user name or password")
    sign_in(home, server.url, "admin", server.admin_password or "")
    missing = sealbox(home, "download", "00000000-0000-0000-0000-000000000000")
    assert (missing.returncode, missing.stderr.strip()) == (3, "error: file not found")
    saved = home / "config" / "sealbox" / "profiles" / "default.json"
    profile = json.loads(saved.read_text())
    saved.write_text(json.dumps({**profile, "token": "sbx_revoked"}))
    revoked = sealbox(home, "ls")
    assert (revoked.returncode, revoked.stderr.strip()) == (4, "error: invalid or expired token")
    saved.write_text(json.dumps({**profile, "url": "http://127.0.0.1:9"}))
    down = subprocess.run(
        [*SEALBOX, "whoami"],
        env={**env(home), "SEALBOX_CLIENT_BACKOFF": "0.01"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 5
    assert down.stderr.startswith("error: cannot reach the server")
    assert len(down.stderr.strip().splitlines()) == 1
    escape = sealbox(home, "ls", profile="../../etc/x")
    assert (escape.returncode, escape.stderr.strip()) == (
        2,
        "error: a profile name is 1-64 letters, digits or '_.-': not '../../etc/x'",
    )
    for done in (nobody, wrong, missing, revoked, down, escape):
        assert "Traceback" not in done.stderr


def _wait_for(check: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_an_upload_cut_midway_resumes_when_run_again(server: Server, home: Path) -> None:
    sign_in(home, server.url, "admin", server.admin_password or "")
    data = os.urandom(CHUNK + 30_000_000)  # one whole part and about 1.5 s more
    (home / "big.bin").write_bytes(data)
    slow = Proxy(server.port, rate=20_000_000)  # about 5 s for the whole file
    try:
        saved = home / "config" / "sealbox" / "profiles" / "default.json"
        profile = json.loads(saved.read_text())
        saved.write_text(json.dumps({**profile, "url": slow.url}))
        first = subprocess.Popen([*SEALBOX, "upload", "big.bin"], env=env(home), cwd=home, start_new_session=True)
        state = home / "state" / "sealbox" / "uploads.json"
        token = login(server.url, "admin", server.admin_password or "")

        def stored() -> int:
            if not state.exists() or not json.loads(state.read_text() or "{}"):
                return 0
            url = server.url + next(iter(json.loads(state.read_text()).values()))  # a path on the server
            head = httpx.head(url, headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"})
            return int(head.headers.get("upload-offset", 0))

        _wait_for(lambda: stored() >= CHUNK)
        os.killpg(first.pid, signal.SIGKILL)  # the connection dies with the process
        first.wait()
        again = sealbox(home, "upload", "big.bin", "--json")  # the same command, through the same network
    finally:
        slow.close()
        saved.write_text(json.dumps(profile))
    assert again.returncode == 0, again.stderr
    assert "resuming at byte" in again.stderr
    file_id = json.loads(again.stdout)[0]["id"]
    assert sealbox(home, "download", file_id, "-o", "back.bin").returncode == 0
    assert (home / "back.bin").read_bytes() == data


def test_a_download_cut_midway_resumes_when_run_again(server: Server, home: Path) -> None:
    sign_in(home, server.url, "admin", server.admin_password or "")
    data = os.urandom(SIZE)
    (home / "src.bin").write_bytes(data)
    file_id = json.loads(sealbox(home, "upload", "src.bin", "--json").stdout)[0]["id"]
    slow = Proxy(server.port, rate=20_000_000)
    saved = home / "config" / "sealbox" / "profiles" / "default.json"
    profile = json.loads(saved.read_text())
    try:
        saved.write_text(json.dumps({**profile, "url": slow.url}))
        first = subprocess.Popen(
            [*SEALBOX, "download", file_id, "-o", "out.bin"], env=env(home), cwd=home, start_new_session=True
        )
        part = home / "out.bin.part"
        _wait_for(lambda: part.exists() and part.stat().st_size >= 10_000_000)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        slow.close()
        saved.write_text(json.dumps(profile))
    partial = (home / "out.bin.part").stat().st_size
    assert 0 < partial < SIZE
    assert not (home / "out.bin").exists()
    again = sealbox(home, "download", file_id, "-o", "out.bin")
    assert again.returncode == 0, again.stderr
    assert f"resuming at byte {partial}" in again.stderr
    assert (home / "out.bin").read_bytes() == data
    assert not (home / "out.bin.part").exists()


def test_share_flow_between_two_profiles(server: Server, home: Path) -> None:
    sign_in(home, server.url, "admin", server.admin_password or "")
    data = os.urandom(2_000_000)
    (home / "deal.pdf").write_bytes(data)
    created = subprocess.run(
        [*SEALBOX, "upload", "deal.pdf", "--share", "--limit", "2", "--password", "--json"],
        env=env(home), cwd=home, input="deal password 1\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    link = json.loads(created.stdout)[0]["link"]
    assert link.startswith(f"{server.url}/s/")
    sign_in(home, server.url, "bob", "bob-password-1", profile="bob")
    wrong = sealbox(home, "download", link, "--password-stdin", "-o", "nope.pdf", stdin="guess\n", profile="bob")
    assert (wrong.returncode, wrong.stderr.strip()) == (4, "error: wrong password")
    exists = sealbox(home, "download", link, "--password-stdin", stdin="deal password 1\n", profile="bob")
    assert (exists.returncode, exists.stderr.strip()) == (
        1,
        "error: deal.pdf exists already: choose another name with -o, or --force",
    )
    right = sealbox(
        home, "download", link, "--password-stdin", "-o", "bob.pdf", stdin="deal password 1\n", profile="bob"
    )
    assert right.returncode == 0, right.stderr
    assert (home / "bob.pdf").read_bytes() == data
    links = json.loads(sealbox(home, "share", "list", "--json").stdout)
    mine = next(item for item in links if item["downloads"] == 1)
    assert mine["downloads"] == 1
    assert sealbox(home, "share", "revoke", mine["id"]).returncode == 0
    gone = sealbox(home, "download", link, "--password-stdin", "-o", "late.pdf", stdin="deal password 1\n")
    assert (gone.returncode, gone.stderr.strip()) == (6, "error: this link has been revoked")


# Names people chose (anonymous uploaders among them) are printed as text, never read as
# Rich markup, emoji codes or styles.
# File names cannot hold "/" (so no closing tag), but an opening tag alone styles the rest.
NAMES = ["[white on white]secret", "[link=https:evil.test]click :warning:", "[bold red]x[bold red"]
ANSI = re.compile(r"\x1b\[")


def test_names_with_markup_are_printed_literally(server: Server, home: Path) -> None:
    sign_in(home, server.url, "admin", server.admin_password or "")
    for name in NAMES:
        (home / name).write_bytes(b"hidden?")
        uploaded = sealbox(home, "upload", name)
        assert uploaded.returncode == 0, uploaded.stderr
        assert name in uploaded.stdout
    listed = sealbox(home, "ls")
    assert listed.returncode == 0, listed.stderr
    for name in NAMES:
        assert f"  {name}\n" in listed.stdout
    assert not ANSI.search(listed.stdout)
    assert "⚠" not in listed.stdout


def test_messages_are_printed_literally(server: Server, home: Path) -> None:
    refused = sealbox(home, "ls", profile="[white on white]secret[/]")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "error: a profile name is 1-64 letters, digits or '_.-': not '[white on white]secret[/]'"
    )
    assert not ANSI.search(refused.stderr)
