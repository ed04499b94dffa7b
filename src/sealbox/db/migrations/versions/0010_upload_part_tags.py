"""Each part of an unfinished upload carries a tag that pins it to its offset and size
(``crypto.segments.part_tag``), checked when the upload completes, before its parts
become the file's segment table.

Parts accepted before are left without one (null): an upload bound to its own id (begun
before revision 0009) may still complete with them; one begun under 0009 without tags
cannot, and is sent again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): never a batch rebuild of upload_parts.
    op.add_column("upload_parts", sa.Column("tag", sa.LargeBinary(32), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE upload_parts DROP COLUMN tag")
