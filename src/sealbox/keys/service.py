"""Master-key operations. Blobs are never read or written here: rotating a key re-wraps
the small per-file keys in the database, and the data stays as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sealbox.audit.service import Actor, Audit, Event
from sealbox.crypto.errors import IntegrityError, KeyringError, UnknownKeyId
from sealbox.crypto.keys import (
    Keyring,
    MasterKey,
    WrapDomain,
    load_keyring_file,
    new_master_key,
    open_backup,
    replace_keyring_file,
    seal_backup,
    wrap_domain,
    write_keyring_file,
)
from sealbox.db.session import Database
from sealbox.errors import Conflict, IntegrityFailure, InvalidInput, NotFound, SetupError
from sealbox.keys.repository import WrappedKeyRepository


@dataclass(frozen=True)
class KeyStatus:
    id: str
    primary: bool
    created_at: str
    files: int


@dataclass(frozen=True)
class Status:
    keys: list[KeyStatus]
    unused: list[str]  # in the keyring, wrapping no file
    missing: dict[str, int]  # referenced by files, absent from the keyring: an error


class KeyService:
    """Operates on the keyring file at ``path`` and the wrapped keys in ``db``."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self.audit = Audit(db)

    def keyring(self) -> Keyring:
        return load_keyring(self.path)

    async def status(self) -> Status:
        ring = self.keyring()
        async with self.db.read() as session:
            counts = await WrappedKeyRepository(session).counts()
        keys = [KeyStatus(k.id, i == 0, k.created_at, counts.get(k.id, 0)) for i, k in enumerate(ring.keys)]
        return Status(
            keys=keys,
            unused=[k.id for k in keys if k.files == 0],
            missing={key_id: n for key_id, n in counts.items() if key_id not in ring.ids},
        )

    async def rotate(self) -> MasterKey:
        """Add a new primary key; the others stay and still open what they wrapped."""
        key = new_master_key()
        replace_keyring_file(self.path, self.keyring().with_primary(key))
        await self.audit.record(Event("key.rotate", Actor.operator(), target=key.id))
        return key

    async def pending(self) -> int:
        """How many files have their key wrapped by a key other than the primary."""
        async with self.db.read() as session:
            return await WrappedKeyRepository(session).count_not_on(self.keyring().primary.id)

    async def rewrap(self, batch: int = 100) -> AsyncIterator[int]:
        """Re-wrap every file key under the primary; yield how many each batch moved.

        Each row is updated by compare-and-swap, in transactions of ``batch`` rows, so
        the work can be interrupted and resumed, and uploads, downloads and deletions
        may go on meanwhile (a row that changed is simply left for the next pass).
        """
        ring = self.keyring()
        primary = ring.primary.id
        skipped: set[object] = set()
        total = 0
        while True:
            async with self.db.read() as session:
                rows = await WrappedKeyRepository(session).batch_not_on(primary, batch + len(skipped))
            rows = [row for row in rows if row[0] not in skipped]
            if not rows:
                await self.audit.record(Event("key.rewrap", Actor.operator(), target=primary, detail={"files": total}))
                return
            moved = 0
            async with self.db.write() as session:
                repository = WrappedKeyRepository(session)
                for file_id, key_id, wrapped, wrap_format in rows[:batch]:
                    try:
                        dek = ring.unwrap(key_id, file_id.bytes, wrapped, wrap_domain(WrapDomain.FILE, wrap_format))
                    except (UnknownKeyId, IntegrityError) as exc:
                        raise IntegrityFailure(f"the key of file {file_id} cannot be opened: {exc}") from None
                    if await repository.swap(
                        file_id, (key_id, wrapped), ring.wrap(file_id.bytes, dek, WrapDomain.FILE)
                    ):
                        moved += 1
                    else:
                        skipped.add(file_id)
            total += moved
            yield moved

    async def retire(self, key_id: str) -> None:
        """Remove ``key_id`` from the keyring, only if no file uses it and it is not primary."""
        ring = self.keyring()
        if key_id not in ring.ids:
            raise NotFound(f"key {key_id!r} is not in the keyring")
        if ring.primary.id == key_id:
            raise Conflict(f"key {key_id!r} is the primary key; rotate first")
        async with self.db.read() as session:
            users = (await WrappedKeyRepository(session).counts()).get(key_id, 0)
            uploads = await WrappedKeyRepository(session).uploads_on(key_id)
        if users:
            raise Conflict(f"{users} files still use key {key_id!r}; run 'sealbox keys rewrap' first")
        if uploads:
            raise Conflict(
                f"{uploads} resumable uploads in progress still use key {key_id!r}; "
                "retry once they have finished or expired (SEALBOX_UPLOAD_EXPIRY_HOURS)"
            )
        replace_keyring_file(self.path, ring.without(key_id))
        await self.audit.record(Event("key.retire", Actor.operator(), target=key_id))


def load_keyring(path: Path) -> Keyring:
    try:
        return load_keyring_file(path)
    except KeyringError as exc:
        raise SetupError(str(exc)) from None


def export_keyring(path: Path, passphrase: str) -> bytes:
    """A passphrase-protected backup of the keyring at ``path`` (needs no database)."""
    try:
        return seal_backup(load_keyring(path), passphrase)
    except KeyringError as exc:
        raise InvalidInput(str(exc)) from None


def import_keyring(path: Path, data: bytes, passphrase: str) -> list[str]:
    """Add a backup's keys to the keyring at ``path`` (created if absent); return the new ids.

    Refuses, changing nothing, if the backup holds a different key under an id that the
    keyring already has. Needs no database, so a keyring can be restored first.
    """
    try:
        backup = open_backup(data, passphrase)
        if not path.exists():
            write_keyring_file(path, backup)
            return [k.id for k in backup.keys]
        ring = load_keyring(path)
        merged = ring.merged(backup)
    except KeyringError as exc:
        raise InvalidInput(str(exc)) from None
    added = [k.id for k in merged.keys if k.id not in ring.ids]
    if added:
        replace_keyring_file(path, merged)
    return added
