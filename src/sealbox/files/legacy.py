"""Give files stored before folders existed (schema 0011) their listing name and name tag.

Such a file has only its name under its own key (``name_enc``); listings read the copy
under the account's name key (``listed_name_enc``), and uniqueness within a folder needs
its tag (``name_tag``). ``sealbox serve`` fills both in when it starts, after the wrapped
keys are upgraded: per account, oldest file first, in batches, each batch one
transaction under the owner's lock that changes only rows still without a listing name
(a compare-and-swap), so servers starting together, an interrupted start or a second
one are all harmless.

Two old files with one name at the top: the older keeps it, the newer is numbered
("a (2).txt"), its own ``name_enc`` rewritten to match (a download is named as it is
listed), as an upload of that name would be today.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Integer, and_, bindparam, or_, select, update

from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import FieldCipher
from sealbox.db.session import Tx
from sealbox.errors import Conflict, IntegrityFailure, KeyMissing
from sealbox.files.repository import FILES, LOCK_OWNER
from sealbox.files.service import FileService
from sealbox.files.tree import free_name
from sealbox.ids import UserId
from sealbox.models import File

log = structlog.get_logger()
BATCH = 500

UNLISTED = File.listed_name_enc.is_(None)
OWNERS = select(File.owner_id).where(UNLISTED).distinct()


def _unlisted(after: bool) -> Any:
    """``FILES`` columns of the owner's files without a listing name, oldest first,
    after the (created_at, id) bound as ``created_at`` and ``id`` when ``after``."""
    query = select(*FILES.columns).where(File.owner_id == bindparam("owner"), UNLISTED)
    if after:
        created = bindparam("created_at", type_=File.created_at.type)
        later = or_(File.created_at > created, and_(File.created_at == created, File.id > bindparam("id")))
        query = query.where(later)
    return query.order_by(File.created_at, File.id).limit(bindparam("limit", type_=Integer))


UNLISTED_FIRST, UNLISTED_NEXT = _unlisted(False), _unlisted(True)


@dataclass(frozen=True)
class Filled:
    files: int  # given a listing name and tag
    renamed: int  # of which numbered, their name being taken in their folder
    failed: int  # left as they were: their key or name does not open (logged)


async def fill_listed_names(files: FileService, batch: int = BATCH) -> Filled:
    """Fill in the listing name and name tag of every file that lacks them."""
    filled = renamed = failed = 0
    for (owner,) in await files.db.rows(OWNERS, {}):
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            work = functools.partial(_fill, files, owner=UserId(owner), after=after, batch=batch)
            done, numbered, bad, after = await files.db.transact(work)
            filled, renamed, failed = filled + done, renamed + numbered, failed + bad
            if after is None:
                break
    if filled or failed:
        log.info("files.listed_names_filled", files=filled, renamed=renamed, failed=failed)
    return Filled(filled, renamed, failed)


def _fill(
    files: FileService, tx: Tx, *, owner: UserId, after: tuple[datetime, uuid.UUID] | None, batch: int
) -> tuple[int, int, int, tuple[datetime, uuid.UUID] | None]:
    """One batch of ``owner``'s files: (filled, renamed, failed, where the next batch
    starts, or ``None`` when this was the last)."""
    # The owner's lock first, then the rows read again: a server that filled them
    # meanwhile has committed, and what it filled is no longer selected.
    tx.conn.execute(LOCK_OWNER, {"owner": owner})
    values: dict[str, Any] = {"owner": owner, "limit": batch}
    if after is not None:
        values.update(created_at=after[0], id=after[1])
    rows = [FILES.build(row) for row in tx.conn.execute(UNLISTED_NEXT if after else UNLISTED_FIRST, values)]
    if not rows:
        return 0, 0, 0, None
    cipher = files.names.in_tx(tx, owner)
    filled = renamed = failed = 0
    for row in rows:
        try:
            dek = files.dek(row)
            fields = FieldCipher(dek, row.id.bytes)
            name = fields.decrypt("name", row.name_enc)
        except (KeyMissing, IntegrityFailure, IntegrityError) as exc:
            # Listing it falls back to its own key, and fails as reading it did before.
            log.error("files.listed_name_failed", id=str(row.id), error=type(exc).__name__)
            failed += 1
            continue
        try:
            final, tag = free_name(tx, owner, cipher, row.folder_id, name, "rename")
        except Conflict:
            log.error("files.listed_name_failed", id=str(row.id), error="Conflict")
            failed += 1
            continue
        tx.conn.execute(
            update(File)
            .where(File.id == row.id, UNLISTED)
            .values(
                listed_name_enc=cipher.encrypt(row.id.bytes, "name", final),
                name_tag=tag,
                name_enc=fields.encrypt("name", final) if final != name else row.name_enc,
            )
        )
        filled += 1
        renamed += final != name
    last = rows[-1]
    return filled, renamed, failed, (last.created_at, last.id) if len(rows) == batch else None
