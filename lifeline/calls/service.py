"""Handles one verified event: record it (dedupe), dispatch it, commit, then send its commands."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from lifeline.insight.base import Reading
from lifeline.ivr.context import CallContext
from lifeline.ivr.events import CallEvent
from lifeline.ivr.masking import masked_payload
from lifeline.ivr.store import CallRecord, CallStore

from . import agent, listening
from .dispatch import EVENT_TYPES, dispatch
from .machine import Machine, Trigger
from .services import Services
from .unit import UnitOfWork

log = logging.getLogger(__name__)


class CallService:
    """The IVR's event pipeline, independent of HTTP."""

    def __init__(self, store: CallStore, units: UnitOfWork, services: Services, machine: Machine) -> None:
        self._store = store
        self._units = units
        self._services = services
        self._machine = machine

    def handle(self, event: CallEvent) -> str:
        """Process an event once; returns "handled", "duplicate" or "ignored"."""
        return self._units.run(event, self._record_and_dispatch)

    def handle_all(self, events: Sequence[CallEvent]) -> list[str]:
        """Process one request's events (each once) in one unit of work: all are kept, or none."""
        return self._units.run_all(events, self._record_and_dispatch)

    def _record_and_dispatch(self, ctx: CallContext) -> str:
        event = ctx.event
        fresh = ctx.tx.record_event(event.id, event.type, event.call_control_id, event.occurred_at,
                                    event.attempt, json.dumps(masked_payload(event.payload)))
        if not fresh:
            log.info("duplicate %s %s ignored", event.type, event.id)
            return "duplicate"
        if event.type not in EVENT_TYPES:
            log.debug("no handler for %s; acknowledged", event.type)
            return "ignored"
        dispatch(ctx, self._services, self._machine)
        return "handled"

    def bridge_asked(self, events: Sequence[CallEvent]) -> bool:
        """Process a request that asks for a bridge (Twilio's whisper has ended) in one unit of
        work; True if, as that unit commits, the attempt it names connects its caller. A repeated
        request changes nothing and gets the same answer."""

        def decide(ctx: CallContext) -> bool:
            self._record_and_dispatch(ctx)
            return agent.is_connected(ctx)

        return bool(events) and all(self._units.run_all(events, decide))

    def hear(self, call_control_id: str, engine: str, source_id: str, text: str,
             confidence: float | None, score: float | None = None, party: str = "caller",
             start: float | None = None, end: float | None = None,
             readings: tuple[Reading, ...] = ()) -> None:
        """A listening engine heard a party (the caller, or an agent after a bridge) say something.

        The line is understood before the call's unit of work begins: reading its mood from
        several readings takes tens of milliseconds, and the store's write lock is not held for it.
        """
        analysis = listening.understand(self._services, text, score, readings)
        self._units.for_call("lifeline.message", call_control_id, lambda ctx, call: self._machine.fire(
            ctx, self._services, call, Trigger.HEARD, engine=engine, source_id=source_id, text=text,
            confidence=confidence, score=score, party=party, start=start, end=end, analysis=analysis))

    def message_recorded(self, call_control_id: str) -> None:
        """The caller's message has been recorded and the caller may still be on the line (Twilio's
        <Record> action): thank them and hang up, as the monitor does for a Telnyx voicemail."""
        self._units.for_call("lifeline.recorded", call_control_id, lambda ctx, call: self._machine.fire(
            ctx, self._services, call, Trigger.RECORDED))

    def stream_lost(self, call_control_id: str, why: str, once: str | None = None) -> None:
        """The media stream of a call ended while the call was still up. With `once`, only the
        first report under that name counts (two channels may report the same stream)."""

        def lose(ctx: CallContext, call: CallRecord) -> None:
            # Claimed in the same unit: if the work fails, the claim rolls back with it, and a
            # later report of the same stream is not swallowed.
            if once is None or ctx.tx.claim(call_control_id, once):
                self._machine.fire(ctx, self._services, call, Trigger.LISTENING_LOST, why=why)

        self._units.for_call("lifeline.stream_lost", call_control_id, lose)

    def call_gone(self, call_control_id: str, cause: str, unchanged_since: float | None = None,
                  hung_up: bool = False) -> bool:
        """Telnyx says the leg is over (90018 on a command, or not alive): close the call.

        True if an open call was closed. With `unchanged_since`, only a call whose record has
        not moved since then is closed (the sweeper's answer may be stale when it arrives).
        """

        def close(ctx: CallContext, call: CallRecord) -> bool:
            if unchanged_since is not None and call.updated_at != unchanged_since:
                return False  # something happened on the call since Telnyx was asked
            return self._machine.fire(ctx, self._services, call, Trigger.LOST, now=time.time(), cause=cause,
                                      hung_up=hung_up)

        return bool(self._units.for_call("lifeline.call_gone", call_control_id, close))

    def call_ended(self, call_control_id: str, cause: str) -> bool:
        """A command was answered "call ended" (90018): the caller hung up, and the hangup is late or
        lost. Closed as a hangup would close it (a call in the menu is `completed`, not `lost`)."""
        return self.call_gone(call_control_id, cause, hung_up=True)

    def load(self, call_control_id: str) -> dict[str, Any] | None:
        """The listening engine's data for a call (EngineState)."""
        call = self._store.get_call(call_control_id)
        return json.loads(call.engine_state) if call is not None and call.engine_state else None

    def save(self, call_control_id: str, data: dict[str, Any] | None) -> None:
        """Replace the listening engine's data for a call (EngineState)."""
        with self._store.unit() as tx:
            call = tx.get_call(call_control_id)
            if call is not None:
                tx.update_call(call_control_id, engine_state=json.dumps(data) if data else None,
                               updated_at=call.updated_at)
