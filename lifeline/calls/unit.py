"""The one unit-of-work runner: open a transaction, build the context, run, commit, then act.

Webhooks, listening engines and the monitor all change calls through it. Commands join the
outbox inside the transaction and go to Telnyx only after commit; effects on other systems
(engine starts and stops, Symbl sessions) also run only after commit, so a rollback followed
by Telnyx's redelivery can never start a second session.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from lifeline.ivr.context import CallContext
from lifeline.ivr.events import CallEvent
from lifeline.ivr.menu import Menu
from lifeline.ivr.scope import call_scope
from lifeline.ivr.store import CallRecord, CallStore, Command

log = logging.getLogger(__name__)
R = TypeVar("R")


class Submitter(Protocol):
    """Where committed commands go (the outbox sender; a list in tests)."""

    def in_answer(self, commands: Sequence[Command]) -> frozenset[str]:
        """The ids of those commands that will leave in the answer to the request being handled
        (Twilio's TwiML), asked before the unit commits so it records them sent itself."""

    def submit(self, commands: Sequence[Command]) -> None:
        """Send commands that their unit of work has committed to the outbox."""


def internal_event(kind: str, call_control_id: str | None) -> CallEvent:
    """The event of work Lifeline starts itself (`lifeline.message`, `lifeline.sweep`, ...)."""
    return CallEvent(id=f"{kind}-{uuid.uuid4()}", type=kind, occurred_at=None,
                     call_control_id=call_control_id)


class UnitOfWork:
    """Runs work in one transaction and, once it has committed, sends its commands and effects."""

    def __init__(self, store: CallStore, menu: Menu, sender: Submitter,
                 on_published: Callable[[], None] | None = None) -> None:
        self._store = store
        self._menu = menu
        self._sender = sender
        self._on_published = on_published

    def run(self, event: CallEvent, work: Callable[[CallContext], R]) -> R:
        """Run work for an event; what it queued leaves only if the transaction commits."""
        # Log lines name the call; Lifeline's own work (transcripts, sweeps) is timed from now,
        # a webhook from its arrival (the scope the metrics hook opened).
        own = event.type.startswith("lifeline.")
        with call_scope(event.call_control_id, started=time.monotonic() if own else None):
            return self._run([event], work)[0]

    def run_all(self, events: Sequence[CallEvent], work: Callable[[CallContext], R]) -> list[R]:
        """Run work for each of one request's events in a single transaction, in order (a Twilio
        request can stand for several events): all of them commit, or none."""
        if not events:
            return []
        if len({event.call_control_id for event in events}) > 1:
            # One call's row lock is what orders this unit against the others (lifeline/ivr/lock_order.py).
            raise ValueError("run_all takes the events of one call; run each call's on its own")
        with call_scope(events[0].call_control_id):
            return self._run(events, work)

    def _run(self, events: Sequence[CallEvent], work: Callable[[CallContext], R]) -> list[R]:
        contexts: list[CallContext] = []
        results: list[R] = []
        with self._store.unit() as tx:
            for event in events:
                ctx = CallContext(tx=tx, event=event, menu=self._menu)
                results.append(work(ctx))
                contexts.append(ctx)
            commands = [command for ctx in contexts for command in ctx.commands]
            feed = [item for ctx in contexts for item in ctx.feed]
            tx.enqueue(commands, sent=self._sender.in_answer(commands))
            tx.add_feed(feed)
        self._sender.submit(commands)
        if feed and self._on_published is not None:
            self._on_published()  # wakes this process's feed readers; the store holds the events
        for ctx in contexts:
            for effect in ctx.effects:
                try:
                    effect()
                except Exception:  # committed already: a failed effect is reported, not redelivered
                    log.exception("after-commit effect of %s %s failed", ctx.event.type, ctx.event.id)
        return results

    def for_call(self, kind: str, call_control_id: str,
                 work: Callable[[CallContext, CallRecord], R]) -> R | None:
        """Run Lifeline's own work on one call (if it exists) in a unit of work of its own."""

        def on_call(ctx: CallContext) -> R | None:
            call = ctx.tx.get_call(call_control_id)
            return work(ctx, call) if call is not None else None

        return self.run(internal_event(kind, call_control_id), on_call)
