"""Real ``sealbox serve`` processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx2 as httpx
import obstore
import sqlalchemy

from tests.services import Postgres, Seaweed, stop_group

SEALBOX = [sys.executable, "-m", "sealbox"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Blobs(Protocol):
    """Direct access to an installation's stored blobs, bypassing sealbox."""

    def stored(self) -> set[str]: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def partial(self) -> list[str]: ...
    def raw_files(self) -> list[Path]: ...


@dataclass
class LocalBlobs:
    root: Path

    def stored(self) -> set[str]:
        return {
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        }

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        (self.root / key).write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink()

    def partial(self) -> list[str]:
        return [p.name for p in self.root.rglob(".tmp-*")]

    def raw_files(self) -> list[Path]:
        return [p for p in self.root.rglob("*") if p.is_file()]


@dataclass
class S3Blobs:
    seaweed: Seaweed
    bucket: str

    def stored(self) -> set[str]:
        return set(self.seaweed.objects(self.bucket))

    def read(self, key: str) -> bytes:
        return bytes(obstore.get(self.seaweed.store(self.bucket), key).bytes())

    def write(self, key: str, data: bytes) -> None:
        obstore.put(self.seaweed.store(self.bucket), key, data)

    def delete(self, key: str) -> None:
        obstore.delete(self.seaweed.store(self.bucket), key)

    def partial(self) -> list[str]:
        return re.findall(r"<UploadId>([^<]+)</UploadId>", self.seaweed.multipart_uploads(self.bucket))

    def raw_files(self) -> list[Path]:
        # Everything SeaweedFS keeps on disk, parts of unfinished uploads included.
        return [p for p in (self.seaweed.root / "weed").rglob("*") if p.is_file()]


@dataclass
class Installation:
    """One data directory, keyring and temp directory, kept apart as in production,
    on SQLite and local disk unless a database URL and a blob backend are given."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    backend_blobs: Blobs | None = None
    postgres: Postgres | None = None

    @property
    def blobs(self) -> Blobs:
        return self.backend_blobs or LocalBlobs(self.data_dir / "blobs")

    def database_dump(self) -> list[tuple[str, bytes]]:
        """What a stolen database would reveal: its files, or a dump and the server's files."""
        if self.postgres is None:
            return [(p.name, p.read_bytes()) for p in self.data_dir.glob("sealbox.db*")]
        dump = [("pg_dump", self.postgres.dump(self.extra_env["SEALBOX_DATABASE_URL"]))]
        return dump + [(str(p), p.read_bytes()) for p in self.postgres.pgdata.rglob("*") if p.is_file()]

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def keyring(self) -> Path:
        return self.root / "config" / "keyring.json"

    @property
    def tmpdir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(exist_ok=True)
        return path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        env.update(
            SEALBOX_DATA_DIR=str(self.data_dir),
            SEALBOX_KEYRING=str(self.keyring),
            TMPDIR=str(self.tmpdir),
        )
        env.update(self.extra_env)
        return env

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        """Run one statement on the installation's database, as someone with access to it would."""
        url = self.extra_env.get("SEALBOX_DATABASE_URL") or f"sqlite:///{self.data_dir / 'sealbox.db'}"
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.begin() as conn:
                result = conn.execute(sqlalchemy.text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SEALBOX, *args], env=self.env(), input=stdin, capture_output=True, text=True, timeout=120, check=False
        )


@dataclass
class Server:
    install: Installation
    workers: int = 1
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    admin_password: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.install.root / f"server-{self.port}.log"

    def start(self) -> Server:
        self.install.root.mkdir(parents=True, exist_ok=True)
        out = self.install.root / f"server-{self.port}.out"
        with out.open("wb") as stdout, self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [*SEALBOX, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.install.env(),
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        match = re.search(r"admin password:\s+(\S+)", out.read_text())
        if match:
            self.admin_password = match.group(1)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_group(self.proc, timeout=20)
        self.proc = None

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the children, or the server itself with one worker."""
        assert self.proc is not None
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # uvicorn's workers, not multiprocessing's resource tracker.
                if int(fields[1]) == self.proc.pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
        return pids or [self.proc.pid]


def s3_env(seaweed: Seaweed, bucket: str) -> dict[str, str]:
    """Settings that put an installation's blobs in ``bucket`` on ``seaweed``."""
    return {
        "SEALBOX_STORAGE": "s3",
        "SEALBOX_S3__BUCKET": bucket,
        "SEALBOX_S3__ENDPOINT": seaweed.endpoint,
        "SEALBOX_S3__ALLOW_HTTP": "true",
        "SEALBOX_S3__ACCESS_KEY_ID": "test",
        "SEALBOX_S3__SECRET_ACCESS_KEY": "test",
    }


def s3_installation(root: Path, seaweed: Seaweed, postgres: Postgres) -> Installation:
    """A fresh installation on PostgreSQL and S3: its own database and its own bucket."""
    bucket = seaweed.create_bucket()
    env = {"SEALBOX_DATABASE_URL": postgres.create_database(), **s3_env(seaweed, bucket)}
    return Installation(root, env, S3Blobs(seaweed, bucket), postgres)


def login(url: str, username: str, password: str) -> str:
    response = httpx.post(f"{url}/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def blob_key(file_id: str) -> str:
    hex_id = file_id.replace("-", "")
    return f"files/{hex_id[:2]}/{hex_id}"


def pass_the_window(install: Installation) -> None:
    """Move every counted password attempt a day into the past, out of any rate-limit
    window, as the passing of time would (SQLite installations)."""
    install.sql("UPDATE login_failures SET at = datetime(at, '-1 day')")


def named(name: str) -> dict[str, str]:
    """Headers naming a raw upload's file (names never go in URLs)."""
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}"}
