"""Master-key operations. Blobs are never read or written here: rotating a key re-wraps
the small per-file keys in the database, and the data stays as it is.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealbox.audit.service import Actor, Audit, Event
from sealbox.crypto.backup import open_backup, seal_backup
from sealbox.crypto.errors import IntegrityError, KeyringError, UnknownKeyId
from sealbox.crypto.keys import (
    Keyring,
    MasterKey,
    WrapDomain,
    file_wrap_domain,
    file_wrapping,
    load_keyring_file,
    new_master_key,
    replace_keyring_file,
    wrap_domain,
    write_keyring_file,
)
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.errors import Conflict, IntegrityFailure, InvalidInput, NotFound, SetupError
from sealbox.keys.repository import Holder, HolderRepository, NameKeyRow, WrappedKeyRepository


@dataclass(frozen=True)
class KeyStatus:
    id: str
    primary: bool
    created_at: str
    files: int
    name_keys: int = 0  # accounts' name keys (folder and listed file names) it wraps


@dataclass(frozen=True)
class Status:
    keys: list[KeyStatus]
    unused: list[str]  # in the keyring, wrapping no file and no name key
    missing: dict[str, int]  # referenced by files, absent from the keyring: an error
    missing_name_keys: dict[str, int] = field(default_factory=dict)  # referenced by name keys, absent: an error
    processes: list[Holder] = field(default_factory=list)  # live server processes and the keys they hold


def _names(holders: list[Holder]) -> str:
    return ", ".join(holder.name for holder in holders)


class KeyService:
    """Operates on the keyring file at ``path`` and the wrapped keys in ``db``."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path
        self.audit = Audit(db)

    def keyring(self) -> Keyring:
        return load_keyring(self.path)

    async def status(self) -> Status:
        """Keys and their use; ``SetupError`` (saying why) if the keyring file is refused."""
        try:
            ring = self.keyring()
        except SetupError as exc:
            raise SetupError(
                f"{exc}. Running servers keep the keys they had loaded and report not ready (/readyz) "
                "until the file is fixed"
            ) from None
        async with self.db.read() as session:
            counts = await WrappedKeyRepository(session).counts()
            names = await WrappedKeyRepository(session).name_key_counts()
            processes = await HolderRepository(session).live(utcnow())
        keys = [
            KeyStatus(k.id, i == 0, k.created_at, counts.get(k.id, 0), names.get(k.id, 0))
            for i, k in enumerate(ring.keys)
        ]
        return Status(
            keys=keys,
            unused=[k.id for k in keys if k.files == 0 and k.name_keys == 0],
            missing={key_id: n for key_id, n in counts.items() if key_id not in ring.ids},
            missing_name_keys={key_id: n for key_id, n in names.items() if key_id not in ring.ids},
            processes=processes,
        )

    async def lacking(self, key_id: str) -> list[Holder]:
        """Live server processes that do not hold ``key_id``."""
        async with self.db.read() as session:
            return [h for h in await HolderRepository(session).live(utcnow()) if key_id not in h.key_ids]

    async def _wait_until_held(self, key_id: str, wait: float) -> list[Holder]:
        """Wait up to ``wait`` seconds for every live process to hold ``key_id`` (processes
        sharing this keyring file report a change within about a second); return those
        that still lack it."""
        deadline = time.monotonic() + wait
        while True:
            lacking = await self.lacking(key_id)
            if not lacking or time.monotonic() >= deadline:
                return lacking
            await asyncio.sleep(0.5)

    async def _refuse_retired(self, key_id: str) -> None:
        async with self.db.read() as session:
            if await WrappedKeyRepository(session).is_retired(key_id):
                raise Conflict(f"key {key_id!r} has been retired and cannot be used again; stage a new key")

    async def stage(self) -> MasterKey:
        """Add a new key that is not primary: every process that holds it can open what
        it will wrap, and none wraps under it yet (step 1 of a rotation)."""
        key = new_master_key()
        ring = self.keyring()
        replace_keyring_file(self.path, Keyring([ring.primary, key, *ring.keys[1:]]))
        await self.audit.record(Event("key.stage", Actor.operator(), target=key.id))
        return key

    async def promote(self, key_id: str, wait: float = 0) -> None:
        """Make ``key_id``, already in the keyring, the primary (step 2 of a rotation).

        Refuses (``Conflict``, naming them) while a live server process lacks the key,
        after waiting up to ``wait`` seconds for them to report it.
        """
        ring = self.keyring()
        if key_id not in ring.ids:
            raise NotFound(f"key {key_id!r} is not in the keyring; stage it first ('sealbox keys stage' or import)")
        await self._refuse_retired(key_id)
        lacking = await self._wait_until_held(key_id, wait)
        if lacking:
            raise Conflict(
                f"key {key_id!r} is not primary: {len(lacking)} running server process(es) do not hold it "
                f"({_names(lacking)}). Add it to their keyring ('sealbox keys export' here, 'sealbox keys import' "
                f"there), then run 'sealbox keys promote {key_id}' again"
            )
        if ring.primary.id == key_id:
            return
        key = next(k for k in ring.keys if k.id == key_id)
        replace_keyring_file(self.path, Keyring([key, *(k for k in ring.keys if k.id != key_id)]))
        await self.audit.record(Event("key.promote", Actor.operator(), target=key_id))

    async def rotate(self, wait: float = 30) -> MasterKey:
        """Stage a new key and promote it once every live server process holds it.

        On one host, or wherever every process reads this keyring file, that takes a
        second. If a process does not report the key within ``wait`` seconds (another
        host with its own keyring copy), the key stays staged and ``Conflict`` says
        which processes lack it: nothing wraps under it until ``promote``.
        """
        key = await self.stage()
        try:
            await self.promote(key.id, wait)
        except Conflict as exc:
            raise Conflict(f"the new key was staged (added, not primary), not promoted. {exc.message}") from None
        await self.audit.record(Event("key.rotate", Actor.operator(), target=key.id))
        return key

    async def pending(self) -> int:
        """How many files and name keys have their key wrapped by a key other than the primary."""
        async with self.db.read() as session:
            return await WrappedKeyRepository(session).count_not_on(self.keyring().primary.id)

    async def rewrap(self, batch: int = 100) -> AsyncIterator[int]:
        """Re-wrap every file key, then every account's name key, under the primary;
        yield how many each batch moved.

        Each row is updated by compare-and-swap, in transactions of ``batch`` rows, so
        the work can be interrupted and resumed, and uploads, downloads, deletions and
        new accounts' first folders may go on meanwhile (a row that changed is simply
        left for the next pass).
        """
        ring = self.keyring()
        primary = ring.primary.id
        await self._refuse_retired(primary)
        totals = {"files": 0, "name_keys": 0}
        for kind in totals:
            skipped: set[object] = set()
            while True:
                await self._refuse_lacking(primary)
                async with self.db.read() as session:
                    repository = WrappedKeyRepository(session)
                    size = batch + len(skipped)
                    if kind == "files":
                        rows: list[Any] = list(await repository.batch_not_on(primary, size))
                    else:
                        rows = list(await repository.name_keys_not_on(primary, size))
                rows = [row for row in rows if row[0] not in skipped][:batch]
                if not rows:
                    break
                async with self.db.write() as session:
                    # As every commit of a wrapped key does (FileService.wrap_now): under the
                    # shared key lock, and only while the target key is not retired, so a
                    # retirement elsewhere either waits for this batch or stops the rewrap.
                    await self.db.lock_keys(session)
                    repository = WrappedKeyRepository(session)
                    if await repository.is_retired(primary):
                        raise Conflict(f"key {primary!r} was retired meanwhile; nothing more was re-wrapped")
                    if kind == "files":
                        missed = [row[0] for row in rows if not await _rewrap_file(repository, ring, row)]
                    else:
                        missed = [row[0] for row in rows if not await _rewrap_name_key(repository, ring, row)]
                skipped.update(missed)
                moved = len(rows) - len(missed)
                totals[kind] += moved
                yield moved
        await self.audit.record(Event("key.rewrap", Actor.operator(), target=primary, detail=totals))

    async def _refuse_lacking(self, primary: str) -> None:
        # Before every batch: a process that lacks the key could not open the files
        # moved to it (503 for each), so none may be running.
        lacking = await self.lacking(primary)
        if lacking:
            raise Conflict(
                f"{len(lacking)} running server process(es) do not hold key {primary!r} "
                f"({_names(lacking)}): add it to their keyring first; nothing more was re-wrapped"
            )

    async def retire(self, key_id: str) -> None:
        """Remove ``key_id`` from the keyring, only if no file, upload or account's name
        key uses it, it is not primary here, and no live server process still wraps under it.

        The count and the retirement mark are one transaction under the exclusive key
        lock, and every file or upload row takes the shared lock and checks the mark as
        it commits (``FileService.wrap_in``): an upload in flight either is counted, and
        the retirement refused, or commits under the primary key.
        """
        ring = self.keyring()
        if key_id not in ring.ids:
            raise NotFound(f"key {key_id!r} is not in the keyring")
        if ring.primary.id == key_id:
            raise Conflict(f"key {key_id!r} is the primary key; rotate first")
        async with self.db.read() as session:
            wrapping = [h for h in await HolderRepository(session).live(utcnow()) if h.primary == key_id]
        if wrapping:
            raise Conflict(
                f"key {key_id!r} is still the primary key of {len(wrapping)} running server process(es) "
                f"({_names(wrapping)}): promote the new key on their hosts first"
            )
        async with self.db.write() as session:
            await self.db.lock_keys(session, exclusive=True)
            repository = WrappedKeyRepository(session)
            users = (await repository.counts()).get(key_id, 0)
            names = (await repository.name_key_counts()).get(key_id, 0)
            uploads = await repository.uploads_on(key_id)
            if users or names:
                left = " and ".join(part for part in (_count(users, "file"), _count(names, "account name key")) if part)
                raise Conflict(f"key {key_id!r} still wraps {left}; run 'sealbox keys rewrap' first")
            if uploads:
                raise Conflict(
                    f"{uploads} resumable uploads in progress still use key {key_id!r}; "
                    "retry once they have finished or expired (SEALBOX_UPLOAD_EXPIRY_HOURS)"
                )
            await repository.retire(key_id, utcnow())
        replace_keyring_file(self.path, ring.without(key_id))
        await self.audit.record(Event("key.retire", Actor.operator(), target=key_id))


def _count(n: int, noun: str) -> str:
    return "" if n == 0 else f"1 {noun}" if n == 1 else f"{n} {noun}s"


async def _rewrap_file(repository: WrappedKeyRepository, ring: Keyring, row: Any) -> bool:
    """Re-wrap one file's key under ``ring``'s primary; False if the row changed meanwhile."""
    file_id, key_id, wrapped, wrap_format, segments = row
    try:
        dek = ring.unwrap(key_id, file_id.bytes, wrapped, file_wrap_domain(segments, wrap_format))
    except UnknownKeyId:
        raise SetupError(
            f"file {file_id} is wrapped under key {key_id!r}, which this keyring lacks: "
            "import it from a host or backup that has it ('sealbox keys import')"
        ) from None
    except IntegrityError as exc:
        raise IntegrityFailure(f"the key of file {file_id} cannot be opened: {exc}") from None
    domain, new_format = file_wrapping(segments)
    return await repository.swap(file_id, (key_id, wrapped), ring.wrap(file_id.bytes, dek, domain), new_format)


async def _rewrap_name_key(repository: WrappedKeyRepository, ring: Keyring, row: NameKeyRow) -> bool:
    """Re-wrap one account's name key under ``ring``'s primary (still bound to the
    account's id); False if the row changed meanwhile."""
    owner, key_id, wrapped, wrap_format = row
    try:
        key = ring.unwrap(key_id, owner.bytes, wrapped, wrap_domain(WrapDomain.NAMES, wrap_format))
    except UnknownKeyId:
        raise SetupError(
            f"the name key of account {owner} is wrapped under key {key_id!r}, which this keyring lacks: "
            "import it from a host or backup that has it ('sealbox keys import')"
        ) from None
    except IntegrityError as exc:
        raise IntegrityFailure(f"the name key of account {owner} cannot be opened: {exc}") from None
    return await repository.swap_name_key(owner, (key_id, wrapped), ring.wrap(owner.bytes, key, WrapDomain.NAMES))


def load_keyring(path: Path) -> Keyring:
    """The keyring at ``path`` for the key commands, with the server's checks.

    Run as root (with sudo, say), the commands manage the keyring of a server that runs
    as another user: they also trust the file's owner, and keep it when they replace the
    file (``replace_keyring_file``), so the server can still read it. Run as another
    user, they refuse the file with the reason (``KeyringError``).
    """
    try:
        return load_keyring_file(path, trust_owner=os.geteuid() == 0)
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
