"""Promise 7: bad input gets a specific 4xx problem, never a 500, and changes nothing."""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest

from tests.integration.conftest import Account, _account
from tests.integration.server import Installation, Server, named

PROBLEM = "application/problem+json"


def stored_files(install: Installation) -> set[str]:
    return install.blobs.stored()


def listing(account: Account) -> list[str]:
    return [item["id"] for item in account.client.get("/api/v1/files", params={"limit": 1000}).json()["items"]]


def assert_problem(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert detail.lower() in body["detail"].lower()


@pytest.fixture
def unchanged(alice: Account, install: Installation) -> Iterator[None]:
    """The test's requests must store nothing and list nothing new."""
    before_blobs, before_list = stored_files(install), listing(alice)
    yield
    assert stored_files(install) == before_blobs
    assert listing(alice) == before_list
    assert install.blobs.partial() == []


def test_missing_or_wrong_token_is_401(server: Server, alice: Account, unchanged: None) -> None:
    file_id = alice.client.get("/api/v1/files").json()["items"]
    for headers in ({}, {"Authorization": "Bearer sbx_wrong"}, {"Authorization": "Basic YTpi"}):
        for method, path in (
            ("GET", "/api/v1/files"),
            ("POST", "/api/v1/files"),
            ("POST", "/upload"),
            ("GET", f"/download/{uuid.uuid4()}"),
            ("GET", f"/api/v1/files/{uuid.uuid4()}/content"),
        ):
            response = httpx.request(method, f"{server.url}{path}", headers=headers, content=b"secret")
            assert_problem(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
    assert file_id is not None


def test_wrong_password_login_is_401_with_the_same_message(server: Server, alice: Account) -> None:
    for username in ("admin", "nobody-here"):
        response = httpx.post(f"{server.url}/api/v1/auth/token", data={"username": username, "password": "wrong-pass"})
        assert_problem(response, 401, "wrong user name or password")
    assert_problem(httpx.post(f"{server.url}/api/v1/auth/token", data={"username": "admin"}), 400, "required")
    assert_problem(
        httpx.post(f"{server.url}/api/v1/auth/token", json={"username": "a", "password": "b"}),
        400,
        "x-www-form-urlencoded",
    )
    assert_problem(
        httpx.post(
            f"{server.url}/api/v1/auth/token",
            content=b"a=" + b"x" * 70000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        413,
        "larger",
    )


def test_someone_elses_file_is_404_everywhere(alice: Account, bob: Account) -> None:
    file_id = alice.client.post("/api/v1/files", headers=named("mine.txt"), content=b"alice only").json()["id"]
    for response in (
        bob.client.get(f"/api/v1/files/{file_id}"),
        bob.client.get(f"/api/v1/files/{file_id}/content"),
        bob.client.get(f"/api/v1/files/{file_id}/content", headers={"Range": "bytes=0-1"}),
        bob.client.head(f"/api/v1/files/{file_id}/content"),
        bob.client.get(f"/download/{file_id}"),
        bob.client.delete(f"/api/v1/files/{file_id}"),
        bob.client.patch(f"/api/v1/files/{file_id}", json={"name": "taken.txt"}),
        bob.client.patch(f"/api/v1/files/{file_id}", json={"folder_id": None}),
    ):
        assert response.status_code == 404
        assert b"alice only" not in response.content
    assert file_id not in listing(bob)
    assert alice.client.get(f"/api/v1/files/{file_id}/content").content == b"alice only"


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "1", "%00", uuid.uuid4().hex + "0"])
def test_malformed_ids_are_404(alice: Account, bad_id: str) -> None:
    for path in (
        f"/api/v1/files/{bad_id}",
        f"/api/v1/files/{bad_id}/content",
        f"/download/{bad_id}",
        f"/api/v1/folders/{bad_id}",
    ):
        assert_problem(alice.client.get(path), 404, "not found")
    assert_problem(alice.client.patch(f"/api/v1/folders/{bad_id}", json={"name": "n"}), 404, "not found")
    assert_problem(alice.client.delete(f"/api/v1/folders/{bad_id}"), 404, "not found")
    assert_problem(alice.client.patch(f"/api/v1/files/{bad_id}", json={"name": "n"}), 404, "not found")
    made = alice.client.post("/api/v1/folders", json={"name": "n", "parent_id": bad_id})
    assert_problem(made, 404, "not found")


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("../../etc/passwd", "must not contain '/'"),
        ("a\x00b", "control characters"),
        ("bell\x07", "control characters"),
        ("x" * 10_000, "at most 255"),
        ("", "required"),
    ],
)
def test_bad_names_are_refused_on_every_upload_path(alice: Account, unchanged: None, name: str, detail: str) -> None:
    assert_problem(alice.client.post("/api/v1/files", headers=named(name), content=b"data"), 400, detail)
    if name:
        # Built by hand: client libraries percent-encode control characters in file names.
        body = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
            + name.encode()
            + b'"\r\nContent-Type: text/plain\r\n\r\ndata\r\n--b--\r\n'
        )
        for path in ("/api/v1/files", "/upload"):
            response = alice.client.post(
                path, content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
            )
            assert_problem(response, 400, detail)


def test_raw_upload_without_a_name_is_400(alice: Account, unchanged: None) -> None:
    assert_problem(alice.client.post("/api/v1/files", content=b"data"), 400, "Content-Disposition")


MULTIPART_BODY = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\ndata\r\n--b--\r\n'


@pytest.mark.parametrize("route", ["/api/v1/files", "/r/{token}/files", "/upload"])
@pytest.mark.parametrize("body", ["raw", "multipart"])
@pytest.mark.parametrize(
    ("query", "header"),
    [("name", "Content-Disposition"), ("uploader", "Sealbox-Uploader"), ("path", "Sealbox-Path")],
)
def test_names_in_urls_are_refused_on_every_upload_route(
    alice: Account, install: Installation, route: str, body: str, query: str, header: str
) -> None:
    """Proxies log URLs (nginx's error log whenever an upstream fails), so a file's or an
    uploader's name in one would be plaintext in a log file: refused, pointing to the header."""
    request_link = alice.client.post("/api/v1/upload-requests", json={}).json()
    before_blobs, before_list = stored_files(install), listing(alice)
    headers = named("Merger-Plan.pdf")
    content = b"data"
    if body == "multipart":
        headers, content = {"Content-Type": "multipart/form-data; boundary=b"}, MULTIPART_BODY
    url = route.format(token=request_link["token"]) + f"?{query}=Merger-Plan.pdf"
    assert_problem(alice.client.post(url, headers=headers, content=content), 400, header)
    assert stored_files(install) == before_blobs
    assert listing(alice) == before_list
    received = alice.client.get("/api/v1/upload-requests").json()
    assert next(r for r in received if r["id"] == request_link["id"])["files_received"] == 0


@pytest.mark.parametrize("query", ["name", "Name", "uploader", "path", "PATH"])
def test_names_in_urls_are_refused_when_a_resumable_upload_starts(
    server: Server, alice: Account, install: Installation, query: str
) -> None:
    link = alice.client.post("/api/v1/upload-requests", json={}).json()["token"]
    metadata = f"filename {base64.b64encode(b'a.txt').decode()}"
    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": metadata}
    before = install.sql("SELECT count(*) FROM uploads")
    for url in (f"{server.url}/api/v1/uploads/?{query}=Merger-Plan.pdf", f"{server.url}/r/{link}/uploads/?{query}=x"):
        assert_problem(httpx.post(url, headers={**tus, **alice.client.headers}), 400, "not accepted in the URL")
    assert install.sql("SELECT count(*) FROM uploads") == before


def test_bad_content_disposition_name_is_400(alice: Account, unchanged: None) -> None:
    bad = {"Content-Disposition": "attachment; filename*=UTF-8''%FF%FE"}
    assert_problem(alice.client.post("/api/v1/files", content=b"d", headers=bad), 400, "not valid UTF-8")
    evil = {"Content-Disposition": "attachment; filename*=UTF-8''..%2F..%2Fx"}
    assert_problem(alice.client.post("/api/v1/files", content=b"d", headers=evil), 400, "'/'")


def test_bad_content_type_is_400(alice: Account, unchanged: None) -> None:
    response = alice.client.post("/api/v1/files", headers={**named("a"), "Content-Type": "nonsense"}, content=b"d")
    assert_problem(response, 400, "content type")


@pytest.mark.parametrize("content_type", ["text/html\n", "text/plain;\ncharset=x", 'a/b; c="\u00e9"'])
def test_a_content_type_that_cannot_be_a_header_is_400_on_every_upload_path(
    server: Server, alice: Account, unchanged: None, content_type: str
) -> None:
    """Such a type would be stored, then break every download of the file (the type is
    sent back as a header): it is refused on the way in, wherever a type is taken."""
    encoded = base64.b64encode(content_type.encode()).decode()
    metadata = f"filename {base64.b64encode(b'a.txt').decode()},filetype {encoded}"
    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": metadata}
    assert_problem(alice.client.post("/api/v1/uploads/", headers=tus), 400, "content type")
    link = alice.client.post("/api/v1/upload-requests", json={}).json()["token"]
    assert_problem(httpx.post(f"{server.url}/r/{link}/uploads/", headers=tus), 400, "content type")
    multipart = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        + b"Content-Type: "
        + content_type.encode()
        + b"\r\n\r\nx\r\n--b--\r\n"
    )
    response = alice.client.post(
        "/api/v1/files", content=multipart, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\ndata',
            "multipart/form-data; boundary=b",
            "ended early",
        ),
        (b"garbage without boundary", "multipart/form-data; boundary=b", "malformed"),
        (
            b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "no 'file' field",
        ),
        (
            b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
            "no filename",
        ),
        (b"x", "multipart/form-data", "boundary"),
    ],
    ids=["truncated", "garbage", "no-file-field", "no-filename", "no-boundary"],
)
def test_malformed_multipart_is_400(
    alice: Account, unchanged: None, body: bytes, content_type: str, detail: str
) -> None:
    for path in ("/api/v1/files", "/upload"):
        assert_problem(alice.client.post(path, content=body, headers={"Content-Type": content_type}), 400, detail)


def test_seed_upload_requires_multipart(alice: Account, unchanged: None) -> None:
    assert_problem(
        alice.client.post("/upload", content=b"raw", headers={"Content-Type": "application/octet-stream"}),
        400,
        "multipart",
    )


@pytest.mark.parametrize(
    ("params", "detail"), [({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"cursor": "!!"}, "cursor")]
)
def test_bad_list_parameters(alice: Account, params: dict[str, object], detail: str) -> None:
    response = alice.client.get("/api/v1/files", params=params)
    assert response.status_code in (400, 422)
    assert detail in response.json()["detail"]


def test_unknown_route_and_method_are_problems(alice: Account) -> None:
    assert_problem(alice.client.get("/api/v1/nothing"), 404, "Not Found")
    assert_problem(alice.client.put("/api/v1/files"), 405, "Method Not Allowed")


class TestSizeLimit:
    @pytest.fixture(scope="class")
    @classmethod
    def small(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Account]]:
        install = Installation(tmp_path_factory.mktemp("limit"), {"SEALBOX_MAX_UPLOAD_SIZE": "1M"})
        server = Server(install).start()
        assert server.admin_password is not None
        try:
            yield from ((server, account) for account in _account(server, "admin", server.admin_password))
        finally:
            server.stop()

    def test_over_limit_bodies_are_413_and_leave_nothing(self, small: tuple[Server, Account]) -> None:
        server, account = small
        too_big = os.urandom((1 << 20) + 1)

        def chunked() -> Iterator[bytes]:  # no Content-Length: caught while streaming
            for i in range(0, len(too_big), 100_000):
                yield too_big[i : i + 100_000]

        assert_problem(account.client.post("/api/v1/files", headers=named("a"), content=too_big), 413, "limit")
        assert_problem(account.client.post("/api/v1/files", headers=named("a"), content=chunked()), 413, "limit")
        for path in ("/api/v1/files", "/upload"):
            assert_problem(account.client.post(path, files={"file": ("a", too_big, "x/y")}), 413, "limit")
        assert server.install.blobs.stored() == set()
        assert account.client.get("/api/v1/files").json()["items"] == []
        exact = account.client.post("/api/v1/files", headers=named("a"), content=too_big[:-1])
        assert exact.status_code == 201


def test_client_disconnect_mid_upload_leaves_nothing(alice: Account, install: Installation, server: Server) -> None:
    before_blobs, before_list = stored_files(install), listing(alice)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /api/v1/files HTTP/1.1\r\nHost: x\r\nContent-Disposition: attachment; filename=cut.bin\r\n"
            + f"Authorization: Bearer {alice.token}\r\nContent-Length: 20000000\r\n\r\n".encode()
            # more than one S3 part, so an unfinished multipart upload exists on S3 too
            + os.urandom(12 << 20)
        )
        # Wait until the server holds an unfinished encrypted write, then vanish.
        wait_for(lambda: bool(install.blobs.partial()))
    assert wait_for(lambda: not install.blobs.partial()), install.blobs.partial()
    assert stored_files(install) == before_blobs
    assert listing(alice) == before_list


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
