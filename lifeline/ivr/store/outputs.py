"""The conversation outputs' store: the feed's reads, summaries, webhook deliveries, transcript batches.

It extends the call store because the outputs share its units of work: a summary is stored with
its `summary.ready` feed event, and an email's outcome with the call's event that records it.
Every backend (SQL, memory) offers these, and one contract suite tests them.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..timefmt import iso
from .base import CallStore
from .records import CallRecord, FeedEvent, PurgeBatch

ERROR_MAX = 500  # the longest error text a summary's email or a delivery keeps


class DeliveryStatus(StrEnum):
    """Where one (feed event, receiver) delivery is (values stored in deliveries.status)."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender until its lease (next_at) runs out
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the retry window


class EmailStatus(StrEnum):
    """Where a summary's email is (values stored in summaries.email_status)."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender until its lease (email_next_at) runs out
    SENT = "sent"
    FAILED = "failed"


# Deliveries and emails still owed: pending, or sending (a sending row past its lease is due again:
# its sender died). Both backends select by these.
UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
EMAIL_DUE = (EmailStatus.PENDING, EmailStatus.SENDING)


@dataclass(frozen=True)
class StoredEvent:
    """One feed row: its id, kind, call, time and data."""

    id: int
    kind: str
    call_control_id: str
    created_at: float
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The JSON every output sends: SSE data, webhook body, NDJSON line."""
        return {"id": self.id, "type": self.kind, "call_control_id": self.call_control_id,
                "at": iso(self.created_at), "data": self.data}

    def body(self) -> bytes:
        """The envelope as compact JSON bytes (what webhooks sign and send)."""
        return json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class FeedNotices:
    """How this process hears of feed events that other processes commit.

    Neither: the store serves one process, whose own writes wake its readers.
    """

    listen: bool = False  # OutputStore.listen_feed hears every commit to the feed (PostgreSQL's NOTIFY)
    poll: bool = False  # no notifications: read the feed's last id now and then (SQLite)


@dataclass(frozen=True)
class Summary:
    """A call's post-call summary and the state of its email."""

    call_control_id: str
    body: dict[str, Any]
    created_at: float
    email_to: tuple[str, ...] = ()
    email_status: str | None = None  # an EmailStatus; None when no email is sent
    email_attempts: int = 0
    email_next_at: float | None = None  # when it is due (pending), or its lease ends (sending)
    email_error: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One feed event going to one webhook receiver."""

    id: int
    feed_id: int
    url: str
    call_control_id: str
    status: str  # a DeliveryStatus
    attempts: int
    next_at: float  # when it is due (pending), or its lease ends (sending)
    created_at: float
    last_error: str | None = None
    delivered_at: float | None = None
    lease_at: float | None = None  # set on a row this process claimed: when its lease ends


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one send of a claimed delivery came to, and the status its row takes."""

    delivery: Delivery
    status: str  # DELIVERED; FAILED (given up); PENDING, tried again at next_at
    http_status: int | None
    error: str | None
    duration_ms: float
    next_at: float | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One recorded send of a delivery."""

    delivery_id: int
    at: float
    http_status: int | None
    error: str | None
    duration_ms: float
    feed_id: int
    url: str


def cut_error(error: str | None) -> str | None:
    """An error as the store keeps it: at most ERROR_MAX characters (PostgreSQL refuses longer)."""
    return error[:ERROR_MAX] if error is not None else None


def delivery_changes(outcome: DeliveryOutcome, at: float) -> dict[str, Any]:
    """The fields of a held delivery an outcome at `at` sets, besides its attempt count."""
    if outcome.status == DeliveryStatus.DELIVERED:
        return {"status": DeliveryStatus.DELIVERED, "delivered_at": at, "last_error": None}
    values: dict[str, Any] = {"status": outcome.status, "last_error": cut_error(outcome.error)}
    if outcome.next_at is not None:
        values["next_at"] = outcome.next_at
    return values


def email_audit(call_control_id: str, attempts: int, status: str, error: str | None) -> dict[str, Any]:
    """The webhook event (record_event's arguments) an email attempt leaves among its call's events."""
    return {"event_id": f"lifeline.email-{call_control_id}-{attempts}",
            "event_type": f"lifeline.email.{status}",
            "call_control_id": call_control_id, "occurred_at": None, "attempt": attempts,
            "payload": json.dumps({"error": error})}


class OutputStore(CallStore):
    """The call store with the conversation outputs' tables: feed reads, summaries, deliveries."""

    # The feed (written by StoreTx.add_feed in the call flow's units of work).

    @abstractmethod
    def feed_after(self, after_id: int, call_control_id: str | None = None,
                   limit: int = 200) -> list[StoredEvent]:
        """Events with an id above after_id (of one call, or all), oldest first, at most `limit`."""

    @abstractmethod
    def ends_unsummarised(self, after_id: int, limit: int = 100) -> list[StoredEvent]:
        """`call.ended` events with an id above after_id whose call has no summary yet, oldest
        first, at most `limit` (one query, however many summarised calls lie between)."""

    @abstractmethod
    def feed_by_ids(self, ids: Collection[int]) -> list[StoredEvent]:
        """The events with these ids (unknown ids are skipped), oldest first."""

    @abstractmethod
    def feed_for_call(self, call_control_id: str, kinds: Collection[str] | None = None) -> list[StoredEvent]:
        """Every event of one call (of these kinds, when given), oldest first."""

    @abstractmethod
    def feed_last_id(self) -> int:
        """The newest event's id (0 when the feed is empty)."""

    @abstractmethod
    def feed_notices(self) -> FeedNotices:
        """How feed events other processes commit become known to this one."""

    # Only for a store whose feed_notices() says `listen`. Blocks its thread: `heard` is called once
    # listening has begun (events committed before then were missed), then at each commit; it
    # returns soon after `stopped()` turns true, and raises StoreError when the connection fails
    # or drops. A notice carries no data: readers go back to the feed.
    def listen_feed(self, heard: Callable[[], None], stopped: Callable[[], bool]) -> None:
        """Call `heard` at every commit to the feed, by any process, until `stopped()`."""
        raise NotImplementedError(f"{type(self).__name__} sends no feed notices: its feed_notices() "
                                  "says how this process hears of other processes' events")

    # Summaries: one per ended call, with the state of its email.

    @abstractmethod
    def has_summary(self, call_control_id: str) -> bool:
        """Whether the call's summary was made (a cheap check before making one)."""

    @abstractmethod
    def summary(self, call_control_id: str) -> Summary | None:
        """The call's summary and its email state, if made."""

    @abstractmethod
    def add_summary(self, summary: Summary, events: Sequence[FeedEvent]) -> bool:
        """Store a summary and append `events` to the feed in one unit; False (nothing done) if one exists."""

    # Due: pending, or sending past its lease (its sender died). Exactly one caller wins each row.
    @abstractmethod
    def claim_emails(self, now: float, lease_until: float, limit: int = 20) -> list[Summary]:
        """Emails due at `now`, earliest first, each claimed until `lease_until` (returned as read)."""

    # The status, the error (cut to ERROR_MAX; the event keeps it whole) and, when given, the next
    # time; the event is `lifeline.email.<status>`, so the call's page shows each attempt.
    @abstractmethod
    def settle_email(self, call_control_id: str, attempts: int, status: str, error: str | None,
                     next_at: float | None = None) -> None:
        """Record the `attempts`-th email attempt, and its call's event (email_audit), in one unit."""

    # Webhook deliveries: one row per (feed event, receiver URL), behind a cursor per receiver.

    # Past the cursor, in feed order; the cursor moves past what was queued, in the same unit.
    @abstractmethod
    def queue_deliveries(self, url: str, now: float, limit: int = 500) -> int:
        """Queue up to `limit` events past `url`'s cursor (a new one starts at the feed's end); how many."""

    @abstractmethod
    def due_deliveries(self, urls: Collection[str], now: float, limit: int = 512) -> list[Delivery]:
        """Deliveries to these URLs due at `now` (pending, or sending past their lease), in feed order,
        leaving out those waiting behind an earlier unsettled one of their receiver and call that is
        not due (backing off, or being sent): they cannot go this round, and a receiver that is
        down would otherwise fill every round's `limit` with them and starve the others."""

    @abstractmethod
    def unblocked_deliveries(self, ids: Collection[int]) -> set[int]:
        """Those of these deliveries with no earlier pending or sending one to the same URL and call."""

    # A claimed row is sending until lease_at, which is set on the copy returned; a chain stops at
    # its first row another sender took, and the claims stop once `max_chains` chains are won.
    @abstractmethod
    def claim_deliveries(self, chains: Sequence[Sequence[Delivery]], lease_at: float,
                         max_chains: int) -> list[list[Delivery]]:
        """In one unit, claim each chain's rows in order, stopping at one changed since read."""

    # Only a row whose lease is still this sender's takes its outcome or is put back (to its status
    # and next_at before the claim): a lapsed lease's row may be another sender's now. Each attempt
    # is recorded either way. DELIVERED stamps delivered_at and clears the error; PENDING is due
    # again at the outcome's next_at.
    @abstractmethod
    def settle_deliveries(self, outcomes: Sequence[DeliveryOutcome], unsent: Sequence[Delivery],
                          at: float) -> None:
        """In one unit: every outcome's attempt and new status, and the unsent rows put back."""

    # "As new": pending, due now, no attempts, created now (the retry window starts again).
    @abstractmethod
    def requeue_deliveries(self, since: float, until: float | None, urls: Collection[str], now: float) -> int:
        """Queue every feed event stored in [since, until) again for each URL, as new; returns how many."""

    @abstractmethod
    def deliveries(self, url: str | None = None) -> list[Delivery]:
        """Every delivery (to one URL, or all) in feed order, whatever its status (to look at them)."""

    @abstractmethod
    def delivery_attempts(self, url: str | None = None) -> list[DeliveryAttempt]:
        """Every delivery attempt (to one URL, or all), oldest first."""

    # Transcript batches.

    # search_calls' keyset paging the other way round: ties in start time go by id, ascending.
    @abstractmethod
    def calls_by_start(self, since: float | None, until: float | None, after: tuple[float, str] | None,
                       limit: int) -> list[CallRecord]:
        """Calls started in [since, until) past the (created_at, id) cursor `after`, oldest first."""

    # Retention.

    # A call is purged whole: its row and every row naming it or one of its agent legs (events,
    # claims, transfers, commands, messages, decisions, feed, summary, deliveries and their
    # attempts). One is held, left as it is, while something of its is still owed: a pending
    # command, a delivery pending or sending, its summary (a `call.ended` event and no summary
    # yet), a summary email pending or sending, or a feed event not yet queued for one of
    # `receivers` (past that receiver's cursor). A batch that finds no
    # call left removes (or counts) webhook events older than the cutoff that name no recorded call
    # or agent leg, at most `limit` of them, and says `last` None. Live calls are never
    # looked at. Callers delete the returned recordings once this has returned (it has committed),
    # then forget_purged_files them.
    @abstractmethod
    def purge_ended(self, ended_before: float, limit: int, after: tuple[float, str] | None = None,
                    receivers: Collection[str] = (), dry_run: bool = False) -> PurgeBatch:
        """In one unit, purge up to `limit` calls that ended before `ended_before`, oldest end first,
        past the (ended_at, id) cursor `after`; with `dry_run`, count what would go and change nothing."""

    # The recordings purge_ended returned are noted in its unit of work, so a recording whose file
    # could not be removed (or whose remover stopped) is found again by the next purge.
    @abstractmethod
    def purged_files(self, limit: int = 500) -> list[str]:
        """Recordings of purged calls not yet removed from their sink, oldest purge first."""

    @abstractmethod
    def forget_purged_files(self, locations: Collection[str]) -> None:
        """These recordings are gone from their sink: stop listing them."""
