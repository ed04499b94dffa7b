"""What the server and the documented reverse proxy write to their logs: one JSON object
per server line, at the level the event deserves, and no link token, password or file name
anywhere, the proxy's error log included, when the upstream is stopped or cuts a response."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.integration.server import Installation, Server, blob_key, free_port, login, named

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
SECRET_NAME = "Merger-Plan-ACME-2027.pdf"
TAMPERED_NAME = "Board-Minutes-Confidential.pdf"
LINK_PASSWORD = "link password 1234"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@dataclass
class Story:
    server: Server
    token: str
    file_id: str
    tampered_id: str
    secrets: list[str]


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def tamper_middle(install: Installation, file_id: str) -> None:
    key = blob_key(file_id)
    blob = bytearray(install.blobs.read(key))
    blob[len(blob) // 2] ^= 1
    install.blobs.write(key, bytes(blob))


def server_lines(server: Server) -> list[str]:
    return server.log.read_text().splitlines()


def events(server: Server, name: str) -> list[dict[str, object]]:
    return [e for e in (json.loads(line) for line in server_lines(server)) if e.get("event") == name]


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    """A server with a large file shared by a password link, and a file whose blob was
    tampered with in the middle (so a download of it starts, then fails)."""
    server = Server(Installation(tmp_path / "sealbox")).start()
    try:
        assert server.admin_password is not None
        api_token = login(server.url, "admin", server.admin_password)
        auth = {"Authorization": f"Bearer {api_token}"}
        # Larger than what socket buffers hold, so a reader that stops gets cut mid-body.
        big = httpx.post(
            f"{server.url}/api/v1/files", headers={**auth, **named(SECRET_NAME)}, content=os.urandom(48 << 20)
        )
        assert big.status_code == 201, big.text
        link = httpx.post(
            f"{server.url}/api/v1/files/{big.json()['id']}/shares", headers=auth, json={"password": LINK_PASSWORD}
        ).json()
        small = httpx.post(
            f"{server.url}/api/v1/files", headers={**auth, **named(TAMPERED_NAME)}, content=os.urandom(1 << 20)
        )
        assert small.status_code == 201, small.text
        tamper_middle(server.install, small.json()["id"])
        secrets = [link["token"], api_token, server.admin_password, LINK_PASSWORD, SECRET_NAME, TAMPERED_NAME]
        yield Story(server, link["token"], big.json()["id"], small.json()["id"], secrets)
    finally:
        server.stop()


def unlock(url: str, token: str) -> dict[str, str]:
    grant = httpx.post(f"{url}/s/{token}/unlock", json={"password": LINK_PASSWORD})
    assert grant.status_code == 200, grant.text
    return {"Authorization": f"Bearer {grant.json()['grant']}"}


def read_then_vanish(port: int, request: bytes) -> None:
    """Send ``request``, read the start of the answer, then close the connection."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(request)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_every_server_log_line_is_json_without_secrets(story: Story) -> None:
    server = story.server
    grant = unlock(server.url, story.token)
    grant_value = grant["Authorization"].split()[1]
    # A download through the link, abandoned mid-body by its client.
    read_then_vanish(
        server.port,
        f"GET /s/{story.token}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {grant_value}\r\n\r\n".encode(),
    )
    assert wait_for(lambda: bool(events(server, "download.interrupted")))
    # A download of a tampered blob: the connection is cut after the headers.
    owner = {"Authorization": f"Bearer {story.secrets[1]}"}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{server.url}/api/v1/files/{story.tampered_id}/content", headers=owner)
    # An upload whose client goes away mid-body.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n"
            + f"Authorization: Bearer {story.secrets[1]}\r\n".encode()
            + b"Content-Disposition: attachment; filename=cut.bin\r\n\r\n"
            + b"x" * 100_000
        )
        time.sleep(0.5)
    assert wait_for(lambda: bool(events(server, "request.disconnected")))
    # A request line no HTTP parser accepts.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET /s/{story.token}\x00 {SECRET_NAME}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    # An unexpected error: a row the server cannot read (a date that is not one).
    server.install.sql("UPDATE files SET created_at = 'not a date'")
    crashed = httpx.get(f"{server.url}/api/v1/files", headers=owner)
    assert crashed.status_code == 500
    assert "Traceback" not in crashed.text
    server.stop()

    lines = server_lines(server)
    assert lines
    parsed = [json.loads(line) for line in lines]  # every line, uvicorn's included, is JSON
    for line in lines:
        for secret in [*story.secrets, grant_value]:
            assert secret not in line, (secret, line)

    def single(name: str) -> dict[str, object]:
        found = [e for e in parsed if e.get("event") == name]
        assert len(found) == 1, (name, found)
        return found[0]

    interrupted = single("download.interrupted")
    assert interrupted["level"] == "info"
    assert interrupted["file_id"] == story.file_id
    assert 0 <= int(str(interrupted["sent"])) < int(str(interrupted["length"])) == 48 << 20
    aborted = single("download.aborted")
    assert aborted["level"] == "error"
    assert aborted["file_id"] == story.tampered_id
    assert aborted["code"] == "integrity_failure"
    assert single("request.disconnected")["level"] == "info"
    assert single("Invalid HTTP request received.")["logger"] == "uvicorn.error"
    crash = single("request.crashed")
    assert crash["route"] == "/api/v1/files"
    assert "Traceback" in str(crash["exception"])  # inside the one JSON line
    # The cut and the disconnects are not reported a second time as crashes.
    assert not [e for e in parsed if e.get("event") == "Exception in ASGI application"]
    assert {e["level"] for e in parsed} <= {"info", "warning", "error"}


NGINX_MAIN = """daemon off;
{user}
pid {work}/nginx.pid;
error_log {work}/logs/main.error.log info;
events {{}}
http {{
client_body_temp_path {work}/body;
proxy_temp_path {work}/proxy;
fastcgi_temp_path {work}/f;
uwsgi_temp_path {work}/u;
scgi_temp_path {work}/s;
"""


def start_nginx(work: Path, upstream_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """The documented configuration (docs/examples), on a local port and certificate."""
    assert NGINX is not None
    (work / "logs").mkdir(parents=True)
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = (
        (EXAMPLES / "nginx.conf")
        .read_text()
        .replace("/etc/ssl/sealbox/fullchain.pem", str(cert))
        .replace("/etc/ssl/sealbox/privkey.pem", str(key))
        .replace("/var/log/nginx/", f"{work}/logs/")
        .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
        .replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    )
    assert f"127.0.0.1:{upstream_port}" in server
    assert f"127.0.0.1:{port}" in server
    # As root, nginx's workers would run as "nobody" and could not write here.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(
        NGINX_MAIN.format(work=work, user=user) + (EXAMPLES / "nginx-log-format.conf").read_text() + server + "\n}\n"
    )
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-e", str(work / "logs" / "startup.error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    assert wait_for(listening), (work / "logs" / "startup.error.log").read_text()
    return proc, port


@pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None, reason="nginx or openssl absent")
def test_proxy_logs_hold_no_token_or_name_when_the_upstream_fails(story: Story, tmp_path: Path) -> None:
    server = story.server
    proc, port = start_nginx(tmp_path / "nginx", server.port)
    base = f"https://127.0.0.1:{port}"
    grant = unlock(server.url, story.token)
    owner = {"Authorization": f"Bearer {story.secrets[1]}"}
    request_link = httpx.post(f"{server.url}/api/v1/upload-requests", headers=owner, json={}).json()["token"]
    secrets = [*story.secrets, grant["Authorization"].split()[1], request_link]

    def requests(client: httpx.Client) -> list[int]:
        statuses = [
            client.get(f"/s/{story.token}", headers=grant).status_code,
            client.post(f"/r/{request_link}/files", headers=named(SECRET_NAME), content=b"x").status_code,
            # An old client putting the name in the URL: refused, and still logged nowhere.
            client.post(f"/api/v1/files?name={SECRET_NAME}", headers=owner, content=b"x").status_code,
        ]
        try:
            statuses.append(client.get(f"/s/{story.token}/download", headers=grant).status_code)
        except httpx.RemoteProtocolError:
            statuses.append(0)
        return statuses

    try:
        with httpx.Client(base_url=base, verify=False, timeout=60) as client:
            # The upstream cuts a response: a download of a tampered blob.
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(f"/api/v1/files/{story.tampered_id}/content", headers=owner)
            assert requests(client)[:3] == [200, 201, 400]
            # The upstream is stopped.
            server.stop()
            assert requests(client) == [502, 502, 502, 502]
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "nginx" / "logs").iterdir()}
    access = logs["sealbox.access.log"]
    assert access.count(" 502 ") == 4  # the failures are visible, in the masked access log
    assert "/s/-/download" in access
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, (name, secret, text)
