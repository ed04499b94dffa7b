"""Folders, and links to folders and to selections.

``folders`` holds each account's tree (names under the account's name key, in
``name_keys``); ``files.folder_id`` puts a file in one (null: the top), and
``files.listed_name_enc`` / ``files.name_tag`` are the name under that key and its tag,
filled in for existing files when 'sealbox serve' starts. Uploads carry where their
file goes. A share points at a file, a folder, or the ``share_items`` of a selection;
``share_deliveries`` counts a link's download limit per file.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from sealbox.db.base import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _add_reference(table: str, column: str, target: str) -> None:
    """A nullable column referring to ``target`` (ON DELETE CASCADE), without a batch
    rebuild of ``table`` on SQLite (a rebuild drops the old table, which cascades to
    every row that refers to it)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} CHAR(32) "
            f"CONSTRAINT fk_{table}_{column}_{target} REFERENCES {target} (id) ON DELETE CASCADE"
        )
    else:
        op.add_column(table, sa.Column(column, sa.Uuid(), nullable=True))
        op.create_foreign_key(f"fk_{table}_{column}_{target}", table, target, [column], ["id"], ondelete="CASCADE")
    op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "name_keys",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("wrap_format", sa.SmallInteger(), nullable=False, server_default="2"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_name_keys_owner_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("owner_id", name="pk_name_keys"),
    )
    op.create_index("ix_name_keys_key_id", "name_keys", ["key_id"])
    op.create_table(
        "folders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("name_enc", sa.LargeBinary(), nullable=False),
        sa.Column("name_tag", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_folders_owner_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["upload_requests.id"], name="fk_folders_request_id_upload_requests", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["folders.id"], name="fk_folders_parent_id_folders", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_folders"),
        sa.UniqueConstraint("owner_id", "name_tag", name="uq_folders_owner_name_tag"),
    )
    op.create_index("ix_folders_parent_id", "folders", ["parent_id"])
    op.create_index("ix_folders_owner_parent", "folders", ["owner_id", "parent_id"])

    _add_reference("files", "folder_id", "folders")
    op.add_column("files", sa.Column("listed_name_enc", sa.LargeBinary(), nullable=True))
    op.add_column("files", sa.Column("name_tag", sa.LargeBinary(32), nullable=True))
    op.create_index("ix_files_owner_folder", "files", ["owner_id", "folder_id"])
    op.create_index("uq_files_owner_name_tag", "files", ["owner_id", "name_tag"], unique=True)

    op.add_column("uploads", sa.Column("folder_id", sa.Uuid(), nullable=True))
    op.add_column("uploads", sa.Column("path_enc", sa.LargeBinary(), nullable=True))
    _add_reference("upload_requests", "folder_id", "folders")

    # A share of a folder or a selection has no file. On SQLite that takes a rebuild of
    # ``shares``: nothing refers to it yet (the tables below are made after).
    with op.batch_alter_table("shares") as batch:
        batch.alter_column("file_id", existing_type=sa.Uuid(), nullable=True)
    _add_reference("shares", "folder_id", "folders")
    op.create_table(
        "share_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("share_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("folder_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["share_id"], ["shares.id"], name="fk_share_items_share_id_shares", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name="fk_share_items_file_id_files", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_share_items_folder_id_folders", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_share_items"),
    )
    for column in ("share_id", "file_id", "folder_id"):
        op.create_index(f"ix_share_items_{column}", "share_items", [column])
    op.create_table(
        "share_deliveries",
        sa.Column("share_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["share_id"], ["shares.id"], name="fk_share_deliveries_share_id_shares", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name="fk_share_deliveries_file_id_files", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("share_id", "file_id", name="pk_share_deliveries"),
    )


def downgrade() -> None:
    # Files in folders, and links to several files, cannot be expressed in the older
    # schema: refuse rather than lose them.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM folders")).scalar_one():
        raise RuntimeError("folders exist; they cannot be kept by revision 0010")
    if bind.execute(sa.text("SELECT count(*) FROM shares WHERE file_id IS NULL")).scalar_one():
        raise RuntimeError("links to folders or selections exist; they cannot be kept by revision 0010")
    op.drop_table("share_deliveries")
    op.drop_table("share_items")
    op.drop_index("uq_files_owner_name_tag", "files")
    op.drop_index("ix_files_owner_folder", "files")
    for table, column in (("shares", "folder_id"), ("upload_requests", "folder_id"), ("files", "folder_id")):
        op.drop_index(f"ix_{table}_{column}", table)
        if bind.dialect.name != "sqlite":
            op.drop_constraint(f"fk_{table}_{column}_folders", table, type_="foreignkey")
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for table, column in (
        ("files", "listed_name_enc"),
        ("files", "name_tag"),
        ("uploads", "folder_id"),
        ("uploads", "path_enc"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("folders")
    op.drop_table("name_keys")
