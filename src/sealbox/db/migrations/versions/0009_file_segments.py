"""Files made of segments: a completed resumable upload keeps the parts it received as
the file's segments instead of sealing the whole file again.

``files.segments`` is 0 for a file stored as one blob (every existing row), n for a file
made of the n ``file_segments`` rows; for those, ``files.header_tag`` holds the segment
table's tag. ``uploads.completed_at`` marks an upload that became its file (kept until it
expires, so a client asking again hears it is complete). ``uploads.file_id`` is the id of
the file an upload becomes, chosen when it is created (its parts and metadata are bound
to it); an upload already in progress keeps its own id for that.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from sealbox.db.base import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("segments", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "file_segments",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_log2", sa.SmallInteger(), nullable=False),
        sa.Column("header_tag", sa.LargeBinary(32), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_file_segments_file_id_files", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id", "seq", name="pk_file_segments"),
        sa.UniqueConstraint("key", name="uq_file_segments_key"),
    )
    # Null for uploads in progress: they were bound to their own id, which becomes their
    # file's. (Not filled in and made NOT NULL: on SQLite that rebuilds ``uploads``, and
    # dropping the old table would cascade to every stored part.)
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("file_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("completed_at", UTCDateTime(), nullable=True))
    # Every part stored so far was sealed in 64 KiB chunks.
    with op.batch_alter_table("upload_parts") as batch:
        batch.add_column(sa.Column("chunk_log2", sa.SmallInteger(), nullable=False, server_default="16"))


def downgrade() -> None:
    # Files made of segments, and uploads whose parts are bound to the id of their future
    # file, cannot be expressed in the older schema: refuse rather than lose them.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM files WHERE segments > 0")).scalar_one():
        raise RuntimeError("files made of segments exist; they cannot be kept by revision 0008")
    if bind.execute(
        sa.text("SELECT count(*) FROM uploads WHERE file_id IS NOT NULL AND completed_at IS NULL")
    ).scalar_one():
        raise RuntimeError("uploads in progress were started by revision 0009; let them finish or expire first")
    op.drop_table("file_segments")
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), never a batch rebuild: on SQLite a
    # rebuild drops the old table, which cascades to every row that refers to it
    # (a file's links and grants, an upload's parts).
    op.execute("DELETE FROM uploads WHERE completed_at IS NOT NULL")
    columns = [
        ("upload_parts", "chunk_log2"),
        ("uploads", "file_id"),
        ("uploads", "completed_at"),
        ("files", "segments"),
    ]
    for table, column in columns:
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
