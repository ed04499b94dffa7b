from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from sealbox.db.base import Base, UTCDateTime, utcnow


class File(Base):
    """A stored file. Name and content type are ciphertext (K_meta); the DEK is wrapped.

    A row exists only once its blob is complete and durable, so every row is a
    complete, downloadable file.
    """

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_owner_created", "owner_id", "created_at", "id"),
        Index("ix_files_owner_folder", "owner_id", "folder_id"),
        Index("uq_files_owner_name_tag", "owner_id", "name_tag", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    content_type_enc: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_log2: Mapped[int] = mapped_column(SmallInteger)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    # 2: wrapped with the file-key prefix (crypto.keys.WrapDomain.FILE), as every one-blob
    # file's key is wrapped now; 3: with the prefix of files made of segments
    # (WrapDomain.SEGMENTED_FILE), as every such file's key is; 1: the older shared
    # prefix. A file made of segments in format 2, and format 1, are re-wrapped when
    # 'sealbox serve' starts (crypto.keys.file_wrap_domain says which prefix a row takes).
    wrap_format: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="1")
    # The tag that pins the stored content: the header tag of the file's one blob, or,
    # for a file made of segments, its segment table's tag (sealbox.crypto.segments).
    header_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
    # 0: the file is one blob under ``files.service.blob_key(id)``; n > 0: it is the n
    # ``FileSegment`` rows below, in order (a completed resumable upload).
    segments: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set for files received through an upload-request link; the uploader's own
    # description of themselves is ciphertext like the name.
    upload_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("upload_requests.id", ondelete="SET NULL"), nullable=True, index=True
    )
    uploader_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The folder it is in; null: at the top of its account.
    folder_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # The name again, under the owner's name key (what listings decrypt: one AES-GCM
    # call instead of unwrapping every file's key), and its tag in the folder (see
    # ``Folder.name_tag``). Null only for files stored before folders existed, until
    # 'sealbox serve' fills them in at start.
    listed_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    name_tag: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)


class FileSegment(Base):
    """One segment of a file made of segments: a complete sealbox stream of its bytes
    under the file's key, with its own salt. The segment table (``File.header_tag``)
    authenticates the order, the count, each header tag and each size."""

    __tablename__ = "file_segments"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)  # plaintext bytes
    chunk_log2: Mapped[int] = mapped_column(SmallInteger)
    header_tag: Mapped[bytes] = mapped_column(LargeBinary(32))
