"""Listening: what the caller says becomes a scored message, judged at once by the rules."""

from __future__ import annotations

import json
import logging
import time

from lifeline.insight import tracks
from lifeline.insight.base import Reading
from lifeline.insight.tracks import party_of
from lifeline.insight.understand import Analysis
from lifeline.ivr.context import CallContext
from lifeline.ivr.masking import mask_digits
from lifeline.ivr.store import CallRecord, CallStatus

from .machine import Machine, Trigger, Turn
from .services import Services

log = logging.getLogger(__name__)


def on_transcription(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
    """A final Telnyx transcript is one message of the caller (inbound track) or the agent (outbound)."""
    result = ctx.event.transcription
    if result is not None and result.is_final:
        machine.fire(ctx, svc, call, Trigger.HEARD, engine="telnyx", source_id=ctx.event.id,
                     text=result.text, confidence=result.confidence, party=party_of(result.track))


def on_streaming_failed(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
    """Telnyx could not stream the call's audio to us."""
    machine.fire(ctx, svc, call, Trigger.LISTENING_LOST,
                 why=ctx.event.failure_reason or "streaming.failed")


# Seconds per word when an engine gives no timing: transcripts then estimate an utterance's start.
_SECONDS_PER_WORD = 0.35


def understand(svc: Services, text: str, score: float | None = None,
               readings: tuple[Reading, ...] = ()) -> Analysis:
    """What a line means, read with its digits masked; pure, so it can run outside a transaction."""
    masked = tuple(r._replace(text=mask_digits(r.text.strip())) for r in readings)
    return svc.scorer.analyse(mask_digits(text.strip()), score, masked)


def hear(turn: Turn, engine: str, source_id: str, text: str, confidence: float | None,
         score: float | None = None, party: str = "caller", start: float | None = None,
         end: float | None = None, analysis: Analysis | None = None) -> None:
    """Understand what a party said (intents, frustration), store it once, judge the caller's at once.

    Nothing is kept while listening is paused. The agent's words are scored and published but
    never reach the rules: only a caller can be escalated. `analysis` is the line already
    understood (`understand`), when the caller could do it before the unit of work began.
    """
    ctx, call, svc = turn.ctx, turn.call, turn.svc
    if call.status == CallStatus.ANALYSING:
        party = "far_end"  # on a call we placed, the far end is all we hear, and no rule applies
    if call.listening == "paused":
        log.info("call %s: %s words dropped while listening is paused", call.call_control_id, party)
        return
    text = mask_digits(text.strip())
    if not text:
        return
    if analysis is None:
        analysis = svc.scorer.analyse(text, score)  # `text` is masked already
    if party == "caller" and not ctx.tx.add_message(call.call_control_id, engine, source_id, text,
                                                    confidence, analysis.score, analysis.label,
                                                    analysis.as_record()):
        return
    timing = "engine" if end is not None else "estimated"
    if end is None:
        end = max(0.0, time.time() - call.created_at)
    if start is None:
        start = max(0.0, end - _SECONDS_PER_WORD * len(text.split()))
    # The feed names the intents the line more likely than not carries, and for a caller's line
    # what the rules read from it (intent confidences, frustration probabilities) as stored.
    intents = [name for name, p in analysis.intents.items() if p >= 0.5]
    ctx.publish("message", call.call_control_id, party=party, text=text, start=round(start, 3),
                end=round(end, 3), timing=timing, score=analysis.score, label=analysis.label,
                intents=intents, analysis=analysis.as_record() if party == "caller" else None,
                engine=engine, source_id=source_id, confidence=confidence)
    if party != "caller":
        return
    decision = svc.rules.on_message(ctx.tx.recent_messages(call.call_control_id, svc.rules.history))
    if decision is not None:
        turn.fire(Trigger.ESCALATE, decision=decision)


# What a stream's end says when nobody knows more (the provider's webhook, a socket that just closed).
VAGUE_REASONS = ("connection_lost", "media socket closed without stop")


def listening_lost(turn: Turn, why: str) -> None:
    """Restart the stream once; after that the call goes on without listening, and says so."""
    ctx, call = turn.ctx, turn.call
    if call.listening == "lost":
        # The provider's "connection_lost" for a socket we closed can overtake our own report of
        # why we closed it: keep the reason that tells the operator what to fix.
        if call.listening_reason in VAGUE_REASONS and why not in VAGUE_REASONS:
            ctx.tx.update_call(call.call_control_id, listening_reason=why[:200])
        return
    restart = turn.svc.engine.restart_options(call.call_control_id)
    if restart is not None and ctx.tx.claim(call.call_control_id, "listening:restart"):
        log.warning("listening on %s lost (%s); restarting the stream once", call.call_control_id, why)
        ctx.tx.update_call(call.call_control_id, listening="restarted", listening_reason=why[:200])
        ctx.send("streaming_start", call.call_control_id, "listening:restart", **restart)
        ctx.publish("listening", call.call_control_id, state="restarted", why=why)
        return
    log.warning("listening on %s lost (%s); the call continues without it", call.call_control_id, why)
    ctx.tx.update_call(call.call_control_id, listening="lost", listening_reason=why[:200])
    ctx.publish("listening", call.call_control_id, state="lost", why=why)


def set_paused(ctx: CallContext, svc: Services, call: CallRecord, paused: bool, by: str) -> bool:
    """Pause or resume hearing a call inside the caller's unit of work; False when nothing changes.

    Audited among the call's events (who asked, when), published on the feed, and the provider is
    told to stop or restart the audio, so nothing is even transcribed while paused.
    """
    if (call.listening == "paused") == paused:
        return False
    state = "paused" if paused else "resumed"
    ccid = call.call_control_id
    audit_id = f"{ctx.event.id}:listening.{state}"
    ctx.tx.record_event(audit_id, f"lifeline.listening.{state}", ccid, None, 1,
                        json.dumps({"paused": paused, "by": by, "at": time.time()}))
    ctx.tx.update_call(ccid, listening="paused" if paused else None)
    ctx.publish("listening", ccid, state=state, by=by)
    both = call.status == CallStatus.TRANSFERRED  # the agent is on the line too
    commands = tracks.stop(svc.engine, ccid) if paused else tracks.start(svc.engine, ccid, both=both)
    for name, params in commands:
        ctx.send(name, ccid, f"listening:{ctx.event.id}:{name}", **params)
    return True
