"""Each server process tells the database which master keys it holds.

Several hosts may each have their own copy of the keyring. Before a key becomes primary
anywhere, or files are re-wrapped under it, every live process must hold it, otherwise
that process could not open the files wrapped under it. The key commands read these
reports (``KeyService``); the processes write them here: at start, within a second of any
change to their keyring (or to the key ids they found missing), and at least every
``interval`` seconds. A process that stops reporting for ``4 * interval`` seconds (a
crash, a lost host) no longer counts as live; one that stops cleanly removes its row.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import structlog

from sealbox.crypto.keys import KeyProvider
from sealbox.db.base import utcnow
from sealbox.db.session import Database
from sealbox.keys.repository import HolderRepository
from sealbox.models import KeyHolder

log = structlog.get_logger()
CHECK_EVERY = 1.0  # seconds between looks at the keyring (one stat call)
FORGET_AFTER = timedelta(days=1)  # rows of processes gone this long are deleted


class KeyPresence:
    def __init__(
        self, db: Database, keyring: KeyProvider, missing: Callable[[], frozenset[str]], interval: float
    ) -> None:
        self.db = db
        self.keyring = keyring
        self.missing = missing
        self.interval = interval
        self.id = uuid.uuid4()
        self._reported: tuple[str, str, str] | None = None
        self._reported_at = 0.0

    def _state(self) -> tuple[str, str, str]:
        return self.keyring.primary_id, ",".join(sorted(self.keyring.ids)), ",".join(sorted(self.missing()))

    async def report(self) -> None:
        """Write this process's key ids now."""
        state = self._state()
        now = utcnow()
        row = KeyHolder(
            id=self.id,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            primary_key=state[0],
            key_ids=state[1],
            missing=state[2],
            started_at=now,
            seen_at=now,
            expires_at=now + timedelta(seconds=4 * self.interval),
        )
        async with self.db.write() as session:
            repository = HolderRepository(session)
            await repository.report(row)
            await repository.prune(now - FORGET_AFTER)
        if state != self._reported:
            log.info("keys.held", primary=state[0], keys=state[1], missing=state[2] or None)
        self._reported, self._reported_at = state, time.monotonic()

    async def run(self) -> None:
        """Report on every change, and every ``interval`` seconds; never raises."""
        while True:
            try:
                if self._state() != self._reported or time.monotonic() - self._reported_at >= self.interval:
                    await self.report()
            except Exception as exc:
                log.warning("keys.report_failed", error=type(exc).__name__)
            await asyncio.sleep(min(CHECK_EVERY, self.interval))

    async def leave(self) -> None:
        """Remove this process's row (at a clean shutdown)."""
        try:
            async with self.db.write() as session:
                await HolderRepository(session).remove(self.id)
        except Exception as exc:
            log.warning("keys.leave_failed", error=type(exc).__name__)
