"""Promise 7, bounded input: bodies capped while read on every route, heads bounded by
the HTTP server, and no integer or text from a client can make a 500."""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from sealbox.api import app
from sealbox.api.limits import BODY_LIMIT, BODY_TIMEOUT
from sealbox.api.protocol import HEAD_TIMEOUT, MAX_HEADERS
from tests.integration.conftest import Account
from tests.integration.server import Server, named

PROBLEM = "application/problem+json"
HUNDRED_MIB = 100 << 20
MIB = 1 << 20


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (status, headers, body), or status 0 if it was closed first."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return 0, {}, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def send_large_body(server: Server, method: str, path: str, *, chunked: bool, extra: str = "") -> tuple[int, bytes]:
    """Send a 100 MiB body as a stream until the server answers; its status and body."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUNDRED_MIB}"
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}{framing}\r\n\r\n"
    piece = b"[" * (256 << 10)
    if chunked:
        piece = b"%x\r\n" % len(piece) + piece + b"\r\n"
    deadline = time.monotonic() + 120
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode())
        sent = 0
        while sent < HUNDRED_MIB and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                break
            if writable:
                try:
                    sent += sock.send(piece)
                except (BrokenPipeError, ConnectionResetError):
                    break
        try:
            status, _, body = read_response(sock, deadline)
        except ConnectionResetError:
            return 0, b""
    return status, body


def body_routes() -> list[tuple[str, str, bool]]:
    """Every route that takes a body (POST, PUT, PATCH), from the application's route
    table, with made-up path parameters, and whether it streams a file."""
    routes = []
    for route in app.routes():
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        streamed = (getattr(route, "openapi_extra", None) or {}).get("x-sealbox-body") == "stream"
        for method in sorted(methods & {"POST", "PUT", "PATCH"}):
            concrete = path
            while "{" in concrete:
                start, end = concrete.index("{"), concrete.index("}")
                concrete = concrete[:start] + str(uuid.uuid4()) + concrete[end + 1 :]
            routes.append((method, concrete, streamed))
    return routes


ROUTES = body_routes()


def test_the_route_table_has_the_unauthenticated_body_routes() -> None:
    paths = {(method, path.split("/")[1]) for method, path, _ in ROUTES}
    assert {("POST", "s"), ("POST", "r"), ("POST", "login"), ("POST", "api")} <= paths
    assert sum(streamed for _, _, streamed in ROUTES) == 7  # 3 uploads, tus create and append, twice


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mib_body_is_refused_on_every_route_without_growing_memory(server: Server, chunked: bool) -> None:
    pid = server.proc.pid if server.proc else 0
    for method, path, _ in ROUTES:  # warm up: first requests import what they need
        httpx.request(method, f"{server.url}{path}", content=b"{}", headers={"Tus-Resumable": "1.0.0"})
    before = memory(pid)
    for method, path, streamed in ROUTES:
        status, body = send_large_body(server, method, path, chunked=chunked, extra="Tus-Resumable: 1.0.0\r\n")
        if streamed:
            # Nobody is signed in, no link has these tokens, no name was given: refused
            # before the body is read (the upload limits are tested with a real link below).
            assert status in (400, 401, 404, 413), (method, path, status)
        else:
            assert status == 413, (method, path, status, body)
            assert str(BODY_LIMIT) in json.loads(body)["detail"]
    after = memory(pid)
    assert after["VmHWM"] < max(before["VmHWM"], before["VmRSS"]) + 10 * MIB, (before, after)
    assert after["VmRSS"] < before["VmRSS"] + 10 * MIB, (before, after)


def test_a_link_upload_is_bounded_by_the_links_allowance(server: Server, alice: Account) -> None:
    created = alice.client.post("/api/v1/upload-requests", json={"max_files": 2, "max_bytes": 1 << 20}).json()
    token = created["token"]
    status, body = send_large_body(
        server, "POST", f"/r/{token}/files", chunked=True, extra="Content-Disposition: attachment; filename=big.bin\r\n"
    )
    assert status == 413, body
    tus = httpx.post(
        f"{server.url}/r/{token}/uploads/",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(HUNDRED_MIB)},
    )
    assert tus.status_code == 413
    assert tus.headers["content-type"] == PROBLEM
    assert alice.client.get(f"/api/v1/upload-requests/{created['id']}/files").json() == []


# Request heads


def raw_request(server: Server, head: bytes) -> int:
    """Send ``head`` and return the status answered, or 0 if the connection was closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        try:
            sock.sendall(head)
            status, _, _ = read_response(sock, time.monotonic() + 60)
        except (BrokenPipeError, ConnectionResetError):
            return 0
    return status


def test_a_1_mib_header_is_refused(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MIB + b"\r\n\r\n"
    assert raw_request(server, head) in (431, 0)


def test_10000_headers_are_refused(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(10_000)) + b"\r\n"
    assert raw_request(server, head) in (431, 0)
    within = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS - 2))
    assert raw_request(server, within + b"Connection: close\r\n\r\n") == 200


def test_slow_heads_and_idle_connections_are_closed(server: Server) -> None:
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    idle = socket.create_connection(("127.0.0.1", server.port))
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    closed: set[socket.socket] = set()
    idle_closed = False
    deadline = time.monotonic() + HEAD_TIMEOUT * 4
    try:
        while (len(closed) < len(slow) or not idle_closed) and time.monotonic() < deadline:
            readable, _, _ = select.select([*slow, idle], [], [], 1)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if sock is idle:
                    idle_closed = idle_closed or not data
                elif not data or data.startswith(b"HTTP/1.1 408"):
                    closed.add(sock)
            for sock in slow:
                if sock not in closed:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")  # one header line a second
                    except (BrokenPipeError, ConnectionResetError):
                        closed.add(sock)
        assert len(closed) == len(slow)
        assert idle_closed
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        for sock in [*slow, idle]:
            sock.close()


# Integers and text


BAD_INTEGERS = ["²", "١٢", "9" * 5000, str(2**63), str(-(2**63) - 1), "1e3", " 1", "-1"]


def openapi_integer_queries(server: Server) -> list[tuple[str, str, str]]:
    document = httpx.get(f"{server.url}/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                if parameter["in"] == "query" and "integer" in types:
                    found.append((method.upper(), path, parameter["name"]))
    return found


def openapi_bodies(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    """Every JSON request body, as (method, path, its object schema)."""
    document = httpx.get(f"{server.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            ref = content.get("application/json", {}).get("schema", {}).get("$ref")
            if ref:
                found.append((method.upper(), path, schemas[ref.rsplit("/", 1)[1]]))
    return found


def concrete(path: str) -> str:
    return (
        path.replace("{file_id}", str(uuid.uuid4()))
        .replace("{user_id}", str(uuid.uuid4()))
        .replace("{token}", "no-such-token")
    )


def test_every_integer_query_parameter_is_range_checked(server: Server, alice: Account) -> None:
    queries = openapi_integer_queries(server)
    assert ("GET", "/api/v1/audit", "before") in queries
    for method, path, name in queries:
        for value in BAD_INTEGERS:
            response = alice.client.request(method, concrete(path), params={name: value})
            assert 400 <= response.status_code < 500, (path, name, value, response.text)
            assert response.headers["content-type"] == PROBLEM


def test_every_json_field_refuses_out_of_range_and_unstorable_values(server: Server, alice: Account) -> None:
    bodies = openapi_bodies(server)
    assert len(bodies) >= 8
    before = alice.client.get("/api/v1/shares").json(), alice.client.get("/api/v1/upload-requests").json()
    for method, path, schema in bodies:
        for field, spec in schema["properties"].items():
            types = {spec.get("type")} | {s.get("type") for s in spec.get("anyOf", [])}
            bad: list[Any] = []
            if "integer" in types:
                bounded = [s for s in [spec, *spec.get("anyOf", [])] if s.get("type") == "integer"]
                maximum = bounded[0].get("maximum")
                # Every integer is bounded (JSON prints 2**63 - 1 as a float: 2**63).
                assert maximum is not None, (path, field)
                assert maximum <= 2**63, (path, field)
                bad = [int(maximum) + 1, 2**63, -(2**63) - 1, 10**40]
            if "string" in types:
                bad = ["al\x00ice", "\ud800"]
            for value in bad:
                raw = json.dumps({field: value})  # a lone surrogate travels as the escape \ud800
                response = alice.client.request(
                    method, concrete(path), content=raw, headers={"Content-Type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (path, field, value, response.text)
                assert response.headers["content-type"] == PROBLEM
    after = alice.client.get("/api/v1/shares").json(), alice.client.get("/api/v1/upload-requests").json()
    assert after == before


def test_integer_headers_are_range_checked(server: Server, alice: Account) -> None:
    file_id = alice.client.post("/api/v1/files", headers=named("r.txt"), content=b"0123456789").json()["id"]
    for value in ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000, "bytes=²-3"]:
        range_header = value.encode("latin-1")  # as uvicorn receives it
        response = alice.client.get(f"/api/v1/files/{file_id}/content", headers={"Range": range_header})
        assert response.status_code in (200, 206, 416), (value, response.text)
        assert response.status_code == 416 or response.content in (b"0123456789", b"0123456789"[-10:])
    tus = {"Tus-Resumable": "1.0.0"}
    for value in BAD_INTEGERS:
        if not value.isascii() or value != value.strip():
            continue  # not sendable as a header by the client (raw '²' is sent below)
        response = alice.client.post("/api/v1/uploads/", headers={**tus, "Upload-Length": value})
        assert response.status_code == 400, (value, response.text)
        assert response.headers["content-type"] == PROBLEM
    created = alice.client.post("/api/v1/uploads/", headers={**tus, "Upload-Length": "10"})
    location = created.headers["location"]
    for value in ("9" * 30, str(2**63), "-1"):
        response = alice.client.patch(
            location,
            content=b"x",
            headers={**tus, "Upload-Offset": value, "Content-Type": "application/offset+octet-stream"},
        )
        assert response.status_code == 400, response.text
    alice.client.delete(location, headers=tus)
    # uvicorn passes header bytes through as latin-1: '²' arrives as itself.
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/v1/uploads/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: \xb2\r\n"
            + f"Authorization: Bearer {alice.token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        status, headers, _ = read_response(sock, time.monotonic() + 30)
    assert status == 400
    assert headers["content-type"] == PROBLEM


def test_sign_in_with_a_nul_user_name_is_an_unknown_user(server: Server) -> None:
    for name in ("al\x00ice", "admin\x00"):
        response = httpx.post(f"{server.url}/api/v1/auth/token", data={"username": name, "password": "whatever-1"})
        assert response.status_code == 401, response.text
        assert response.json()["detail"] == "wrong user name or password"
        page = httpx.post(f"{server.url}/login", data={"username": name, "password": "whatever-1"})
        assert page.status_code == 401


def test_tus_errors_are_problems(server: Server, alice: Account) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    too_long = alice.client.post("/api/v1/uploads/", headers={**tus, "Upload-Length": str(2**62)})
    wrong_type = alice.client.post(
        "/api/v1/uploads/", content=b"x", headers={**tus, "Upload-Length": "1", "Content-Type": "text/plain"}
    )
    no_version = alice.client.post("/api/v1/uploads/", headers={"Upload-Length": "1"})
    for response, status in ((too_long, 413), (wrong_type, 415), (no_version, 412)):
        assert response.status_code == status
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == status
        assert response.headers["tus-resumable"] == "1.0.0"
    assert "limit" in too_long.json()["detail"]
    assert too_long.headers["tus-max-size"]


def _trickle(server: Server, head: bytes, budget: float) -> bytes:
    """Send ``head``, then one body byte a second; what the server answers before it
    closes the connection (or before ``budget`` seconds)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head)
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    return answer
                answer += data
                continue
            try:
                sock.sendall(b"{")
            except (BrokenPipeError, ConnectionResetError):
                return answer
    raise AssertionError("the connection was still open")


def test_trickled_small_bodies_are_refused_and_their_connections_closed(server: Server) -> None:
    """A body under the cap that arrives a byte a second: 408 once the time for a whole
    small body has passed, on every kind of route (all at once: the clock is the same)."""
    paths = ["/api/v1/auth/token", "/login", "/s/x/unlock", "/api/v1/me/tokens"]
    heads = [
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n".encode()
        for path in paths
    ]
    with ThreadPoolExecutor(len(heads)) as pool:
        answers = list(pool.map(lambda head: _trickle(server, head, BODY_TIMEOUT * 4), heads))
    for path, answer in zip(paths, answers, strict=True):
        assert answer.startswith(b"HTTP/1.1 408"), (path, answer[:200])
        assert b"did not arrive within" in answer
    assert httpx.get(f"{server.url}/healthz").status_code == 200
