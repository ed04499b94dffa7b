"""Real tus clients against a real server: tuspy and tus-js-client (under Node), each
uploading 50 MB, interrupted midway and resumed; and a server killed with SIGKILL in
the middle of a PATCH, restarted, and resumed, with no plaintext left anywhere."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from tusclient import client as tus_client

from tests.integration.conftest import Account
from tests.integration.server import Installation, Server, login
from tests.integration.test_at_rest import canary_content, scan

SIZE = 50_000_000
INTEROP = Path(__file__).parents[1] / "interop"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tus") / "fifty.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def downloaded(account: Account, file_id: str) -> bytes:
    response = account.client.get(f"/api/v1/files/{file_id}/content")
    assert response.status_code == 200
    return response.content


def test_tuspy_interrupted_and_resumed(server: Server, alice: Account, data: Path) -> None:
    client = tus_client.TusClient(f"{server.url}/api/v1/uploads/", headers={"Authorization": f"Bearer {alice.token}"})
    first = client.uploader(str(data), chunk_size=8 << 20, metadata={"filename": "tuspy.bin"}, upload_checksum=True)
    first.upload(stop_at=SIZE // 2)
    assert first.url is not None
    assert SIZE // 2 <= first.offset < SIZE
    # A new uploader, as after a restart of the client: it asks the server where to go on.
    second = client.uploader(str(data), url=first.url, chunk_size=8 << 20, upload_checksum=True)
    assert second.offset == first.offset
    second.upload()
    assert second.offset == SIZE
    file_id = second.request.response_headers["sealbox-file-id"]
    assert downloaded(alice, file_id) == data.read_bytes()


@pytest.fixture(scope="module")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed for the tus-js-client interop test")
    if not (INTEROP / "node_modules" / "tus-js-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True, timeout=300)
    return INTEROP / "upload.mjs"


def test_tus_js_client_interrupted_and_resumed(server: Server, alice: Account, data: Path, node_client: Path) -> None:
    endpoint = f"{server.url}/api/v1/uploads/"

    def node(mode: str) -> str:
        done = subprocess.run(
            ["node", str(node_client), endpoint, alice.token, str(data), mode],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    url = node("stop")
    offset = int(
        httpx.head(url, headers={"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {alice.token}"}).headers[
            "upload-offset"
        ]
    )
    assert 0 < offset < SIZE
    file_id = node(url)
    assert downloaded(alice, file_id) == data.read_bytes()


@pytest.fixture
def lone_server(tmp_path: Path) -> Iterator[tuple[Installation, Server]]:
    install = Installation(tmp_path / "killed")
    server = Server(install).start()
    yield install, server
    server.stop()


def test_kill_9_during_a_patch_then_resume(lone_server: tuple[Installation, Server]) -> None:
    install, server = lone_server
    assert server.admin_password is not None
    token = login(server.url, "admin", server.admin_password)
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    content = canary_content(SIZE)
    created = httpx.post(
        f"{server.url}/api/v1/uploads/",
        headers={**auth, "Upload-Length": str(SIZE), "Upload-Metadata": "filename a2lsbGVkLmJpbg=="},
    )
    upload_path = created.headers["location"]
    first = httpx.patch(
        server.url + upload_path,
        content=content[: 10 << 20],
        headers={**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert first.status_code == 204
    sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for start in range(10 << 20, SIZE, 1 << 20):
            yield content[start : start + (1 << 20)]
            if start >= 20 << 20:
                sent.set()
                time.sleep(0.05)

    def patch_until_killed() -> None:
        with contextlib.suppress(httpx.TransportError):
            httpx.patch(
                server.url + upload_path,
                content=slow_body(),
                headers={**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(10 << 20)},
                timeout=60,
            )

    thread = threading.Thread(target=patch_until_killed)
    thread.start()
    assert sent.wait(30)
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    thread.join(30)
    assert scan(install, server) == []  # the interrupted part is ciphertext too
    restarted = Server(install, port=server.port).start()
    try:
        token = login(restarted.url, "admin", server.admin_password)
        auth["Authorization"] = f"Bearer {token}"
        offset = int(httpx.head(restarted.url + upload_path, headers=auth).headers["upload-offset"])
        assert offset == 10 << 20  # the last durable offset
        client = tus_client.TusClient(f"{restarted.url}/api/v1/uploads/", headers={"Authorization": f"Bearer {token}"})
        uploader = client.uploader(
            file_stream=io.BytesIO(content), url=restarted.url + upload_path, chunk_size=16 << 20
        )
        uploader.upload()
        file_id = uploader.request.response_headers["sealbox-file-id"]
        got = httpx.get(f"{restarted.url}/api/v1/files/{file_id}/content", headers=auth, timeout=60)
        assert got.content == content
        assert scan(install, restarted) == []
    finally:
        restarted.stop()
