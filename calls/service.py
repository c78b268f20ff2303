"""Handles one verified event: record it (dedupe), dispatch it, commit, then send its commands."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from ivr.context import CallContext
from ivr.events import CallEvent
from ivr.menu import Menu
from ivr.outbox import CommandSender
from ivr.scope import call_scope
from ivr.store import CallStore

from .handlers import HANDLERS, Services, hear, listening_lost, masked_payload

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
        with call_scope(event.call_control_id):
            return self._handle(event)

    def _handle(self, event: CallEvent) -> str:
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

    def _internal(self, call_control_id: str, kind: str, action) -> None:  # type: ignore[no-untyped-def]
        """Run an action for a call in a unit of work of its own, as if it were an event."""
        with call_scope(call_control_id, started=time.monotonic()):
            self._run_internal(call_control_id, kind, action)

    def _run_internal(self, call_control_id: str, kind: str, action) -> None:  # type: ignore[no-untyped-def]
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
