"""The systems under test, each started as a real server process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
from tests.integration.server import s3_env
from tests.services import Postgres, Seaweed, stop_group

from bench import copyparty

UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning", "--no-server-header"]


class Unavailable(Exception):
    """A system that cannot run here (not installed, cannot be installed); the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A started server and how to talk to it."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    # (method, path) of a raw-body upload; "{name}" is replaced by the file name.
    raw_upload: tuple[str, str] | None
    multipart_upload: str | None
    download_path: str  # "{id}" is replaced by the id an upload returned
    headers: dict[str, str] = field(default_factory=dict)
    # How an upload's answer names the file: from its JSON "id", or the name we gave it.
    id_from_json: bool = True
    tus_endpoint: str | None = None  # where resumable (tus) uploads are created
    # A header naming a raw upload's file ("{name}" replaced), for servers that take the
    # name from a header instead of the URL.
    raw_name_header: tuple[str, str] | None = None
    curl_args: list[str] = field(default_factory=list)  # e.g. request signing
    # False for a service shared by several systems (s3-direct's SeaweedFS): it is not
    # stopped with the system, and its peak memory is not this system's.
    owns_process: bool = True
    # Only the large uploads and downloads are measured (no range reads, no small files).
    transfers_only: bool = False

    def raw_headers(self, name: str) -> dict[str, str]:
        """Headers of a raw upload of ``name``: the server's own, and the name's if any."""
        if self.raw_name_header is None:
            return dict(self.headers)
        key, value = self.raw_name_header
        return {**self.headers, key: value.format(name=name)}

    def stop(self) -> None:
        if self.owns_process:
            stop_group(self.proc, timeout=30)

    def pids(self) -> list[int]:
        """The server's process tree."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def _spawn(cmd: list[str], work: Path, env: dict[str, str], ready_path: str, port: int) -> subprocess.Popen[bytes]:
    log = work / "server.log"
    with (work / "server.out").open("wb") as out, log.open("wb") as err:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=err, start_new_session=True)
    _wait_ready(proc, f"http://127.0.0.1:{port}{ready_path}", log)
    return proc


def start_sealbox(work: Path, port: int, extra: dict[str, str] | None = None) -> Running:
    env = {
        "SEALBOX_DATA_DIR": str(work / "data"),
        "SEALBOX_KEYRING": str(work / "config" / "keyring.json"),
        "SEALBOX_MAX_UPLOAD_SIZE": "64G",
        "TMPDIR": str(work),
        **(extra or {}),
    }
    cmd = [sys.executable, "-m", "sealbox", "serve", "--port", str(port)]
    proc = _spawn(cmd, work, env, "/healthz", port)
    password = re.search(r"admin password:\s+(\S+)", (work / "server.out").read_text())
    assert password, "sealbox printed no admin password"
    url = f"http://127.0.0.1:{port}"
    answer = httpx.post(f"{url}/api/v1/auth/token", data={"username": "admin", "password": password.group(1)})
    token = answer.json()["access_token"]
    return Running(
        name="sealbox",
        url=url,
        proc=proc,
        raw_upload=("POST", "/api/v1/files"),
        raw_name_header=("Content-Disposition", "attachment; filename*=UTF-8''{name}"),
        multipart_upload="/api/v1/files",
        download_path="/api/v1/files/{id}/content",
        headers={"Authorization": f"Bearer {token}"},
        tus_endpoint="/api/v1/uploads/",
    )


_shared: dict[str, Seaweed | Postgres] = {}


def _shared_seaweed(work: Path) -> Seaweed:
    """One SeaweedFS per benchmark run (fresh bucket per server); see ``stop_shared``."""
    if "seaweed" not in _shared:
        # A full run writes about 10 GiB to it per round, in a fresh bucket per server:
        # 300 volumes of 64 MiB ran out in the second round (every request then 500).
        _shared["seaweed"] = Seaweed(work.parent / "seaweed", volumes=3000).start()
    seaweed = _shared["seaweed"]
    assert isinstance(seaweed, Seaweed)
    return seaweed


def _shared_postgres(work: Path) -> Postgres:
    """One PostgreSQL per benchmark run (fresh database per server); see ``stop_shared``."""
    if "postgres" not in _shared:
        # A short directory of its own, not the scratch space: PostgreSQL's socket path
        # must fit in 107 bytes, and a scratch space deep in a test's temporary
        # directory does not leave room for it. Removed by ``stop_shared``.
        root = Path(tempfile.mkdtemp(prefix="sealbox-bench-pg-"))
        _shared["postgres"] = Postgres(root).start()
    postgres = _shared["postgres"]
    assert isinstance(postgres, Postgres)
    return postgres


def stop_shared() -> None:
    """Stop the services shared by the systems (before their scratch space is removed)."""
    while _shared:
        _, service = _shared.popitem()
        if isinstance(service, Postgres):
            # Stopped and deleted now, while the directory of its lock file exists: its
            # exit handler would otherwise take that lock again after the scratch space
            # is removed, and leave the directory behind.
            service.server.cleanup()  # type: ignore[attr-defined]
            shutil.rmtree(service.root, ignore_errors=True)
        else:
            service.stop()


def start_sealbox_s3(work: Path, port: int) -> Running:
    """sealbox with its blobs in S3 (SeaweedFS on loopback) and SQLite for records."""
    seaweed = _shared_seaweed(work)
    env = s3_env(seaweed, seaweed.create_bucket())
    running = start_sealbox(work, port, env)
    running.name = "sealbox-s3"
    return running


def start_sealbox_pg_s3(work: Path, port: int) -> Running:
    """sealbox as it runs on several machines: records in PostgreSQL, blobs in S3."""
    seaweed = _shared_seaweed(work)
    env = {"SEALBOX_DATABASE_URL": _shared_postgres(work).create_database(), **s3_env(seaweed, seaweed.create_bucket())}
    running = start_sealbox(work, port, env)
    running.name = "sealbox-pg-s3"
    return running


def start_s3_direct(work: Path, port: int) -> Running:
    """SeaweedFS alone, driven by the same client over its S3 port with signed requests:
    the ceiling of sealbox-s3. Its process is shared, so no peak memory is reported."""
    seaweed = _shared_seaweed(work)
    bucket = seaweed.create_bucket()
    settings = s3_env(seaweed, bucket)  # the credentials sealbox-s3 signs with
    user = f"{settings['SEALBOX_S3__ACCESS_KEY_ID']}:{settings['SEALBOX_S3__SECRET_ACCESS_KEY']}"
    assert seaweed.proc is not None
    return Running(
        name="s3-direct",
        url=seaweed.endpoint,
        proc=seaweed.proc,
        raw_upload=("PUT", f"/{bucket}/{{name}}"),
        multipart_upload=None,
        download_path=f"/{bucket}/{{id}}",
        id_from_json=False,
        # curl signs the headers but not the body; S3 asks such requests to say so.
        curl_args=[
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            user,
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ],
        owns_process=False,
        transfers_only=True,
    )


def start_plain(work: Path, port: int) -> Running:
    cmd = [*UVICORN, "--port", str(port), "bench.baselines.plain_app:app"]
    proc = _spawn(cmd, work, {"PLAIN_DATA_DIR": str(work / "data"), "TMPDIR": str(work)}, "/docs", port)
    return Running(
        name="plain",
        url=f"http://127.0.0.1:{port}",
        proc=proc,
        raw_upload=("POST", "/files"),
        multipart_upload=None,
        download_path="/files/{id}",
    )


def start_seed(work: Path, port: int) -> Running:
    cmd = [*UVICORN, "--port", str(port), "bench.baselines.seed_app:app"]
    proc = _spawn(cmd, work, {"SEED_DATA_DIR": str(work / "data"), "TMPDIR": str(work)}, "/docs", port)
    return Running(
        name="seed",
        url=f"http://127.0.0.1:{port}",
        proc=proc,
        raw_upload=None,
        multipart_upload="/upload",
        download_path="/download/{id}",
    )


NGINX_CONF = """
daemon off;
{user}
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location /files/ {{
            root {work}/data;
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }}
        location = /ready {{ return 200; }}
    }}
}}
"""


def start_nginx(work: Path, port: int) -> Running:
    """nginx with WebDAV PUT and sendfile (``Unavailable`` when nginx is not installed)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if binary is None:
        raise Unavailable("not installed")
    (work / "data" / "files").mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    # As root, nginx's workers would run as "nobody" and could not write here.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(work=work, port=port, user=user))
    proc = _spawn([binary, "-c", str(conf), "-e", str(work / "nginx-error.log")], work, {}, "/ready", port)
    return Running(
        name="nginx",
        url=f"http://127.0.0.1:{port}",
        proc=proc,
        raw_upload=("PUT", "/files/{name}"),
        multipart_upload=None,
        download_path="/files/{id}",
        id_from_json=False,
    )


def start_copyparty(work: Path, port: int) -> Running:
    """copyparty as its README starts it: one account, one volume it may read and write,
    the password in the ``PW`` header; everything else on its defaults."""
    try:
        interpreter = copyparty.python()
    except copyparty.NotInstallable as exc:
        raise Unavailable(f"could not be installed from PyPI ({exc})") from exc
    data = work / "data"
    data.mkdir(parents=True)
    password = secrets.token_urlsafe(16)
    cmd = [str(interpreter), "-m", "copyparty", "-i", "127.0.0.1", "-p", str(port),
           "-a", f"bench:{password}", "-v", f"{data}:/:rw,bench"]  # fmt: skip
    # Its settings, salts and sessions database go to the scratch space, not ~/.config.
    proc = _spawn(cmd, work, {"XDG_CONFIG_HOME": str(work / "config"), "TMPDIR": str(work)}, "/", port)
    return Running(
        name="copyparty",
        url=f"http://127.0.0.1:{port}",
        proc=proc,
        raw_upload=("PUT", "/{name}"),
        multipart_upload=None,
        download_path="/{id}",
        headers={"PW": password},
        id_from_json=False,
    )


STARTERS: dict[str, Callable[[Path, int], Running]] = {
    "sealbox": start_sealbox,
    "sealbox-s3": start_sealbox_s3,
    "sealbox-pg-s3": start_sealbox_pg_s3,
    "plain": start_plain,
    "seed": start_seed,
    "nginx": start_nginx,
    "copyparty": start_copyparty,
    "s3-direct": start_s3_direct,
}


def upload_id(running: Running, answer: str, name: str) -> str:
    return str(json.loads(answer)["id"]) if running.id_from_json else name
