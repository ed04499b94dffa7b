"""Files stored before folders (schema 0011) get their listing name and name tag when
the server starts: every file listed once, under its own name, a second file of one name
at the top numbered, and a second run (or a concurrent one) changes nothing.

FileService and FolderService over a real SQLite file (and PostgreSQL for the concurrent
fill), a keyring file and the in-memory store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from sealbox.crypto.keys import FieldCipher, Keyring, KeyringFile, WrapDomain, new_dek, new_master_key
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.files.folders import FolderService
from sealbox.files.legacy import Filled, fill_listed_names
from sealbox.files.service import FileService
from sealbox.ids import FileId, UserId
from sealbox.models import File
from tests.unit.test_rotation import ACTOR, World, _chunks, _url, run


async def _forget_listing(db: Database, file_id: str) -> None:
    """Make the file look as one stored before 0011 did."""
    async with db.write() as session:
        await session.execute(
            update(File).where(File.id == uuid.UUID(file_id)).values(listed_name_enc=None, name_tag=None)
        )


async def _names(folders: FolderService, owner: UserId) -> list[tuple[str, str]]:
    page = await folders.page(owner, None, limit=1000)
    assert page.total == len(page.items)
    return [(item.kind, item.name) for item in page.items]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_old_files_are_listed_once_with_their_names_and_a_duplicate_is_numbered(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    async def scenario(w: World) -> None:
        folders = FolderService(w.files)
        made = {}
        # Each stored, then made old, before the next: old files were never checked
        # against each other, so two can share a name (and one a folder's).
        for label, name in [("first", "a.txt"), ("second", "a.txt"), ("third", "photos"), ("other", "b.txt")]:
            made[label] = (await w.files.upload(w.owner, name, None, _chunks(label.encode()), ACTOR)).id
            await _forget_listing(w.db, made[label])
        await folders.create(w.owner, None, "photos", ACTOR)  # made since, by a current server
        async with w.db.write() as session:  # an order by age that the fill must follow
            for age, label in enumerate(["first", "second", "third", "other"]):
                when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=age)
                await session.execute(update(File).where(File.id == uuid.UUID(made[label])).values(created_at=when))

        # Two servers starting at once over one database.
        other = w.service(KeyringFile(w.path))
        results = await asyncio.gather(fill_listed_names(w.files, batch=2), fill_listed_names(other, batch=2))
        assert sum(r.files for r in results) == 4
        assert sum(r.renamed for r in results) == 2
        assert sum(r.failed for r in results) == 0
        assert await fill_listed_names(w.files) == Filled(0, 0, 0)

        assert await _names(folders, w.owner) == [
            ("folder", "photos"),
            ("file", "a (2).txt"),
            ("file", "a.txt"),
            ("file", "b.txt"),
            ("file", "photos (2)"),
        ]
        by_id = {item.id: item.name for item in (await folders.page(w.owner, None)).items}
        assert by_id[made["first"]] == "a.txt"  # the older keeps its name
        assert by_id[made["second"]] == "a (2).txt"
        # The file's own copy of its name (downloads, links) says the same.
        for label in made:
            record = await w.files.record(FileId(uuid.UUID(made[label])))
            assert record is not None
            assert record.name_tag is not None
            assert w.files.describe(record).name == by_id[made[label]]
        # Names are unique again: a new "a.txt" is numbered past both.
        again = await w.files.upload(w.owner, "a.txt", None, _chunks(b"new"), ACTOR)
        assert again.name == "a (3).txt"

    run(tmp_path, scenario, _url(request, backend))


def test_a_database_made_at_0010_is_listed_after_migrating_and_filling(tmp_path: Path) -> None:
    """A real 0010 database (files rows as that release wrote them) migrated to the
    current schema: after the fill, the listing shows every file once, by name."""
    from alembic import command

    from sealbox.audit.service import Audit
    from sealbox.db.migrate import _config
    from sealbox.storage.memory import MemoryStore

    path = tmp_path / "keyring.json"
    ring = Keyring([new_master_key("k1")])
    from sealbox.crypto.keys import write_keyring_file

    write_keyring_file(path, ring)
    owner = uuid.uuid4()
    stored = ["report.pdf", "report.pdf", "notes.txt", "Ünïcode ✓.md"]
    ids = [uuid.uuid4() for _ in stored]

    async def main() -> list[tuple[str, str]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0010"))
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, is_admin, is_active, created_at) "
                        "VALUES (:id, 'u', 'h', 0, 1, '2026-01-01 00:00:00')"
                    ),
                    {"id": owner.hex},
                )
                for n, (file_id, name) in enumerate(zip(ids, stored, strict=True)):
                    dek = new_dek()
                    key_id, wrapped = ring.wrap(file_id.bytes, dek, WrapDomain.FILE)
                    fields = FieldCipher(dek, file_id.bytes)
                    await conn.execute(
                        text(
                            "INSERT INTO files (id, owner_id, name_enc, content_type_enc, size, chunk_log2, key_id, "
                            "wrapped_dek, header_tag, created_at, wrap_format, segments) VALUES (:id, :owner, "
                            ":name, :type, 5, 16, :key_id, :wrapped, :tag, :at, 2, 0)"
                        ),
                        {
                            "id": file_id.hex,
                            "owner": owner.hex,
                            "name": fields.encrypt("name", name),
                            "type": fields.encrypt("content_type", "text/plain"),
                            "key_id": key_id,
                            "wrapped": wrapped,
                            "tag": bytes(32),
                            "at": f"2026-01-01 00:00:0{n}",
                        },
                    )
            await upgrade(db)
            files = FileService(db, MemoryStore(), KeyringFile(path), Audit(db), 1 << 30)
            assert await fill_listed_names(files) == Filled(4, 1, 0)
            async with db.engine.connect() as conn:
                nulls = "SELECT count(*) FROM files WHERE listed_name_enc IS NULL OR name_tag IS NULL"
                assert (await conn.execute(text(nulls))).scalar_one() == 0
            return await _names(FolderService(files), UserId(owner))
        finally:
            await db.dispose()

    assert asyncio.run(main()) == [
        ("file", "notes.txt"),
        ("file", "report (2).pdf"),
        ("file", "report.pdf"),
        ("file", "Ünïcode ✓.md"),
    ]
