from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from sealbox.db.base import Base, UTCDateTime, utcnow


class LinkColumns:
    """What every link (a share, an upload request) has: an owner, a token kept only as
    its SHA-256, a lifetime, a revocation and an optional argon2id password."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Share(LinkColumns, Base):
    """A download link. Only the SHA-256 of its token is stored.

    It points at one file (``file_id``), at a folder (``folder_id``: what is in it when it
    is opened), or at a selection of files and folders fixed when it was made (neither;
    its ``ShareItem`` rows).

    For one file, ``bytes_left`` is the download allowance (limit × size); ``None``
    means unlimited. A link to several files counts the limit per file
    (``ShareDelivery``). The note of a link to one file is ciphertext under the file's
    key, bound to the share id; of a link to several, under the owner's name key.
    """

    __tablename__ = "shares"
    __table_args__ = (Index("ix_shares_owner_created", "owner_id", "created_at"),)

    file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), nullable=True, index=True
    )
    folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    download_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bytes_left: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Bytes that may be given back, beyond what was provably unsent, when a response is
    # cut short (see ``sealbox.sharing.gate``); always less than the file's size.
    grace_left: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    downloads: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ShareItem(Base):
    """One file or folder of a link to a selection."""

    __tablename__ = "share_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    share_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shares.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), nullable=True, index=True
    )
    folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )


class ShareDelivery(Base):
    """What a link to several files has delivered of one of them, in bytes: with a
    download limit n, each file may be delivered n times over (n × its size), like a
    link to that file alone."""

    __tablename__ = "share_deliveries"

    share_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)


class Grant(Base):
    """Read access to one file for another account."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("file_id", "grantee_id", name="uq_grants_file_grantee"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grantee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UploadRequest(LinkColumns, Base):
    """A link that lets anyone holding it upload into the owner's space, within limits."""

    __tablename__ = "upload_requests"
    __table_args__ = (Index("ix_upload_requests_owner_created", "owner_id", "created_at"),)

    max_files: Mapped[int] = mapped_column(Integer)
    max_bytes: Mapped[int] = mapped_column(BigInteger)
    # The folder received files go to (null: the top of the owner's files).
    folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    files_received: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bytes_received: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Unlock(Base):
    """A short-lived grant issued for the right password of one link (share or upload
    request); only its SHA-256 is stored. It is what travels instead of the password."""

    __tablename__ = "unlocks"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    link_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
