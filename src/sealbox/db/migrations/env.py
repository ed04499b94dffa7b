"""Alembic environment: runs on the connection handed in by ``sealbox.db.migrate``.

Revisions are written by hand; ``tests/unit/test_migrations.py`` checks that the
migrated schema matches the models.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
