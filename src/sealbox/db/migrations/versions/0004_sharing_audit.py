"""Sharing (links, grants, upload requests, unlocks) and the audit trail.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from sealbox.db.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = bytes(32)


def upgrade() -> None:
    op.create_table(
        "upload_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("max_files", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("files_received", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("bytes_received", sa.BigInteger(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_upload_requests_owner_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_upload_requests"),
        sa.UniqueConstraint("token_hash", name="uq_upload_requests_token_hash"),
    )
    op.create_index("ix_upload_requests_owner_created", "upload_requests", ["owner_id", "created_at"])
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("upload_request_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("uploader_enc", sa.LargeBinary(), nullable=True))
        batch.create_foreign_key(
            "fk_files_upload_request_id_upload_requests",
            "upload_requests",
            ["upload_request_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_files_upload_request_id", ["upload_request_id"])
    op.create_table(
        "shares",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.Column("download_limit", sa.Integer(), nullable=True),
        sa.Column("bytes_left", sa.BigInteger(), nullable=True),
        sa.Column("grace_left", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("downloads", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_shares_file_id_files", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_shares_owner_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
        sa.UniqueConstraint("token_hash", name="uq_shares_token_hash"),
    )
    op.create_index("ix_shares_file_id", "shares", ["file_id"])
    op.create_index("ix_shares_owner_created", "shares", ["owner_id", "created_at"])
    op.create_table(
        "grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_grants_file_id_files", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_grants_owner_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grantee_id"], ["users.id"], name="fk_grants_grantee_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_grants"),
        sa.UniqueConstraint("file_id", "grantee_id", name="uq_grants_file_grantee"),
    )
    op.create_index("ix_grants_grantee_id", "grants", ["grantee_id"])
    op.create_table(
        "unlocks",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_unlocks"),
    )
    op.create_index("ix_unlocks_link_id", "unlocks", ["link_id"])
    op.create_index("ix_unlocks_expires_at", "unlocks", ["expires_at"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("client", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_owner_seq", "audit_events", ["owner_id", "seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_events")
    op.drop_table("unlocks")
    op.drop_table("grants")
    op.drop_table("shares")
    with op.batch_alter_table("files") as batch:
        batch.drop_index("ix_files_upload_request_id")
        batch.drop_constraint("fk_files_upload_request_id_upload_requests", type_="foreignkey")
        batch.drop_column("uploader_enc")
        batch.drop_column("upload_request_id")
    op.drop_table("upload_requests")
