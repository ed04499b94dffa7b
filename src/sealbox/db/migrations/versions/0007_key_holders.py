"""Retired master keys, and the master key ids each running server process holds.

``retired_keys`` lets a file or upload that commits after ``keys retire`` see that its
key is gone (it is wrapped anew). ``key_holders`` lets ``keys rotate``, ``promote`` and
``rewrap`` refuse while a live process lacks the key they would put in use.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from sealbox.db.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retired_keys"),
    )
    op.create_table(
        "key_holders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("primary_key", sa.String(64), nullable=False),
        sa.Column("key_ids", sa.Text(), nullable=False),
        sa.Column("missing", sa.Text(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_key_holders"),
    )
    op.create_index("ix_key_holders_expires_at", "key_holders", ["expires_at"])


def downgrade() -> None:
    op.drop_table("key_holders")
    op.drop_table("retired_keys")
