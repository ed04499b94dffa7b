"""Files made of segments: the segment table's encoding and tag, and what the upload
and file services do with segments (completion without a second pass, reads across
segment boundaries, retried parts under fresh keys, delete and sweep)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.crypto.segments import encode_table, table_key, table_tag, verify_table
from sealbox.crypto.stream import HEADER_LEN, parse_header
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import ChecksumMismatch, Conflict, IntegrityFailure, InvalidInput
from sealbox.files.service import FileService, blob_key
from sealbox.ids import FileId, UserId
from sealbox.models import File, FileSegment, Upload, UploadPart
from sealbox.sharing.gate import AsUser, Gate
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Checksum, Holder, UploadService

DEK = bytes(range(32))
FILE = uuid.UUID(int=7).bytes
ACTOR = Actor("owner")
TAGS = [bytes([i]) * 32 for i in range(1, 5)]
TABLE = [(TAGS[0], 10), (TAGS[1], 20), (TAGS[2], 30)]


# The table


def test_the_table_has_fixed_width_fields_in_order() -> None:
    encoded = encode_table(FILE, TABLE)
    assert len(encoded) == 16 + 8 + 40 * 3
    assert encoded[:16] == FILE
    assert int.from_bytes(encoded[16:24], "big") == 3
    for i, (tag, size) in enumerate(TABLE):
        entry = encoded[24 + 40 * i : 24 + 40 * (i + 1)]
        assert entry[:32] == tag
        assert int.from_bytes(entry[32:], "big") == size


@given(
    st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1)), max_size=6),
    st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1)), max_size=6),
)
def test_different_tables_never_encode_alike(a: list[tuple[bytes, int]], b: list[tuple[bytes, int]]) -> None:
    assert (encode_table(FILE, a) == encode_table(FILE, b)) == (a == b)


CHANGES: dict[str, tuple[bytes, bytes, list[tuple[bytes, int]]]] = {
    "reordered": (DEK, FILE, [TABLE[1], TABLE[0], TABLE[2]]),
    "dropped-last": (DEK, FILE, TABLE[:2]),
    "dropped-first": (DEK, FILE, TABLE[1:]),
    "duplicated": (DEK, FILE, [*TABLE, TABLE[0]]),
    "tag-swapped": (DEK, FILE, [(TAGS[3], 10), TABLE[1], TABLE[2]]),
    "size-edited": (DEK, FILE, [(TAGS[0], 11), TABLE[1], TABLE[2]]),
    "size-moved": (DEK, FILE, [(TAGS[0], 9), (TAGS[1], 21), TABLE[2]]),
    "other-file": (DEK, uuid.UUID(int=8).bytes, TABLE),
    "other-key": (bytes(32), FILE, TABLE),
    "empty": (DEK, FILE, []),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_the_table_fails_its_tag(change: str) -> None:
    tag = table_tag(DEK, FILE, TABLE)
    verify_table(DEK, FILE, TABLE, tag)  # the table as made verifies
    dek, file_id, table = CHANGES[change]
    with pytest.raises(IntegrityError, match="segment table failed authentication"):
        verify_table(dek, file_id, table, tag)


def test_the_table_key_is_its_own() -> None:
    """K_tab is derived with its own label: not the DEK, and different per DEK."""
    assert table_key(DEK) != DEK
    assert table_key(DEK) != table_key(bytes(32))
    assert len(table_key(DEK)) == 32


@pytest.mark.parametrize(
    ("file_id", "table", "message"),
    [
        (b"short", TABLE, "file_id is 16 bytes"),
        (FILE, [(b"x" * 31, 1)], "a header tag is 32 bytes"),
        (FILE, [(TAGS[0], -1)], "64-bit unsigned"),
        (FILE, [(TAGS[0], 2**64)], "64-bit unsigned"),
    ],
)
def test_malformed_tables_are_refused(file_id: bytes, table: list[tuple[bytes, int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_table(file_id, table)


# The services


class RecordingStore(MemoryStore):
    """A memory store that also keeps the header of every blob ever written to it,
    including those deleted afterwards (a discarded part)."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[str, bytes]] = []

    async def put(self, key: str, chunks: AsyncIterable[bytes | bytearray]) -> int:
        head = bytearray()

        async def tee() -> AsyncIterator[bytes | bytearray]:
            async for chunk in chunks:
                if len(head) < HEADER_LEN:
                    head.extend(chunk[: HEADER_LEN - len(head)])
                yield chunk

        try:
            return await super().put(key, tee())
        finally:
            if len(head) == HEADER_LEN:
                self.headers.append((key, bytes(head)))


async def _source(data: bytes, fail: Exception | None = None) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 50_000):
        yield data[i : i + 50_000]
    if fail is not None:
        raise fail


Scenario = Callable[[FileService, UploadService, UserId, RecordingStore], Awaitable[None]]


def _run(tmp_path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        store = RecordingStore()
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            keyring = Keyring([new_master_key("k1")])
            files = FileService(db, store, keyring, audit, 1 << 30)
            uploads = UploadService(db, store, keyring, files, timedelta(hours=1))
            await scenario(files, uploads, UserId(uuid.UUID(user.id)), store)
        finally:
            await db.dispose()

    asyncio.run(main())


async def _read(files: FileService, owner: UserId, file_id: uuid.UUID, start: int, end: int) -> bytes:
    opened = await Gate(files.db, files, files.audit).open(AsUser(owner, ACTOR), FileId(file_id))
    return b"".join([bytes(piece) async for piece in opened.download.content(start, end)])


async def _upload(uploads: UploadService, owner: UserId, parts: list[bytes]) -> uuid.UUID:
    holder = Holder(user_id=owner)
    row = await uploads.create(holder, sum(map(len, parts)), "s.bin", None, "someone")
    offset = 0
    for part in parts:
        state = await uploads.append(row.id, holder, offset, _source(part), None, ACTOR)
        offset = state.offset
    assert state.file_id == str(row.file_id)
    assert row.file_id != row.id  # the upload's id (in its URL) is not the file's
    return row.file_id


def test_a_completed_upload_is_its_parts_and_reads_across_every_boundary(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        parts = [os.urandom(n) for n in (70_000, 1, 65_536, 200_000)]
        data = b"".join(parts)
        written = len(store.headers)
        file_id = await _upload(uploads, owner, parts)
        assert len(store.headers) == written + 4  # one blob per part, and nothing sealed at completion
        async with files.db.read() as session:
            row = await session.get(File, file_id)
            assert row is not None
            assert (row.segments, row.size) == (4, len(data))
            assert (await session.execute(select(func.count()).select_from(UploadPart))).scalar_one() == 0
        assert blob_key(file_id) not in store.blobs
        described = files.describe(row)
        assert (described.name, described.size) == ("s.bin", len(data))
        assert files.uploader(row) == "someone"
        edges = [0, 69_999, 70_000, 70_001, 135_536, 135_537, len(data) - 1]
        for start in edges:
            for end in edges:
                if start <= end:
                    assert await _read(files, owner, file_id, start, end) == data[start : end + 1]

    _run(tmp_path, scenario)


def test_retried_parts_with_other_bytes_never_reuse_a_key_and_nonce(tmp_path: Path) -> None:
    """Every part ever sealed, stored or discarded, has its own payload key: the nonces
    of one stream (chunk index, final flag) restart at 0 in each, so distinct keys are
    what keeps every (key, nonce) pair used once."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        holder = Holder(user_id=owner)
        size = 100_000
        row = await uploads.create(holder, 3 * size, "r.bin", None, None)
        first = os.urandom(size)
        # A part whose checksum fails: sealed, written, then discarded.
        wrong = Checksum("sha256", hashlib.sha256(b"other").digest())
        with pytest.raises(ChecksumMismatch):
            await uploads.append(row.id, holder, 0, _source(os.urandom(size)), wrong, ACTOR)
        # A part whose body breaks off: sealed in part, never stored.
        with pytest.raises(ConnectionError):
            await uploads.append(row.id, holder, 0, _source(os.urandom(size), ConnectionError()), None, ACTOR)
        await uploads.append(row.id, holder, 0, _source(first), None, ACTOR)
        # Two racing retries of the next part, with different bytes: one wins.
        seconds = [os.urandom(size), os.urandom(size)]
        results = await asyncio.gather(
            *(uploads.append(row.id, holder, size, _source(body), None, ACTOR) for body in seconds),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conflict) for r in results) == 1
        won = seconds[[isinstance(r, Conflict) for r in results].index(False)]
        await uploads.append(row.id, holder, 2 * size, _source(first), None, ACTOR)  # same bytes again

        dek = await _dek(files, row.file_id)
        sealed = [parse_header(header, dek, row.file_id.bytes)[1] for _, header in store.headers]
        assert len(sealed) >= 5  # the discarded, the first, both racers, the last
        assert len(set(sealed)) == len(sealed)
        assert await _read(files, owner, row.file_id, 0, 3 * size - 1) == first + won + first

    _run(tmp_path, scenario)


async def _dek(files: FileService, file_id: uuid.UUID) -> bytes:
    async with files.db.read() as session:
        row = await session.get(File, file_id)
    assert row is not None
    return files.dek(row)


def test_delete_removes_every_segment_and_sweep_keeps_live_ones(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        kept = await _upload(uploads, owner, [os.urandom(1000), os.urandom(2000)])
        gone = await _upload(uploads, owner, [os.urandom(1000), os.urandom(2000)])
        async with files.db.read() as session:
            rows = (await session.execute(select(FileSegment.file_id, FileSegment.key))).all()
        assert {file_id for file_id, _ in rows} == {kept, gone}
        live = {key for file_id, key in rows if file_id == kept}
        doomed = {key for file_id, key in rows if file_id == gone}
        assert len(live) == len(doomed) == 2
        # Every blob is old enough to sweep: only what no row refers to goes.
        assert await uploads.sweep(timedelta(seconds=-60)) == 0
        assert await files.sweep(timedelta(seconds=-60)) == 0
        assert live | doomed <= set(store.blobs)
        await files.delete(owner, FileId(gone), ACTOR)
        assert not doomed & set(store.blobs)
        # A segment left behind by a delete that could not reach the store is an orphan.
        orphan = next(iter(doomed))
        store.blobs[orphan] = store.blobs[next(iter(live))]
        assert await uploads.sweep(timedelta(seconds=-60)) == 1
        assert {key for key in store.blobs if key.startswith("uploads/")} == live
        assert await _read(files, owner, kept, 0, 2999) != b""

    _run(tmp_path, scenario)


def test_an_empty_upload_becomes_a_file_of_one_empty_segment(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        holder = Holder(user_id=owner)
        row = await uploads.create(holder, 0, "e.txt", None, None)
        state = await uploads.append(row.id, holder, 0, _source(b""), None, ACTOR)
        assert state.file_id == str(row.file_id)
        async with files.db.read() as session:
            file = await session.get(File, row.file_id)
        assert file is not None
        assert (file.segments, file.size) == (1, 0)
        assert blob_key(row.file_id) not in store.blobs
        opened = await Gate(files.db, files, files.audit).open(AsUser(owner, ACTOR), FileId(row.file_id))
        assert opened.download.file.size == 0

    _run(tmp_path, scenario)


def test_an_upload_has_a_bounded_number_of_parts(tmp_path: Path) -> None:
    """Each part is a segment its file's every download opens before its first byte, so
    their number is bounded: once an upload has all its parts but one, a PATCH that
    does not end it is refused and stores nothing; the rest in one PATCH completes it."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        uploads.max_parts = 3
        holder = Holder(user_id=owner)
        data = os.urandom(40)
        row = await uploads.create(holder, len(data), "p.bin", None, None)
        for i in range(2):
            await uploads.append(row.id, holder, 10 * i, _source(data[10 * i : 10 * (i + 1)]), None, ACTOR)
        stored = set(store.blobs)
        with pytest.raises(InvalidInput, match="at most 3 parts: send the remaining 20 bytes in one PATCH"):
            await uploads.append(row.id, holder, 20, _source(data[20:30]), None, ACTOR)
        assert set(store.blobs) == stored  # the refused part is not kept
        assert (await uploads.state(row.id, holder)).offset == 20
        done = await uploads.append(row.id, holder, 20, _source(data[20:]), None, ACTOR)
        assert done.file_id is not None
        file_id = uuid.UUID(done.file_id)
        async with files.db.read() as session:
            count = await session.execute(select(func.count()).where(FileSegment.file_id == file_id))
        assert count.scalar_one() == 3
        assert await _read(files, owner, file_id, 0, len(data) - 1) == data

    _run(tmp_path, scenario)


def test_a_part_whose_tag_was_removed_does_not_complete_an_upload(tmp_path: Path) -> None:
    """A part without its tag passes only for an upload begun before revision 0009 (bound
    to its own id); for any other, completion refuses and records nothing."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        holder = Holder(user_id=owner)
        data = os.urandom(20)
        row = await uploads.create(holder, len(data), "t.bin", None, None)
        await uploads.append(row.id, holder, 0, _source(data[:10]), None, ACTOR)
        async with files.db.write() as session:
            await session.execute(update(UploadPart).where(UploadPart.upload_id == row.id).values(tag=None))
        with pytest.raises(IntegrityFailure, match="stored upload data failed authentication"):
            await uploads.append(row.id, holder, 10, _source(data[10:]), None, ACTOR)
        assert (await uploads.state(row.id, holder)).offset == 10
        async with files.db.read() as session:
            assert (await session.execute(select(func.count()).select_from(File))).scalar_one() == 0

    _run(tmp_path, scenario)


def test_racing_completions_of_an_empty_upload_leave_its_file_readable(tmp_path: Path) -> None:
    """Two PATCHes that complete an upload of no bytes at once: one wins, and the loser
    removes only what it wrote itself, never the winner's blob."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        holder = Holder(user_id=owner)
        row = await uploads.create(holder, 0, "empty.bin", None, None)
        results = await asyncio.gather(
            *(uploads.append(row.id, holder, 0, _source(b""), None, ACTOR) for _ in range(2)),
            return_exceptions=True,
        )
        done = [r for r in results if not isinstance(r, BaseException)]
        assert len(done) == 1
        assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
        assert done[0].file_id is not None
        assert await _read(files, owner, uuid.UUID(done[0].file_id), 0, -1) == b""
        opened = await Gate(files.db, files, files.audit).open(AsUser(owner, ACTOR), FileId(uuid.UUID(done[0].file_id)))
        assert opened.download.file.size == 0

    _run(tmp_path, scenario)


def test_an_upload_whose_length_was_cut_does_not_complete_truncated(tmp_path: Path) -> None:
    """The declared length edited in the record down to the offset reached: an empty
    PATCH would then complete the upload as a shorter file. The part tags bind the
    length declared when the parts were accepted, so completion refuses."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: RecordingStore) -> None:
        holder = Holder(user_id=owner)
        data = os.urandom(30)
        row = await uploads.create(holder, len(data), "cut.bin", None, None)
        for i in range(2):
            await uploads.append(row.id, holder, 10 * i, _source(data[10 * i : 10 * (i + 1)]), None, ACTOR)
        async with files.db.write() as session:
            await session.execute(update(Upload).where(Upload.id == row.id).values(length=20))
        with pytest.raises(IntegrityFailure, match="stored upload data failed authentication"):
            await uploads.append(row.id, holder, 20, _source(b""), None, ACTOR)
        async with files.db.read() as session:
            assert (await session.execute(select(func.count()).select_from(File))).scalar_one() == 0

    _run(tmp_path, scenario)
