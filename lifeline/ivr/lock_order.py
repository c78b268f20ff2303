"""The one lock order every unit of work follows, so PostgreSQL never has to break a deadlock.

Row locks are taken in this order, and never the other way round:
1. the `webhook_events` row of the event (the dedupe insert, first in every unit of work);
2. the caller's `calls` row (SELECT … FOR UPDATE), also when the event is about an agent's
   leg: an agent leg has no row of its own and is handled under its caller's lock;
3. that call's `transfers`, `claims`, `messages` and `decisions` rows;
4. `commands` (the outbox), last.
A webhook's unit of work locks one call. The sweeper locks a batch with SKIP LOCKED, so it never
waits for a row a webhook holds. SQLite has one writer at a time and cannot deadlock; the same
order is kept there so the code reads the same.
"""

from __future__ import annotations

from .store import CallRecord, StoreTx, TransferRecord


def lock_caller_of(tx: StoreTx, transfer: TransferRecord) -> tuple[CallRecord | None, TransferRecord | None]:
    """Lock the caller's call row, then re-read the transfer (it may have changed while we waited)."""
    caller = tx.get_call(transfer.call_control_id)
    current = next((t for t in tx.transfers(transfer.call_control_id) if t.attempt == transfer.attempt),
                   None)
    return caller, current
