"""Promise 2: tampered, truncated, extended or swapped blobs never download as wrong bytes.

Each download must fail loudly: an error status before any byte, or a connection cut
before the end of the body.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx2 as httpx
import pytest

from sealbox.crypto.stream import HEADER_LEN, TAG_LEN
from tests.integration.conftest import Account
from tests.integration.server import Installation, blob_key, named

C = 1 << 16
SEALED = C + TAG_LEN


def flip(offset: int) -> Callable[[bytes], bytes]:
    def change(blob: bytes) -> bytes:
        at = offset % len(blob)
        return blob[:at] + bytes([blob[at] ^ 0x80]) + blob[at + 1 :]

    return change


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "header-bit": flip(30),
    "header-tag-bit": flip(70),
    "first-chunk-bit": flip(HEADER_LEN + 5),
    "last-tag-bit": flip(-1),
    "last-chunk-body-bit": flip(-TAG_LEN - 3),
    "truncated-at-chunk-boundary": lambda b: b[: HEADER_LEN + 2 * SEALED],
    "last-byte-cut": lambda b: b[:-1],
    "chunk-appended": lambda b: b + b[HEADER_LEN : HEADER_LEN + SEALED],
    "chunks-reordered": lambda b: (
        b[:HEADER_LEN]
        + b[HEADER_LEN + SEALED : HEADER_LEN + 2 * SEALED]
        + b[HEADER_LEN : HEADER_LEN + SEALED]
        + b[HEADER_LEN + 2 * SEALED :]
    ),
    "empty": lambda b: b"",
}


def attempt(account: Account, url: str, headers: dict[str, str] | None = None) -> tuple[int | None, int]:
    """(status, bytes received); status None when the connection was cut mid-body."""
    received = 0
    try:
        with account.client.stream("GET", url, headers=headers) as response:
            for chunk in response.iter_bytes():
                received += len(chunk)
            return response.status_code, received
    except httpx.TransportError:
        return None, received


def assert_refused(account: Account, file_id: str, size: int, headers: dict[str, str] | None = None) -> None:
    """Refused on every route that returns bytes: the owner's, the seed's and a share link's."""
    token = account.client.post(f"/api/v1/files/{file_id}/shares", json={}).json()["token"]
    for url in (f"/api/v1/files/{file_id}/content", f"/download/{file_id}", f"/s/{token}/download"):
        status, received = attempt(account, url, headers)
        if status is None:
            assert received < size
        else:
            assert status == 500
            response = account.client.get(url, headers=headers)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "the file could not be read safely"


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_tampered_blob_never_downloads(alice: Account, install: Installation, tampering: str) -> None:
    data = os.urandom(3 * C + 7)
    file_id = alice.client.post("/api/v1/files", headers=named("t.bin"), content=data).json()["id"]
    key = blob_key(file_id)
    install.blobs.write(key, TAMPERINGS[tampering](install.blobs.read(key)))
    assert_refused(alice, file_id, len(data))
    assert_refused(alice, file_id, len(data), {"Range": "bytes=0-99"})


def test_a_damaged_middle_chunk_cuts_the_connection_after_the_good_bytes(alice: Account, install: Installation) -> None:
    data = os.urandom(4 << 20)
    file_id = alice.client.post("/api/v1/files", headers=named("m.bin"), content=data).json()["id"]
    key = blob_key(file_id)
    chunk = 40  # about 2.5 MiB in: well after the response has started
    install.blobs.write(key, flip(HEADER_LEN + chunk * SEALED + 10)(install.blobs.read(key)))
    status, received = attempt(alice, f"/api/v1/files/{file_id}/content")
    assert status is None
    assert received <= chunk * C
    # Ranges that avoid the damaged chunk are still served, and are right.
    good = alice.client.get(f"/api/v1/files/{file_id}/content", headers={"Range": "bytes=0-1023"})
    assert good.status_code == 206
    assert good.content == data[:1024]


def test_swapped_blobs_of_the_same_size_are_refused(alice: Account, install: Installation) -> None:
    first, second = os.urandom(2 * C + 1), os.urandom(2 * C + 1)
    a = alice.client.post("/api/v1/files", headers=named("a.bin"), content=first).json()["id"]
    b = alice.client.post("/api/v1/files", headers=named("b.bin"), content=second).json()["id"]
    blob_a, blob_b = install.blobs.read(blob_key(a)), install.blobs.read(blob_key(b))
    install.blobs.write(blob_key(a), blob_b)
    install.blobs.write(blob_key(b), blob_a)
    assert_refused(alice, a, len(first))
    assert_refused(alice, b, len(second))


def test_a_missing_blob_is_an_error_not_an_empty_file(alice: Account, install: Installation) -> None:
    file_id = alice.client.post("/api/v1/files", headers=named("x.bin"), content=b"abc").json()["id"]
    install.blobs.delete(blob_key(file_id))
    assert_refused(alice, file_id, 3)


@pytest.mark.parametrize("extra", [1, 15, 16, 17, 64])
def test_bytes_appended_to_a_blob_are_refused(alice: Account, install: Installation, extra: int) -> None:
    """Appended bytes of any length, also after a nearly full last chunk (C-8 bytes here),
    where 16 of them once decoded to the same plaintext size."""
    data = os.urandom(3 * C - 8)
    file_id = alice.client.post("/api/v1/files", headers=named("x.bin"), content=data).json()["id"]
    key = blob_key(file_id)
    install.blobs.write(key, install.blobs.read(key) + os.urandom(extra))
    assert_refused(alice, file_id, len(data))
    assert_refused(alice, file_id, len(data), {"Range": "bytes=0-99"})
