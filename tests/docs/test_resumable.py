"""docs/resumable.md: its shell and Python examples run against a real server and resume."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, login

DOC = Path(__file__).parents[2] / "docs" / "resumable.md"


def block(marker: str, language: str) -> str:
    match = re.search(rf"<!-- {marker}:.*?-->\n```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert match, f"docs/resumable.md lost its {marker} block"
    return match.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(Installation(tmp_path_factory.mktemp("resumable"))).start()
    yield server
    server.stop()


def files(server: Server, token: str) -> dict[str, str]:
    items = httpx.get(f"{server.url}/api/v1/files", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    return {item["id"]: item["name"] for item in items}


def test_shell_example_resumes(server: Server, tmp_path: Path) -> None:
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    data = os.urandom(3_000_000)
    (tmp_path / "big.iso").write_bytes(data)
    script = block("resumable-shell", "sh").replace("URL=http://127.0.0.1:8000", f"URL={server.url}")
    create, marker, send = script.partition("# Where does the server stand?")
    send = marker + send
    # An interrupted first attempt: the upload is created and a first part stored by hand.
    env = {**os.environ, "TOKEN": token}
    head = create + 'echo "$UPLOAD"'
    upload = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", head], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    first = httpx.patch(
        upload,
        content=data[:1_000_000],
        headers={**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert first.status_code == 204
    resumed = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            f"UPLOAD={upload}\nURL={server.url}\nAUTH='Authorization: Bearer {token}'\nTUS='Tus-Resumable: 1.0.0'\n"
            + send,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    match = re.search(r"sealbox-file-id: (\S+)", resumed.stdout, re.IGNORECASE)
    assert match, resumed.stdout
    got = httpx.get(f"{server.url}/api/v1/files/{match.group(1)}/content", headers=auth)
    assert got.content == data
    assert files(server, token)[match.group(1)] == "big.iso"


def test_python_example_resumes(server: Server, tmp_path: Path) -> None:
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    data = os.urandom(20_000_000)
    (tmp_path / "big.iso").write_bytes(data)
    program = f"URL = {server.url!r}\nTOKEN = {token!r}\n" + block("resumable-python", "python")
    # The first run stops after two parts (as if the laptop went to sleep); the second resumes.
    stopped = program.replace("uploader.upload()", "uploader.upload(stop_at=16 * 1024 * 1024)").replace(
        'print(uploader.request.response_headers["sealbox-file-id"])', "print(uploader.url)"
    )
    first = subprocess.run([sys.executable, "-c", stopped], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    assert httpx.head(first.stdout.strip(), headers=auth).headers["upload-offset"] == str(16 << 20)
    second = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    file_id = second.stdout.strip()
    assert httpx.get(f"{server.url}/api/v1/files/{file_id}/content", headers=auth).content == data
    assert list(files(server, token).values()).count("big.iso") >= 1
