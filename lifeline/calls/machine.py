"""The call state machine: triggers, transitions, and the turn an action runs in.

The table itself (which trigger is allowed in which status, what runs, which statuses may
follow) is `lifeline.calls.transitions.TRANSITIONS`; this module holds the mechanism, so that the
modules with the actions can use it without importing the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lifeline.ivr.context import CallContext
from lifeline.ivr.errors import LifelineError
from lifeline.ivr.store import CallRecord, CallStatus

from .services import Services

log = logging.getLogger(__name__)


class Trigger(StrEnum):
    """Something that happened to a caller's call (from Telnyx, a listening engine or the monitor)."""

    ANSWERED = "answered"              # call.answered on the caller's leg
    KEY = "key"                        # call.gather.ended: a menu choice, silence or a wrong key
    ESCALATE = "escalate"              # a rule or the menu decided the caller needs a person
    SPOKEN = "spoken"                  # call.speak.ended: a prompt finished playing
    HEARD = "heard"                    # the caller said something (any engine)
    LISTENING_LOST = "listening_lost"  # the audio stream failed or closed while the call was up
    BRIDGED = "bridged"                # the caller and an agent are connected
    UNBRIDGED = "unbridged"            # a connection recorded was never made (Twilio's DialBridged=false)
    AGENT_FAILED = "agent_failed"      # an agent did not take the call
    RECORDING = "recording"            # call.recording.saved
    RECORDED = "recorded"              # the message's recording ended, the caller still on (Twilio)
    TICK = "tick"                      # the monitor's sweep: time-based rules
    HANGUP = "hangup"                  # the caller's leg hung up
    LOST = "lost"                      # Telnyx no longer knows the call (the monitor closes it)


class InvalidTransition(LifelineError, RuntimeError):
    """An action tried to move a call to a status its transition does not allow (a bug)."""


Action = Callable[..., None]


@dataclass(frozen=True)
class Transition:
    """What a trigger does in one status: the action, and the statuses it may move the call to."""

    action: Action
    to: frozenset[CallStatus] = frozenset()


@dataclass
class Turn:
    """One trigger being handled for one call, inside one unit of work."""

    ctx: CallContext
    svc: Services
    call: CallRecord
    trigger: Trigger
    transition: Transition
    machine: Machine

    def move(self, status: CallStatus, **fields: Any) -> None:
        """Change the call's status (and other fields at once), as the transition allows."""
        if status not in self.transition.to:
            raise InvalidTransition(f"{self.trigger} in {self.call.status} may lead to "
                                    f"{sorted(self.transition.to)}, not {status}")
        self.ctx.tx.update_call(self.call.call_control_id, status=status, **fields)
        if status != self.call.status and status != CallStatus.ENDED:  # the end is `call.ended`
            # On the feed, so a live view (the console's, a customer's) knows where each call is.
            self.ctx.publish("status", self.call.call_control_id, status=status)
        self.call.status = status

    def fire(self, trigger: Trigger, **data: Any) -> bool:
        """Handle a further trigger for the same call in the same unit of work."""
        return self.machine.fire(self.ctx, self.svc, self.call, trigger, **data)


class Machine:
    """Consults the transitions table: a trigger with no transition is a logged no-op."""

    def __init__(self, table: Mapping[tuple[CallStatus, Trigger], Transition]) -> None:
        self.table = table

    def allows(self, status: str, trigger: Trigger) -> bool:
        """Whether a trigger does anything in a status."""
        return (CallStatus(status), trigger) in self.table

    def fire(self, ctx: CallContext, svc: Services, call: CallRecord, trigger: Trigger,
             **data: Any) -> bool:
        """Run the action the table names for this call's status; False if there is none."""
        status = CallStatus(call.status)
        transition = self.table.get((status, trigger))
        if transition is None:
            log.info("call %s: %s ignored in status %s (no such transition)",
                     call.call_control_id, trigger, status)
            return False
        transition.action(Turn(ctx, svc, call, trigger, transition, self), **data)
        return True
