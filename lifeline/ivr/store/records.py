"""Plain records the store reads and writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class CallStatus(StrEnum):
    """Where a caller's leg is in its life (values stored in calls.status).

    Which status follows which is decided in one place: the transitions table in lifeline/calls/.
    """

    ANSWERING = "answering"
    MENU = "menu"
    ENDING = "ending"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"
    VOICEMAIL = "voicemail"
    DIALING = "dialing"      # a call Lifeline placed (dial-out), ringing at the far end
    ANALYSING = "analysing"  # a dial-out answered: Lifeline listens, no menu, no escalation
    ENDED = "ended"


# What `calls.outcome` can hold once a call has ended (the API and the console filter on these).
# `no_agent`: an escalation was decided, no agent took the caller, and the caller ended in the menu.
# `missed`: the caller hung up before Lifeline answered (its first webhook never handled).
OUTCOMES = ("transferred", "no_agent", "completed", "voicemail", "abandoned", "missed", "unanswered", "lost")


class TransferStatus(StrEnum):
    """Where one attempt to reach an agent is (values stored in transfers.status)."""

    REQUESTED = "requested"
    RINGING = "ringing"
    CONNECTED = "connected"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CommandStatus(StrEnum):
    """Where one outbox command is (values stored in commands.status)."""

    PENDING = "pending"
    SENT = "sent"
    CALL_ENDED = "call_ended"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # no longer retried: a later command of the call made it stale


@dataclass
class CallRecord:
    """One caller leg and its IVR position."""

    call_control_id: str
    call_session_id: str | None
    call_leg_id: str | None
    from_number: str | None
    to_number: str | None
    status: str
    created_at: float
    updated_at: float
    menu: str | None = None
    retries: int = 0
    pending: str | None = None
    outcome: str | None = None
    hangup_cause: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    swept_at: float | None = None
    checked_at: float | None = None  # when a sweeper last asked Telnyx whether the leg is up
    listening: str | None = None
    listening_reason: str | None = None  # why listening was restarted or lost
    recording_url: str | None = None
    recording_status: str | None = None  # RecordingStatus: pending, kept, failed, expired
    recording_saved_at: float | None = None
    recording_path: str | None = None
    recording_sha256: str | None = None
    recording_duration_s: float | None = None
    recording_attempts: int = 0
    recording_attempted_at: float | None = None  # when the last of those attempts was taken
    recording_error: str | None = None
    engine_state: str | None = None

    @property
    def is_active(self) -> bool:
        """True until the caller's leg has hung up."""
        return self.status != CallStatus.ENDED


@dataclass
class TransferRecord:
    """One attempt to put a caller through to one agent."""

    call_control_id: str
    attempt: int
    to_number: str
    command_id: str
    reason: str
    rule: str
    status: str
    requested_at: float
    updated_at: float
    agent_call_control_id: str | None = None
    hangup_cause: str | None = None


@dataclass(frozen=True)
class Command:
    """One Telnyx Call Control command, with the command_id that makes resending it safe."""

    command_id: str
    call_control_id: str
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class OutboxEntry:
    """A command as the outbox holds it."""

    command: Command
    status: str
    attempts: int
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Message:
    """One scored caller utterance, as the escalation rules see it."""

    source_id: str
    text: str
    score: float
    created_at: float
    intents: dict[str, float] = field(default_factory=dict)  # intent -> confidence in [0, 1]
    frustration: dict[str, float] = field(default_factory=dict)  # calm/annoyed/angry -> probability
    confidence: float | None = None  # the recogniser's confidence in the words; None when unknown

    @classmethod
    def from_row(cls, row: Mapping[str, Any], analysis: Mapping[str, Any] | None) -> Message:
        """A stored message row (either store's) with its decoded analysis; older rows have none."""
        analysis = analysis or {}
        return cls(row["source_id"], row["text"], row["score"], row["created_at"],
                   intents=dict(analysis.get("intents", {})),
                   frustration=dict(analysis.get("frustration", {})), confidence=row["confidence"])


@dataclass(frozen=True)
class FeedEvent:
    """One event of a call's conversation going out (live feed, webhooks, transcripts)."""

    kind: str
    call_control_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class CallQuery:
    """A search over past and present calls; every filter is optional and they all must hold.

    `text` matches, ignoring ASCII case, within a caller message, the caller's or the dialled
    number, or the call's id. `since`/`until` bound the call's start (epoch seconds, until
    excluded). Results are newest first, `limit` of them after skipping `offset`; `before`, the
    (created_at, call_control_id) of the last call of a page, continues after it instead, so
    calls that start meanwhile never shift the pages.
    """

    outcome: str | None = None
    rule: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    offset: int = 0
    limit: int = 25
    before: tuple[float, str] | None = None


@dataclass(frozen=True)
class CallPage:
    """One page of a search: the calls, how many match in all, and the rule that decided each."""

    calls: list[CallRecord]
    total: int
    rules: dict[str, str] = field(default_factory=dict)  # call_control_id -> first decision's rule
    more: bool = False  # whether calls past this page match too


@dataclass(frozen=True)
class StoreFigures:
    """Counts over the whole store at one moment, for /metrics."""

    live_by_state: dict[str, int]  # calls not ended, by state
    ended_by_outcome: dict[str, int]  # ended calls, by outcome ("unknown" where none was recorded)
    decisions_by_rule: dict[str, int]
    transfers_by_status: dict[str, int]
    pending_commands: int
    oldest_pending_at: float | None  # created_at of the oldest pending command
    rejected_commands: int

    def with_purged(self, purged: Mapping[str, Mapping[str, int]]) -> StoreFigures:
        """These figures with what retention removed added back, so no counter goes down."""
        def plus(counts: dict[str, int], figure: str) -> dict[str, int]:
            total = dict(counts)
            for key, n in purged.get(figure, {}).items():
                total[key] = total.get(key, 0) + n
            return total

        return replace(self, ended_by_outcome=plus(self.ended_by_outcome, "ended_by_outcome"),
                       decisions_by_rule=plus(self.decisions_by_rule, "decisions_by_rule"),
                       transfers_by_status=plus(self.transfers_by_status, "transfers_by_status"),
                       rejected_commands=self.rejected_commands
                       + sum(purged.get("rejected_commands", {}).values()))


# What a retention purge removes, by kind: the rows of each table, named for what they hold.
PURGE_KINDS = ("calls", "events", "claims", "transfers", "commands", "messages", "decisions", "feed",
               "summaries", "deliveries", "delivery_attempts")


@dataclass(frozen=True)
class PurgeBatch:
    """One batch of a retention purge: what it removed (or, in a dry run, would remove)."""

    rows: dict[str, int]  # by kind (PURGE_KINDS); kinds with none are left out
    recordings: tuple[str, ...]  # where the purged calls' recordings are kept (paths or s3:// URLs)
    held: int  # calls past the cutoff kept because something of theirs is still owed
    # The (ended_at, call_control_id) of the last call this batch looked at; the next batch goes on
    # after it. None when there was no call left to look at.
    last: tuple[float, str] | None
