"""The outputs' queries on SQLAlchemy: feed reads, summaries, webhook deliveries (SqlStore's part).

SqlStore inherits these; they run on its engine and in its units of work (its SQLite writer
lock, its StoreError for an unreachable database). What differs by database stays here: row
locks on PostgreSQL, and INSERT ... ON CONFLICT DO NOTHING in each dialect's form.
"""

from __future__ import annotations

import functools
import json
from abc import abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ..events import storable_id
from . import schema
from .outputs import (
    EMAIL_DUE,
    UNSETTLED,
    Delivery,
    DeliveryAttempt,
    DeliveryOutcome,
    DeliveryStatus,
    EmailStatus,
    OutputStore,
    StoredEvent,
    Summary,
    cut_error,
    delivery_changes,
    email_audit,
)
from .records import FeedEvent
from .sql_errors import outage_as_store_error

if TYPE_CHECKING:
    from .sql import SqlStoreTx

_feed, _summaries, _deliveries = schema.feed.c, schema.summaries.c, schema.deliveries.c
# The queries every process runs several times a second (the poll, the summaries' look for ended
# calls, the check for a summary), built once so that SQLAlchemy finds their compiled form
# without rebuilding them.
_LAST_ID = select(func.max(_feed.id))
_ENDS_UNSUMMARISED = (select(schema.feed).where(
    _feed.id > bindparam("after_id"), _feed.kind == "call.ended",
    ~exists().where(_summaries.call_control_id == _feed.call_control_id))
    .order_by(_feed.id).limit(bindparam("limit")))
@functools.cache
def insert_ignoring(table: Any, dialect: str, returning: bool) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING into `table` (RETURNING its first key column if asked)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_nothing()
    return statement.returning(next(iter(table.primary_key.columns))) if returning else statement


_HAS_SUMMARY = select(_summaries.call_control_id).where(_summaries.call_control_id == bindparam("by_id"))


class SqlOutputs(OutputStore):
    """OutputStore on SQLAlchemy: what SqlStore adds to the call store for the outputs."""

    engine: Engine
    url: str

    @abstractmethod
    def unit(self) -> AbstractContextManager[SqlStoreTx]:
        """Open a unit of work (one database transaction)."""

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        """A connection to read on, outside any unit of work; an outage is a StoreError naming `what`."""
        with outage_as_store_error(what, self.url), self.engine.connect() as conn:
            yield conn

    # The feed.

    def feed_after(self, after_id: int, call_control_id: str | None = None,
                   limit: int = 200) -> list[StoredEvent]:
        query = select(schema.feed).where(_feed.id > after_id).order_by(_feed.id).limit(limit)
        if call_control_id is not None:
            query = query.where(_feed.call_control_id == call_control_id)
        return self._events(query)

    def ends_unsummarised(self, after_id: int, limit: int = 100) -> list[StoredEvent]:
        return self._events(_ENDS_UNSUMMARISED, {"after_id": after_id, "limit": limit})

    def feed_by_ids(self, ids: Collection[int]) -> list[StoredEvent]:
        return self._events(select(schema.feed).where(_feed.id.in_(list(ids))).order_by(_feed.id))

    def feed_for_call(self, call_control_id: str, kinds: Collection[str] | None = None) -> list[StoredEvent]:
        query = select(schema.feed).where(_feed.call_control_id == call_control_id)
        if kinds:
            query = query.where(_feed.kind.in_(list(kinds)))
        return self._events(query.order_by(_feed.id))

    def feed_last_id(self) -> int:
        with self._read("read the feed's last id") as conn:
            return int(conn.execute(_LAST_ID).scalar() or 0)

    def _events(self, query: Any, parameters: dict[str, Any] | None = None) -> list[StoredEvent]:
        with self._read("read the feed") as conn:
            return [StoredEvent(r["id"], r["kind"], r["call_control_id"], r["created_at"],
                                json.loads(r["data"])) for r in conn.execute(query, parameters).mappings()]

    # Summaries.

    def has_summary(self, call_control_id: str) -> bool:
        with self._read("read a call's summary") as conn:
            return conn.execute(_HAS_SUMMARY, {"by_id": call_control_id}).first() is not None

    def summary(self, call_control_id: str) -> Summary | None:
        if not storable_id(call_control_id):
            return None  # no call has it, and PostgreSQL would refuse a NUL with an error
        with self._read("read a call's summary") as conn:
            row = conn.execute(select(schema.summaries).where(
                _summaries.call_control_id == call_control_id)).mappings().first()
        return _summary(row) if row is not None else None

    def add_summary(self, summary: Summary, events: Sequence[FeedEvent]) -> bool:
        with self.unit() as tx:
            row = tx.connection.execute(insert_ignoring(schema.summaries, tx.connection.dialect.name, True), {
                "call_control_id": summary.call_control_id, "body": json.dumps(summary.body),
                "created_at": summary.created_at, "email_to": ",".join(summary.email_to) or None,
                "email_status": summary.email_status, "email_attempts": summary.email_attempts,
                "email_next_at": summary.email_next_at, "email_error": summary.email_error}).first()
            if row is None:
                return False  # another instance made it first
            tx.add_feed(events)
        return True

    def claim_emails(self, now: float, lease_until: float, limit: int = 20) -> list[Summary]:
        s = _summaries
        with self._read("read the summary emails due") as conn:
            rows = [_summary(r) for r in conn.execute(select(schema.summaries).where(
                s.email_status.in_(EMAIL_DUE), s.email_next_at <= now)
                .order_by(s.email_next_at).limit(limit)).mappings()]
        claimed = []
        for row in rows:
            # One unit each: a claim is the conditional update that only one process can win.
            with self.unit() as tx:
                won = tx.connection.execute(update(schema.summaries).where(
                    s.call_control_id == row.call_control_id, s.email_status == row.email_status,
                    s.email_next_at == row.email_next_at).values(
                    email_status=EmailStatus.SENDING, email_next_at=lease_until)).rowcount == 1
            if won:
                claimed.append(row)
        return claimed

    def settle_email(self, call_control_id: str, attempts: int, status: str, error: str | None,
                     next_at: float | None = None) -> None:
        values: dict[str, Any] = {"email_attempts": attempts, "email_status": status,
                                  "email_error": cut_error(error)}
        if next_at is not None:
            values["email_next_at"] = next_at
        with self.unit() as tx:
            tx.connection.execute(update(schema.summaries)
                                  .where(_summaries.call_control_id == call_control_id).values(**values))
            tx.record_event(**email_audit(call_control_id, attempts, status, error))

    # Webhook deliveries.

    def queue_deliveries(self, url: str, now: float, limit: int = 500) -> int:
        c = schema.delivery_cursors.c
        with self._read("read a webhook receiver's cursor") as conn:
            # Read first: most rounds find nothing new, and a write transaction would queue
            # behind the calls' own (SQLite has one writer).
            cursor = conn.execute(select(c.feed_id).where(c.url == url)).scalar()
            if cursor is not None and not conn.execute(
                    select(_feed.id).where(_feed.id > cursor).limit(1)).first():
                return 0
        with self.unit() as tx:
            conn = tx.connection
            query = select(c.feed_id).where(c.url == url)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # two instances must not queue the same events
            cursor = conn.execute(query).scalar()
            if cursor is None:
                # A new receiver starts from now; `flask events redeliver --since` sends history.
                start = int(conn.execute(select(func.coalesce(func.max(_feed.id), 0))).scalar() or 0)
                # Two instances can start a new receiver at once (the lock above found no row to
                # hold): the first cursor stands, the second insert does nothing.
                conn.execute(insert_ignoring(schema.delivery_cursors, conn.dialect.name, False),
                             {"url": url, "feed_id": start})
                return 0
            rows = conn.execute(select(_feed.id, _feed.call_control_id)
                                .where(_feed.id > cursor).order_by(_feed.id).limit(limit)).all()
            if not rows:
                return 0
            # A replay (`flask events redeliver`) may have queued an event past the cursor already:
            # it is not queued twice (the unique index would refuse the whole batch, every round).
            queued = set(conn.execute(select(_deliveries.feed_id).where(
                _deliveries.url == url, _deliveries.feed_id > cursor,
                _deliveries.feed_id <= rows[-1][0])).scalars())
            fresh = [r for r in rows if r[0] not in queued]
            if fresh:
                conn.execute(schema.deliveries.insert(), [
                    {"feed_id": r[0], "url": url, "call_control_id": r[1], "status": DeliveryStatus.PENDING,
                     "attempts": 0, "next_at": now, "created_at": now} for r in fresh])
            conn.execute(update(schema.delivery_cursors).where(c.url == url).values(feed_id=rows[-1][0]))
            return len(fresh)

    def due_deliveries(self, urls: Collection[str], now: float, limit: int = 512) -> list[Delivery]:
        d = _deliveries
        if not urls:
            return []
        earlier = aliased(schema.deliveries)
        waiting = exists().where(earlier.c.url == d.url, earlier.c.call_control_id == d.call_control_id,
                                 earlier.c.feed_id < d.feed_id, earlier.c.status.in_(UNSETTLED),
                                 earlier.c.next_at > now)
        with self._read("read the webhook deliveries due") as conn:
            return [Delivery(**r) for r in conn.execute(
                select(schema.deliveries).where(d.status.in_(UNSETTLED), d.next_at <= now,
                                                d.url.in_(list(urls)), ~waiting)
                # The id breaks ties (one event, several receivers): two senders claim rows in the
                # same order, so on PostgreSQL they cannot lock them in opposite orders.
                .order_by(d.feed_id, d.id).limit(limit)).mappings()]

    def unblocked_deliveries(self, ids: Collection[int]) -> set[int]:
        if not ids:
            return set()
        d = schema.deliveries
        earlier = aliased(d)
        blocked = exists().where(earlier.c.url == d.c.url, earlier.c.call_control_id == d.c.call_control_id,
                                 earlier.c.feed_id < d.c.feed_id, earlier.c.status.in_(UNSETTLED))
        with self._read("read the webhook deliveries waiting") as conn:
            return {r[0] for r in conn.execute(select(d.c.id).where(d.c.id.in_(list(ids)), ~blocked))}

    def claim_deliveries(self, chains: Sequence[Sequence[Delivery]], lease_at: float,
                         max_chains: int) -> list[list[Delivery]]:
        won: list[list[Delivery]] = []
        # One write transaction for the whole batch: each conditional update wins its row or not.
        with self.unit() as tx:
            for chain in chains:
                if len(won) >= max_chains:
                    break  # the rest go in the next round
                claimed = list(_claim_chain(tx.connection, chain, lease_at))
                if claimed:
                    won.append(claimed)
        return won

    def settle_deliveries(self, outcomes: Sequence[DeliveryOutcome], unsent: Sequence[Delivery],
                          at: float) -> None:
        with self.unit() as tx:
            for row in unsent:
                tx.connection.execute(update(schema.deliveries).where(_held(row))
                                      .values(status=DeliveryStatus.PENDING, next_at=row.next_at))
            for outcome in outcomes:
                row = outcome.delivery
                tx.connection.execute(update(schema.deliveries).where(_held(row)).values(
                    attempts=row.attempts + 1, **delivery_changes(outcome, at)))
                tx.connection.execute(schema.delivery_attempts.insert().values(
                    delivery_id=row.id, at=at, http_status=outcome.http_status,
                    error=cut_error(outcome.error), duration_ms=outcome.duration_ms))

    def requeue_deliveries(self, since: float, until: float | None, urls: Collection[str], now: float) -> int:
        d = _deliveries
        query = select(_feed.id, _feed.call_control_id).where(_feed.created_at >= since).order_by(_feed.id)
        if until is not None:
            query = query.where(_feed.created_at < until)
        count = 0
        with self.unit() as tx:
            conn = tx.connection
            rows = conn.execute(query).all()
            for target in urls:
                for feed_id, ccid in rows:
                    changed = conn.execute(update(schema.deliveries).where(
                        d.feed_id == feed_id, d.url == target).values(
                        status=DeliveryStatus.PENDING, next_at=now, attempts=0, created_at=now,
                        last_error=None)).rowcount
                    if not changed:
                        conn.execute(schema.deliveries.insert().values(
                            feed_id=feed_id, url=target, call_control_id=ccid, status=DeliveryStatus.PENDING,
                            attempts=0, next_at=now, created_at=now))
                    count += 1
        return count

    def deliveries(self, url: str | None = None) -> list[Delivery]:
        query = select(schema.deliveries).order_by(_deliveries.feed_id, _deliveries.id)
        if url:
            query = query.where(_deliveries.url == url)
        with self._read("read the webhook deliveries") as conn:
            return [Delivery(**r) for r in conn.execute(query).mappings()]

    def delivery_attempts(self, url: str | None = None) -> list[DeliveryAttempt]:
        a, d = schema.delivery_attempts.c, _deliveries
        query = (select(a.delivery_id, a.at, a.http_status, a.error, a.duration_ms, d.feed_id, d.url)
                 .join(schema.deliveries, d.id == a.delivery_id).order_by(a.id))
        if url:
            query = query.where(d.url == url)
        with self._read("read the webhook delivery attempts") as conn:
            return [DeliveryAttempt(**r) for r in conn.execute(query).mappings()]


def _summary(row: Any) -> Summary:
    return Summary(call_control_id=row["call_control_id"], body=json.loads(row["body"]),
                   created_at=row["created_at"],
                   email_to=tuple(row["email_to"].split(",")) if row["email_to"] else (),
                   email_status=row["email_status"], email_attempts=row["email_attempts"],
                   email_next_at=row["email_next_at"], email_error=row["email_error"])


def _claim_chain(conn: Connection, chain: Sequence[Delivery], lease_at: float) -> Iterator[Delivery]:
    """Claim a chain's rows in order; stop at the first that changed since it was read."""
    d = _deliveries
    for row in chain:
        won = conn.execute(update(schema.deliveries).where(
            d.id == row.id, d.status == row.status, d.next_at == row.next_at)
            .values(status=DeliveryStatus.SENDING, next_at=lease_at)).rowcount == 1
        if not won:
            return  # another sender has it: the rest of this chain waits for the next round
        yield replace(row, lease_at=lease_at)


def _held(row: Delivery) -> Any:
    """Still ours: a row whose lease ran out may have been taken by another sender, whose outcome
    must not be overwritten with this one's."""
    d = _deliveries
    return (d.id == row.id) & (d.status == DeliveryStatus.SENDING) & (d.next_at == row.lease_at)
