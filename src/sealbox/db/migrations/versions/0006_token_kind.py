"""API tokens get a kind: 'session', 'login' or 'personal'.

A web session's token is accepted only as the session cookie, every other token only as
``Authorization: Bearer``. Existing rows are classified by what the code that made them
gave each kind: a web session was named 'web session', had full scope and an expiry; a
sign-in token was named 'login', likewise. Everything else stays personal, so a script's
token keeps working as a bearer token; the only cost of a doubt is a browser signing in
again.

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
    made_by_sign_in = "scope = 'full' AND expires_at IS NOT NULL"
    op.execute(f"UPDATE api_tokens SET kind = 'session' WHERE name = 'web session' AND {made_by_sign_in}")  # noqa: S608
    op.execute(f"UPDATE api_tokens SET kind = 'login' WHERE name = 'login' AND {made_by_sign_in}")  # noqa: S608


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("kind")
