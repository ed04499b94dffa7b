"""Promise 2 for files made of segments (a completed resumable upload): reordered,
dropped, duplicated or swapped segments, an edited segment table, a table replayed from
another upload, and a segment blob truncated or extended are all refused before any
byte of the file is sent, on every route that returns bytes.

Each tampering is done as someone with write access to the database and the blob store
would do it, keeping everything the reader could check without a key consistent (the
file's size and segment count, unique keys), so only the cryptography can catch it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest

from tests.integration.conftest import Account
from tests.integration.server import Installation
from tests.integration.test_tamper import SEALED, attempt
from tests.integration.test_tus import head, location, patch

PART = 2 * (1 << 16) + 5  # two full chunks and a bit: every part has the same size


def tus_file(account: Account, parts: int = 3) -> tuple[str, bytes]:
    """A file uploaded in ``parts`` PATCHes of ``PART`` bytes; (file id, its bytes)."""
    data = os.urandom(parts * PART)
    url = location(account, len(data), "seg.bin")
    for i in range(parts):
        response = patch(account, url, i * PART, data[i * PART : (i + 1) * PART])
        assert response.status_code == 204, response.text
    file_id = response.headers["sealbox-file-id"]
    got = account.client.get(f"/api/v1/files/{file_id}/content")
    assert got.status_code == 200
    assert got.content == data  # intact before the tampering
    return file_id, data


def db_id(install: Installation, file_id: str) -> object:
    """A file id as the database stores it: a UUID on PostgreSQL, 32 hex digits on SQLite."""
    return uuid.UUID(file_id) if install.postgres is not None else uuid.UUID(file_id).hex


def segments(install: Installation, file_id: str) -> list[tuple[int, str, int, int, bytes]]:
    """(seq, key, size, chunk_log2, header_tag) of the file's segments, in order."""
    rows = install.sql(
        "SELECT seq, key, size, chunk_log2, header_tag FROM file_segments WHERE file_id = :id ORDER BY seq",
        id=db_id(install, file_id),
    )
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), bytes(r[4])) for r in rows]


def assert_refused_before_any_byte(account: Account, file_id: str) -> None:
    """An integrity error status, on the owner's route, the seed's and a share link's,
    whole and ranged; never a single byte of the body."""
    token = account.client.post(f"/api/v1/files/{file_id}/shares", json={}).json()["token"]
    for url in (f"/api/v1/files/{file_id}/content", f"/download/{file_id}", f"/s/{token}/download"):
        for headers in (None, {"Range": "bytes=0-99"}, {"Range": f"bytes={PART + 10}-{PART + 20}"}):
            status, _ = attempt(account, url, headers)
            assert status == 500
            response = account.client.get(url, headers=headers)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "the file could not be read safely"


def reorder(install: Installation, file_id: str) -> None:
    # Segment 1 is read first, segment 0 second.
    for old, new in ((0, 100), (1, 0), (100, 1)):
        install.sql(
            "UPDATE file_segments SET seq = :new WHERE file_id = :id AND seq = :old",
            new=new,
            old=old,
            id=db_id(install, file_id),
        )


def drop(install: Installation, file_id: str) -> None:
    last = segments(install, file_id)[-1]
    install.sql("DELETE FROM file_segments WHERE file_id = :id AND seq = :seq", id=db_id(install, file_id), seq=last[0])
    install.sql(
        "UPDATE files SET segments = segments - 1, size = size - :size WHERE id = :id",
        size=last[2],
        id=db_id(install, file_id),
    )


def drop_middle(install: Installation, file_id: str) -> None:
    rows = segments(install, file_id)
    install.sql("DELETE FROM file_segments WHERE file_id = :id AND seq = 1", id=db_id(install, file_id))
    _, key, size, log2, tag = rows[2]
    install.sql("DELETE FROM file_segments WHERE file_id = :id AND seq = 2", id=db_id(install, file_id))
    install.sql(
        "INSERT INTO file_segments (file_id, seq, key, size, chunk_log2, header_tag) "
        "VALUES (:id, 1, :key, :size, :log2, :tag)",
        id=db_id(install, file_id),
        key=key,
        size=size,
        log2=log2,
        tag=tag,
    )
    install.sql(
        "UPDATE files SET segments = segments - 1, size = size - :size WHERE id = :id",
        size=rows[1][2],
        id=db_id(install, file_id),
    )


def duplicate(install: Installation, file_id: str) -> None:
    rows = segments(install, file_id)
    _, key, size, log2, tag = rows[0]
    copy = f"{key}0"
    install.blobs.write(copy, install.blobs.read(key))
    install.sql(
        "INSERT INTO file_segments (file_id, seq, key, size, chunk_log2, header_tag) "
        "VALUES (:id, :seq, :key, :size, :log2, :tag)",
        id=db_id(install, file_id),
        seq=len(rows),
        key=copy,
        size=size,
        log2=log2,
        tag=tag,
    )
    install.sql(
        "UPDATE files SET segments = segments + 1, size = size + :size WHERE id = :id",
        size=size,
        id=db_id(install, file_id),
    )


def swap_blobs(install: Installation, file_id: str) -> None:
    first, second = segments(install, file_id)[:2]
    a, b = install.blobs.read(first[1]), install.blobs.read(second[1])
    install.blobs.write(first[1], b)
    install.blobs.write(second[1], a)


def edit_size(install: Installation, file_id: str) -> None:
    # Move a byte from one segment's recorded size to another's: the total stays.
    install.sql("UPDATE file_segments SET size = size - 1 WHERE file_id = :id AND seq = 0", id=db_id(install, file_id))
    install.sql("UPDATE file_segments SET size = size + 1 WHERE file_id = :id AND seq = 1", id=db_id(install, file_id))


def edit_table_tag(install: Installation, file_id: str) -> None:
    (tag,) = install.sql("SELECT header_tag FROM files WHERE id = :id", id=db_id(install, file_id))[0]
    changed = bytes([bytes(tag)[0] ^ 1]) + bytes(tag)[1:]
    install.sql("UPDATE files SET header_tag = :tag WHERE id = :id", tag=changed, id=db_id(install, file_id))


def truncate(install: Installation, file_id: str) -> None:
    key = segments(install, file_id)[1][1]
    install.blobs.write(key, install.blobs.read(key)[: -(SEALED // 2)])


def cut_last_byte(install: Installation, file_id: str) -> None:
    key = segments(install, file_id)[2][1]
    install.blobs.write(key, install.blobs.read(key)[:-1])


def extend(install: Installation, file_id: str) -> None:
    key = segments(install, file_id)[0][1]
    install.blobs.write(key, install.blobs.read(key) + os.urandom(17))


def missing(install: Installation, file_id: str) -> None:
    install.blobs.delete(segments(install, file_id)[1][1])


TAMPERINGS: dict[str, Callable[[Installation, str], None]] = {
    "reordered": reorder,
    "last-dropped": drop,
    "middle-dropped": drop_middle,
    "duplicated": duplicate,
    "blobs-swapped": swap_blobs,
    "sizes-edited": edit_size,
    "table-tag-edited": edit_table_tag,
    "segment-truncated": truncate,
    "segment-last-byte-cut": cut_last_byte,
    "segment-extended": extend,
    "segment-missing": missing,
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_a_tampered_file_of_segments_never_downloads(alice: Account, install: Installation, tampering: str) -> None:
    file_id, _ = tus_file(alice)
    assert len(segments(install, file_id)) == 3
    TAMPERINGS[tampering](install, file_id)
    assert_refused_before_any_byte(alice, file_id)


def test_a_table_replayed_from_another_upload_is_refused(alice: Account, install: Installation) -> None:
    """Another upload's whole table (its tag, its segment rows, its blobs copied under
    new keys) put in place of this file's: bound to another id and another key."""
    victim, _ = tus_file(alice)
    other, _ = tus_file(alice)
    install.sql("DELETE FROM file_segments WHERE file_id = :id", id=db_id(install, victim))
    for seq, key, size, log2, tag in segments(install, other):
        copy = f"{key}0"
        install.blobs.write(copy, install.blobs.read(key))
        install.sql(
            "INSERT INTO file_segments (file_id, seq, key, size, chunk_log2, header_tag) "
            "VALUES (:id, :seq, :key, :size, :log2, :tag)",
            id=db_id(install, victim),
            seq=seq,
            key=copy,
            size=size,
            log2=log2,
            tag=tag,
        )
    (tag,) = install.sql("SELECT header_tag FROM files WHERE id = :id", id=db_id(install, other))[0]
    install.sql("UPDATE files SET header_tag = :tag WHERE id = :id", tag=tag, id=db_id(install, victim))
    assert_refused_before_any_byte(alice, victim)
    # The upload it came from is untouched and still reads.
    assert alice.client.get(f"/api/v1/files/{other}/content").status_code == 200


@pytest.mark.parametrize("seq", [0, 1, 2])
def test_a_segment_presented_as_the_whole_file_is_refused(alice: Account, install: Installation, seq: int) -> None:
    """The record turned into a one-blob file whose blob is one of its own segments
    (copied to the file's blob key, with that segment's header tag and size): every
    segment is a valid sealbox stream under the file's key, bound to the file's id, so
    only the file key's wrapping can tell that this key never sealed a whole file.
    Otherwise a part of the file (any one, or a part discarded on a retry) would be
    sent as if it were the whole file."""
    file_id, data = tus_file(alice)
    token = alice.client.post(f"/api/v1/files/{file_id}/shares", json={}).json()["token"]
    _, key, size, log2, tag = segments(install, file_id)[seq]
    hex_id = uuid.UUID(file_id).hex
    install.blobs.write(f"files/{hex_id[:2]}/{hex_id}", install.blobs.read(key))
    install.sql("DELETE FROM file_segments WHERE file_id = :id", id=db_id(install, file_id))
    install.sql(
        "UPDATE files SET segments = 0, size = :size, chunk_log2 = :log2, header_tag = :tag WHERE id = :id",
        size=size,
        log2=log2,
        tag=tag,
        id=db_id(install, file_id),
    )
    for url in (f"/api/v1/files/{file_id}/content", f"/download/{file_id}", f"/s/{token}/download"):
        for headers in (None, {"Range": "bytes=0-99"}):
            status, _ = attempt(alice, url, headers)
            assert status == 500
            response = alice.client.get(url, headers=headers)
            assert response.headers["content-type"] == "application/problem+json"
            assert data[seq * PART : seq * PART + 100] not in response.content


def _upload_id(url: str) -> object:
    return uuid.UUID(url.rsplit("/", 1)[-1])


def _parts(install: Installation, url: str) -> list[tuple[int, str, int, int, bytes]]:
    upload = _upload_id(url)
    rows = install.sql(
        "SELECT seq, key, size, chunk_log2, header_tag FROM upload_parts WHERE upload_id = :id ORDER BY seq",
        id=upload if install.postgres is not None else upload.hex,  # type: ignore[attr-defined]
    )
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), bytes(r[4])) for r in rows]


def _set_part(install: Installation, url: str, seq: int, key: str, tag: bytes) -> None:
    upload = _upload_id(url)
    install.sql(
        "UPDATE upload_parts SET key = :key, header_tag = :tag WHERE upload_id = :id AND seq = :seq",
        key=key,
        tag=tag,
        seq=seq,
        id=upload if install.postgres is not None else upload.hex,  # type: ignore[attr-defined]
    )


def parts_reordered(install: Installation, url: str) -> None:
    first, second = _parts(install, url)[:2]
    _set_part(install, url, 0, f"{first[1]}x", first[4])  # free the key for a moment
    _set_part(install, url, 1, first[1], first[4])
    _set_part(install, url, 0, second[1], second[4])


def parts_duplicated(install: Installation, url: str) -> None:
    first = _parts(install, url)[0]
    copy = f"{first[1]}0"
    install.blobs.write(copy, install.blobs.read(first[1]))
    _set_part(install, url, 1, copy, first[4])


UPLOAD_TAMPERINGS: dict[str, Callable[[Installation, str], None]] = {
    "reordered": parts_reordered,
    "duplicated": parts_duplicated,
}


@pytest.mark.parametrize("tampering", list(UPLOAD_TAMPERINGS))
def test_parts_tampered_before_completion_never_become_a_readable_file(
    alice: Account, install: Installation, tampering: str
) -> None:
    """Parts of an upload in progress reordered or duplicated in ``upload_parts`` (parts
    of one size, as clients send them) before its last PATCH: the table that completion
    authenticates must not take them as they are now, or the file would read, with 200,
    in another order than it was sent."""
    data = os.urandom(3 * PART)
    url = location(alice, len(data), "parts.bin")
    for i in range(2):
        assert patch(alice, url, i * PART, data[i * PART : (i + 1) * PART]).status_code == 204
    UPLOAD_TAMPERINGS[tampering](install, url)
    last = patch(alice, url, 2 * PART, data[2 * PART :])
    if last.status_code == 204:
        file_id = last.headers["sealbox-file-id"]
        got = alice.client.get(f"/api/v1/files/{file_id}/content")
        assert got.status_code == 500
        assert got.content != data
    else:
        assert last.status_code == 500
        assert last.headers["content-type"] == "application/problem+json"
        # Nothing was completed: the upload still waits for its last part.
        assert head(alice, url).headers["upload-offset"] == str(2 * PART)
