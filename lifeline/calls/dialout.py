"""A call Lifeline places itself to listen to the far end (a conference bridge, a line to analyse).

No menu and no escalation: once the far end answers, Lifeline sends the DTMF (e.g. a bridge's
PIN) once, listens, and when the call ends the transcript and summary follow as for any call.
"""

from __future__ import annotations

import time

from lifeline.insight import tracks
from lifeline.ivr.context import CallContext
from lifeline.ivr.store import CallRecord, CallStatus

from .machine import Turn


def placed(ctx: CallContext, call_control_id: str, session_id: str | None, to: str, from_: str,
           summary_to: str | None, dtmf: str | None, leg_id: str | None = None) -> bool:
    """Record a call just dialled (once, whichever of the dial's answer and its first event
    comes first); it enters the state machine in `dialing`."""
    now = time.time()
    created = ctx.tx.insert_call(CallRecord(
        call_control_id=call_control_id, call_session_id=session_id, call_leg_id=leg_id, from_number=from_,
        to_number=to, status=CallStatus.DIALING, created_at=now, updated_at=now))
    if created:
        ctx.publish("call.started", call_control_id, direction="outbound", **{"from": from_}, to=to,
                    dtmf=bool(dtmf), summary_to=summary_to)
    return created


def adopt(ctx: CallContext) -> None:
    """A dial-out leg's first event before its dial was recorded (Telnyx's answer to the dial timed
    out, or is still on its way): record it from what its client_state carries, so it is heard."""
    event, state = ctx.event, ctx.event.client_state or {}
    summary_to = state.get("summary_to")
    dtmf = state.get("dtmf")
    if event.call_control_id:
        placed(ctx, event.call_control_id, event.call_session_id, event.to or "", event.from_ or "",
               summary_to if isinstance(summary_to, str) else None, dtmf if isinstance(dtmf, str) else None,
               event.call_leg_id)


def answered(turn: Turn) -> None:
    """The far end answered: send the DTMF once, then listen to it unless the dial already does."""
    ctx, call = turn.ctx, turn.call
    turn.move(CallStatus.ANALYSING, answered_at=time.time())
    state = ctx.event.client_state or {}
    digits = state.get("dtmf")
    if isinstance(digits, str) and digits:
        ctx.send("send_dtmf", call.call_control_id, "dialout:dtmf", digits=digits)
    # A dial that carried the engine's listening parameters is heard from the answer on; a
    # `transcription_start` now would ask for a second transcription of the leg (the SDK's types
    # and Telnyx's docs do not say what that does; the emulator refuses it as in progress).
    if state.get("listening") is not True:
        for name, params in tracks.start(turn.svc.engine, call.call_control_id, both=False):
            ctx.send(name, call.call_control_id, f"dialout:listen:{name}", **params)
    engine, ccid = turn.svc.engine, call.call_control_id
    ctx.after_commit(lambda: engine.call_answered(ccid))
