"""The retention purge on SQLAlchemy (SqlStore.purge_ended): one batch of ended calls, whole.

A batch is one transaction over at most `limit` calls, so a first purge of years of calls holds
PostgreSQL's row locks, or SQLite's one write lock, for one batch at a time. On PostgreSQL the
calls are taken FOR UPDATE SKIP LOCKED: several instances purging at once never wait for, or
double-count, each other's calls.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, literal, or_, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import schema
from .outputs import EMAIL_DUE, UNSETTLED
from .records import CallStatus, CommandStatus, PurgeBatch
from .sql_outputs import insert_ignoring

_calls = schema.calls.c


def purge_ended(conn: Connection, ended_before: float, limit: int, after: tuple[float, str] | None,
                receivers: Collection[str], dry_run: bool) -> PurgeBatch:
    """Purge (or with `dry_run` count) one batch of calls that ended before `ended_before`."""
    query = (select(_calls.call_control_id, _calls.ended_at, _calls.recording_path)
             .where(_calls.status == CallStatus.ENDED, _calls.ended_at < ended_before)
             .order_by(_calls.ended_at, _calls.call_control_id).limit(limit))
    if after is not None:
        query = query.where(or_(_calls.ended_at > after[0],
                                and_(_calls.ended_at == after[0], _calls.call_control_id > after[1])))
    if conn.dialect.name == "postgresql" and not dry_run:
        query = query.with_for_update(skip_locked=True)
    found = conn.execute(query).all()
    if not found:
        # The calls are done: what is left of their age are held calls' events, and strays.
        strays = _stray_events(conn, ended_before, limit, dry_run)
        return PurgeBatch(rows={"events": strays} if strays else {}, recordings=(), held=0, last=None)
    last = (float(found[-1].ended_at), str(found[-1].call_control_id))
    ids = [str(row.call_control_id) for row in found]
    legs = _agent_legs(conn, ids)
    held = _owed(conn, ids, legs, receivers)
    ids = [i for i in ids if i not in held]
    legs = {leg: call for leg, call in legs.items() if call not in held}
    rows = _remove(conn, ids, list(legs), dry_run)
    recordings = tuple(str(r.recording_path) for r in found
                       if r.recording_path and r.call_control_id not in held)
    if recordings and not dry_run:
        conn.execute(insert_ignoring(schema.purged_files, conn.dialect.name, returning=False),
                     [{"location": where, "purged_at": time.time()} for where in recordings])
    return PurgeBatch(rows={k: n for k, n in rows.items() if n}, recordings=recordings, held=len(held),
                      last=last)


def _agent_legs(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """The agent legs the transfers of these calls made, each to its caller's call."""
    t = schema.transfers.c
    return {str(leg): str(call) for leg, call in conn.execute(
        select(t.agent_call_control_id, t.call_control_id)
        .where(t.call_control_id.in_(ids), t.agent_call_control_id.is_not(None)))}


def _owed(conn: Connection, ids: Sequence[str], legs: dict[str, str], receivers: Collection[str]) -> set[str]:
    """Those of these calls with something still to go out: they are kept until it has gone.

    One statement, so one snapshot: asked one question at a time, a summary (with its email to
    send) committed between the question about emails and the one about summaries not yet made
    would pass both, and be deleted with its email unsent (PostgreSQL reads each statement afresh).
    """
    c, d, s, f = schema.commands.c, schema.deliveries.c, schema.summaries.c, schema.feed.c
    questions: list[Any] = [
        select(c.call_control_id).where(c.call_control_id.in_([*ids, *legs]),
                                        c.status == CommandStatus.PENDING),
        select(s.call_control_id).where(s.call_control_id.in_(ids), s.email_status.in_(EMAIL_DUE)),
        # An ended call's summary is made by the outputs' worker (lifeline/conversation/summaries.py),
        # of every call with a `call.ended` event: until it is, it is owed (with its summary.ready webhook).
        select(f.call_control_id).where(f.call_control_id.in_(ids), f.kind == "call.ended",
                                        ~exists().where(s.call_control_id == f.call_control_id)),
    ]
    if receivers:
        # Only a receiver still configured will ever send what is queued for it: a delivery to one
        # taken out of LIFELINE_EVENT_WEBHOOKS would otherwise keep its call for ever.
        questions.append(select(d.call_control_id).where(
            d.feed_id.in_(_feed_ids(ids)), d.status.in_(UNSETTLED), d.url.in_(receivers)))
        # A receiver with no cursor yet starts at the feed's end: nothing of these calls is owed to it.
        cursors = schema.delivery_cursors.c
        floor = select(func.min(cursors.feed_id)).where(cursors.url.in_(receivers)).scalar_subquery()
        questions.append(select(f.call_control_id).where(f.call_control_id.in_(ids), f.id > floor))
    return {legs.get(str(ccid), str(ccid)) for (ccid,) in conn.execute(union(*questions))}


def _feed_ids(ids: Sequence[str]) -> Any:
    """The feed rows of these calls, by id. Deliveries are found through them: the index on
    deliveries leads with the feed id (by call id alone, every batch would read the whole table)."""
    return select(schema.feed.c.id).where(schema.feed.c.call_control_id.in_(ids))


def _remove(conn: Connection, ids: Sequence[str], legs: Sequence[str], dry_run: bool) -> dict[str, int]:
    """Delete (or count) every row of these calls and of their agent legs, children first."""
    if not ids:
        return {}
    both = [*ids, *legs]
    deliveries = select(schema.deliveries.c.id).where(schema.deliveries.c.feed_id.in_(_feed_ids(ids)))
    # Children before the rows they point at; the calls' rows last, so a batch cut short by an
    # error (rolled back anyway) never leaves a call without the rows that say what it was.
    attempts = schema.delivery_attempts
    targets: list[tuple[str, Any, Any]] = [
        ("delivery_attempts", attempts, attempts.c.delivery_id.in_(deliveries)),
        ("deliveries", schema.deliveries, schema.deliveries.c.feed_id.in_(_feed_ids(ids))),
        ("feed", schema.feed, schema.feed.c.call_control_id.in_(ids)),
        ("summaries", schema.summaries, schema.summaries.c.call_control_id.in_(ids)),
        ("messages", schema.messages, schema.messages.c.call_control_id.in_(ids)),
        ("decisions", schema.decisions, schema.decisions.c.call_control_id.in_(ids)),
        ("transfers", schema.transfers, schema.transfers.c.call_control_id.in_(ids)),
        ("commands", schema.commands, schema.commands.c.call_control_id.in_(both)),
        ("claims", schema.claims, schema.claims.c.call_control_id.in_(both)),
        ("events", schema.events, schema.events.c.call_control_id.in_(both)),
        ("calls", schema.calls, schema.calls.c.call_control_id.in_(ids)),
    ]
    if not dry_run:
        _tally(conn, ids, both)
    rows: dict[str, int] = {}
    for kind, table, where in targets:
        if dry_run:
            rows[kind] = int(conn.execute(select(func.count()).select_from(table).where(where)).scalar() or 0)
        else:
            rows[kind] = int(conn.execute(delete(table).where(where)).rowcount)
    return rows


def _tally(conn: Connection, ids: Sequence[str], both: Sequence[str]) -> None:
    """Add what is about to go to `purged_counts`, in the figures /metrics reads (StoreFigures)."""
    c, d, t, k = schema.calls.c, schema.decisions.c, schema.transfers.c, schema.commands.c
    outcome = func.coalesce(c.outcome, "unknown")
    grouped = [
        ("ended_by_outcome",
         select(outcome, func.count()).where(c.call_control_id.in_(ids)).group_by(outcome)),
        ("decisions_by_rule",
         select(d.rule, func.count()).where(d.call_control_id.in_(ids)).group_by(d.rule)),
        ("transfers_by_status",
         select(t.status, func.count()).where(t.call_control_id.in_(ids)).group_by(t.status)),
        ("rejected_commands", select(literal("all"), func.count())
         .where(k.call_control_id.in_(both), k.status == CommandStatus.REJECTED)),
    ]
    # In one order, so that two instances purging at once lock the rows they both add to in the
    # same order (PostgreSQL), and one waits for the other instead of deadlocking with it.
    counts = sorted(({"figure": figure, "key": str(key), "count": int(n)}
                     for figure, query in grouped for key, n in conn.execute(query) if n),
                    key=lambda row: (row["figure"], row["key"]))
    if not counts:
        return
    table = schema.purged_counts
    insert = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
    conn.execute(insert.on_conflict_do_update(index_elements=[table.c.figure, table.c.key],
                                              set_={"count": table.c.count + insert.excluded["count"]}),
                 counts)


def purged_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """The counts of what retention removed, by figure and key (added to StoreFigures)."""
    found: dict[str, dict[str, int]] = {}
    for figure, key, n in conn.execute(select(schema.purged_counts)):
        found.setdefault(str(figure), {})[str(key)] = int(n)
    return found


def _stray_events(conn: Connection, received_before: float, limit: int, dry_run: bool) -> int:
    """Remove up to `limit` webhook events older than the cutoff that name no recorded call or agent
    leg (or count them all): a hangup for a call never answered, a provider's callback with no id."""
    e, c, t = schema.events.c, schema.calls.c, schema.transfers.c
    where = (e.received_at < received_before,
             or_(e.call_control_id.is_(None),
                 ~exists().where(c.call_control_id == e.call_control_id)
                 & ~exists().where(t.agent_call_control_id == e.call_control_id)))
    if dry_run:
        return int(conn.execute(select(func.count()).where(*where)).scalar() or 0)
    stray = select(e.id).where(*where).order_by(e.received_at).limit(limit)
    if conn.dialect.name == "postgresql":
        stray = stray.with_for_update(skip_locked=True)  # another instance's batch of strays is its own
    return int(conn.execute(delete(schema.events).where(e.id.in_(stray))).rowcount)
