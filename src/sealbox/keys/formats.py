"""Re-wrap data keys stored in format 1 (one prefix for file and upload keys alike) in
format 2 (a prefix per domain: ``WrapDomain.FILE``, ``WrapDomain.UPLOAD``), and the keys
of files made of segments still wrapped with the plain file prefix in format 3
(``WrapDomain.SEGMENTED_FILE``).

Run by ``sealbox serve`` when it starts, after the schema migrations. Each key stays
under the master key that wrapped it (rotation is ``keys rewrap``'s business, not this),
and each row is changed by compare-and-swap, so servers running meanwhile, an
interrupted run or a second one are all harmless: what is left is done next time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog

from sealbox.crypto.errors import IntegrityError, UnknownKeyId
from sealbox.crypto.keys import SEGMENTED_WRAP_FORMAT, WRAP_FORMAT, KeyProvider, WrapDomain
from sealbox.db.session import Database
from sealbox.keys.repository import WrappedKeyRepository
from sealbox.models import File, Upload

log = structlog.get_logger()
BATCH = 500


@dataclass(frozen=True)
class Upgraded:
    rows: int  # re-wrapped in format 2
    failed: int  # left in format 1: their key does not open (they did not open before either)


async def upgrade_wrapped_keys(db: Database, keyring: KeyProvider) -> Upgraded:
    """Re-wrap every format-1 key of files and uploads in its own domain, and every key
    of a file made of segments in the segmented files' domain."""
    rows = failed = 0
    for table, domain in ((File, WrapDomain.FILE), (Upload, WrapDomain.UPLOAD)):
        after: uuid.UUID | None = None
        while True:
            async with db.read() as session:
                batch = await WrappedKeyRepository(session).legacy(table, after, BATCH)
            if not batch:
                break
            async with db.write() as session:
                repository = WrappedKeyRepository(session)
                for row_id, key_id, wrapped in batch:
                    try:
                        new = keyring.upgrade(key_id, row_id.bytes, wrapped, domain)
                    except (UnknownKeyId, IntegrityError) as exc:
                        # Reading that row fails today as it did before; starting must not.
                        log.error("keys.upgrade_failed", table=table.__tablename__, id=str(row_id), error=str(exc))
                        failed += 1
                        continue
                    rows += await repository.upgrade(table, row_id, (key_id, wrapped), new)
            after = batch[-1][0]
    # Files made of segments wrapped with the plain file prefix (before it had a prefix
    # of its own): their key must not open them as one blob (see ``WrapDomain``).
    after = None
    while True:
        async with db.read() as session:
            batch = await WrappedKeyRepository(session).unsplit_segmented(after, BATCH)
        if not batch:
            break
        async with db.write() as session:
            repository = WrappedKeyRepository(session)
            for row_id, key_id, wrapped in batch:
                try:
                    new = keyring.upgrade(key_id, row_id.bytes, wrapped, WrapDomain.SEGMENTED_FILE, WrapDomain.FILE)
                except (UnknownKeyId, IntegrityError) as exc:
                    log.error("keys.upgrade_failed", table="files", id=str(row_id), error=str(exc))
                    failed += 1
                    continue
                formats = (WRAP_FORMAT, SEGMENTED_WRAP_FORMAT)
                rows += await repository.upgrade(File, row_id, (key_id, wrapped), new, formats)
        after = batch[-1][0]
    if rows or failed:
        log.info("keys.upgraded", rows=rows, failed=failed)
    return Upgraded(rows, failed)
