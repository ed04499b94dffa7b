"""Wrapped data keys record their format: 1, one prefix for file and upload keys alike;
2, a prefix per domain (file, upload).

Every existing row is format 1. Re-wrapping needs the master keys, which migrations do
not hold: ``sealbox serve`` re-wraps format-1 rows when it starts (see
``sealbox.keys.formats``), under the master key that wrapped them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("files", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("wrap_format", sa.SmallInteger(), nullable=False, server_default="1"))


def downgrade() -> None:
    for table in ("files", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("wrap_format")
