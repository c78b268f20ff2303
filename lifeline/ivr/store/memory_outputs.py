"""The outputs' tables in memory: feed reads, summaries, webhook deliveries (MemoryStore's part).

MemoryStore inherits these. Its one lock makes each of them atomic (a claim is exactly-once as
the SQL store's conditional update is), and the writes that span the call store's tables (a
summary with its feed event, an email's outcome with the call's event) run in its units of
work, rolled back together when they fail.
"""

from __future__ import annotations

import copy
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .outputs import (
    EMAIL_DUE,
    UNSETTLED,
    Delivery,
    DeliveryAttempt,
    DeliveryOutcome,
    DeliveryStatus,
    EmailStatus,
    FeedNotices,
    OutputStore,
    StoredEvent,
    Summary,
    cut_error,
    delivery_changes,
    email_audit,
)
from .records import FeedEvent

if TYPE_CHECKING:
    from .memory import _Tables


@dataclass
class OutputTables:
    """The outputs' rows (the feed itself is the call store's: its units of work append to it)."""

    summaries: dict[str, Summary] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)  # receiver URL -> last feed id queued
    deliveries: dict[int, Delivery] = field(default_factory=dict)  # by id, which grows with each row
    attempts: list[DeliveryAttempt] = field(default_factory=list)  # oldest first
    last_delivery_id: int = 0


class MemoryOutputs(OutputStore):
    """OutputStore in this process's memory: what MemoryStore adds to the call store for the outputs."""

    _tables: _Tables
    _lock: threading.RLock

    # The feed.

    def feed_after(self, after_id: int, call_control_id: str | None = None,
                   limit: int = 200) -> list[StoredEvent]:
        with self._lock:
            feed = self._tables.feed
            later = feed[bisect_right(feed, after_id, key=_id):]
            if call_control_id is not None:
                later = [e for e in later if e.call_control_id == call_control_id]
            return [_event(e) for e in later[:max(limit, 0)]]

    def ends_unsummarised(self, after_id: int, limit: int = 100) -> list[StoredEvent]:
        with self._lock:
            feed, summaries = self._tables.feed, self._tables.outputs.summaries
            found = [e for e in feed[bisect_right(feed, after_id, key=_id):]
                     if e.kind == "call.ended" and e.call_control_id not in summaries]
            return [_event(e) for e in found[:max(limit, 0)]]

    def feed_by_ids(self, ids: Collection[int]) -> list[StoredEvent]:
        found = []
        with self._lock:
            feed = self._tables.feed
            for wanted in sorted(set(ids)):
                at = bisect_left(feed, wanted, key=_id)  # ids only grow along the list
                if at < len(feed) and feed[at].id == wanted:
                    found.append(_event(feed[at]))
        return found

    def feed_for_call(self, call_control_id: str, kinds: Collection[str] | None = None) -> list[StoredEvent]:
        with self._lock:
            return [_event(e) for e in self._tables.feed if e.call_control_id == call_control_id
                    and (not kinds or e.kind in kinds)]

    def feed_last_id(self) -> int:
        with self._lock:
            return self._tables.feed[-1].id if self._tables.feed else 0

    def feed_notices(self) -> FeedNotices:
        return FeedNotices()  # one process: its own writes wake its readers

    # Summaries.

    def has_summary(self, call_control_id: str) -> bool:
        with self._lock:
            return call_control_id in self._tables.outputs.summaries

    def summary(self, call_control_id: str) -> Summary | None:
        with self._lock:
            found = self._tables.outputs.summaries.get(call_control_id)
            return _summary(found) if found is not None else None

    def add_summary(self, summary: Summary, events: Sequence[FeedEvent]) -> bool:
        with self.unit() as tx:
            summaries = self._tables.outputs.summaries
            if summary.call_control_id in summaries:
                return False
            summaries[summary.call_control_id] = _summary(summary)
            tx.add_feed(events)
        return True

    def claim_emails(self, now: float, lease_until: float, limit: int = 20) -> list[Summary]:
        with self._lock:
            summaries = self._tables.outputs.summaries
            due = sorted((s for s in summaries.values() if s.email_status in EMAIL_DUE
                          and s.email_next_at is not None and s.email_next_at <= now),
                         key=lambda s: s.email_next_at or 0.0)[:max(limit, 0)]
            for found in due:
                summaries[found.call_control_id] = replace(found, email_status=EmailStatus.SENDING,
                                                           email_next_at=lease_until)
            return [_summary(s) for s in due]

    def settle_email(self, call_control_id: str, attempts: int, status: str, error: str | None,
                     next_at: float | None = None) -> None:
        with self.unit() as tx:
            summaries = self._tables.outputs.summaries
            found = summaries.get(call_control_id)
            if found is not None:
                summaries[call_control_id] = replace(
                    found, email_attempts=attempts, email_status=status, email_error=cut_error(error),
                    email_next_at=found.email_next_at if next_at is None else next_at)
            tx.record_event(**email_audit(call_control_id, attempts, status, error))

    # Webhook deliveries.

    def queue_deliveries(self, url: str, now: float, limit: int = 500) -> int:
        with self._lock:
            feed, tables = self._tables.feed, self._tables.outputs
            cursor = tables.cursors.get(url)
            if cursor is None:
                tables.cursors[url] = feed[-1].id if feed else 0  # a new receiver starts from now
                return 0
            events = feed[bisect_right(feed, cursor, key=_id):][:max(limit, 0)]
            # A replay may have queued an event past the cursor already: not queued twice.
            taken = {d.feed_id for d in tables.deliveries.values() if d.url == url}
            fresh = [e for e in events if e.id not in taken]
            for event in fresh:
                _insert(tables, event, url, now)
            if events:
                tables.cursors[url] = events[-1].id
            return len(fresh)

    def due_deliveries(self, urls: Collection[str], now: float, limit: int = 512) -> list[Delivery]:
        with self._lock:
            unsettled = [d for d in self._tables.outputs.deliveries.values() if d.status in UNSETTLED]
            waits_from: dict[tuple[str, str], int] = {}  # (url, call) -> first feed id not due
            for d in unsettled:
                if d.next_at > now:
                    key = (d.url, d.call_control_id)
                    waits_from[key] = min(waits_from.get(key, d.feed_id), d.feed_id)
            due = [d for d in unsettled if d.next_at <= now and d.url in urls
                   and waits_from.get((d.url, d.call_control_id), d.feed_id) >= d.feed_id]
        return sorted(due, key=lambda d: (d.feed_id, d.id))[:max(limit, 0)]

    def unblocked_deliveries(self, ids: Collection[int]) -> set[int]:
        with self._lock:
            deliveries = self._tables.outputs.deliveries
            first: dict[tuple[str, str], int] = {}  # (url, call) -> smallest feed id not yet settled
            for d in deliveries.values():
                if d.status in UNSETTLED:
                    key = (d.url, d.call_control_id)
                    first[key] = min(first.get(key, d.feed_id), d.feed_id)
            return {i for i in ids if (row := deliveries.get(i)) is not None
                    and first.get((row.url, row.call_control_id), row.feed_id) >= row.feed_id}

    def claim_deliveries(self, chains: Sequence[Sequence[Delivery]], lease_at: float,
                         max_chains: int) -> list[list[Delivery]]:
        won: list[list[Delivery]] = []
        with self._lock:
            deliveries = self._tables.outputs.deliveries
            for chain in chains:
                if len(won) >= max_chains:
                    break
                claimed = []
                for row in chain:
                    current = deliveries.get(row.id)
                    if current is None or (current.status, current.next_at) != (row.status, row.next_at):
                        break  # another sender has it: the rest of this chain waits for the next round
                    deliveries[row.id] = replace(current, status=DeliveryStatus.SENDING, next_at=lease_at)
                    claimed.append(replace(row, lease_at=lease_at))
                if claimed:
                    won.append(claimed)
        return won

    def settle_deliveries(self, outcomes: Sequence[DeliveryOutcome], unsent: Sequence[Delivery],
                          at: float) -> None:
        with self._lock:
            tables = self._tables.outputs
            rows = tables.deliveries
            for row in unsent:
                if _held(tables, row):
                    rows[row.id] = replace(rows[row.id], status=DeliveryStatus.PENDING, next_at=row.next_at)
            for outcome in outcomes:
                row = outcome.delivery
                if _held(tables, row):
                    rows[row.id] = replace(rows[row.id], attempts=row.attempts + 1,
                                           **delivery_changes(outcome, at))
                tables.attempts.append(DeliveryAttempt(
                    delivery_id=row.id, at=at, http_status=outcome.http_status,
                    error=cut_error(outcome.error), duration_ms=outcome.duration_ms, feed_id=row.feed_id,
                    url=row.url))

    def requeue_deliveries(self, since: float, until: float | None, urls: Collection[str], now: float) -> int:
        count = 0
        with self._lock:
            tables = self._tables.outputs
            events = [e for e in self._tables.feed
                      if e.created_at >= since and (until is None or e.created_at < until)]
            existing = {(d.feed_id, d.url): d.id for d in tables.deliveries.values()}
            for url in urls:
                for event in events:
                    found = existing.get((event.id, url))
                    if found is None:
                        existing[(event.id, url)] = _insert(tables, event, url, now).id
                    else:
                        tables.deliveries[found] = replace(
                            tables.deliveries[found], status=DeliveryStatus.PENDING, next_at=now, attempts=0,
                            created_at=now, last_error=None)
                    count += 1
        return count

    def deliveries(self, url: str | None = None) -> list[Delivery]:
        with self._lock:
            found = [d for d in self._tables.outputs.deliveries.values() if not url or d.url == url]
        return sorted(found, key=lambda d: (d.feed_id, d.id))

    def delivery_attempts(self, url: str | None = None) -> list[DeliveryAttempt]:
        with self._lock:
            return [a for a in self._tables.outputs.attempts if not url or a.url == url]


def _id(event: StoredEvent) -> int:
    return event.id


def _event(event: StoredEvent) -> StoredEvent:
    """A copy the caller may change without changing the store."""
    return replace(event, data=copy.deepcopy(event.data))


def _summary(summary: Summary) -> Summary:
    return replace(summary, body=copy.deepcopy(summary.body))


def _insert(tables: OutputTables, event: StoredEvent, url: str, now: float) -> Delivery:
    """A new pending delivery of the event to url, due now."""
    tables.last_delivery_id += 1
    delivery = Delivery(id=tables.last_delivery_id, feed_id=event.id, url=url,
                        call_control_id=event.call_control_id, status=DeliveryStatus.PENDING, attempts=0,
                        next_at=now, created_at=now)
    tables.deliveries[delivery.id] = delivery
    return delivery


def _held(tables: OutputTables, row: Delivery) -> bool:
    """Still ours: a row whose lease ran out may have been taken by another sender."""
    current = tables.deliveries.get(row.id)
    return (current is not None and current.status == DeliveryStatus.SENDING
            and current.next_at == row.lease_at)
