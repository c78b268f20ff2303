"""Pausing and resuming listening mid-call (e.g. while a card number is read out)."""

from __future__ import annotations

import json
import time
from typing import Any

from calls.unit import UnitOfWork, internal_event
from insight import tracks
from insight.base import ListeningEngine
from ivr.context import CallContext
from ivr.errors import LifelineError
from ivr.store import CallStatus


class PauseError(LifelineError):
    """A pause or resume that cannot apply to this call (carries its HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ListeningControl:
    """Stops and restarts hearing a call; every change is audited on the call and published."""

    def __init__(self, units: UnitOfWork, engine: ListeningEngine) -> None:
        self._units = units
        self._engine = engine

    def set_paused(self, call_control_id: str, paused: bool, by: str) -> dict[str, Any]:
        """Pause or resume; returns the call's listening state. Repeating a request changes nothing."""
        event = internal_event("lifeline.listening", call_control_id)

        def work(ctx: CallContext) -> dict[str, Any]:
            call = ctx.tx.get_call(call_control_id)
            if call is None:
                raise PauseError(404, f"no call {call_control_id!r}")
            if call.status == CallStatus.ENDED:
                raise PauseError(409, "the call has ended: there is nothing to pause or resume")
            if call.listening == "lost":
                raise PauseError(409, "listening to this call was lost: nothing is being heard")
            if (call.listening == "paused") == paused:
                return {"call_control_id": call_control_id, "paused": paused, "changed": False}
            state = "paused" if paused else "resumed"
            # Audited on the call record: it appears among the call's events with who asked.
            ctx.tx.record_event(event.id, f"lifeline.listening.{state}", call_control_id, None, 1,
                                json.dumps({"paused": paused, "by": by, "at": time.time()}))
            ctx.tx.update_call(call_control_id, listening="paused" if paused else None)
            ctx.publish("listening", call_control_id, state=state, by=by)
            both = call.status == CallStatus.TRANSFERRED  # the agent is on the line too
            for name, params in self._commands(call_control_id, paused, both):
                ctx.send(name, call_control_id, f"listening:{event.id}:{name}", **params)
            return {"call_control_id": call_control_id, "paused": paused, "changed": True}

        return self._units.run(event, work)

    def _commands(self, call_control_id: str, paused: bool, both: bool) -> tracks.Commands:
        """What the provider must do so that no audio is even transcribed while paused."""
        if paused:
            return tracks.stop(self._engine, call_control_id)
        return tracks.start(self._engine, call_control_id, both=both)
