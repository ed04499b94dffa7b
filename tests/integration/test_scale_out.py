"""Several server processes over one PostgreSQL and one S3 bucket, and outages of the store."""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import SEALBOX, Installation, Server, blob_key, login, named, s3_installation
from tests.services import Postgres, Seaweed


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, seaweed: Seaweed, postgres: Postgres
) -> Iterator[tuple[Server, Server, str]]:
    """Two servers on one database and bucket; the second runs two workers."""
    install = s3_installation(tmp_path_factory.mktemp("pair"), seaweed, postgres)
    first = Server(install).start()
    second = Server(install, workers=2).start()
    assert first.admin_password is not None
    assert second.admin_password is None, "only the first start initialises"
    try:
        yield first, second, login(first.url, "admin", first.admin_password)
    finally:
        first.stop()
        second.stop()


def test_upload_through_one_server_and_use_it_through_the_other(pair: tuple[Server, Server, str]) -> None:
    first, second, token = pair
    data = os.urandom(3 * 65536 + 11)
    with client(first, token) as a, client(second, token) as b:
        created = a.post("/api/v1/files", headers=named("shared.bin"), content=data).json()
        assert b.get(f"/api/v1/files/{created['id']}/content").content == data
        assert (
            b.get(f"/api/v1/files/{created['id']}/content", headers={"Range": "bytes=65530-65541"}).content
            == (data[65530:65542])
        )
        assert created["id"] in [f["id"] for f in b.get("/api/v1/files", params={"limit": 1000}).json()["items"]]
        assert b.delete(f"/api/v1/files/{created['id']}").status_code == 204
        assert a.get(f"/api/v1/files/{created['id']}").status_code == 404


def test_eight_clients_over_two_servers(pair: tuple[Server, Server, str]) -> None:
    first, second, token = pair
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 4096, 65536, 65537, 200_000, 1_000_000, 6_000_000]) for _ in range(200)]
    servers = [first, second]

    def work(i: int) -> tuple[str, bytes]:
        data = os.urandom(sizes[i])
        up, down = servers[i % 2], servers[(i + 1) % 2]
        with client(up, token) as a, client(down, token) as b:
            created = a.post("/api/v1/files", headers=named(f"f{i}.bin"), content=data)
            assert created.status_code == 201, created.text
            file_id = created.json()["id"]
            assert b.get(f"/api/v1/files/{file_id}/content").content == data
        return file_id, data

    with ThreadPoolExecutor(8) as pool:
        uploaded = dict(pool.map(work, range(200)))
    with client(second, token) as b:
        for file_id, data in uploaded.items():
            assert b.get(f"/api/v1/files/{file_id}/content").content == data
        doomed = list(uploaded)[:50]
        for file_id in doomed:
            assert b.delete(f"/api/v1/files/{file_id}").status_code == 204
        listed = set()
        cursor = None
        while True:
            page = b.get("/api/v1/files", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
            listed |= {item["id"] for item in page["items"]}
            if not (cursor := page["next_cursor"]):
                break
    assert set(uploaded) - set(doomed) <= listed
    assert not listed & set(doomed)
    blobs = first.install.blobs.stored()
    assert blobs == {blob_key(file_id) for file_id in listed}, "every object has a row and every row an object"


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[tuple[Server, Seaweed, str]]:
    """A server on its own SeaweedFS, which the tests stop and start."""
    seaweed = Seaweed(tmp_path_factory.mktemp("own-seaweed")).start()
    server = Server(s3_installation(tmp_path_factory.mktemp("outage"), seaweed, postgres)).start()
    assert server.admin_password is not None
    try:
        yield server, seaweed, login(server.url, "admin", server.admin_password)
    finally:
        server.stop()
        seaweed.stop()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert "Traceback" not in response.text
    assert response.json()["code"] == "unavailable"


def test_store_outage_answers_503_and_recovers(outage: tuple[Server, Seaweed, str]) -> None:
    server, seaweed, token = outage
    data = os.urandom(300_000)
    with client(server, token) as c:
        assert c.get("/readyz").json()["status"] == "ready"
        kept = c.post("/api/v1/files", headers=named("before.bin"), content=data).json()["id"]
        seaweed.stop()
        try:
            assert_unavailable(c.get("/readyz"))
            assert c.get("/healthz").status_code == 200
            assert_unavailable(c.post("/api/v1/files", headers=named("during.bin"), content=data))
            assert_unavailable(c.post("/api/v1/files", files={"file": ("during.bin", data, "x/y")}))
            assert_unavailable(c.get(f"/api/v1/files/{kept}/content"))
            names = [item["name"] for item in c.get("/api/v1/files").json()["items"]]
            assert names == ["before.bin"], "nothing half written is listed"
        finally:
            seaweed.start()
        # SeaweedFS answers listings before its volume server is back: wait until reads
        # work again, as a client retrying after Retry-After would.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if c.get("/readyz").status_code == 200 and c.get(f"/api/v1/files/{kept}/content").status_code == 200:
                break
            time.sleep(0.5)
        assert c.get("/readyz").status_code == 200
        assert c.get(f"/api/v1/files/{kept}/content").content == data
        again = c.post("/api/v1/files", headers=named("after.bin"), content=data)
        assert again.status_code == 201
        assert c.get(f"/api/v1/files/{again.json()['id']}/content").content == data
        names = sorted(item["name"] for item in c.get("/api/v1/files").json()["items"])
        assert names == ["after.bin", "before.bin"]


def test_migrations_started_together_take_turns(tmp_path: Path, seaweed: Seaweed, postgres: Postgres) -> None:
    install = s3_installation(tmp_path, seaweed, postgres)
    runs = [
        subprocess.Popen([*SEALBOX, "db", "upgrade"], env=install.env(), stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    assert all(code == 0 for code, _ in outcomes), outcomes
    assert install.cli("init").returncode == 0


def test_database_outage_answers_503_and_recovers(tmp_path_factory: pytest.TempPathFactory) -> None:
    own = Postgres(tmp_path_factory.mktemp("own-postgres")).start()
    install = Installation(tmp_path_factory.mktemp("db-outage"), {"SEALBOX_DATABASE_URL": own.create_database()})
    server = Server(install).start()
    assert server.admin_password is not None
    try:
        token = login(server.url, "admin", server.admin_password)
        with client(server, token) as c:
            kept = c.post("/api/v1/files", headers=named("kept.bin"), content=b"still here").json()["id"]
            own.stop()
            try:
                assert_unavailable(c.get("/readyz"))
                assert c.get("/healthz").status_code == 200
                assert_unavailable(c.get("/api/v1/files"))
                assert_unavailable(c.get(f"/api/v1/files/{kept}/content"))
                assert_unavailable(c.post("/api/v1/files", headers=named("lost.bin"), content=b"x"))
            finally:
                own.resume()
            deadline = time.monotonic() + 30
            while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.3)
            assert c.get(f"/api/v1/files/{kept}/content").content == b"still here"
            assert [item["name"] for item in c.get("/api/v1/files").json()["items"]] == ["kept.bin"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SEALBOX_S3__BUCKET": "no-such-bucket"}, "bucket 'no-such-bucket' is missing or unreachable"),
        ({"SEALBOX_S3__ENDPOINT": "http://127.0.0.1:1"}, "is missing or unreachable"),
        ({"SEALBOX_S3__BUCKET": ""}, "needs a bucket: set SEALBOX_S3__BUCKET"),
    ],
    ids=["missing-bucket", "unreachable", "no-bucket-set"],
)
def test_start_refuses_an_unusable_bucket(
    tmp_path: Path, seaweed: Seaweed, postgres: Postgres, change: dict[str, str], message: str
) -> None:
    install = s3_installation(tmp_path, seaweed, postgres)
    install.extra_env.update(change)
    result = subprocess.run(
        [*SEALBOX, "serve", "--port", "1"], env=install.env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 78
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not install.keyring.exists(), "nothing is generated for a store that cannot be used"
