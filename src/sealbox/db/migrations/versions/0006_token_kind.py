"""API tokens get a kind: 'session', 'login' or 'personal'.

A web session's token is accepted only as the session cookie, every other token only as
``Authorization: Bearer``. Existing rows are classified by the label they were given.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="personal"))
    op.execute("UPDATE api_tokens SET kind = 'session' WHERE name = 'web session'")
    op.execute("UPDATE api_tokens SET kind = 'login' WHERE name = 'login'")


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("kind")
