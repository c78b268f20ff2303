"""An in-memory call store (with the outputs'): the same contract as SQL, no I/O (fast tests).

One lock makes every unit of work serial; a unit that raises is rolled back to the copy taken
when it began. It keeps nothing across restarts and serves one process only.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .base import StoreTx, ascii_lower
from .memory_outputs import MemoryOutputs, OutputTables
from .memory_purge import purge_ended
from .outputs import StoredEvent
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

_CALL_FIELDS = {f.name for f in fields(CallRecord)}
_TRANSFER_FIELDS = {f.name for f in fields(TransferRecord)}


@dataclass
class _Tables:
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: set[tuple[str, str]] = field(default_factory=set)
    calls: dict[str, CallRecord] = field(default_factory=dict)
    transfers: dict[tuple[str, int], TransferRecord] = field(default_factory=dict)
    commands: dict[str, OutboxEntry] = field(default_factory=dict)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    feed: list[StoredEvent] = field(default_factory=list)  # commit order: units of work are serial
    revoked_sessions: dict[str, float] = field(default_factory=dict)
    auth_failures: list[tuple[str, float]] = field(default_factory=list)
    outputs: OutputTables = field(default_factory=OutputTables)
    purged: dict[str, Counter[str]] = field(default_factory=dict)  # figure -> key -> count (retention)
    purged_files: dict[str, float] = field(default_factory=dict)  # recording -> when its call was purged


class MemoryStoreTx(StoreTx):
    """A unit of work on the in-memory tables (the store's lock is held throughout)."""

    def __init__(self, tables: _Tables, ids: Iterator[int]) -> None:
        self._t = tables
        self._ids = ids

    def record_event(self, event_id: str, event_type: str, call_control_id: str | None,
                     occurred_at: str | None, attempt: int, payload: str) -> bool:
        if event_id in self._t.events:
            return False
        self._t.events[event_id] = {"id": event_id, "event_type": event_type,
                                    "call_control_id": call_control_id, "occurred_at": occurred_at,
                                    "received_at": time.time(), "attempt": attempt, "payload": payload}
        return True

    def claim(self, call_control_id: str, action: str) -> bool:
        if (call_control_id, action) in self._t.claims:
            return False
        self._t.claims.add((call_control_id, action))
        return True

    def insert_call(self, call: CallRecord) -> bool:
        if call.call_control_id in self._t.calls:
            return False
        self._t.calls[call.call_control_id] = replace(call)
        return True

    def get_call(self, call_control_id: str, lock: bool = True) -> CallRecord | None:
        call = self._t.calls.get(call_control_id)
        return replace(call) if call is not None else None

    def update_call(self, call_control_id: str, **values: Any) -> None:
        unknown = set(values) - _CALL_FIELDS
        if unknown:
            raise TypeError(f"unknown call fields {sorted(unknown)}")
        call = self._t.calls.get(call_control_id)
        if call is not None:
            values.setdefault("updated_at", time.time())
            self._t.calls[call_control_id] = replace(call, **values)

    def add_transfer(self, transfer: TransferRecord) -> None:
        key = (transfer.call_control_id, transfer.attempt)
        if key in self._t.transfers:
            raise KeyError(f"transfer {key} exists")  # the SQL primary key refuses it too
        self._t.transfers[key] = replace(transfer)

    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        return _transfers(self._t, call_control_id)

    def transfer_for_agent_leg(self, agent_call_control_id: str) -> TransferRecord | None:
        return next((replace(t) for t in self._t.transfers.values()
                     if t.agent_call_control_id == agent_call_control_id), None)

    def update_transfer(self, call_control_id: str, attempt: int, **values: Any) -> None:
        unknown = set(values) - _TRANSFER_FIELDS
        if unknown:
            raise TypeError(f"unknown transfer fields {sorted(unknown)}")
        transfer = self._t.transfers.get((call_control_id, attempt))
        if transfer is not None:
            values.setdefault("updated_at", time.time())
            self._t.transfers[(call_control_id, attempt)] = replace(transfer, **values)

    def outbox_entry(self, command_id: str) -> OutboxEntry | None:
        return self._t.commands.get(command_id)

    def enqueue(self, commands: Sequence[Command], sent: Collection[str] = ()) -> None:
        now = time.time()
        for index, command in enumerate(commands):
            queued = now + index * 1e-6  # as the SQL store: created_at orders one unit's commands
            entry = self._t.commands.setdefault(command.command_id, OutboxEntry(
                command=command, status=CommandStatus.PENDING, attempts=0, last_error=None,
                created_at=queued, updated_at=queued))
            if command.command_id in sent and entry.status == CommandStatus.PENDING:
                self._t.commands[command.command_id] = replace(
                    entry, status=CommandStatus.SENT, attempts=1, last_error=None, updated_at=now)

    def add_message(self, call_control_id: str, engine: str, source_id: str, text: str,
                    confidence: float | None, score: float | None, label: str | None,
                    analysis: dict[str, Any] | None = None) -> bool:
        if (call_control_id, source_id) in self._t.messages:
            return False
        self._t.messages[(call_control_id, source_id)] = {
            "id": next(self._ids), "call_control_id": call_control_id, "engine": engine,
            "source_id": source_id, "text": text, "confidence": confidence, "score": score,
            "label": label, "analysis": copy.deepcopy(analysis), "created_at": time.time()}
        return True

    def recent_messages(self, call_control_id: str, limit: int) -> list[Message]:
        rows = [m for m in self._t.messages.values()
                if m["call_control_id"] == call_control_id and m["score"] is not None]
        rows = sorted(rows, key=lambda m: m["id"])[-limit:] if limit > 0 else []
        return [Message.from_row(r, r["analysis"]) for r in rows]

    def add_decision(self, call_control_id: str, rule: str, reason: str,
                     evidence: list[dict[str, Any]]) -> None:
        self._t.decisions.append({"id": next(self._ids), "call_control_id": call_control_id,
                                  "rule": rule, "reason": reason[:255],
                                  "evidence": copy.deepcopy(evidence), "decided_at": time.time()})

    def calls_to_sweep(self, swept_before: float, limit: int) -> list[CallRecord]:
        due = [c for c in self._t.calls.values() if c.status != CallStatus.ENDED
               and (c.swept_at is None or c.swept_at < swept_before)]
        return [replace(c) for c in sorted(due, key=lambda c: c.created_at)[:limit]]

    def stamp_swept(self, call_control_ids: Sequence[str], at: float) -> None:
        for call_control_id in call_control_ids:
            call = self._t.calls.get(call_control_id)
            if call is not None:
                self._t.calls[call_control_id] = replace(call, swept_at=at)

    def calls_to_check(self, idle_before: float, limit: int) -> list[CallRecord]:
        idle = [c for c in self._t.calls.values() if c.status != CallStatus.ENDED
                and c.updated_at < idle_before and (c.checked_at is None or c.checked_at < idle_before)]
        return [replace(c) for c in sorted(idle, key=lambda c: (c.checked_at or 0.0, c.updated_at))[:limit]]

    def add_feed(self, events: Sequence[FeedEvent]) -> None:
        now, last = time.time(), self._t.feed[-1].id if self._t.feed else 0
        self._t.feed.extend(StoredEvent(last + n, e.kind, e.call_control_id, now, copy.deepcopy(e.data))
                            for n, e in enumerate(events, 1))


class MemoryStore(MemoryOutputs):
    """CallStore and OutputStore in this process's memory."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)

    @contextmanager
    def unit(self) -> Iterator[MemoryStoreTx]:
        with self._lock:
            before = copy.deepcopy(self._tables)
            try:
                yield MemoryStoreTx(self._tables, self._ids)
            except BaseException:
                self._tables = before
                raise

    def claim(self, call_control_id: str, action: str) -> bool:
        with self.unit() as tx:
            return tx.claim(call_control_id, action)

    def get_call(self, call_control_id: str) -> CallRecord | None:
        with self.unit() as tx:
            return tx.get_call(call_control_id, lock=False)

    def ended_among(self, call_control_ids: Collection[str]) -> set[str]:
        with self._lock:
            live = {c for c in call_control_ids if (call := self._tables.calls.get(c)) and call.is_active}
        return set(call_control_ids) - live

    def list_calls(self, limit: int = 50, active_only: bool = False) -> list[CallRecord]:
        with self._lock:
            calls = [replace(c) for c in self._tables.calls.values()
                     if not active_only or c.status != CallStatus.ENDED]
        return sorted(calls, key=lambda c: c.created_at, reverse=True)[:limit]

    def recordings_due(self, statuses: Collection[str], limit: int) -> list[CallRecord]:
        with self._lock:
            due = [replace(c) for c in self._tables.calls.values() if c.recording_status in statuses]
        # A call without a saved time first, as SQL's NULLS FIRST.
        return sorted(due, key=lambda c: (c.recording_saved_at is not None, c.recording_saved_at or 0.0,
                                          c.call_control_id))[:limit]

    def search_calls(self, query: CallQuery) -> CallPage:
        with self._lock:
            tables = self._tables
            rules: dict[str, str] = {}
            for decision in tables.decisions:
                rules.setdefault(decision["call_control_id"], decision["rule"])
            said: dict[str, list[str]] = {}
            for message in tables.messages.values():
                said.setdefault(message["call_control_id"], []).append(ascii_lower(message["text"]))
            needle = ascii_lower(query.text) if query.text else None

            def matches(call: CallRecord) -> bool:
                if query.outcome and call.outcome != query.outcome:
                    return False
                ccid = call.call_control_id
                if query.rule and not any(d["rule"] == query.rule and d["call_control_id"] == ccid
                                          for d in tables.decisions):
                    return False
                if query.since is not None and call.created_at < query.since:
                    return False
                if query.until is not None and call.created_at >= query.until:
                    return False
                if needle is None:
                    return True
                fields_ = (call.from_number, call.to_number, call.call_control_id)
                return any(needle in ascii_lower(f) for f in fields_ if f) or any(
                    needle in text for text in said.get(call.call_control_id, []))

            found = sorted((replace(c) for c in tables.calls.values() if matches(c)),
                           key=_start_key, reverse=True)
        total = len(found)
        if query.before is not None:
            found = [c for c in found if _start_key(c) < query.before]
        start = max(query.offset, 0)
        chosen = found[start:start + max(query.limit, 0)]
        return CallPage(calls=chosen, total=total,
                        rules={c.call_control_id: rules[c.call_control_id] for c in chosen
                               if c.call_control_id in rules},
                        more=len(found) > start + len(chosen))

    def purge_ended(self, ended_before: float, limit: int, after: tuple[float, str] | None = None,
                    receivers: Collection[str] = (), dry_run: bool = False) -> PurgeBatch:
        with self._lock:
            return purge_ended(self._tables, ended_before, limit, after, receivers, dry_run)

    def purged_files(self, limit: int = 500) -> list[str]:
        with self._lock:
            found = sorted(self._tables.purged_files.items(), key=lambda item: (item[1], item[0]))
        return [where for where, _ in found[:max(limit, 0)]]

    def forget_purged_files(self, locations: Collection[str]) -> None:
        with self._lock:
            for where in locations:
                self._tables.purged_files.pop(where, None)

    def calls_by_start(self, since: float | None, until: float | None, after: tuple[float, str] | None,
                       limit: int) -> list[CallRecord]:
        with self._lock:
            found = [replace(c) for c in self._tables.calls.values()
                     if (since is None or c.created_at >= since) and (until is None or c.created_at < until)
                     and (after is None or _start_key(c) > after)]
        return sorted(found, key=_start_key)[:max(limit, 0)]

    def transfers(self, call_control_id: str) -> list[TransferRecord]:
        with self._lock:
            return _transfers(self._tables, call_control_id)

    def events(self, call_control_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = [dict(e) for e in self._tables.events.values() if e["call_control_id"] == call_control_id]
        return sorted(rows, key=lambda e: e["received_at"])

    def messages(self, call_control_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = [dict(m) for m in self._tables.messages.values()
                    if m["call_control_id"] == call_control_id]
        return sorted(rows, key=lambda m: m["id"])

    def feed_events(self, call_control_id: str) -> list[FeedEvent]:
        with self._lock:
            return [FeedEvent(e.kind, e.call_control_id, copy.deepcopy(e.data)) for e in self._tables.feed
                    if e.call_control_id == call_control_id]

    def decisions(self, call_control_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(d) for d in self._tables.decisions
                    if d["call_control_id"] == call_control_id]

    def outbox(self, call_control_id: str) -> list[OutboxEntry]:
        with self._lock:
            return [e for e in self._tables.commands.values()
                    if e.command.call_control_id == call_control_id]

    def mark_command(self, command_id: str, status: str, attempts: int, error: str | None) -> bool:
        with self._lock:
            entry = self._tables.commands.get(command_id)
            if entry is None or entry.status != CommandStatus.PENDING:
                return False
            self._tables.commands[command_id] = replace(
                entry, status=status, attempts=attempts, last_error=error[:500] if error else None,
                updated_at=time.time())
            return True

    def claim_command(self, command_id: str, queued_at: float, hold_s: float = 0.0) -> bool:
        with self._lock:
            entry = self._tables.commands.get(command_id)
            if entry is None or entry.status != CommandStatus.PENDING or entry.updated_at > queued_at:
                return False
            self._tables.commands[command_id] = replace(entry, updated_at=time.time() + hold_s)
            return True

    def due_commands(self, older_than_s: float, limit: int = 100,
                     untried_older_than_s: float | None = None) -> Iterator[Command]:
        now = time.time()
        untried = older_than_s if untried_older_than_s is None else untried_older_than_s
        with self._lock:
            due = [e for e in sorted(self._tables.commands.values(), key=lambda e: e.created_at)
                   if e.status == CommandStatus.PENDING
                   and e.updated_at < now - (older_than_s if e.attempts > 0 else untried)][:limit]
            # Touch each now, under the lock, so a second sweeper skips them.
            for entry in due:
                self._tables.commands[entry.command.command_id] = replace(entry, updated_at=time.time())
        for entry in due:
            yield entry.command

    def revoke_session(self, session_id: str, expires_at: float) -> None:
        with self._lock:
            now = time.time()
            revoked = self._tables.revoked_sessions
            for gone in [s for s, until in revoked.items() if until < now]:
                del revoked[gone]
            revoked[session_id] = expires_at

    def session_revoked(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._tables.revoked_sessions

    def note_auth_failure(self, client: str, at: float, forget_before: float) -> None:
        with self._lock:
            kept = [(c, t) for c, t in self._tables.auth_failures if t >= forget_before]
            self._tables.auth_failures = kept + [(client[:64], at)]

    def auth_failures(self, client: str, since: float) -> list[float]:
        with self._lock:
            return sorted(t for c, t in self._tables.auth_failures if c == client[:64] and t >= since)

    def figures(self) -> StoreFigures:
        with self._lock:
            tables = self._tables
            pending = [e for e in tables.commands.values() if e.status == CommandStatus.PENDING]
            return StoreFigures(
                live_by_state=_count(c.status for c in tables.calls.values() if c.status != CallStatus.ENDED),
                ended_by_outcome=_count(c.outcome or "unknown" for c in tables.calls.values()
                                        if c.status == CallStatus.ENDED),
                decisions_by_rule=_count(d["rule"] for d in tables.decisions),
                transfers_by_status=_count(t.status for t in tables.transfers.values()),
                pending_commands=len(pending),
                oldest_pending_at=min((e.created_at for e in pending), default=None),
                rejected_commands=sum(1 for e in tables.commands.values()
                                      if e.status == CommandStatus.REJECTED)).with_purged(tables.purged)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


def _start_key(call: CallRecord) -> tuple[float, str]:
    """The order calls are paged in, by start time and then id (the keyset of search and batches)."""
    return call.created_at, call.call_control_id


def _count(keys: Iterable[str]) -> dict[str, int]:
    return dict(Counter(str(key) for key in keys))


def _transfers(tables: _Tables, call_control_id: str) -> list[TransferRecord]:
    return sorted((replace(t) for (ccid, _), t in tables.transfers.items() if ccid == call_control_id),
                  key=lambda t: t.attempt)
