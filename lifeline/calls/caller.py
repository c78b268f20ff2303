"""The caller's leg: answering, the menu, the operator key, escalation, goodbye and hangup.

Event handlers (`on_*`) turn a Telnyx event on the caller's leg into a trigger; actions run
when the transitions table allows that trigger in the call's status. Nothing here talks to
Telnyx: commands are queued on the context and sent after the unit of work commits.
"""

from __future__ import annotations

import logging
import time

from lifeline.ivr.context import CallContext
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.menu import GOODBYE, OPERATOR_DIGIT, Option
from lifeline.ivr.store import CallRecord, CallStatus, TransferStatus
from lifeline.transfer.rules import Decision

from . import listening, voicemail
from .hangup import HANGUP, hang_up, hang_up_again_if_refused
from .machine import Machine, Trigger, Turn
from .services import Services

log = logging.getLogger(__name__)
OPEN_TRANSFER = (TransferStatus.REQUESTED, TransferStatus.RINGING)
# How a call ends, by the status it hangs up in (one source: the monitor's lost calls use it too).
# A caller who hangs up while Lifeline is still answering was never answered: `missed`, as one
# whose hangup overtook the first webhook.
OUTCOME_AT_HANGUP = {CallStatus.TRANSFERRED: "transferred", CallStatus.VOICEMAIL: "voicemail",
                     CallStatus.TRANSFERRING: "abandoned", CallStatus.DIALING: "unanswered",
                     CallStatus.ANALYSING: "completed", CallStatus.ANSWERING: "missed"}


def on_new_call(ctx: CallContext, svc: Services) -> None:
    """A caller's fresh leg: create its record and answer it (this enters the state machine)."""
    event = ctx.event
    if not event.is_inbound_new_call or not event.call_control_id:
        return
    now = time.time()
    created = ctx.tx.insert_call(CallRecord(
        call_control_id=event.call_control_id, call_session_id=event.call_session_id,
        call_leg_id=event.call_leg_id, from_number=event.from_, to_number=event.to,
        status=CallStatus.ANSWERING, created_at=now, updated_at=now))
    if created:
        ctx.publish("call.started", event.call_control_id, direction="inbound", **{"from": event.from_},
                    to=event.to)
        ctx.send("answer", event.call_control_id, "answer",
                 client_state=encode_client_state({"role": "caller"}),
                 **svc.engine.answer_options(event.call_control_id))


def on_dtmf(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
    """The one route of a key pressed at any moment: a `dtmf` rule, else the operator key."""
    digit = ctx.event.digit or ""
    decision = svc.rules.on_digit(digit)
    if decision is None and digit == OPERATOR_DIGIT:
        option = ctx.menu.operator(call.menu)
        decision = Decision("menu", option.text or "caller pressed 0 for the operator")
    if decision is not None:
        machine.fire(ctx, svc, call, Trigger.ESCALATE, decision=decision)


def greet(turn: Turn) -> None:
    """Greet the caller and open the first menu; the engine hears of it after commit."""
    menu, call = turn.ctx.menu, turn.call
    turn.move(CallStatus.MENU, menu=menu.start, retries=0, answered_at=time.time())
    turn.ctx.send("gather_using_speak", call.call_control_id, f"menu:{turn.ctx.event.id}",
                  **menu.gather(menu.start, lead_in=menu.greeting))
    engine, ccid = turn.svc.engine, call.call_control_id
    turn.ctx.after_commit(lambda: engine.call_answered(ccid))


def answered_late(turn: Turn) -> None:
    """`call.answered` overtaken by words that already escalated: no greeting (the caller is being
    put through), but note the answer and let the engine hear of it, as `greet` would."""
    call = turn.call
    if call.answered_at is not None:
        return
    turn.ctx.tx.update_call(call.call_control_id, answered_at=time.time())
    engine, ccid = turn.svc.engine, call.call_control_id
    turn.ctx.after_commit(lambda: engine.call_answered(ccid))


def route_key(turn: Turn) -> None:
    """Route the caller's key press, or re-prompt after silence or a wrong key."""
    ctx, call = turn.ctx, turn.call
    if not ctx.menu.has(call.menu):
        log.warning("call %s is at unknown menu %r; key ignored", call.call_control_id, call.menu)
        return
    status, digits = ctx.event.status, ctx.event.digits or ""
    if status == "valid" and digits == OPERATOR_DIGIT:
        return  # the operator key acted when it was pressed (on_dtmf): one route for 0
    if status == "valid":
        option = ctx.menu.option(call.menu or "", digits)
        if option is not None:
            _follow(turn, option)
            return
        status = "invalid"
    if status in ("invalid", "timeout"):
        if call.retries >= ctx.menu.retries:
            goodbye(turn, lead_in=None)
            return
        ctx.tx.update_call(call.call_control_id, retries=call.retries + 1)
        open_menu(ctx, call, call.menu or ctx.menu.start,
                  ctx.menu.invalid if status == "invalid" else ctx.menu.no_input)


def _follow(turn: Turn, option: Option) -> None:
    ctx, call = turn.ctx, turn.call
    if option.kind == "menu" and option.target:
        ctx.tx.update_call(call.call_control_id, menu=option.target, retries=0)
        open_menu(ctx, call, option.target, None)
    elif option.kind in ("pause_listening", "resume_listening"):
        _pause_by_key(turn, option)
    elif option.kind == "say" and option.target == GOODBYE:
        goodbye(turn, lead_in=option.text)
    elif option.kind == "say":
        destination = option.target or call.menu or ctx.menu.start
        ctx.tx.update_call(call.call_control_id, menu=destination, retries=0)
        open_menu(ctx, call, destination, option.text)
    elif option.kind == "transfer":
        turn.fire(Trigger.ESCALATE,
                  decision=Decision("menu", option.text or "caller chose an agent in the menu"))
    elif option.kind == "voicemail":
        voicemail.start(turn)
    else:
        goodbye(turn, lead_in=None)


def _pause_by_key(turn: Turn, option: Option) -> None:
    """A menu key that stops (or restarts) hearing the caller, e.g. before they read a card number."""
    call = turn.call
    if call.listening == "lost":
        log.info("call %s: %s ignored, listening was lost", call.call_control_id, option.kind)
    else:
        listening.set_paused(turn.ctx, turn.svc, call, option.kind == "pause_listening", by="caller key")
    _follow(turn, Option("say", target=option.target, text=option.text))


def escalate(turn: Turn, decision: Decision) -> None:
    """Act on a decision; if this call's transfer was already spent, apologise instead of silence."""
    ctx, call = turn.ctx, turn.call
    if turn.svc.transfers.request(ctx, call, decision):
        turn.move(CallStatus.TRANSFERRING, pending=None)
        return
    if call.status == CallStatus.MENU and ctx.menu.has(call.menu):
        # This call's transfer was already decided and every agent has been tried.
        open_menu(ctx, call, call.menu or ctx.menu.start, ctx.menu.no_agent)


def apply_time_rules(turn: Turn, now: float) -> None:
    """The monitor's tick: time-based rules for a caller still in the menu with no transfer yet."""
    ctx, call, svc = turn.ctx, turn.call, turn.svc
    # Every active call is ticked each sweep: the checks that need no query come first.
    if not call.answered_at or not svc.rules.may_tick(now - call.answered_at):
        return
    if ctx.tx.transfers(call.call_control_id):
        return
    history = ctx.tx.recent_messages(call.call_control_id, svc.rules.history)
    decision = svc.rules.on_tick(history, now - call.answered_at)
    if decision is not None:
        turn.fire(Trigger.ESCALATE, decision=decision)


def hang_up_after_goodbye(turn: Turn) -> None:
    """Hang up once the goodbye has been said."""
    if turn.call.pending == HANGUP:
        hang_up(turn)


def hang_up_if_goodbye_overdue(turn: Turn, now: float) -> None:
    """The monitor's tick while ending: hang up when the goodbye's `call.speak.ended` is overdue.

    A speak Telnyx lost, or one still stuck in its retries, would otherwise keep the caller on
    a silent line; the wait is bounded by the menu's longest goodbye (`Menu.goodbye_wait_s`),
    counted from the goodbye (the call's last change while it ends).
    """
    call, wait_s = turn.call, turn.ctx.menu.goodbye_wait_s
    if call.pending == HANGUP and now - call.updated_at > wait_s:
        log.warning("call %s: the goodbye did not end within %.0f s; hanging up",
                    call.call_control_id, wait_s)
        hang_up_after_goodbye(turn)
    else:
        hang_up_again_if_refused(turn, now, wait_s)


def hung_up(turn: Turn) -> None:
    """The caller hung up: close the call, stop ringing agents, release the engine after commit."""
    _close(turn, _outcome(turn, "completed"), turn.ctx.event.hangup_cause, time.time())


def lost(turn: Turn, now: float, cause: str = "lost", hung_up: bool = False) -> None:
    """The provider no longer knows the call: close it. `hung_up` when a command was answered
    "call ended": the caller hung up and the hangup is late or lost, so the outcome is a hangup's;
    a call found dead without a word (the monitor, a restart) is `lost` unless its status says more."""
    _close(turn, _outcome(turn, "completed" if hung_up else "lost"), cause, now)


def _outcome(turn: Turn, otherwise: str) -> str:
    """How the call ended, by the status it ends in; a caller back in the menu (or its goodbye)
    after every agent was tried is `no_agent`: the escalation was decided and nobody took it,
    which a contact centre needs to find apart from callers who simply finished."""
    status = CallStatus(turn.call.status)
    if status in (CallStatus.MENU, CallStatus.ENDING) and turn.ctx.tx.transfers(turn.call.call_control_id):
        return "no_agent"
    return OUTCOME_AT_HANGUP.get(status, otherwise)


def _close(turn: Turn, outcome: str, cause: str | None, ended_at: float) -> None:
    ctx, call = turn.ctx, turn.call
    turn.move(CallStatus.ENDED, outcome=outcome, hangup_cause=cause, ended_at=ended_at, pending=None)
    for transfer in ctx.tx.transfers(call.call_control_id):
        if transfer.status not in OPEN_TRANSFER:
            continue
        ctx.tx.update_transfer(call.call_control_id, transfer.attempt, status=TransferStatus.CANCELLED)
        ctx.publish("transfer", call.call_control_id, attempt=transfer.attempt, to=transfer.to_number,
                    status=TransferStatus.CANCELLED, cause="caller hung up")
        if transfer.agent_call_control_id:
            # The caller is gone: do not leave an agent's phone ringing for nobody.
            ctx.send("hangup", transfer.agent_call_control_id, "hangup")
    publish_ended(ctx, call, outcome, cause, ended_at)
    engine, ccid = turn.svc.engine, call.call_control_id
    ctx.after_commit(lambda: engine.stop(ccid))


def on_hangup_before_initiated(ctx: CallContext) -> bool:
    """Webhooks can arrive out of order: keep a hangup for a leg we have not seen, so that its late
    `call.initiated` finds the call closed and does not answer (or keep open) a leg that is gone.
    False when nothing was recorded: not a caller's leg, or its call was recorded meanwhile."""
    event = ctx.event
    if not event.call_control_id or (event.client_state or {}).get("role") in ("agent", "dialout"):
        return False  # not a caller's leg: an agent's, or a dial-out whose dial is not recorded (yet)
    now = time.time()
    cause = event.hangup_cause or "hangup_before_initiated"
    call = CallRecord(
        call_control_id=event.call_control_id, call_session_id=event.call_session_id,
        call_leg_id=event.call_leg_id, from_number=event.from_, to_number=event.to,
        status=CallStatus.ENDED, created_at=now, updated_at=now, outcome="missed",
        hangup_cause=cause, ended_at=now)
    if not ctx.tx.insert_call(call):
        return False
    # A caller Lifeline never answered (hung up at once, or while the store was down and the call's
    # first webhooks were refused): on the feed, its webhooks and summary like any call.
    ctx.publish("call.started", call.call_control_id, direction="inbound", **{"from": call.from_number},
                to=call.to_number)
    publish_ended(ctx, call, "missed", cause, now)
    return True


def publish_ended(ctx: CallContext, call: CallRecord, outcome: str, cause: str | None, now: float) -> None:
    """The feed's `call.ended`: how the call ended and how long it lasted."""
    ctx.publish("call.ended", call.call_control_id, outcome=outcome, hangup_cause=cause,
                duration_s=round(now - call.created_at, 3))


def open_menu(ctx: CallContext, call: CallRecord, node: str, lead_in: str | None) -> None:
    """Play a menu's prompt (after an optional lead-in) and wait for a key."""
    ctx.send("gather_using_speak", call.call_control_id, f"menu:{ctx.event.id}",
             **ctx.menu.gather(node, lead_in=lead_in))


def goodbye(turn: Turn, lead_in: str | None) -> None:
    """Say goodbye; the hangup follows when it has been said."""
    ctx, call = turn.ctx, turn.call
    text = f"{lead_in} {ctx.menu.goodbye}" if lead_in else ctx.menu.goodbye
    turn.move(CallStatus.ENDING, pending=HANGUP)
    ctx.send("speak", call.call_control_id, f"goodbye:{ctx.event.id}", **ctx.menu.speak(text))
