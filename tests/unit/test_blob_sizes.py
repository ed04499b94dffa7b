"""A blob is accepted only if its size is exactly the sealed size of the plaintext size
recorded for it: bytes appended to it, of any length, are refused by every reader
(a file's blob, and each segment of a file made of a resumable upload's parts)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.errors import FormatError
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.crypto.stream import ALLOWED_CHUNK_LOG2, Sealer, plain_size_of, sealed_size
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import IntegrityFailure
from sealbox.files.service import FileService, blob_key, open_sealed
from sealbox.ids import FileId, UserId
from sealbox.models import UploadPart
from sealbox.sharing.gate import AsUser, Gate
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Holder, UploadService

C = 1 << 16
DEK = bytes(range(32))
BOUND = uuid.UUID(int=7).bytes
ACTOR = Actor("owner")


def sizes_around_boundaries(chunk: int, chunks: int = 4, spread: int = 40) -> list[int]:
    """Every plaintext size within ``spread`` bytes of the first ``chunks`` chunk boundaries."""
    return sorted({k * chunk + d for k in range(chunks + 1) for d in range(-spread, spread + 1) if k * chunk + d >= 0})


async def _source(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 50_000):
        yield data[i : i + 50_000]


async def _sealed(data: bytes, bound: bytes = BOUND, dek: bytes = DEK) -> tuple[bytes, bytes]:
    sealer = Sealer(dek, bound)
    blob = b"".join([bytes(piece) async for piece in sealer.seal(_source(data))])
    return blob, sealer.header.tag


@pytest.mark.parametrize("chunk_log2", sorted(ALLOWED_CHUNK_LOG2))
def test_no_extended_blob_size_maps_back_to_its_plaintext_size(chunk_log2: int) -> None:
    """Exhaustive over sizes around the boundaries and every appended length 1..64."""
    for plain in sizes_around_boundaries(1 << chunk_log2):
        size = sealed_size(plain, chunk_log2)
        assert plain_size_of(size, chunk_log2) == plain
        decoded = set()
        for extra in range(1, 65):
            try:
                decoded.add(plain_size_of(size + extra, chunk_log2))
            except FormatError:
                continue
        assert plain not in decoded


def test_sixteen_bytes_after_a_nearly_full_last_chunk_are_not_a_size() -> None:
    """The case the old arithmetic let through: a last chunk of C-15..C-1 bytes plus 16."""
    for last in range(C - 15, C):
        with pytest.raises(FormatError, match="not the sealed size of any plaintext"):
            plain_size_of(sealed_size(2 * C + last) + 16, 16)


# A plaintext size near a chunk boundary: whole chunks, then a last chunk that is nearly
# empty or nearly full (where the old arithmetic went wrong).
NEAR_BOUNDARY = st.builds(
    lambda chunks, last: chunks * C + last,
    st.integers(min_value=0, max_value=4),
    st.one_of(st.integers(min_value=0, max_value=40), st.integers(min_value=C - 40, max_value=C)),
)


@settings(max_examples=60, deadline=None)
@given(plain=NEAR_BOUNDARY, junk=st.binary(min_size=64, max_size=64))
def test_the_reader_refuses_a_blob_with_bytes_appended(plain: int, junk: bytes) -> None:
    """For each drawn size, every appended length 1..64 (the first ``n`` bytes of ``junk``)."""

    async def main() -> None:
        blob, tag = await _sealed(os.urandom(plain))
        store = MemoryStore()
        await store.put("files/aa/x", _source(blob))
        await open_sealed(store, "files/aa/x", DEK, BOUND, tag, plain)  # the blob as written opens
        for extra in range(1, 65):
            await store.put("files/aa/x", _source(blob + junk[:extra]))
            with pytest.raises(IntegrityFailure, match="stored data failed authentication"):
                await open_sealed(store, "files/aa/x", DEK, BOUND, tag, plain)

    asyncio.run(main())


def _run(tmp_path: Path, scenario: object) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        store = MemoryStore()
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            keyring = Keyring([new_master_key("k1")])
            files = FileService(db, store, keyring, audit, 1 << 30)
            uploads = UploadService(db, store, keyring, files, timedelta(hours=1))
            await scenario(files, uploads, UserId(uuid.UUID(user.id)), store)  # type: ignore[operator]
        finally:
            await db.dispose()

    asyncio.run(main())


@pytest.mark.parametrize("extra", [1, 15, 16, 17, 64])
def test_a_stored_file_with_bytes_appended_is_refused(tmp_path: Path, extra: int) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: MemoryStore) -> None:
        data = os.urandom(3 * C - 8)  # the last chunk holds C-8 bytes
        created = await files.upload(owner, "a.bin", None, _source(data), ACTOR)
        key = blob_key(uuid.UUID(created.id))
        blob = store.blobs[key][0]
        await store.put(key, _source(blob + os.urandom(extra)))
        with pytest.raises(IntegrityFailure, match="stored data failed authentication"):
            await Gate(files.db, files, files.audit).open(AsUser(owner, ACTOR), FileId(uuid.UUID(created.id)))

    _run(tmp_path, scenario)


@pytest.mark.parametrize("extra", [1, 15, 16, 17, 64])
def test_a_file_segment_with_bytes_appended_is_refused(tmp_path: Path, extra: int) -> None:
    """A completed upload keeps its parts as the file's segments; one of them extended
    (before or after the completion) makes the file unreadable before any byte."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId, store: MemoryStore) -> None:
        first, second = os.urandom(2 * C - 4), os.urandom(100)
        holder = Holder(user_id=owner)
        row = await uploads.create(holder, len(first) + len(second), "p.bin", None, None)
        await uploads.append(row.id, holder, 0, _source(first), None, ACTOR)
        async with files.db.read() as session:
            part = await session.get(UploadPart, (row.id, 0))
        assert part is not None
        await store.put(part.key, _source(store.blobs[part.key][0] + os.urandom(extra)))
        done = await uploads.append(row.id, holder, len(first), _source(second), None, ACTOR)
        assert done.file_id == str(row.bound_id)
        with pytest.raises(IntegrityFailure, match="stored data failed authentication"):
            await Gate(files.db, files, files.audit).open(AsUser(owner, ACTOR), FileId(row.bound_id))

    _run(tmp_path, scenario)
