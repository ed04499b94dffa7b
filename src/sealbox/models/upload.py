from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, ForeignKey, Integer, LargeBinary, SmallInteger, String, Uuid, and_
from sqlalchemy.orm import Mapped, mapped_column

from sealbox.db.base import Base, UTCDateTime, utcnow


class Upload(Base):
    """A resumable (tus) upload in progress. It becomes a file made of its parts (with id
    ``file_id``, same data key) when its last bytes arrive, in the transaction that
    marks this row complete.

    Each accepted ``PATCH`` body is one encrypted part (``UploadPart``), sealed as a
    sealbox stream under this upload's own key with a fresh salt, so no chunk key and
    nonce is ever used twice, whatever the retries.
    """

    __tablename__ = "uploads"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("upload_requests.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # The id of the file it becomes, chosen at creation: parts and metadata are bound to
    # it. Null for uploads created before it existed: they use their own id.
    file_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)

    @property
    def bound_id(self) -> uuid.UUID:
        """The id its parts and metadata are bound to, and that its file will have."""
        return self.file_id or self.id

    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    content_type_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    uploader_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Where its file goes: a folder of the owner (null: the top), and below it a relative
    # path of folders made as needed when it completes ("photos/2024", ciphertext like
    # the name; null: none). A folder deleted meanwhile fails the completion.
    folder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    path_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_id: Mapped[str] = mapped_column(String(64))
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    # 2: wrapped with the upload-key prefix (crypto.keys.WrapDomain.UPLOAD); 1: the older
    # shared prefix, re-wrapped when 'sealbox serve' starts.
    wrap_format: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set when it became its file: the row stays until it expires, so a client that asks
    # again hears that it is complete (offset = length) instead of starting over. A
    # complete upload holds no room, no parts, no key and no metadata.
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UploadPart(Base):
    """One accepted ``PATCH`` body of an upload: an encrypted object in the blob store."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)  # plaintext bytes
    chunk_log2: Mapped[int] = mapped_column(SmallInteger, default=16, server_default="16")
    header_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
    # crypto.segments.part_tag: pins the part to its offset and size under the upload's
    # key. Null only for parts accepted before it existed (revision 0010).
    tag: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)


def holding_room(now: Any) -> ColumnElement[bool]:
    """The uploads that hold room at ``now`` (a datetime or a bound parameter): not
    expired and not complete. Every count of held room (the quota, a link's files and
    bytes, the caps on unfinished uploads) uses this one condition."""
    return and_(Upload.expires_at > now, Upload.completed_at.is_(None))
