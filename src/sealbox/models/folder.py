from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, SmallInteger, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from sealbox.db.base import Base, UTCDateTime, utcnow


class NameKey(Base):
    """An account's name key: 32 random bytes, stored only wrapped by a master key (like
    a file's key), bound to the account's id. It encrypts folder names and the copy of
    each file name that listings read, and keys the tags that keep names unique within
    a folder (``sealbox.crypto.keys.NameCipher``)."""

    __tablename__ = "name_keys"

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    wrap_format: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Folder(Base):
    """A folder of an account. Its name is ciphertext under the account's name key; its
    ``name_tag`` (an HMAC of the parent's id and the name under that key) is unique per
    account, which keeps names unique within a folder without storing them."""

    __tablename__ = "folders"
    __table_args__ = (
        UniqueConstraint("owner_id", "name_tag", name="uq_folders_owner_name_tag"),
        Index("ix_folders_owner_parent", "owner_id", "parent_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Null: the folder is at the top of its account.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Made by an upload through this upload-request link (for a path sent with it):
    # only such folders take that link's later uploads.
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("upload_requests.id", ondelete="SET NULL"), nullable=True
    )
