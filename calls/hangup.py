"""Hanging up the caller's leg once Lifeline has said its last words (a goodbye, a thanks)."""

from __future__ import annotations

from .machine import Turn

HANGUP = "hangup"  # calls.pending: hang up once the last words have been said


def hang_up(turn: Turn) -> None:
    """Send the hangup, and forget that one was waiting."""
    turn.ctx.tx.update_call(turn.call.call_control_id, pending=None)
    turn.ctx.send("hangup", turn.call.call_control_id, "hangup")
