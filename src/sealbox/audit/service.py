"""The audit trail: append events, read them, verify the chain.

Each row carries ``prev_hash``, the hash of the row before it, and ``hash`` =
SHA-256(prev_hash ‖ canonical encoding of the row). A one-row head table holds the
last sequence number and hash, updated in the same transaction, so editing, removing or
reordering any row, the last one included, is found by ``verify``. Every appended
event is also logged with its hash: a log shipped elsewhere anchors the chain against
someone who can rewrite the whole table.

Events name actors, files and links by id, never by secret: no password, token or
decrypted file name is written here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from pydantic import BaseModel
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sealbox.db.base import utcnow
from sealbox.db.session import Database, GroupCommit, Step, Tx, in_session
from sealbox.errors import InvalidInput
from sealbox.models import AuditEvent, AuditHead

log = structlog.get_logger()

GENESIS = bytes(32)
_EVENT_KEYS = tuple(attr.key for attr in AuditEvent.__mapper__.column_attrs)
MAX_PAGE = 1000
Detail = Mapping[str, str | int | bool | None]


@dataclass(frozen=True)
class Actor:
    """Who did something: an account (by name and id), a link, or the operator."""

    name: str
    user_id: uuid.UUID | None = None
    client: str | None = None

    @classmethod
    def operator(cls) -> Actor:
        return cls("operator")

    @classmethod
    def link(cls, client: str | None) -> Actor:
        return cls("link", None, client)


@dataclass(frozen=True)
class Event:
    action: str
    actor: Actor
    owner_id: uuid.UUID | None = None  # whose file or link this concerns: they may read it
    file_id: uuid.UUID | None = None
    target: str | None = None  # a share, grant, request, token, user or key id
    detail: Detail = field(default_factory=dict)


class EventRead(BaseModel):
    seq: int
    at: datetime
    action: str
    actor: str
    actor_id: str | None
    owner_id: str | None
    file_id: str | None
    target: str | None
    client: str | None
    detail: dict[str, str | int | bool | None]
    hash: str


class EventPage(BaseModel):
    items: list[EventRead]
    next_before: int | None


@dataclass(frozen=True)
class Verification:
    rows: int
    broken_at: int | None = None  # the sequence number of the first broken row
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def _canonical(row: AuditEvent) -> bytes:
    fields = [
        row.seq,
        row.at.isoformat(timespec="microseconds"),
        row.action,
        str(row.actor_id) if row.actor_id else None,
        row.actor,
        str(row.owner_id) if row.owner_id else None,
        str(row.file_id) if row.file_id else None,
        row.target,
        row.client,
        row.detail,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def chain_hash(prev: bytes, row: AuditEvent) -> bytes:
    return hashlib.sha256(prev + _canonical(row)).digest()


def _read(row: AuditEvent) -> EventRead:
    return EventRead(
        seq=row.seq,
        at=row.at,
        action=row.action,
        actor=row.actor,
        actor_id=str(row.actor_id) if row.actor_id else None,
        owner_id=str(row.owner_id) if row.owner_id else None,
        file_id=str(row.file_id) if row.file_id else None,
        target=row.target,
        client=row.client,
        detail=json.loads(row.detail),
        hash=row.hash.hex(),
    )


# What one caller hands the committer, its unit of work: the steps that write its rows
# (run in order in the shared transaction; one may refuse by raising) and its events.
Entry = tuple[tuple[Event, ...], tuple[Step, ...]]


# Plain statements, built once: appending runs on every upload and download.
_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_INSERT = insert(AuditEvent.__table__)  # type: ignore[arg-type]
_MOVE_HEAD = update(AuditHead).where(AuditHead.id == 1)


def _order(entry: Entry) -> tuple[str, str]:
    # The rows a unit locks are its owner's (quota) and its link's: the event says both.
    events = entry[0]
    if not events:
        return ("", "")
    return (str(events[0].owner_id or ""), events[0].target or "")


def _append(tx: Tx, batch: list[Entry]) -> None:
    # The units' own steps (wrapping a file key takes the key lock) come before the
    # audit head's lock: every writer takes the key lock first, the head last. Units run
    # in the order of the owner and link they lock, in every process, so two processes'
    # batches lock those rows in the same order and cannot deadlock on them.
    batch = sorted(batch, key=_order)
    for _, steps in batch:
        for step in steps:
            step(tx)
    _chain(tx, [event for events, _ in batch for event in events])


def _chain(tx: Tx, events: list[Event]) -> None:
    if not events:
        return
    # FOR UPDATE serialises appenders on PostgreSQL; SQLite's write lock already does.
    seq, prev = tx.conn.execute(_HEAD).one()
    now = utcnow()
    appended: list[dict[str, object]] = []
    for event in events:
        seq += 1
        row = AuditEvent(
            seq=seq,
            at=now,
            action=event.action,
            actor_id=event.actor.user_id,
            actor=event.actor.name[:200],
            owner_id=event.owner_id,
            file_id=event.file_id,
            target=event.target,
            client=event.actor.client[:200] if event.actor.client else None,
            detail=json.dumps(dict(event.detail), sort_keys=True, separators=(",", ":")),
            prev_hash=prev,
        )
        row.hash = prev = chain_hash(row.prev_hash, row)
        appended.append({key: getattr(row, key) for key in _EVENT_KEYS})
        log.info("audit", seq=seq, action=event.action, actor=row.actor, hash=row.hash.hex())
    # The events are inserted as plain rows, one statement for the batch.
    tx.conn.execute(_INSERT, appended)
    tx.conn.execute(_MOVE_HEAD.values(seq=seq, hash=prev))


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._appender = GroupCommit[Entry](db, _append)
        self._soon: set[asyncio.Task[None]] = set()

    async def record(self, *events: Event, work: tuple[Step, ...] = ()) -> None:
        """Commit ``events`` with the unit of ``work`` they record (its steps run first,
        in the same transaction); returns once they are committed. Concurrent callers
        share a commit; one whose step raises fails alone."""
        await self._appender.submit((events, work))

    async def record_in(self, session: AsyncSession, *events: Event) -> None:
        """Append ``events`` inside the caller's write transaction."""
        await session.flush()  # the caller's rows first: the audit head is locked last
        is_sqlite = self.db.is_sqlite
        await session.run_sync(lambda sync: _chain(in_session(sync, is_sqlite, session.info), list(events)))

    def record_soon(self, *events: Event) -> None:
        """Append ``events`` without waiting for the commit (used for downloads, so a
        response does not wait on the audit trail's disk). A crash may lose the events
        of the last moments; a failure is logged."""
        task = asyncio.get_running_loop().create_task(self.record(*events))
        self._soon.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._soon.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("audit.failed", error=type(task.exception()).__name__)

    async def drain(self) -> None:
        """Wait for events appended with ``record_soon`` (at shutdown)."""
        if self._soon:
            await asyncio.gather(*self._soon, return_exceptions=True)

    async def events(self, owner: uuid.UUID | None, before: int | None, limit: int) -> EventPage:
        """Newest first: events about ``owner``'s files and links, or all (``owner=None``)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit + 1)
        if owner is not None:
            query = query.where(AuditEvent.owner_id == owner)
        if before is not None:
            query = query.where(AuditEvent.seq < before)
        async with self.db.read() as session:
            rows = (await session.execute(query)).scalars().all()
        more = len(rows) > limit
        return EventPage(items=[_read(row) for row in rows[:limit]], next_before=rows[limit - 1].seq if more else None)

    async def _rows(self) -> AsyncIterator[AuditEvent]:
        after = 0
        while True:
            async with self.db.read() as session:
                query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(1000)
                rows = (await session.execute(query)).scalars().all()
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1].seq

    async def _head(self) -> tuple[int, bytes]:
        async with self.db.read() as session:
            head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
        return head.seq, head.hash

    async def verify(self) -> Verification:
        """Walk the chain from the first row; name the first row that does not hold.

        Consistent while events are appended: appending inserts rows and moves the head
        in one transaction, in sequence order. The head read before the walk anchors every
        row up to it (they must all be there, and the last one's hash must be the head's);
        rows appended during the walk are chained like the rest, and the head read after
        it bounds them, so a row past that head is an insertion. Rows appended after the
        walk passed are left for the next run; ``rows`` says how many were checked.
        """
        first_seq, first_hash = await self._head()
        expected_seq, prev, count = 1, GENESIS, 0
        async for row in self._rows():
            if row.seq != expected_seq:
                return Verification(count, expected_seq, f"row {expected_seq} is missing")
            if not hmac.compare_digest(row.prev_hash, prev):
                previous = row.seq - 1
                reason = f"row {previous} was altered, or the hash row {row.seq} keeps of it was"
                return Verification(count, previous, reason)
            if not hmac.compare_digest(chain_hash(prev, row), row.hash):
                return Verification(count, row.seq, f"row {row.seq} was altered")
            prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
            if count == first_seq and not hmac.compare_digest(prev, first_hash):
                return Verification(count, count, f"row {count} was altered, or the head that records it was")
        if count < first_seq:
            return Verification(count, count + 1, f"the trail ends at row {count} but {first_seq} rows were written")
        last_seq, last_hash = await self._head()
        if count > last_seq:
            return Verification(count, last_seq + 1, f"row {last_seq + 1} is past the last row written ({last_seq})")
        if count == last_seq and not hmac.compare_digest(prev, last_hash):
            return Verification(count, count, f"row {count} was altered, or the head that records it was")
        return Verification(count)
