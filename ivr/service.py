"""Handles one verified event: record it (dedupe), dispatch it, commit, then send its commands."""

from __future__ import annotations

import json
import logging

from .context import CallContext
from .events import CallEvent
from .handlers import HANDLERS, Services, masked_payload
from .menu import Menu
from .outbox import CommandSender
from .store import CallStore

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
