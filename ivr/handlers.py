"""Call event handlers, dispatched by event type through HANDLERS.

Every handler runs inside the unit of work that recorded the event, reads and changes call
state through `ctx.tx`, and queues commands with `ctx.send`; nothing here talks to Telnyx.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from insight.base import ListeningEngine
from insight.sentiment import Sentiment, SentimentScorer, label
from transfer.executor import TransferExecutor
from transfer.rules import Decision, RuleSet

from .context import CallContext
from .events import CallEvent, encode_client_state
from .menu import AFTER_AGENTS, GOODBYE, VOICEMAIL_MAX_S
from .lock_order import lock_caller_of
from .masking import mask_digits, masked_payload as _masked_payload
from .store import CallRecord, CallStatus, TransferRecord, TransferStatus

log = logging.getLogger(__name__)
_OPEN_TRANSFER = (TransferStatus.REQUESTED, TransferStatus.RINGING)


@dataclass(frozen=True)
class Services:
    """Collaborators the handlers need beyond the event and the unit of work."""

    engine: ListeningEngine
    transfers: TransferExecutor
    scorer: SentimentScorer
    rules: RuleSet


Handler = Callable[[CallContext, Services], None]


def on_initiated(ctx: CallContext, svc: Services) -> None:
    """Answer a new inbound call; note (never answer) the agent leg a transfer created."""
    event = ctx.event
    if event.is_inbound_new_call and event.call_control_id:
        now = time.time()
        created = ctx.tx.insert_call(CallRecord(
            call_control_id=event.call_control_id, call_session_id=event.call_session_id,
            call_leg_id=event.call_leg_id, from_number=event.from_, to_number=event.to,
            status=CallStatus.ANSWERING, created_at=now, updated_at=now))
        if created:
            ctx.send("answer", event.call_control_id, "answer",
                     client_state=encode_client_state({"role": "caller"}),
                     **svc.engine.answer_options(event.call_control_id))
        return
    found = _agent_transfer(ctx)
    transfer = lock_caller_of(ctx.tx, found)[1] if found is not None else None  # see ivr.lock_order
    if transfer is not None and transfer.agent_call_control_id is None:
        ctx.tx.update_transfer(transfer.call_control_id, transfer.attempt,
                               agent_call_control_id=event.call_control_id,
                               status=TransferStatus.RINGING
                               if transfer.status == TransferStatus.REQUESTED else transfer.status)


def on_answered(ctx: CallContext, svc: Services) -> None:
    """Greet the caller and open the first menu."""
    call = _caller(ctx)
    if call is None or call.status != CallStatus.ANSWERING:
        return
    menu = ctx.menu
    ctx.tx.update_call(call.call_control_id, status=CallStatus.MENU, menu=menu.start, retries=0,
                       answered_at=time.time())
    ctx.send("gather_using_speak", call.call_control_id, f"menu:{ctx.event.id}",
             **menu.gather(menu.start, lead_in=menu.greeting))
    svc.engine.call_answered(call.call_control_id)


def on_gather_ended(ctx: CallContext, svc: Services) -> None:
    """Route the caller's key press, or re-prompt after silence or a wrong key."""
    call = _caller(ctx)
    if call is None or call.status != CallStatus.MENU or not ctx.menu.has(call.menu):
        return
    status = ctx.event.status
    if status == "valid":
        option = ctx.menu.option(call.menu, ctx.event.digits or "")
        if option is not None:
            _follow(ctx, svc, call, option.kind, option.target, option.text)
            return
        status = "invalid"
    if status in ("invalid", "timeout"):
        if call.retries >= ctx.menu.retries:
            _goodbye(ctx, call, lead_in=None)
            return
        ctx.tx.update_call(call.call_control_id, retries=call.retries + 1)
        lead_in = ctx.menu.invalid if status == "invalid" else ctx.menu.no_input
        _open_menu(ctx, call, call.menu, lead_in)


def on_dtmf(ctx: CallContext, svc: Services) -> None:
    """A key rule (`0` for the operator) acts at any moment, even while a prompt is playing."""
    decision = svc.rules.on_digit(ctx.event.digit or "")
    call = _caller(ctx) if decision else None
    if call is not None and decision is not None:
        escalate(ctx, svc, call, decision)


def on_speak_ended(ctx: CallContext, svc: Services) -> None:
    """Hang up once the goodbye has been said."""
    call = _caller(ctx)
    if call is not None and call.status == CallStatus.ENDING and call.pending == "hangup":
        ctx.tx.update_call(call.call_control_id, pending=None)
        ctx.send("hangup", call.call_control_id, "hangup")


def on_transcription(ctx: CallContext, svc: Services) -> None:
    """A final Telnyx transcript is one caller message."""
    result = ctx.event.transcription
    if result is None or not result.is_final:
        return
    call = _caller(ctx)
    if call is not None:
        hear(ctx, svc, call, "telnyx", ctx.event.id, result.text, result.confidence)


def hear(ctx: CallContext, svc: Services, call: CallRecord, engine: str, source_id: str, text: str,
         confidence: float | None, score: float | None = None) -> None:
    """Score what the caller said (unless the engine scored it), store it once, judge it at once."""
    text = mask_digits(text.strip())
    if not text or not call.is_active:
        return
    sentiment = svc.scorer.score(text) if score is None else Sentiment(score, label(score))
    if not ctx.tx.add_message(call.call_control_id, engine, source_id, text, confidence,
                              sentiment.score, sentiment.label):
        return
    decision = svc.rules.on_message(ctx.tx.recent_messages(call.call_control_id, svc.rules.history))
    if decision is not None:
        escalate(ctx, svc, call, decision)


def on_streaming_failed(ctx: CallContext, svc: Services) -> None:
    """Telnyx could not stream the call's audio to us."""
    call = _caller(ctx)
    if call is not None:
        listening_lost(ctx, svc, call, ctx.event.failure_reason or "streaming.failed")


def listening_lost(ctx: CallContext, svc: Services, call: CallRecord, why: str) -> None:
    """Restart the stream once; after that the call goes on without listening, and says so."""
    if not call.is_active or call.listening == "lost":
        return
    restart = svc.engine.restart_options(call.call_control_id)
    if restart is not None and ctx.tx.claim(call.call_control_id, "listening:restart"):
        log.warning("listening on %s lost (%s); restarting the stream once", call.call_control_id, why)
        ctx.tx.update_call(call.call_control_id, listening="restarted")
        ctx.send("streaming_start", call.call_control_id, "listening:restart", **restart)
        return
    log.warning("listening on %s lost (%s); the call continues without it", call.call_control_id, why)
    ctx.tx.update_call(call.call_control_id, listening="lost")


def on_bridged(ctx: CallContext, svc: Services) -> None:
    """The caller and an agent are connected."""
    call = _caller(ctx)
    transfer = _open_transfers(ctx, call)[-1:] if call else []
    if call is None:
        agent = _agent_transfer(ctx)
        if agent is None:
            return
        call = ctx.tx.get_call(agent.call_control_id)
        transfer = [agent]
    if call is None or not transfer:
        return
    ctx.tx.update_transfer(call.call_control_id, transfer[0].attempt, status=TransferStatus.CONNECTED)
    if call.is_active:
        ctx.tx.update_call(call.call_control_id, status=CallStatus.TRANSFERRED, outcome="transferred")


def on_hangup(ctx: CallContext, svc: Services) -> None:
    """Close the caller's call, or move on when an agent's leg ended before it was bridged."""
    call = _caller(ctx)
    if call is not None:
        close_call(ctx, svc, call, ctx.event.hangup_cause)
        return
    transfer = _agent_transfer(ctx)
    if transfer is None:
        if (ctx.event.client_state or {}).get("role") != "agent":
            _hung_up_before_initiated(ctx)
        return
    if transfer.status not in _OPEN_TRANSFER:
        return
    if ctx.event.hangup_cause == "originator_cancel":
        # The caller's side went away first (its own hangup may not be processed yet).
        lock_caller_of(ctx.tx, transfer)
        ctx.tx.update_transfer(transfer.call_control_id, transfer.attempt,
                               status=TransferStatus.CANCELLED, hangup_cause="originator_cancel")
        return
    agent_failed(ctx, svc, transfer, ctx.event.hangup_cause or "unspecified",
                 agent_call_control_id=ctx.event.call_control_id)


def agent_failed(ctx: CallContext, svc: Services, transfer: TransferRecord, cause: str,
                 agent_call_control_id: str | None = None) -> None:
    """An agent did not take the call: try the next one, or apologise and offer menu or voicemail."""
    # The caller's row first, then the transfer (ivr.lock_order): the caller's own hangup takes
    # them in that order, and the opposite order deadlocks with it on PostgreSQL.
    caller, current = lock_caller_of(ctx.tx, transfer)
    if current is None or current.status not in _OPEN_TRANSFER:
        return  # the caller's hangup (or another delivery) closed this attempt while we waited
    ctx.tx.update_transfer(transfer.call_control_id, transfer.attempt, status=TransferStatus.FAILED,
                           hangup_cause=cause,
                           agent_call_control_id=agent_call_control_id or transfer.agent_call_control_id)
    if caller is None or not caller.is_active:
        return
    log.info("agent %s did not take %s (%s)", transfer.to_number, caller.call_control_id, cause)
    if not svc.transfers.next_agent(ctx, caller, transfer):
        # Nobody picked up: never leave the caller in silence; apologise and offer the menu or a message.
        ctx.tx.update_call(caller.call_control_id, status=CallStatus.MENU, menu=AFTER_AGENTS, retries=0)
        _open_menu(ctx, caller, AFTER_AGENTS, ctx.menu.no_agent)


def on_recording_saved(ctx: CallContext, svc: Services) -> None:
    """Keep where the caller's message is; it often arrives after the hangup."""
    call = _caller(ctx)
    urls = ctx.event.payload.get("recording_urls")
    if call is None or not isinstance(urls, dict):
        return
    url = urls.get("mp3") or urls.get("wav")
    if isinstance(url, str):
        ctx.tx.update_call(call.call_control_id, recording_url=url[:1000])


HANDLERS: dict[str, Handler] = {
    "call.initiated": on_initiated,
    "call.answered": on_answered,
    "call.gather.ended": on_gather_ended,
    "call.dtmf.received": on_dtmf,
    "call.speak.ended": on_speak_ended,
    "call.transcription": on_transcription,
    "call.bridged": on_bridged,
    "call.hangup": on_hangup,
    "streaming.failed": on_streaming_failed,
    "call.recording.saved": on_recording_saved,
}


def _caller(ctx: CallContext) -> CallRecord | None:
    ccid = ctx.event.call_control_id
    return ctx.tx.get_call(ccid) if ccid else None


def _agent_transfer(ctx: CallContext) -> TransferRecord | None:
    """The transfer attempt behind an agent leg, found by our client_state or by the leg id."""
    event = ctx.event
    state = event.client_state or {}
    if state.get("role") == "agent" and isinstance(state.get("caller"), str):
        for transfer in ctx.tx.transfers(state["caller"]):
            if transfer.attempt == state.get("attempt"):
                return transfer
    return ctx.tx.transfer_for_agent_leg(event.call_control_id) if event.call_control_id else None


def _open_transfers(ctx: CallContext, call: CallRecord) -> list[TransferRecord]:
    return [t for t in ctx.tx.transfers(call.call_control_id) if t.status in _OPEN_TRANSFER]


def _follow(ctx: CallContext, svc: Services, call: CallRecord, kind: str, target: str | None,
            text: str | None) -> None:
    if kind == "menu" and target:
        ctx.tx.update_call(call.call_control_id, menu=target, retries=0)
        _open_menu(ctx, call, target, None)
    elif kind == "say" and target == GOODBYE:
        _goodbye(ctx, call, lead_in=text)
    elif kind == "say":
        destination = target or call.menu or ctx.menu.start
        ctx.tx.update_call(call.call_control_id, menu=destination, retries=0)
        _open_menu(ctx, call, destination, text)
    elif kind == "transfer":
        escalate(ctx, svc, call, Decision("menu", text or "caller chose an agent in the menu"))
    elif kind == "voicemail":
        ctx.tx.update_call(call.call_control_id, status=CallStatus.VOICEMAIL, menu=None)
        ctx.send("speak", call.call_control_id, f"voicemail:{ctx.event.id}",
                 **ctx.menu.speak(ctx.menu.leave_message))
        ctx.send("record_start", call.call_control_id, "voicemail", format="mp3", channels="single",
                 play_beep=True, max_length=VOICEMAIL_MAX_S)
    else:
        _goodbye(ctx, call, lead_in=None)


def escalate(ctx: CallContext, svc: Services, call: CallRecord, decision: Decision) -> None:
    """Act on a decision; if this call's transfer was already spent, apologise instead of silence."""
    if svc.transfers.request(ctx, call, decision):
        return
    if call.status == CallStatus.MENU and ctx.menu.has(call.menu):
        # This call's transfer was already decided and every agent has been tried.
        _open_menu(ctx, call, call.menu, ctx.menu.no_agent)


def _open_menu(ctx: CallContext, call: CallRecord, node: str, lead_in: str | None) -> None:
    ctx.send("gather_using_speak", call.call_control_id, f"menu:{ctx.event.id}",
             **ctx.menu.gather(node, lead_in=lead_in))


def _goodbye(ctx: CallContext, call: CallRecord, lead_in: str | None) -> None:
    text = f"{lead_in} {ctx.menu.goodbye}" if lead_in else ctx.menu.goodbye
    ctx.tx.update_call(call.call_control_id, status=CallStatus.ENDING, pending="hangup")
    ctx.send("speak", call.call_control_id, f"goodbye:{ctx.event.id}", **ctx.menu.speak(text))


def _hung_up_before_initiated(ctx: CallContext) -> None:
    """Webhooks can arrive out of order: keep the hangup, so a late `call.initiated` finds the
    call closed and does not answer (or keep open) a leg that is already gone."""
    event = ctx.event
    if not event.call_control_id:
        return
    now = time.time()
    ctx.tx.insert_call(CallRecord(
        call_control_id=event.call_control_id, call_session_id=event.call_session_id,
        call_leg_id=event.call_leg_id, from_number=event.from_, to_number=event.to,
        status=CallStatus.ENDED, created_at=now, updated_at=now, outcome="abandoned",
        hangup_cause=event.hangup_cause or "hangup_before_initiated", ended_at=now))


def close_call(ctx: CallContext, svc: Services, call: CallRecord, cause: str | None,
               outcome: str | None = None) -> None:
    """The caller's leg is gone (hangup, 90018, or found dead): close it and release its agents."""
    if not call.is_active:
        return
    outcome = outcome or {CallStatus.TRANSFERRED: "transferred", CallStatus.VOICEMAIL: "voicemail",
                          CallStatus.TRANSFERRING: "abandoned"}.get(call.status, "completed")
    ctx.tx.update_call(call.call_control_id, status=CallStatus.ENDED, outcome=outcome,
                       hangup_cause=cause, ended_at=time.time(), pending=None)
    for transfer in _open_transfers(ctx, call):
        ctx.tx.update_transfer(call.call_control_id, transfer.attempt, status=TransferStatus.CANCELLED)
        if transfer.agent_call_control_id:
            # The caller is gone: do not leave an agent's phone ringing for nobody.
            ctx.send("hangup", transfer.agent_call_control_id, "hangup")
    svc.engine.stop(call.call_control_id)


def masked_payload(event: CallEvent) -> dict[str, object]:
    """The event payload as we keep it for audit (see ivr.masking)."""
    return _masked_payload(event.type, event.payload)
