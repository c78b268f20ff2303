"""Listening: what the caller says becomes a scored message, judged at once by the rules."""

from __future__ import annotations

import logging

from ivr.context import CallContext
from ivr.masking import mask_digits
from ivr.store import CallRecord

from .machine import Machine, Trigger, Turn
from .services import Services

log = logging.getLogger(__name__)


def on_transcription(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
    """A final Telnyx transcript is one caller message."""
    result = ctx.event.transcription
    if result is not None and result.is_final:
        machine.fire(ctx, svc, call, Trigger.HEARD, engine="telnyx", source_id=ctx.event.id,
                     text=result.text, confidence=result.confidence)


def on_streaming_failed(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
    """Telnyx could not stream the call's audio to us."""
    machine.fire(ctx, svc, call, Trigger.LISTENING_LOST,
                 why=ctx.event.failure_reason or "streaming.failed")


def hear(turn: Turn, engine: str, source_id: str, text: str, confidence: float | None,
         score: float | None = None) -> None:
    """Understand what the caller said (intents, frustration), store it once, judge it at once."""
    ctx, call, svc = turn.ctx, turn.call, turn.svc
    text = mask_digits(text.strip())
    if not text:
        return
    analysis = svc.scorer.analyse(text, score)
    if not ctx.tx.add_message(call.call_control_id, engine, source_id, text, confidence,
                              analysis.score, analysis.label, analysis.as_record()):
        return
    decision = svc.rules.on_message(ctx.tx.recent_messages(call.call_control_id, svc.rules.history))
    if decision is not None:
        turn.fire(Trigger.ESCALATE, decision=decision)


def listening_lost(turn: Turn, why: str) -> None:
    """Restart the stream once; after that the call goes on without listening, and says so."""
    ctx, call = turn.ctx, turn.call
    if call.listening == "lost":
        return
    restart = turn.svc.engine.restart_options(call.call_control_id)
    if restart is not None and ctx.tx.claim(call.call_control_id, "listening:restart"):
        log.warning("listening on %s lost (%s); restarting the stream once", call.call_control_id, why)
        ctx.tx.update_call(call.call_control_id, listening="restarted", listening_reason=why[:200])
        ctx.send("streaming_start", call.call_control_id, "listening:restart", **restart)
        return
    log.warning("listening on %s lost (%s); the call continues without it", call.call_control_id, why)
    ctx.tx.update_call(call.call_control_id, listening="lost", listening_reason=why[:200])
