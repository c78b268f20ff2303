"""Pausing and resuming listening mid-call (e.g. while a card number is read out)."""

from __future__ import annotations

from typing import Any

from lifeline.calls import listening
from lifeline.calls.services import Services
from lifeline.calls.unit import UnitOfWork, internal_event
from lifeline.ivr.context import CallContext
from lifeline.ivr.errors import RequestError
from lifeline.ivr.store import CallStatus


class PauseError(RequestError):
    """A pause or resume that cannot apply to this call (carries its HTTP status)."""


class ListeningControl:
    """Stops and restarts hearing a call from the API; every change is audited on the call and published."""

    def __init__(self, units: UnitOfWork, services: Services) -> None:
        self._units = units
        self._services = services

    def set_paused(self, call_control_id: str, paused: bool, by: str) -> dict[str, Any]:
        """Pause or resume; returns the call's listening state. Repeating a request changes nothing."""
        event = internal_event("lifeline.listening", call_control_id)

        def work(ctx: CallContext) -> dict[str, Any]:
            call = ctx.tx.get_call(call_control_id)
            if call is None:
                raise PauseError(404, f"no call {call_control_id[:100]!r}")
            if call.status == CallStatus.ENDED:
                raise PauseError(409, "the call has ended: there is nothing to pause or resume", "call_ended")
            if call.listening == "lost":
                raise PauseError(409, "listening to this call was lost: nothing is being heard",
                                 "listening_lost")
            changed = listening.set_paused(ctx, self._services, call, paused, by)
            return {"call_control_id": call_control_id, "paused": paused, "changed": changed}

        return self._units.run(event, work)
