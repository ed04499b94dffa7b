"""Real tus clients against a real server: tuspy and tus-js-client (under Node), each
uploading 50 MB, interrupted midway and resumed; and a server killed with SIGKILL in
the middle of a PATCH, restarted, and resumed, with no plaintext left anywhere."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx2 as httpx
import pytest
from tusclient import client as tus_client
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

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


def file_ids(account: Account) -> list[str]:
    return [f["id"] for f in account.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]]


def test_tuspy_run_again_after_completion_uploads_nothing(
    server: Server, alice: Account, tmp_path: Path, install: Installation
) -> None:
    """tuspy with a URL store, run twice on the same file: the second run asks the
    server, hears the upload is complete, and sends no byte and creates no file."""
    path = tmp_path / "again.bin"
    path.write_bytes(os.urandom(3_000_000))
    storage = FileStorage(str(tmp_path / "tuspy-urls.json"))

    def uploader() -> Uploader:
        client = tus_client.TusClient(
            f"{server.url}/api/v1/uploads/", headers={"Authorization": f"Bearer {alice.token}"}
        )
        return client.uploader(str(path), chunk_size=1 << 20, store_url=True, url_storage=storage)

    first = uploader()
    first.upload()
    file_id = first.request.response_headers["sealbox-file-id"]
    before, uploads = file_ids(alice), install.sql("SELECT count(*) FROM uploads")
    second = uploader()
    assert second.url == first.url  # found by the file's fingerprint
    assert second.offset == path.stat().st_size  # the server says: complete
    second.upload()
    assert second.request is None  # not one PATCH
    assert file_ids(alice) == before  # no duplicate
    assert install.sql("SELECT count(*) FROM uploads") == uploads  # and no new upload
    assert downloaded(alice, file_id) == path.read_bytes()


def test_tus_js_client_run_again_after_completion_uploads_nothing(
    server: Server, alice: Account, tmp_path: Path, node_client: Path
) -> None:
    """tus-js-client with a URL store (fingerprints kept after success), run twice: the
    second run sends one HEAD, hears the upload is complete and finishes with the same
    file; no PATCH, no POST, no duplicate."""
    path = tmp_path / "again-js.bin"
    path.write_bytes(os.urandom(3_000_000))
    store = tmp_path / "js-urls.json"

    def run() -> dict[str, Any]:
        done = subprocess.run(
            ["node", str(node_client), f"{server.url}/api/v1/uploads/", alice.token, str(path), f"store:{store}"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return cast(dict[str, Any], json.loads(done.stdout))

    first = run()
    assert first["methods"][0] == "POST"
    before = file_ids(alice)
    second = run()
    assert second["methods"] == ["HEAD"]
    assert second["url"] == first["url"]
    assert second["fileId"] == first["fileId"]
    assert file_ids(alice) == before
    assert downloaded(alice, second["fileId"]) == path.read_bytes()


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
