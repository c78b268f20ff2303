"""Hanging up the caller's leg once Lifeline has said its last words (a goodbye, a thanks)."""

from __future__ import annotations

from .machine import Turn

HANGUP = "hangup"  # calls.pending: hang up once the last words have been said
# calls.pending: the hangup is sent, and the provider's call.hangup will close the call (or, if it
# never comes, the monitor's lost-call check). Nothing more is said or sent meanwhile.
HUNG_UP = "hung_up"


def hang_up(turn: Turn) -> None:
    """Send the hangup, and note it was sent."""
    turn.ctx.tx.update_call(turn.call.call_control_id, pending=HUNG_UP)
    turn.ctx.send("hangup", turn.call.call_control_id, "hangup")
