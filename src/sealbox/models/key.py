from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from sealbox.db.base import Base, UTCDateTime, utcnow


class RetiredKey(Base):
    """A master key that ``sealbox keys retire`` removed: no row may be wrapped under it
    again. Written under the exclusive key lock after the last use of the key was
    counted, so a file or upload that commits later sees it (and wraps anew)."""

    __tablename__ = "retired_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeyHolder(Base):
    """A running server process and the master key ids it holds, reported at start, on
    every change of its keyring and at every heartbeat. A row whose ``expires_at`` has
    passed belongs to a process that stopped reporting: it no longer counts as live.
    No key material is stored here, only ids."""

    __tablename__ = "key_holders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    primary_key: Mapped[str] = mapped_column(String(64))
    key_ids: Mapped[str] = mapped_column(Text)  # sorted, comma-separated
    missing: Mapped[str] = mapped_column(Text, default="")  # key ids it met and lacks
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
