"""Hanging up the caller's leg once Lifeline has said its last words (a goodbye, a thanks)."""

from __future__ import annotations

import logging

from lifeline.ivr.context import command_id_for
from lifeline.ivr.store import CommandStatus

from .machine import Turn

log = logging.getLogger(__name__)

HANGUP = "hangup"  # calls.pending: hang up once the last words have been said
# calls.pending: the hangup is sent, and the provider's call.hangup will close the call (or, if it
# never comes, the monitor's lost-call check). Nothing more is said or sent meanwhile.
HUNG_UP = "hung_up"


def hang_up(turn: Turn) -> None:
    """Send the hangup, and note it was sent."""
    turn.ctx.tx.update_call(turn.call.call_control_id, pending=HUNG_UP)
    turn.ctx.send("hangup", turn.call.call_control_id, "hangup")


def hang_up_again_if_refused(turn: Turn, now: float, wait_s: float) -> None:
    """The monitor's tick once the hangup is sent: if the provider refused it for good, send one
    more (under its own id: the outbox keeps one row per id) after `wait_s`. Nothing else would: the
    lost-call check finds the leg up, and the caller would sit on a silent line until they hang up."""
    ctx, call = turn.ctx, turn.call
    if call.pending != HUNG_UP or now - call.updated_at <= wait_s:
        return
    first = ctx.tx.outbox_entry(command_id_for(call.call_control_id, "hangup"))
    again = ctx.tx.outbox_entry(command_id_for(call.call_control_id, "hangup:again"))
    if first is None or first.status != CommandStatus.REJECTED or again is not None:
        return
    log.warning("call %s: the hangup was refused (%s); sending it once more", call.call_control_id,
                first.last_error)
    ctx.send("hangup", call.call_control_id, "hangup:again")
