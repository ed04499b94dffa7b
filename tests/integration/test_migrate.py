"""`sealbox storage migrate`: local blobs to S3, interrupted and resumed, then served from S3."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from tests.integration.server import SEALBOX, Installation, S3Blobs, Server, login, named, s3_env
from tests.services import Seaweed


def test_migrate_local_to_s3_interrupted_and_resumed(tmp_path: Path, seaweed: Seaweed) -> None:
    bucket = seaweed.create_bucket()
    on_bucket = s3_env(seaweed, bucket)
    local = Installation(tmp_path, {**on_bucket, "SEALBOX_STORAGE": "local"})
    server = Server(local).start()
    assert server.admin_password is not None
    password = server.admin_password
    token = login(server.url, "admin", password)
    files = {}
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(50):
            data = os.urandom(1_500_000 + i * 1000)
            files[client.post("/api/v1/files", headers=named(f"m{i}.bin"), content=data).json()["id"]] = data
    server.stop()

    already = local.cli("storage", "migrate", "--to", "local")
    assert already.returncode == 1
    assert "already configured on local" in already.stderr

    first = subprocess.Popen(
        [*SEALBOX, "storage", "migrate", "--to", "s3"], env=local.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while len(seaweed.objects(bucket)) < 5 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    copied_before = len(seaweed.objects(bucket))
    assert 5 <= copied_before < 50, "the first run was interrupted midway"

    second = local.cli("storage", "migrate", "--to", "s3")
    assert second.returncode == 0, second.stderr
    match = re.search(r"(\d+) blobs copied and verified, (\d+) already there", second.stderr)
    assert match, second.stderr
    assert int(match.group(1)) + int(match.group(2)) == 50
    assert int(match.group(2)) >= copied_before
    assert len(seaweed.objects(bucket)) == 50

    on_s3 = Server(Installation(tmp_path, on_bucket)).start()
    try:
        token = login(on_s3.url, "admin", password)
        with httpx.Client(base_url=on_s3.url, headers={"Authorization": f"Bearer {token}"}) as client:
            for file_id, data in files.items():
                assert client.get(f"/api/v1/files/{file_id}/content").content == data
    finally:
        on_s3.stop()
    third = local.cli("storage", "migrate", "--to", "s3")
    assert "0 blobs copied and verified, 50 already there" in third.stderr


def test_migrate_copies_every_segment_of_a_resumable_upload(tmp_path: Path, seaweed: Seaweed) -> None:
    """A file made of segments moves segment by segment; one segment already in the
    target (an interrupted run) is verified and kept, the others are copied."""
    bucket = seaweed.create_bucket()
    on_bucket = s3_env(seaweed, bucket)
    local = Installation(tmp_path, {**on_bucket, "SEALBOX_STORAGE": "local"})
    server = Server(local).start()
    assert server.admin_password is not None
    password = server.admin_password
    token = login(server.url, "admin", password)
    tus = {"Tus-Resumable": "1.0.0"}
    parts = [os.urandom(300_000), os.urandom(70_000), os.urandom(5)]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        plain = os.urandom(100_000)
        plain_id = client.post("/api/v1/files", headers=named("p.bin"), content=plain).json()["id"]
        created = client.post("/api/v1/uploads/", headers={**tus, "Upload-Length": str(sum(map(len, parts)))})
        url, offset = created.headers["location"], 0
        for part in parts:
            sent = client.patch(
                url,
                content=part,
                headers={**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
            )
            assert sent.status_code == 204, sent.text
            offset += len(part)
        tus_id = sent.headers["sealbox-file-id"]
    server.stop()
    segments = [str(row[0]) for row in local.sql("SELECT key FROM file_segments ORDER BY seq")]
    assert len(segments) == 3
    # As an interrupted run would have left it: the first segment is already there.
    first_blob = (local.data_dir / "blobs" / segments[0]).read_bytes()
    S3Blobs(seaweed, bucket).write(segments[0], first_blob)

    moved = local.cli("storage", "migrate", "--to", "s3")
    assert moved.returncode == 0, moved.stderr
    assert "2 blobs copied and verified, 0 already there" in moved.stderr
    assert set(seaweed.objects(bucket)) >= set(segments)

    on_s3 = Server(Installation(tmp_path, on_bucket)).start()
    try:
        token = login(on_s3.url, "admin", password)
        with httpx.Client(base_url=on_s3.url, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get(f"/api/v1/files/{tus_id}/content").content == b"".join(parts)
            assert client.get(f"/api/v1/files/{plain_id}/content").content == plain
    finally:
        on_s3.stop()
    again = local.cli("storage", "migrate", "--to", "s3")
    assert "0 blobs copied and verified, 2 already there" in again.stderr


def test_migrate_copies_the_parts_of_unfinished_uploads(tmp_path: Path, seaweed: Seaweed) -> None:
    """An upload in progress when the blobs move keeps its parts: sent to the end on the
    new store, its file is complete (its earlier parts are its segments), never a listed
    file whose segments were left behind in the old store."""
    bucket = seaweed.create_bucket()
    on_bucket = s3_env(seaweed, bucket)
    local = Installation(tmp_path, {**on_bucket, "SEALBOX_STORAGE": "local"})
    server = Server(local).start()
    assert server.admin_password is not None
    password = server.admin_password
    tus = {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"}
    parts = [os.urandom(300_000), os.urandom(70_000)]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {login(server.url, 'admin', password)}"}
    ) as client:
        created = client.post("/api/v1/uploads/", headers={**tus, "Upload-Length": str(sum(map(len, parts)))})
        url = created.headers["location"]
        sent = client.patch(url, content=parts[0], headers={**tus, "Upload-Offset": "0"})
        assert sent.status_code == 204, sent.text
    server.stop()

    moved = local.cli("storage", "migrate", "--to", "s3")
    assert moved.returncode == 0, moved.stderr

    on_s3 = Server(Installation(tmp_path, on_bucket)).start()
    try:
        token = login(on_s3.url, "admin", password)
        with httpx.Client(base_url=on_s3.url, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.head(url, headers=tus).headers["upload-offset"] == str(len(parts[0]))
            done = client.patch(url, content=parts[1], headers={**tus, "Upload-Offset": str(len(parts[0]))})
            assert done.status_code == 204, done.text
            file_id = done.headers["sealbox-file-id"]
            got = client.get(f"/api/v1/files/{file_id}/content")
            assert got.status_code == 200
            assert got.content == b"".join(parts)
    finally:
        on_s3.stop()
