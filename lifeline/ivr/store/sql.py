"""The SQLAlchemy store: SQLite (default, zero set-up) and PostgreSQL (several instances)."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    func,
    make_url,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from ..config import SQLITE_SYNCHRONOUS
from ..errors import StoreError
from ..events import storable_id
from ..sanitize import clean_text, finite_or_none
from . import schema
from .base import StoreTx, ascii_lower
from .migrate import WRITE_OPTION, schema_problem, upgrade
from .outputs import FeedNotices
from .records import (
    CallPage,
    CallQuery,
    CallRecord,
    CallStatus,
    Command,
    CommandStatus,
    FeedEvent,
    Message,
    OutboxEntry,
    PurgeBatch,
    StoreFigures,
    TransferRecord,
)
from .sql_errors import first_line, outage_as_store_error, safe_url, unavailable
from .sql_outputs import SqlOutputs, insert_ignoring
from .sql_purge import purge_ended, purged_counts

_CALL_FIELDS = {f.name for f in fields(CallRecord)}
_TRANSFER_FIELDS = {f.name for f in fields(TransferRecord)}
FEED_CHANNEL = "lifeline_feed"
FEED_LOCK_KEY = 0x11FE_ED00


# The statements of every webhook, built once: SQLAlchemy then finds each one's compiled form by
# the statement object alone instead of rebuilding it and its cache key from the values on every
# call (under load that building was a large part of a webhook's CPU: BENCHMARKS.md). Values go
# in as parameters; an UPDATE's SET clause is made of the parameters that name columns, and its
# WHERE takes the `by_*` parameters.
_CALL = select(schema.calls).where(schema.calls.c.call_control_id == bindparam("by_id"))
_CALL_FOR_UPDATE = _CALL.with_for_update()
_UPDATE_CALL = update(schema.calls).where(schema.calls.c.call_control_id == bindparam("by_id"))
_INSERT_TRANSFER = schema.transfers.insert()
_UPDATE_TRANSFER = update(schema.transfers).where(schema.transfers.c.call_control_id == bindparam("by_id"),
                                                  schema.transfers.c.attempt == bindparam("by_attempt"))
_TRANSFERS = (select(schema.transfers).where(schema.transfers.c.call_control_id == bindparam("by_id"))
              .order_by(schema.transfers.c.attempt))
_INSERT_DECISION = schema.decisions.insert()
_INSERT_FEED = schema.feed.insert()
# Only a pending command is marked: a settled one (sent, rejected, ...) keeps its outcome, so a
# slow sender finishing after a resend cannot put a sent command back in the queue.
_MARK_COMMAND = update(schema.commands).where(schema.commands.c.command_id == bindparam("by_id"),
                                              schema.commands.c.status == CommandStatus.PENDING)


@functools.cache
def _recent_messages(limit: int) -> Any:
    """The latest `limit` scored messages of the call named by the `by_id` parameter, newest first."""
    return (select(schema.messages).where(schema.messages.c.call_control_id == bindparam("by_id"),
                                          schema.messages.c.score.is_not(None))
            .order_by(schema.messages.c.id.desc()).limit(limit))


class SqlStoreTx(StoreTx):
    """A unit of work on one SQLAlchemy connection inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._dialect = conn.dialect.name

    @property
    def connection(self) -> Connection:
        """The transaction's connection (the outputs' queries, in sql_outputs, run on it too)."""
        return self._conn

    def _insert_ignore(self, table: Any, values: dict[str, Any]) -> bool:
        # RETURNING, not rowcount: psycopg 3 reports rowcount -1 for this statement.
        statement = insert_ignoring(table, self._dialect, returning=True)
        return self._conn.execute(statement, storable(table, values)).first() is not None

    def record_event(self, event_id: str, event_type: str, call_control_id: str | None,
                     occurred_at: str | None, attempt: int, payload: str) -> bool:
        return self._insert_ignore(schema.events, {
            "id": event_id, "event_type": event_type, "call_control_id": call_control_id,
            "occurred_at": occurred_at, "received_at": time.time(), "attempt": attempt,
            "payload": payload})

    def claim(self, call_control_id: str, action: str) -> bool:
        return self._insert_ignore(schema.claims, {
            "call_control_id": call_control_id, "action": action, "claimed_at": time.time()})

    def insert_call(self, call: CallRecord) -> bool:
        return self._insert_ignore(schema.calls, asdict(call))

    def get_call(self, call_control_id: str, lock: bool = True) -> CallRecord | None:
        if not storable_id(call_control_id):
            return None  # no call has it, and PostgreSQL would refuse a NUL with an error
        query = _CALL_FOR_UPDATE if lock and self._dialect == "postgresql" else _CALL
        row = self._conn.execute(query, {"by_id": call_control_id}).mappings().first()
        return CallRecord(**dict(row)) if row else None

    def update_call(self, call_control_id: str, **values: Any) -> None:
        unknown = set(values) - _CALL_FIELDS
        if unknown:
            raise TypeError(f"unknown call fields {sorted(unknown)}")
        values.setdefault("updated_at", time.time())
        self._conn.execute(_UPDATE_CALL, {**storable(schema.calls, values), "by_id": call_control_id})

    def add_transfer(self, transfer: TransferRecord) -> None:
        self._conn.execute(_INSERT_TRANSFER, storable(schema.transfers, asdict(transfer)))

    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        return _transfers(self._conn, call_control_id)

    def transfer_for_agent_leg(self, agent_call_control_id: str) -> TransferRecord | None:
        row = self._conn.execute(
            select(schema.transfers)
            .where(schema.transfers.c.agent_call_control_id == agent_call_control_id)
        ).mappings().first()
        return TransferRecord(**dict(row)) if row else None

    def update_transfer(self, call_control_id: str, attempt: int, **values: Any) -> None:
        unknown = set(values) - _TRANSFER_FIELDS
        if unknown:
            raise TypeError(f"unknown transfer fields {sorted(unknown)}")
        values.setdefault("updated_at", time.time())
        self._conn.execute(_UPDATE_TRANSFER, {**storable(schema.transfers, values), "by_id": call_control_id,
                                              "by_attempt": attempt})

    def outbox_entry(self, command_id: str) -> OutboxEntry | None:
        row = self._conn.execute(select(schema.commands).where(
            schema.commands.c.command_id == command_id)).mappings().first()
        return _outbox_entry(dict(row)) if row else None

    def enqueue(self, commands: Sequence[Command], sent: Collection[str] = ()) -> None:
        if not commands:
            return
        now = time.time()
        # A microsecond apart, so created_at orders the commands of one unit of work too. One
        # statement for all of them: a command already in the outbox (a redelivered webhook's)
        # is left as it is.
        self._conn.execute(insert_ignoring(schema.commands, self._dialect, returning=False), [
            storable(schema.commands, {
                "command_id": command.command_id, "call_control_id": command.call_control_id,
                "name": command.name, "params": json.dumps(command.params),
                "status": CommandStatus.PENDING, "attempts": 0, "last_error": None,
                "created_at": now + index * 1e-6, "updated_at": now + index * 1e-6})
            for index, command in enumerate(commands)])
        if sent:
            c = schema.commands.c
            self._conn.execute(update(schema.commands).where(
                c.command_id.in_(sorted(sent)), c.status == CommandStatus.PENDING).values(
                status=CommandStatus.SENT, attempts=1, last_error=None, updated_at=now))

    def add_message(self, call_control_id: str, engine: str, source_id: str, text: str,
                    confidence: float | None, score: float | None, label: str | None,
                    analysis: dict[str, Any] | None = None) -> bool:
        return self._insert_ignore(schema.messages, {
            "call_control_id": call_control_id, "engine": engine, "source_id": source_id,
            "text": text, "confidence": confidence, "score": score, "label": label,
            "analysis": json.dumps(analysis) if analysis is not None else None,
            "created_at": time.time()})

    def recent_messages(self, call_control_id: str, limit: int) -> list[Message]:
        rows = list(self._conn.execute(_recent_messages(limit), {"by_id": call_control_id}).mappings())
        return [_message(r) for r in reversed(rows)]

    def add_decision(self, call_control_id: str, rule: str, reason: str,
                     evidence: list[dict[str, Any]]) -> None:
        self._conn.execute(_INSERT_DECISION, storable(schema.decisions, {
            "call_control_id": call_control_id, "rule": rule, "reason": reason,
            "evidence": json.dumps(evidence), "decided_at": time.time()}))

    def calls_to_sweep(self, swept_before: float, limit: int) -> list[CallRecord]:
        calls = schema.calls.c
        query = (select(schema.calls)
                 .where(calls.status != CallStatus.ENDED,
                        (calls.swept_at.is_(None)) | (calls.swept_at < swept_before))
                 .order_by(calls.created_at).limit(limit))
        if self._dialect == "postgresql":
            # Another instance's sweeper skips the rows this one holds instead of waiting for them.
            query = query.with_for_update(skip_locked=True)
        return [CallRecord(**dict(r)) for r in self._conn.execute(query).mappings()]

    def stamp_swept(self, call_control_ids: Sequence[str], at: float) -> None:
        if call_control_ids:
            self._conn.execute(update(schema.calls)
                               .where(schema.calls.c.call_control_id.in_(list(call_control_ids)))
                               .values(swept_at=at))

    def calls_to_check(self, idle_before: float, limit: int) -> list[CallRecord]:
        calls = schema.calls.c
        query = (select(schema.calls)
                 .where(calls.status != CallStatus.ENDED, calls.updated_at < idle_before,
                        (calls.checked_at.is_(None)) | (calls.checked_at < idle_before))
                 .order_by(func.coalesce(calls.checked_at, 0.0), calls.updated_at).limit(limit))
        if self._dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [CallRecord(**dict(r)) for r in self._conn.execute(query).mappings()]

    def add_feed(self, events: Sequence[FeedEvent]) -> None:
        if not events:
            return
        if self._dialect == "postgresql":
            # Held until commit: a reader that has seen id N can never later find a smaller id
            # committing (SQLite's single writer gives the same order for free).
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_LOCK_KEY})
        now = time.time()
        self._conn.execute(_INSERT_FEED, [
            {"call_control_id": e.call_control_id, "kind": e.kind, "data": json.dumps(e.data),
             "created_at": now} for e in events])
        if self._dialect == "postgresql":
            # Delivered to LISTENers at commit, never for a rollback: a wake-up, not the data.
            self._conn.execute(select(func.pg_notify(FEED_CHANNEL, "")))


class SqlStore(SqlOutputs):
    """CallStore and OutputStore on SQLAlchemy; the URL's scheme picks SQLite or PostgreSQL."""

    def __init__(self, url: str, *, create_schema: bool = True, schema_name: str | None = None,
                 sqlite_synchronous: str = "NORMAL") -> None:
        """Connect; with create_schema, bring the schema to the code's revision (`flask db upgrade`).

        `sqlite_synchronous` (LIFELINE_SQLITE_SYNCHRONOUS): NORMAL or FULL, see `_make_engine`."""
        self.url = url
        self.engine = _make_engine(url, schema_name, sqlite_synchronous)
        # SQLite has one writer at a time; queueing writers here wakes the next one at once,
        # where SQLite's own busy handler would poll with sleeps of up to 100 ms: a thread lock
        # within the process, and a file lock between processes (gunicorn's workers).
        self._writer = WriterLock(sqlite_file(url)) if url.startswith("sqlite") else None
        if create_schema:
            # Through the migrations (under their lock), so there is one way to build the schema.
            try:
                upgrade(self.engine)
            except SQLAlchemyError as exc:
                raise StoreError(f"cannot create tables at {safe_url(url)}: {exc.__class__.__name__}: "
                                 f"{first_line(exc)}; check DATABASE_URL and that the database "
                                 "server is running") from exc

    def schema_problem(self) -> str | None:
        """One line when the schema is not the code's (run `flask db upgrade`), else None."""
        try:
            return schema_problem(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot reach the database at {safe_url(self.url)}: {exc.__class__.__name__}: "
                             f"{first_line(exc)}; check DATABASE_URL and that the database server "
                             "is running") from exc

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        sessions = schema.revoked_sessions
        with self.unit() as tx:
            tx.connection.execute(delete(sessions).where(sessions.c.expires_at < time.time()))
            tx.connection.execute(insert_ignoring(sessions, tx.connection.dialect.name, returning=False),
                                  {"session_id": session_id, "expires_at": expires_at})

    def session_revoked(self, session_id: str) -> bool:
        sessions = schema.revoked_sessions
        with self._read("read the signed-out sessions") as conn:
            return conn.execute(select(sessions.c.session_id)
                                .where(sessions.c.session_id == session_id)).first() is not None

    def note_auth_failure(self, client: str, at: float, forget_before: float) -> None:
        failures = schema.auth_failures
        with self.unit() as tx:
            tx.connection.execute(delete(failures).where(failures.c.at < forget_before))
            tx.connection.execute(failures.insert().values(client=client[:64], at=at))

    def auth_failures(self, client: str, since: float) -> list[float]:
        failures = schema.auth_failures
        with self._read("read the failed sign-ins") as conn:
            return [at for (at,) in conn.execute(
                select(failures.c.at).where(failures.c.client == client[:64], failures.c.at >= since)
                .order_by(failures.c.at))]

    def figures(self) -> StoreFigures:
        calls, decisions, transfers, commands = (schema.calls.c, schema.decisions.c, schema.transfers.c,
                                                 schema.commands.c)
        with self._read("read the store's figures") as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot for every count: a purge committing between two of them would have
                # its calls counted twice (once as calls, once in purged_counts), and the counter
                # would then go down at the next scrape. SQLite's read transaction is one snapshot.
                conn.execution_options(isolation_level="REPEATABLE READ")
            def counts(key: Any, *where: Any) -> dict[str, int]:
                grouped = select(key, func.count()).where(*where).group_by(key)
                return {str(k): n for k, n in conn.execute(grouped)}

            pending, oldest = conn.execute(select(func.count(), func.min(commands.created_at))
                                           .where(commands.status == CommandStatus.PENDING)).one()
            remaining = StoreFigures(
                live_by_state=counts(calls.status, calls.status != CallStatus.ENDED),
                ended_by_outcome=counts(func.coalesce(calls.outcome, "unknown"),
                                        calls.status == CallStatus.ENDED),
                decisions_by_rule=counts(decisions.rule),
                transfers_by_status=counts(transfers.status),
                pending_commands=int(pending), oldest_pending_at=oldest,
                rejected_commands=int(conn.execute(select(func.count()).where(
                    commands.status == CommandStatus.REJECTED)).scalar() or 0))
            return remaining.with_purged(purged_counts(conn))

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError as exc:  # any failure to answer means "not ready"
            raise StoreError(f"database unavailable: {exc.__class__.__name__}") from exc

    @contextmanager
    def unit(self) -> Iterator[SqlStoreTx]:
        with self._write() as conn:
            yield SqlStoreTx(conn)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self._writer is not None:
            self._writer.acquire()
        try:
            # An outage is a StoreError, which a retry (Telnyx's redelivery) can get past.
            with outage_as_store_error("write to the store", self.url), self.engine.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        finally:
            if self._writer is not None:
                self._writer.release()

    def claim(self, call_control_id: str, action: str) -> bool:
        with self.unit() as tx:
            return tx.claim(call_control_id, action)

    def get_call(self, call_control_id: str) -> CallRecord | None:
        # A read: no write transaction (on SQLite that would queue behind every writer).
        with self._read("read a call") as conn:
            return SqlStoreTx(conn).get_call(call_control_id, lock=False)

    def ended_among(self, call_control_ids: Collection[str]) -> set[str]:
        wanted = set(call_control_ids)
        if not wanted:
            return set()
        query = select(schema.calls.c.call_control_id).where(
            schema.calls.c.call_control_id.in_(sorted(wanted)), schema.calls.c.status != "ended")
        with self._read("read which calls have ended") as conn:
            return wanted - {row[0] for row in conn.execute(query)}

    def list_calls(self, limit: int = 50, active_only: bool = False) -> list[CallRecord]:
        query = select(schema.calls).order_by(schema.calls.c.created_at.desc()).limit(limit)
        if active_only:
            query = query.where(schema.calls.c.status != "ended")
        with self._read("list calls") as conn:
            return [CallRecord(**dict(r)) for r in conn.execute(query).mappings()]

    def recordings_due(self, statuses: Collection[str], limit: int) -> list[CallRecord]:
        calls = schema.calls.c
        query = (select(schema.calls).where(calls.recording_status.in_(list(statuses)))
                 .order_by(calls.recording_saved_at.asc().nulls_first(), calls.call_control_id).limit(limit))
        with self._read("list the recordings due") as conn:
            return [CallRecord(**dict(r)) for r in conn.execute(query).mappings()]

    def search_calls(self, query: CallQuery) -> CallPage:
        calls, decisions = schema.calls.c, schema.decisions.c
        where: list[Any] = []
        if query.outcome:
            where.append(calls.outcome == query.outcome)
        if query.rule:
            where.append(exists().where(decisions.call_control_id == calls.call_control_id,
                                        decisions.rule == query.rule))
        if query.since is not None:
            where.append(calls.created_at >= query.since)
        if query.until is not None:
            where.append(calls.created_at < query.until)
        if query.text:
            # lower() on both sides: ASCII case is ignored on SQLite and PostgreSQL alike.
            pattern = "%" + like_escape(ascii_lower(query.text)) + "%"
            said = exists().where(schema.messages.c.call_control_id == calls.call_control_id,
                                  func.lower(schema.messages.c.text).like(pattern, escape="\\"))
            where.append(or_(said, *(func.lower(column).like(pattern, escape="\\") for column in
                                     (calls.from_number, calls.to_number, calls.call_control_id))))
        after = list(where)
        if query.before is not None:
            after.append(_past(query.before, newest_first=True))
        limit = max(query.limit, 0)
        page = (select(schema.calls).where(*after)
                .order_by(calls.created_at.desc(), calls.call_control_id.desc())
                .offset(max(query.offset, 0)).limit(limit + 1))  # one more: is there a next page?
        with self._read("search calls") as conn:
            count = select(func.count()).select_from(schema.calls).where(*where)
            total = int(conn.execute(count).scalar() or 0)
            found = [CallRecord(**dict(r)) for r in conn.execute(page).mappings()]
            more, found = len(found) > limit, found[:limit]
            ids = [c.call_control_id for c in found]
            rules: dict[str, str] = {}
            if ids:
                for row in conn.execute(select(decisions.call_control_id, decisions.rule)
                                        .where(decisions.call_control_id.in_(ids)).order_by(decisions.id)):
                    rules.setdefault(row[0], row[1])
        return CallPage(calls=found, total=total, rules=rules, more=more)

    def purge_ended(self, ended_before: float, limit: int, after: tuple[float, str] | None = None,
                    receivers: Collection[str] = (), dry_run: bool = False) -> PurgeBatch:
        if dry_run:
            # A read: on SQLite it takes no write lock, so webhooks never wait for a dry run.
            with self._read("count the calls to purge") as conn, conn.begin():
                return purge_ended(conn, ended_before, limit, after, receivers, dry_run=True)
        with self.unit() as tx:
            return purge_ended(tx.connection, ended_before, limit, after, receivers, dry_run=False)

    def purged_files(self, limit: int = 500) -> list[str]:
        files = schema.purged_files.c
        with self._read("read the recordings left to remove") as conn:
            return [str(where) for (where,) in conn.execute(
                select(files.location).order_by(files.purged_at, files.location).limit(limit))]

    def forget_purged_files(self, locations: Collection[str]) -> None:
        if not locations:
            return
        with self.unit() as tx:
            tx.connection.execute(delete(schema.purged_files)
                                  .where(schema.purged_files.c.location.in_(list(locations))))

    def calls_by_start(self, since: float | None, until: float | None, after: tuple[float, str] | None,
                       limit: int) -> list[CallRecord]:
        c = schema.calls.c
        query = select(schema.calls).order_by(c.created_at, c.call_control_id).limit(limit)
        if since is not None:
            query = query.where(c.created_at >= since)
        if until is not None:
            query = query.where(c.created_at < until)
        if after is not None:
            query = query.where(_past(after, newest_first=False))
        with self._read("list calls by start time") as conn:
            return [CallRecord(**dict(r)) for r in conn.execute(query).mappings()]

    def feed_notices(self) -> FeedNotices:
        if self.engine.dialect.name == "postgresql":
            return FeedNotices(listen=True)  # add_feed NOTIFYs FEED_CHANNEL, which listen_feed LISTENs on
        return FeedNotices(poll=True)

    def listen_feed(self, heard: Callable[[], None], stopped: Callable[[], bool]) -> None:
        if self.engine.dialect.name != "postgresql":
            raise NotImplementedError("SQLite sends no feed notices: its feed_notices() says to poll")
        import psycopg  # the driver's own API (notifies) is needed only when the store is PostgreSQL

        # A connection of its own, not the pool's: it stays LISTENing for as long as this runs, and
        # a pooled one would carry the LISTEN to whoever took it next. psycopg takes libpq URLs:
        # without SQLAlchemy's driver suffix.
        url = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'LISTEN "{FEED_CHANNEL}"')
                heard()
                while not stopped():
                    # At most half a second at a time, so that `stopped` is looked at as often.
                    for _ in conn.notifies(timeout=0.5):
                        heard()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise unavailable("listen for the feed's notices", self.url, exc) from exc

    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        with self._read("read a call's transfers") as conn:
            return _transfers(conn, call_control_id)

    def events(self, call_control_id: str) -> list[dict[str, Any]]:
        query = (select(schema.events).where(schema.events.c.call_control_id == call_control_id)
                 .order_by(schema.events.c.received_at))
        with self._read("read a call's webhook events") as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def messages(self, call_control_id: str) -> list[dict[str, Any]]:
        query = (select(schema.messages).where(schema.messages.c.call_control_id == call_control_id)
                 .order_by(schema.messages.c.id))
        with self._read("read a call's messages") as conn:
            return [{**dict(r), "analysis": json.loads(r["analysis"]) if r["analysis"] else None}
                    for r in conn.execute(query).mappings()]

    def feed_events(self, call_control_id: str) -> list[FeedEvent]:
        query = (select(schema.feed).where(schema.feed.c.call_control_id == call_control_id)
                 .order_by(schema.feed.c.id))
        with self._read("read a call's feed events") as conn:
            return [FeedEvent(r["kind"], r["call_control_id"], json.loads(r["data"]))
                    for r in conn.execute(query).mappings()]

    def decisions(self, call_control_id: str) -> list[dict[str, Any]]:
        query = (select(schema.decisions).where(schema.decisions.c.call_control_id == call_control_id)
                 .order_by(schema.decisions.c.id))
        with self._read("read a call's decisions") as conn:
            rows = conn.execute(query).mappings()
            return [{**dict(r), "evidence": json.loads(r["evidence"])} for r in rows]

    def outbox(self, call_control_id: str) -> list[OutboxEntry]:
        query = (select(schema.commands).where(schema.commands.c.call_control_id == call_control_id)
                 .order_by(schema.commands.c.created_at))
        with self._read("read a call's outbox") as conn:
            return [_outbox_entry(dict(r)) for r in conn.execute(query).mappings()]

    def mark_command(self, command_id: str, status: str, attempts: int, error: str | None) -> bool:
        with self._write() as conn:
            return conn.execute(_MARK_COMMAND, {**storable(schema.commands, {
                "status": status, "attempts": attempts, "last_error": error, "updated_at": time.time()}),
                "by_id": command_id}).rowcount == 1

    def claim_command(self, command_id: str, queued_at: float, hold_s: float = 0.0) -> bool:
        # The sweep's hand-over (due_commands) touches the row: a touch after this sender queued
        # the command means a resend owns it now. Touching it here in turn makes the sweep's
        # conditional touch miss, so exactly one of the two sends; stamped `hold_s` ahead, the row
        # is not handed over again while this send may still be retrying.
        c = schema.commands.c
        with self._write() as conn:
            return conn.execute(
                update(schema.commands)
                .where(c.command_id == command_id, c.status == CommandStatus.PENDING,
                       c.updated_at <= queued_at)
                .values(updated_at=time.time() + hold_s)).rowcount == 1

    def due_commands(self, older_than_s: float, limit: int = 100,
                     untried_older_than_s: float | None = None) -> Iterator[Command]:
        now, c = time.time(), schema.commands.c
        untried_cutoff = now - (older_than_s if untried_older_than_s is None else untried_older_than_s)
        query = (select(schema.commands)
                 .where(c.status == CommandStatus.PENDING,
                        or_((c.attempts > 0) & (c.updated_at < now - older_than_s),
                            (c.attempts == 0) & (c.updated_at < untried_cutoff)))
                 .order_by(c.created_at).limit(limit))
        with self._read("read the commands due for a resend") as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            # Touch the row first so a second sweeper (or instance) skips it.
            with self._write() as conn:
                touched = conn.execute(
                    update(schema.commands)
                    .where(schema.commands.c.command_id == row["command_id"],
                           schema.commands.c.status == CommandStatus.PENDING,
                           schema.commands.c.updated_at == row["updated_at"])
                    .values(updated_at=time.time())).rowcount
            if touched == 1:
                yield _outbox_entry(row).command

    def close(self) -> None:
        self.engine.dispose()


class WriterLock:
    """One SQLite writer at a time: a thread lock in this process, then (for a database file) an
    exclusive `flock` on `<file>.writer-lock` shared by every process using that file.

    A process waiting for the file lock sleeps in the kernel and wakes the moment the holder
    commits; SQLite's busy handler, left to itself, retries with sleeps of up to 100 ms, which
    under load put gunicorn's workers in turn behind each other's sleeps. A process that dies
    holding the lock releases it with its file descriptors, so it cannot be left stale.
    """

    def __init__(self, database_file: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database_file}.writer-lock" if database_file else None
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        """Wait until this thread is the only writer of the database among all processes."""
        self._threads.acquire()
        if self._path is None:
            return
        try:
            if self._pid != os.getpid():
                # A forked child must not share its parent's open file: flock is held per open
                # file, so the two would not exclude each other.
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        """Let the next writer (of any process) in."""
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def storable(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Values both databases accept: clean text cut to its column, non-finite floats as NULL."""
    result = dict(values)
    for name, value in values.items():
        if isinstance(value, str):
            value = clean_text(value)
            length = getattr(table.c[name].type, "length", None)
            # Keys are never cut (two ids must not merge); callers refuse over-long ids first.
            result[name] = value[:length] if length and not table.c[name].primary_key else value
        elif isinstance(value, float):
            result[name] = finite_or_none(value)
    return result


def like_escape(text: str) -> str:
    """Text taken literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _make_engine(url: str, schema_name: str | None, sqlite_synchronous: str = "NORMAL") -> Engine:
    if url.startswith("sqlite"):
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS}")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=8, max_overflow=24)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below issue BEGIN itself: pysqlite's implicit BEGIN
            # is deferred, and two deferred writers can deadlock on the upgrade to a write lock.
            dbapi_conn.isolation_level = None
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
            # WAL with NORMAL flushes the log to disk at checkpoints, not at every commit: a commit
            # survives the app crashing or being killed, but the last ones can be rolled back by a
            # power cut or an OS crash. Under load the flush per commit (FULL) was most of the time
            # SQLite's one write lock was held (BENCHMARKS.md, "Text path at 200 calls"). A command
            # resent after such a rollback carries the same command_id (lifeline/ivr/context.py), which
            # Telnyx executes at most once. FULL keeps every commit through a power cut.
            dbapi_conn.execute(f"PRAGMA synchronous={sqlite_synchronous}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front (BEGIN IMMEDIATE). A read starts
            # deferred: in WAL mode it then never takes a lock a writer waits for. Before this,
            # every read (feed polls, summaries, the outbox's checks) took the write lock too and
            # queued writers behind SQLite's busy-handler sleeps.
            immediate = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if schema_name:
        connect_args["options"] = f"-csearch_path={schema_name}"
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True,
                         connect_args=connect_args)


def _past(cursor: tuple[float, str], newest_first: bool) -> ColumnElement[bool]:
    """Calls after the (created_at, call_control_id) cursor in that order, or before it when newest first.

    The id breaks ties in start time, so calls that started at the same instant are neither
    skipped nor repeated from one page to the next."""
    c = schema.calls.c
    at, ccid = cursor
    if newest_first:
        return or_(c.created_at < at, and_(c.created_at == at, c.call_control_id < ccid))
    return or_(c.created_at > at, and_(c.created_at == at, c.call_control_id > ccid))


def _transfers(conn: Connection, call_control_id: str) -> list[TransferRecord]:
    rows = conn.execute(_TRANSFERS, {"by_id": call_control_id}).mappings()
    return [TransferRecord(**dict(r)) for r in rows]


def _outbox_entry(row: dict[str, Any]) -> OutboxEntry:
    command = Command(command_id=row["command_id"], call_control_id=row["call_control_id"],
                      name=row["name"], params=json.loads(row["params"]))
    return OutboxEntry(command=command, status=row["status"], attempts=row["attempts"],
                       last_error=row["last_error"], created_at=row["created_at"],
                       updated_at=row["updated_at"])


def _message(row: Any) -> Message:
    """A stored message as the rules see it (older rows have no analysis)."""
    return Message.from_row(row, json.loads(row["analysis"]) if row["analysis"] else None)
