"""Engines and transactions.

Services open short transactions themselves (``db.read()``, ``db.write()``) instead of
one per request: an upload streams for minutes and its row must be committed only after
the blob is durable, and a download must not hold a transaction while it streams.

On SQLite, write transactions start with ``BEGIN IMMEDIATE`` (a deferred transaction
that reads then writes fails with "database is locked" under concurrency, whatever the
busy timeout) and are serialised by an in-process lock, which is far cheaper than
letting them contend for the file lock.

The hot paths (a request's credential, file and grant; a link with its file) read with
``rows``: one Core statement, no ORM objects, in one round trip. On SQLite that is one
thread hop to a small fixed set of reader threads, each with its own connection
(aiosqlite would take four or five hops per statement); on PostgreSQL psycopg is
asynchronous and needs no thread at all.

The hot writes go through the committer (``GroupCommit``): a caller hands it a unit of
work (plain functions that run Core statements on a ``Tx``: the rows to insert, the
guarded updates, the audit events), and it runs every unit that is waiting in one
write transaction. On SQLite the whole transaction is one hop to the writer thread;
on PostgreSQL it runs on one asynchronous connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import Connection, Engine, Executable, Row, create_engine, event, make_url, text
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from sealbox.errors import InvalidInput, Unavailable

log = structlog.get_logger()

_WRITE = "sealbox_write"
KEY_LOCK = 0x5EA1B1
T = TypeVar("T")
# Reader threads for ``Database.rows`` on SQLite, each with its own connection: enough to
# keep both cores busy while a few reads wait on the disk, and small enough that 16 or
# more concurrent clients queue for a thread instead of opening connections.
HOT_READERS = 4
# The asynchronous engine's pool (on SQLite each connection is an aiosqlite thread):
# SQLAlchemy's default of 5 kept connections and 10 overflow ones made 16 concurrent
# clients open (and close) a connection on a large share of their requests. POOL are
# kept open (16 clients, each holding at most one at a time, the group committer and a
# margin); as many again may be opened for a burst.
POOL = 20
# How often the committer runs a unit that PostgreSQL aborted for a deadlock or a
# serialisation conflict before it gives up (``Contention``, 503).
CONTENTION_TRIES = 3


@dataclass
class Tx:
    """A write transaction as a unit of work sees it: a Core connection (no ORM, no
    thread hop per statement: on SQLite the unit already runs on the writer thread) and
    what the units of one transaction share (``info``: the key lock, the key ids known
    to be live)."""

    conn: Connection
    is_sqlite: bool
    info: dict[str, Any] = field(default_factory=dict)


# One step of a unit of work: runs statements on the transaction, raises to refuse.
Step = Callable[[Tx], None]


def _sqlite_setup(sync: Engine) -> None:
    @event.listens_for(sync, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync, "begin")
    def _begin(conn: Any) -> None:
        # Reads run without BEGIN: each of our read blocks is one SELECT, which SQLite
        # runs atomically on its own snapshot, and the BEGIN round trip through the
        # driver's thread cost a third of a small download's database time.
        if conn.get_execution_options().get(_WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def redacted(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _unreachable(exc: DBAPIError) -> bool:
    """Whether a driver error means the database cannot be reached (as opposed to a bad
    statement or a constraint), so that the request may succeed later."""
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


class Contention(Unavailable):
    """A transaction that PostgreSQL aborted to break a deadlock or a serialisation
    conflict with another one: running it again is expected to succeed."""


# SQLSTATE of a deadlock and of a serialisation failure.
_CONTENTION = frozenset({"40P01", "40001"})


def _translated(exc: Exception) -> Exception:
    """The error to raise for a driver's ``exc``: ``Unavailable`` when the database cannot
    be reached, ``InvalidInput`` for a value it cannot hold (text with NUL or a lone
    surrogate, an integer past 64 bits: PostgreSQL's ``DataError``, SQLite's
    ``OverflowError``), ``exc`` itself otherwise. Input is validated on the way in; this
    is the safety net that keeps anything missed from becoming a 500."""
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _CONTENTION:
        return Contention("the database was busy with a conflicting change; try again")
    if isinstance(exc, DBAPIError) and _unreachable(exc):
        return Unavailable("the database is unavailable")
    cause = exc.orig if isinstance(exc, StatementError) else exc
    if isinstance(exc, DataError) or isinstance(cause, OverflowError | UnicodeEncodeError):
        return InvalidInput("a value in the request cannot be stored")
    return exc


@contextmanager
def _translating() -> Iterator[None]:
    """Raise what ``_translated`` makes of a driver's error in the block."""
    try:
        yield
    except (DBAPIError, StatementError, OverflowError, UnicodeEncodeError) as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # On SQLite every transaction ends in an explicit commit or rollback, so the
        # pool's own rollback on checkin is a second, wasted round trip to the driver's
        # thread (there are five per query); PostgreSQL keeps it as a safety net.
        reset = None if self.is_sqlite else "rollback"
        # An in-memory SQLite database lives in one connection (SQLAlchemy's StaticPool).
        in_memory = self.is_sqlite and make_url(url).database in (None, "", ":memory:")
        pool = {} if in_memory else {"pool_size": POOL, "max_overflow": POOL}
        self.engine = create_async_engine(url, pool_pre_ping=not self.is_sqlite, pool_reset_on_return=reset, **pool)
        self._hot: Engine | None = None
        self._writing: Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _sqlite_setup(self.engine.sync_engine)
        if self.is_sqlite and not in_memory:
            # The same file through the standard library's driver, for ``rows`` (an
            # in-memory database is one per connection, so it has no second engine).
            hot_url = make_url(url).set(drivername="sqlite")
            # A connection moves between the reader threads, one thread at a time.
            self._hot = create_engine(
                hot_url,
                pool_size=HOT_READERS,
                max_overflow=0,
                pool_reset_on_return=None,
                connect_args={"check_same_thread": False},
            )
            _sqlite_setup(self._hot)
            # The committer's one connection, used by its one thread (see ``transact``).
            self._writing = create_engine(
                hot_url,
                pool_size=1,
                max_overflow=0,
                pool_reset_on_return=None,
                connect_args={"check_same_thread": False},
            )
            _sqlite_setup(self._writing)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self.engine.execution_options(**{_WRITE: True}), expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading. On SQLite each statement sees its own snapshot, so a
        block that needs several consistent reads must use ``write()``."""
        with _translating():
            async with self._reader() as session:
                yield session

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this database runs statements on (to attach event listeners)."""
        return tuple(engine for engine in (self.engine.sync_engine, self._hot, self._writing) if engine is not None)

    async def rows(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Row[*tuple[Any, ...]]]:
        """The rows of one read-only Core statement with its bound ``values``, in one round
        trip (see the module's description). Each call sees one consistent snapshot.

        Build hot statements once, with ``bindparam``: building one per call costs more
        than running it."""
        with _translating():
            if self._hot is None:
                async with self.engine.connect() as conn:
                    return (await conn.execute(statement, values)).all()
            if self._threads is None:
                self._threads = ThreadPoolExecutor(HOT_READERS, thread_name_prefix="sealbox-read")
                # Every reader thread and its connection at once, so that a burst later
                # opens none (the executor would start threads one burst at a time).
                ready = threading.Barrier(HOT_READERS)
                for _ in range(HOT_READERS):
                    self._threads.submit(self._open_reader, self._hot, ready)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self._fetch, self._hot, statement, values)

    @staticmethod
    def _open_reader(engine: Engine, ready: threading.Barrier) -> None:
        # Holds a connection until every reader holds one: each thread opens its own. One
        # that cannot connect releases the others (the reads that follow say why).
        try:
            with engine.connect():
                ready.wait(timeout=10)
        except Exception:
            ready.abort()

    @staticmethod
    def _fetch(engine: Engine, statement: Executable, values: Mapping[str, Any]) -> Sequence[Row[*tuple[Any, ...]]]:
        with engine.connect() as conn:
            return conn.execute(statement, values).all()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed if the block succeeds, rolled back otherwise."""
        with _translating():
            if self.is_sqlite:
                async with self._write_lock, self._writer() as session, session.begin():
                    yield session
            else:
                async with self._writer() as session, session.begin():
                    yield session

    async def transact(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction, committed if it returns, rolled back if
        it raises. On a SQLite file that is one hop to the writer thread (a connection
        of its own, ``BEGIN IMMEDIATE``) under the same in-process lock as ``write``;
        elsewhere one asynchronous connection runs it."""
        with _translating():
            if self._writing is not None:
                if self._writer_thread is None:
                    self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sealbox-write")
                loop = asyncio.get_running_loop()
                async with self._write_lock:
                    running = loop.run_in_executor(self._writer_thread, self._transact, self._writing, work)
                    try:
                        return await asyncio.shield(running)
                    except asyncio.CancelledError:
                        # The thread's transaction goes on: hold the lock until it ends,
                        # however often the caller is cancelled meanwhile.
                        while not running.done():
                            with contextlib.suppress(asyncio.CancelledError):
                                await asyncio.wait([running])
                        raise
            engine = self.engine.execution_options(**{_WRITE: True})
            if self.is_sqlite:
                async with self._write_lock, engine.begin() as conn:
                    return await conn.run_sync(lambda sync: work(Tx(sync, True)))
            async with engine.begin() as conn:
                return await conn.run_sync(lambda sync: work(Tx(sync, False)))

    @staticmethod
    def _transact(engine: Engine, work: Callable[[Tx], T]) -> T:
        with engine.execution_options(**{_WRITE: True}).begin() as conn:
            return work(Tx(conn, True))

    @staticmethod
    def lock_keys_in(tx: Tx, exclusive: bool = False) -> None:
        """Hold the master-key lock until ``tx`` ends: shared by every transaction that
        records a wrapped key, exclusive for one that retires a key, so a retirement and
        the rows it counts are serialised (PostgreSQL advisory lock). On SQLite every
        write transaction already holds the database's write lock."""
        if tx.is_sqlite:
            return
        held = "sealbox_keys_exclusive" if exclusive else "sealbox_keys_shared"
        if tx.info.get(held):
            return  # taken already in this transaction (a group commit wraps many keys)
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        tx.conn.execute(text(f"SELECT {function}(:key)"), {"key": KEY_LOCK})
        tx.info[held] = True

    async def lock_keys(self, session: AsyncSession, exclusive: bool = False) -> None:
        """``lock_keys_in`` for a session's write transaction."""
        if self.is_sqlite:
            return
        await session.run_sync(lambda sync: self.lock_keys_in(in_session(sync, False, session.info), exclusive))

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless the database answers a trivial query."""
        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        for pool in (self._threads, self._writer_thread):
            if pool is not None:
                pool.shutdown(wait=True)
        self._threads = self._writer_thread = None
        for engine in (self._hot, self._writing):
            if engine is not None:
                engine.dispose()
        await self.engine.dispose()


def in_session(session: Any, is_sqlite: bool, info: dict[str, Any]) -> Tx:
    """The ``Tx`` of a synchronous ORM ``session``'s transaction (inside ``run_sync``),
    so a session's write transaction can run the steps a unit of work is made of."""
    return Tx(session.connection(), is_sqlite, info)


class GroupCommit(Generic[T]):
    """The committer: applies units of work in shared write transactions; ``submit``
    returns once its unit is committed.

    Units that arrive while a commit is in flight are committed together by the next
    one, so concurrent writers share one ``fsync`` of the database (and, on SQLite, one
    thread hop) instead of queueing for one each. ``apply`` runs them on the
    transaction (``Database.transact``). If a shared commit fails, each of its units is
    retried alone, so one bad unit cannot fail the others. A caller that is cancelled
    still learns the outcome (see ``FileService.upload``): the commit itself is never
    cancelled half-way.
    """

    def __init__(self, db: Database, apply: Callable[[Tx, list[T]], None]) -> None:
        self.db = db
        self.apply = apply
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending())
        await asyncio.shield(done)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._commit([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1 and not isinstance(exc, Contention):
                    batch[0][1].set_exception(exc)  # refused alone: its answer, run once
                    continue
                log.info("db.batch_failed", units=len(batch), error=type(exc).__name__)
                for item, done in batch:
                    await self._alone(item, done)
            else:
                for _, done in batch:
                    done.set_result(None)

    async def _alone(self, item: T, done: asyncio.Future[None]) -> None:
        # A unit alone; one that met a deadlock or a serialisation conflict with another
        # process is run again, a few times.
        for attempt in range(CONTENTION_TRIES):
            try:
                await self._commit([item])
            except Contention as exc:
                if attempt + 1 < CONTENTION_TRIES:
                    continue
                done.set_exception(exc)
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
            return

    async def _commit(self, items: list[T]) -> None:
        await self.db.transact(lambda tx: self.apply(tx, items))
