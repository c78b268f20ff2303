"""The call store's interface: every backend offers these, and one contract suite tests them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from .records import (
    CallPage,
    CallQuery,
    CallRecord,
    Command,
    FeedEvent,
    Message,
    OutboxEntry,
    StoreFigures,
    TransferRecord,
)

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """The case folding every backend's text search promises: ASCII letters only (SQLite's lower())."""
    return text.translate(_ASCII_LOWER)


class StoreTx(ABC):
    """Operations inside one atomic unit of work; all of it commits or none of it does."""

    @abstractmethod
    def record_event(self, event_id: str, event_type: str, call_control_id: str | None,
                     occurred_at: str | None, attempt: int, payload: str) -> bool:
        """Record a webhook event; False when this id was recorded before (a duplicate)."""

    @abstractmethod
    def claim(self, call_control_id: str, action: str) -> bool:
        """Atomically claim an action for a call; exactly one caller ever gets True."""

    @abstractmethod
    def insert_call(self, call: CallRecord) -> bool:
        """Create a call record; False when it already exists."""

    @abstractmethod
    def get_call(self, call_control_id: str, lock: bool = True) -> CallRecord | None:
        """Read a call, locking its row for the rest of the unit of work when asked."""

    @abstractmethod
    def update_call(self, call_control_id: str, **fields: Any) -> None:
        """Change fields of a call record."""

    @abstractmethod
    def add_transfer(self, transfer: TransferRecord) -> None:
        """Record a transfer attempt."""

    @abstractmethod
    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        """All transfer attempts of a call, in attempt order."""

    @abstractmethod
    def transfer_for_agent_leg(self, agent_call_control_id: str) -> TransferRecord | None:
        """The transfer attempt that created this agent leg, if known."""

    @abstractmethod
    def update_transfer(self, call_control_id: str, attempt: int, **fields: Any) -> None:
        """Change fields of a transfer attempt."""

    @abstractmethod
    def enqueue(self, commands: Sequence[Command], sent: Collection[str] = ()) -> None:
        """Add commands to the outbox; they are sent once the unit of work commits. Those named in
        `sent` leave in the answer to the request being handled (Twilio's TwiML), not through the
        outbox: they are recorded sent (one attempt) by this same unit, a pending one already queued
        too."""

    @abstractmethod
    def outbox_entry(self, command_id: str) -> OutboxEntry | None:
        """One command as the outbox holds it (its status and when that last changed), if queued."""

    @abstractmethod
    def add_message(self, call_control_id: str, engine: str, source_id: str, text: str,
                    confidence: float | None, score: float | None, label: str | None,
                    analysis: dict[str, Any] | None = None) -> bool:
        """Store one caller message (with its intents and frustration); False if seen before."""

    @abstractmethod
    def recent_messages(self, call_control_id: str, limit: int) -> list[Message]:
        """The caller's last `limit` scored messages, oldest first."""

    @abstractmethod
    def add_decision(self, call_control_id: str, rule: str, reason: str,
                     evidence: list[dict[str, Any]]) -> None:
        """Record the escalation decision that is being acted on."""

    @abstractmethod
    def calls_to_sweep(self, swept_before: float, limit: int) -> list[CallRecord]:
        """Active calls not swept since `swept_before`, locked so no other sweeper takes them."""

    @abstractmethod
    def stamp_swept(self, call_control_ids: Sequence[str], at: float) -> None:
        """Mark calls swept at `at` in one statement (their `updated_at` is left as it is)."""

    @abstractmethod
    def calls_to_check(self, idle_before: float, limit: int) -> list[CallRecord]:
        """Active calls silent and unchecked since `idle_before`, least recently checked first, locked."""

    @abstractmethod
    def add_feed(self, events: Sequence[FeedEvent]) -> None:
        """Append events to the outgoing feed; their ids follow commit order."""


class CallStore(ABC):
    """Durable call state shared by every worker and instance."""

    @abstractmethod
    def unit(self) -> AbstractContextManager[StoreTx]:
        """Open a unit of work (one database transaction)."""

    @abstractmethod
    def claim(self, call_control_id: str, action: str) -> bool:
        """Claim an action in a unit of work of its own."""

    @abstractmethod
    def get_call(self, call_control_id: str) -> CallRecord | None:
        """Read a call without locking it."""

    @abstractmethod
    def list_calls(self, limit: int = 50, active_only: bool = False) -> list[CallRecord]:
        """Most recent calls first."""

    @abstractmethod
    def recordings_due(self, statuses: Collection[str], limit: int) -> list[CallRecord]:
        """Calls whose recording is in one of these states, the oldest saved first."""

    @abstractmethod
    def search_calls(self, query: CallQuery) -> CallPage:
        """One page of the calls that match every filter of the query, newest first."""

    @abstractmethod
    def ended_among(self, call_control_ids: Collection[str]) -> set[str]:
        """Which of these calls have ended or are unknown (one query for every open media socket)."""

    @abstractmethod
    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        """All transfer attempts of a call."""

    @abstractmethod
    def events(self, call_control_id: str) -> list[dict[str, Any]]:
        """The webhook events recorded for a call, oldest first."""

    @abstractmethod
    def messages(self, call_control_id: str) -> list[dict[str, Any]]:
        """The caller messages recorded for a call, oldest first."""

    @abstractmethod
    def feed_events(self, call_control_id: str) -> list[FeedEvent]:
        """The outgoing feed's events of a call, in commit order."""

    @abstractmethod
    def decisions(self, call_control_id: str) -> list[dict[str, Any]]:
        """The escalation decisions recorded for a call."""

    @abstractmethod
    def outbox(self, call_control_id: str) -> list[OutboxEntry]:
        """Commands queued or sent for a call, oldest first."""

    @abstractmethod
    def mark_command(self, command_id: str, status: str, attempts: int, error: str | None) -> bool:
        """Record what happened to a pending outbox command; False (nothing changes) once it is settled."""

    @abstractmethod
    def claim_command(self, command_id: str, queued_at: float, hold_s: float = 0.0) -> bool:
        """Take a pending command for sending by the sender that queued it at `queued_at`: False when
        a sweep has handed it to a resend since (or it is settled), and then it must not go too.
        Taken, it is out of the sweep's hand-over for `hold_s` more (the longest a send can take)."""

    @abstractmethod
    def due_commands(self, older_than_s: float, limit: int = 100,
                     untried_older_than_s: float | None = None) -> Iterator[Command]:
        """Pending commands not touched for a while (their sender gave up, or died), oldest first.

        A command no sender has recorded an attempt of may still be on its way in another
        process: `untried_older_than_s` (default: `older_than_s`) gives those longer."""

    @abstractmethod
    def revoke_session(self, session_id: str, expires_at: float) -> None:
        """Remember until `expires_at` that a console session was signed out (and forget older ones)."""

    @abstractmethod
    def session_revoked(self, session_id: str) -> bool:
        """Whether this console session was signed out."""

    @abstractmethod
    def note_auth_failure(self, client: str, at: float, forget_before: float) -> None:
        """Record a failed sign-in or token from `client` (an address) at `at`, and forget every
        failure, of any client, from before `forget_before`."""

    @abstractmethod
    def auth_failures(self, client: str, since: float) -> list[float]:
        """When `client` failed to sign in or give a token since `since`, oldest first."""

    @abstractmethod
    def figures(self) -> StoreFigures:
        """Counts of calls, decisions, transfers and outbox commands as of now (for /metrics)."""

    @abstractmethod
    def ping(self) -> None:
        """Return when the store answers; StoreError when it does not (the health check)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def schema_problem(self) -> str | None:
        """One line when the stored schema is not the code's (run `flask db upgrade`), else None."""
        return None  # a store with no schema of its own (memory) is always current
