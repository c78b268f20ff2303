"""Alembic's environment: migrations run on the connection `lifeline.ivr.store.migrate` hands over.

`lifeline.ivr.store.migrate` opens that connection under the migration lock; nothing here connects on its
own, so there is no alembic.ini and no second source for the database URL.
"""

from __future__ import annotations

from alembic import context

from lifeline.ivr.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                  render_as_batch=connection.dialect.name == "sqlite", transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
