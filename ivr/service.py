"""Handles one verified event: record it (dedupe), dispatch it, commit, then send its commands."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from .context import CallContext
from .events import CallEvent
from .handlers import HANDLERS, Services, close_call, hear, listening_lost, masked_payload
from .menu import Menu
from .outbox import CommandSender
from .store import CallRecord, CallStore

log = logging.getLogger(__name__)


class CallService:
    """The IVR's event pipeline, independent of HTTP."""

    def __init__(self, store: CallStore, menu: Menu, sender: CommandSender, services: Services) -> None:
        self._store = store
        self._menu = menu
        self._sender = sender
        self._services = services

    def handle(self, event: CallEvent) -> str:
        """Process an event once; returns "handled", "duplicate" or "ignored"."""
        handler = HANDLERS.get(event.type)
        with self._store.unit() as tx:
            fresh = tx.record_event(event.id, event.type, event.call_control_id, event.occurred_at,
                                    event.attempt, json.dumps(masked_payload(event)))
            if not fresh:
                log.info("duplicate %s %s ignored", event.type, event.id)
                return "duplicate"
            if handler is None:
                log.debug("no handler for %s; acknowledged", event.type)
                return "ignored"
            ctx = CallContext(tx=tx, event=event, menu=self._menu)
            handler(ctx, self._services)
            tx.enqueue(ctx.commands)
        # Sent only after commit: a command never leaves for a change that was rolled back.
        self._sender.submit(ctx.commands)
        return "handled"

    def hear(self, call_control_id: str, engine: str, source_id: str, text: str,
             confidence: float | None, score: float | None = None) -> None:
        """A listening engine heard the caller say something."""
        self._internal(call_control_id, "lifeline.message",
                       lambda ctx, call: hear(ctx, self._services, call, engine, source_id, text,
                                              confidence, score))

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

    def stream_lost(self, call_control_id: str, why: str) -> None:
        """The media stream of a call ended while the call was still up."""
        self._internal(call_control_id, "lifeline.stream_lost",
                       lambda ctx, call: listening_lost(ctx, self._services, call, why))

    def call_gone(self, call_control_id: str, cause: str,
                  outcome: Callable[[CallRecord], str] | None = None,
                  unchanged_since: float | None = None) -> bool:
        """Telnyx says the leg is over (90018, or not alive): close the call; True if it was open.

        With `unchanged_since`, only a call whose record has not moved since then is closed (the
        sweeper's answer may be stale by the time it arrives).
        """
        closed: list[bool] = []

        def close(ctx: CallContext, call: CallRecord) -> None:
            if not call.is_active or (unchanged_since is not None and call.updated_at != unchanged_since):
                return
            close_call(ctx, self._services, call, cause, outcome(call) if outcome else None)
            closed.append(True)

        self._internal(call_control_id, "lifeline.call_gone", close)
        return bool(closed)

    def _internal(self, call_control_id: str, kind: str, action) -> None:  # type: ignore[no-untyped-def]
        """Run an action for a call in a unit of work of its own, as if it were an event."""
        event = CallEvent(id=f"{kind}-{uuid.uuid4()}", type=kind, occurred_at=None,
                          call_control_id=call_control_id)
        with self._store.unit() as tx:
            call = tx.get_call(call_control_id)
            if call is None:
                return
            ctx = CallContext(tx=tx, event=event, menu=self._menu)
            action(ctx, call)
            tx.enqueue(ctx.commands)
        self._sender.submit(ctx.commands)
