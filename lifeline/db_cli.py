"""`flask db upgrade` / `flask db current`: the schema migrations, run once per deploy."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import Engine

from lifeline.ivr.store.migrate import NewerSchema, current, head, known, upgrade
from lifeline.ivr.store.sql import SqlStore

db = AppGroup("db", help="Database schema migrations (Alembic).")


def _engine() -> Engine:
    """The configured database's engine; a store with no schema (memory://) stops the command."""
    store = current_app.extensions["lifeline"].store
    if not isinstance(store, SqlStore):
        raise click.ClickException("DATABASE_URL=memory:// has no schema to migrate: it starts empty and "
                                   "current in every process")
    return store.engine


@db.command("upgrade")
def upgrade_command() -> None:
    """Bring the database to the code's schema (under a lock; safe to run from several places)."""
    engine = _engine()
    try:
        before, after = upgrade(engine)
    except NewerSchema as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        # Each revision commits on its own, and an index build cut short is built again next time.
        raise click.ClickException(f"interrupted at revision {current(engine) or 'none'}: what was "
                                   "done is kept; run `flask db upgrade` again to finish") from None
    if before == after:
        click.echo(f"database schema already current (revision {after})")
    else:
        click.echo(f"database schema upgraded from {before or 'none'} to {after}")


@db.command("current")
def current_command() -> None:
    """Print the database's schema revision and the code's."""
    engine = _engine()
    revision = current(engine)
    if revision == head():
        advice = ""
    elif revision is not None and not known(revision):
        # Upgrading cannot help: an older release is running against a newer database.
        advice = " (newer than this code: run the release that migrated it, or a newer one)"
    else:
        advice = " (run `flask db upgrade`)"
    click.echo(f"database: {revision or 'none'}; code: {head()}{advice}")


def register(app: Flask) -> None:
    """Add `flask db` to the app's CLI."""
    app.cli.add_command(db)
