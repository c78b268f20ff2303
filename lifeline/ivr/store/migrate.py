"""Schema migrations (Alembic): upgrade once per deploy under a lock; check at start-up.

`flask db upgrade` brings the database to the code's schema. It runs under a lock, so two
deploy steps (or two instances started at once) never migrate at the same time: a PostgreSQL
advisory lock, or a file lock beside a SQLite database. Workers never change the schema; the
app checks it at start-up and stops with one line saying to run the upgrade.

A database made before migrations existed (tables from `create_all`, no `alembic_version`) is
adopted: stamped at the revision its schema matches, then upgraded, data kept. That is the first
revision, except for the last release before migrations, whose `create_all` already made
`calls.checked_at` (revision 0002's column).
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text

from ..errors import StoreError

log = logging.getLogger(__name__)
SCRIPTS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema as `create_all` made it before migrations
WITH_CHECKED_AT = "0002"  # ...and as the last release before migrations made it
# Any fixed 64-bit number: every Lifeline process that migrates takes this advisory lock.
_PG_LOCK_KEY = 0x4C6966656C696E65  # "Lifeline"
LOCK_POLL_S = 0.2
UPGRADE_HINT = "run `flask db upgrade`"
# The execution option that makes a SQLite transaction take the write lock when it begins (BEGIN
# IMMEDIATE); without it a transaction begins deferred, as reads should (lifeline/ivr/store/sql.py).
WRITE_OPTION = "lifeline_sqlite_write"


class NewerSchema(StoreError):
    """The database was migrated by a newer release than this code."""


def create_index_online(name: str, table: str, columns: list[str]) -> None:
    """Inside a revision: create an index; on PostgreSQL CONCURRENTLY, so the running release
    keeps writing to the table while the index builds."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # CONCURRENTLY cannot run inside a transaction: what ran before it commits first.
        with op.get_context().autocommit_block():
            valid = bind.execute(text(
                "SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                "WHERE c.relname = :name AND pg_table_is_visible(c.oid)"), {"name": name}).scalar()
            if valid:
                return  # built by an earlier run that stopped before recording the revision
            if valid is not None:
                # A concurrent build that failed (a timeout, a killed deploy) leaves an invalid
                # index behind, never used and still kept up to date: build it again.
                log.warning("index %s was left invalid by an interrupted build; building it again", name)
                op.drop_index(name, table_name=table, postgresql_concurrently=True)
            op.create_index(name, table, columns, postgresql_concurrently=True)
        return
    op.create_index(name, table, columns)


def head() -> str:
    """The revision the code expects."""
    head_revision = ScriptDirectory(str(SCRIPTS)).get_current_head()
    assert head_revision is not None, "lifeline/ivr/store/migrations has no revisions"
    return head_revision


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_problem(engine: Engine) -> str | None:
    """One line saying why the database's schema is not the code's, or None when it is.

    An unreachable database raises SQLAlchemy's error: that is a settings problem, not a schema
    state (SqlStore.schema_problem turns it into a StoreError naming DATABASE_URL).
    """
    revision = current(engine)
    if revision == head():
        return None
    if revision is None:
        with engine.connect() as conn:
            has_tables = inspect(conn).has_table("calls")
        state = "was made before migrations" if has_tables else "is empty"
    elif not known(revision):
        return (f"the database schema is at revision {revision}, newer than this code knows (it "
                f"ends at {head()}): run the release that migrated it, or a newer one")
    else:
        state = f"is at revision {revision}, the code needs {head()}"
    # Named, without its password: a mistyped DATABASE_URL (or none) means another database than
    # the one meant, and this is where it shows.
    where = engine.url.render_as_string(hide_password=True)
    return f"the database schema ({where}) {state}: {UPGRADE_HINT}"


def known(revision: str) -> bool:
    """Whether this code's migrations hold the revision (one a newer release wrote does not)."""
    try:
        return ScriptDirectory(str(SCRIPTS)).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to head under the migration lock; returns (revision before, after)."""
    with _migration_lock(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        if before is not None and not known(before):
            raise NewerSchema(f"the database is at revision {before}, which this code does not know (its "
                              f"migrations end at {head()}): it was migrated by a newer release; run that "
                              "release (or a newer one) against it, never an older one")
        config = _config(conn)
        if before is None and inspect(conn).has_table("calls"):
            columns = {c["name"] for c in inspect(conn).get_columns("calls")}
            matches = WITH_CHECKED_AT if "checked_at" in columns else BASELINE
            log.warning("adopting a database made before migrations: stamping revision %s", matches)
            command.stamp(config, matches)
        # Alembic then runs each revision in a transaction of its own, so a revision can step
        # outside it (PostgreSQL's CREATE INDEX CONCURRENTLY) without committing half of another.
        conn.commit()
        command.upgrade(config, "head")
        conn.commit()
        return before, MigrationContext.configure(conn).get_current_revision() or ""


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config


def _take_advisory_lock(conn: Connection) -> None:
    """Wait for the migration lock by asking again and again rather than in one blocked statement:
    a waiter blocked in a statement holds a snapshot, which a CREATE INDEX CONCURRENTLY in the
    lock holder's migration waits for, so the two would deadlock."""
    said = False
    while True:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}).scalar()
        conn.commit()
        if got:
            return
        if not said:
            log.info("another process is migrating this database; waiting for it to finish")
            said = True
        time.sleep(LOCK_POLL_S)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            _take_advisory_lock(conn)
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with engine.connect() as conn:
            yield conn.execution_options(**{WRITE_OPTION: True})
        return
    # SQLite: an exclusive lock on a file beside the database, held for the whole upgrade.
    with open(f"{database}.migrate-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as conn:
                # Reads first, then writes: a deferred transaction could be refused its upgrade
                # to a writer if the app committed in between.
                yield conn.execution_options(**{WRITE_OPTION: True})
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
