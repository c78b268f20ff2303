"""The agent's leg: the leg a transfer created, from ringing to bridged or failed.

An agent's leg has no call record of its own: it is found through its transfer attempt (our
`client_state`, or the leg id once known), and what happens on it is a trigger on the
caller's call.
"""

from __future__ import annotations

import logging

from lifeline.insight import tracks
from lifeline.ivr.context import CallContext
from lifeline.ivr.events import BRIDGE_ASKED, NOT_BRIDGED
from lifeline.ivr.lock_order import lock_caller_of
from lifeline.ivr.menu import AFTER_AGENTS
from lifeline.ivr.store import CallStatus, TransferRecord, TransferStatus

from .caller import OPEN_TRANSFER, open_menu
from .machine import Machine, Trigger, Turn
from .services import Services

log = logging.getLogger(__name__)
CANCELLED_GRACE_S = 30.0  # after an originator_cancel, how long the caller's own hangup may take


def find_transfer(ctx: CallContext) -> TransferRecord | None:
    """The transfer attempt behind an agent leg, found by our client_state or by the leg id."""
    event = ctx.event
    state = event.client_state or {}
    if state.get("role") == "agent" and isinstance(state.get("caller"), str):
        for transfer in ctx.tx.transfers(state["caller"]):
            if transfer.attempt == state.get("attempt"):
                return transfer
    return ctx.tx.transfer_for_agent_leg(event.call_control_id) if event.call_control_id else None


def is_connected(ctx: CallContext) -> bool:
    """Whether the attempt behind this agent-leg event is, as this unit of work leaves it, the one
    its caller is connected through."""
    transfer = find_transfer(ctx)
    if transfer is None or transfer.status != TransferStatus.CONNECTED:
        return False
    caller = ctx.tx.get_call(transfer.call_control_id)
    return caller is not None and caller.status == CallStatus.TRANSFERRED


def on_initiated(ctx: CallContext, svc: Services, machine: Machine, transfer: TransferRecord) -> None:
    """Note (never answer) the agent leg a transfer created: the agent's phone is ringing."""
    current = lock_caller_of(ctx.tx, transfer)[1]  # the caller's row first: lifeline.ivr.lock_order
    leg = ctx.event.call_control_id
    closed = (TransferStatus.FAILED, TransferStatus.CANCELLED)
    if current is not None and current.status in closed and current.agent_call_control_id is None and leg:
        # The attempt was closed before its leg showed up (the caller hung up, or the attempt was
        # given up): nobody waits for this agent, so their phone must not keep ringing.
        ctx.tx.update_transfer(current.call_control_id, current.attempt, agent_call_control_id=leg)
        ctx.send("hangup", leg, "hangup")
        return
    if current is not None and current.agent_call_control_id is None:
        ringing = current.status == TransferStatus.REQUESTED
        ctx.tx.update_transfer(current.call_control_id, current.attempt,
                               agent_call_control_id=ctx.event.call_control_id,
                               status=TransferStatus.RINGING if ringing else current.status)
        if ringing:
            ctx.publish("transfer", current.call_control_id, attempt=current.attempt,
                        to=current.to_number, status=TransferStatus.RINGING)


def on_bridged(ctx: CallContext, svc: Services, machine: Machine, transfer: TransferRecord) -> None:
    """The agent's leg is bridged to the caller; or, asked (BRIDGE_ASKED: Twilio's whisper has
    ended), it may be, if the attempt is still open: one that failed or was cancelled meanwhile has
    a caller who moved on (the next agent, the apology), and its agent is let go instead."""
    caller, current = lock_caller_of(ctx.tx, transfer)  # the caller's row first: lifeline.ivr.lock_order
    if caller is None:
        return
    if ctx.event.state == BRIDGE_ASKED and (current is None or current.status not in OPEN_TRANSFER):
        log.info("attempt %d of %s is %s: its agent, who heard the whisper, is not connected",
                 transfer.attempt, transfer.call_control_id, current.status if current else "gone")
        return
    machine.fire(ctx, svc, caller, Trigger.BRIDGED, transfer=transfer)


def on_hangup(ctx: CallContext, svc: Services, machine: Machine, transfer: TransferRecord) -> None:
    """The agent's leg ended before it was bridged: move on to the next agent. Reported never
    bridged (NOT_BRIDGED) after it was recorded connected, it is the caller's state machine that
    decides whether anything is undone."""
    if ctx.event.state == NOT_BRIDGED and transfer.status == TransferStatus.CONNECTED:
        caller = lock_caller_of(ctx.tx, transfer)[0]  # the caller's row first: lifeline.ivr.lock_order
        if caller is not None:
            machine.fire(ctx, svc, caller, Trigger.UNBRIDGED, transfer=transfer)
        return
    if transfer.status not in OPEN_TRANSFER:
        return
    if ctx.event.hangup_cause == "originator_cancel":
        # The caller's side went away first (its own hangup may not be processed yet).
        lock_caller_of(ctx.tx, transfer)
        ctx.tx.update_transfer(transfer.call_control_id, transfer.attempt,
                               status=TransferStatus.CANCELLED, hangup_cause="originator_cancel")
        ctx.publish("transfer", transfer.call_control_id, attempt=transfer.attempt,
                    to=transfer.to_number, status=TransferStatus.CANCELLED, cause="originator_cancel")
        return
    failed(ctx, svc, machine, transfer, ctx.event.hangup_cause or "unspecified",
           agent_call_control_id=ctx.event.call_control_id)


def failed(ctx: CallContext, svc: Services, machine: Machine, transfer: TransferRecord, cause: str,
           agent_call_control_id: str | None = None) -> None:
    """Record that an agent did not take the call, then let the caller's call move on."""
    # The caller's row first, then the transfer (lifeline.ivr.lock_order): the caller's own hangup takes
    # them in that order, and the opposite order deadlocks with it on PostgreSQL.
    caller, current = lock_caller_of(ctx.tx, transfer)
    if current is None or current.status not in OPEN_TRANSFER:
        return  # the caller's hangup (or another delivery) closed this attempt while we waited
    ctx.tx.update_transfer(transfer.call_control_id, transfer.attempt, status=TransferStatus.FAILED,
                           hangup_cause=cause,
                           agent_call_control_id=agent_call_control_id or transfer.agent_call_control_id)
    ctx.publish("transfer", transfer.call_control_id, attempt=transfer.attempt, to=transfer.to_number,
                status=TransferStatus.FAILED, cause=cause)
    if caller is not None:
        machine.fire(ctx, svc, caller, Trigger.AGENT_FAILED, transfer=transfer, cause=cause)


def connected(turn: Turn, transfer: TransferRecord | None = None) -> None:
    """The caller and an agent are connected (the event may come on either leg)."""
    ctx, call = turn.ctx, turn.call
    if transfer is None:
        open_ones = [t for t in ctx.tx.transfers(call.call_control_id) if t.status in OPEN_TRANSFER]
        if not open_ones:
            return
        transfer = open_ones[-1]
    # Read again under the call's lock: the bridge is reported on both legs, published once.
    already = any(t.attempt == transfer.attempt and t.status == TransferStatus.CONNECTED
                  for t in ctx.tx.transfers(call.call_control_id))
    ctx.tx.update_transfer(call.call_control_id, transfer.attempt, status=TransferStatus.CONNECTED)
    turn.move(CallStatus.TRANSFERRED, outcome="transferred")
    if not already:
        ctx.publish("transfer", call.call_control_id, attempt=transfer.attempt, to=transfer.to_number,
                    status=TransferStatus.CONNECTED)
        if call.listening not in ("paused", "lost"):  # a resume starts both tracks itself
            # Named by attempt: after a connection that was undone, the next one restarts them too.
            for name, params in tracks.both_parties(turn.svc.engine, call.call_control_id):
                ctx.send(name, call.call_control_id, f"listening:both:{name}:{transfer.attempt}", **params)


def not_bridged(turn: Turn, transfer: TransferRecord) -> None:
    """The provider says the legs of the attempt recorded as connected were never joined (Twilio:
    our answer to the whisper's end was lost or came after Twilio stopped waiting). The caller
    still waits for a person: the attempt fails and the call moves on, as from an agent who did
    not take it, to the next agent or the apology."""
    ctx, call = turn.ctx, turn.call
    transfers = ctx.tx.transfers(call.call_control_id)
    last = transfers[-1] if transfers else None
    if last is None or last.attempt != transfer.attempt or last.status != TransferStatus.CONNECTED:
        return  # a report on an attempt the call is no longer at: nothing of it is left to undo
    log.warning("attempt %d of %s was recorded connected, but its legs were never bridged; moving on",
                last.attempt, call.call_control_id)
    ctx.tx.update_transfer(call.call_control_id, last.attempt, status=TransferStatus.FAILED,
                           hangup_cause=NOT_BRIDGED)
    ctx.publish("transfer", call.call_control_id, attempt=last.attempt, to=last.to_number,
                status=TransferStatus.FAILED, cause=NOT_BRIDGED)
    turn.move(CallStatus.TRANSFERRING, outcome=None)
    if call.listening not in ("paused", "lost"):
        for name, params in tracks.caller_only(turn.svc.engine, call.call_control_id):
            ctx.send(name, call.call_control_id, f"listening:caller:{name}:{last.attempt}", **params)
    next_agent_or_offer(turn, last, NOT_BRIDGED)


def move_on_after_a_lingering_cancel(turn: Turn, now: float) -> None:
    """The monitor's tick on a transferring call: an agent leg cancelled from the caller's side
    (originator_cancel) closes its attempt and waits for the caller's own hangup; when that has not
    followed within CANCELLED_GRACE_S, the caller is still there with no agent on the way, so
    move on as for any agent who did not take the call."""
    transfers = turn.ctx.tx.transfers(turn.call.call_control_id)
    last = transfers[-1] if transfers else None
    if last is None or last.status != TransferStatus.CANCELLED or now - last.updated_at <= CANCELLED_GRACE_S:
        return
    log.warning("call %s is still up %.0f s after its transfer attempt %d was cancelled; moving on",
                turn.call.call_control_id, now - last.updated_at, last.attempt)
    turn.fire(Trigger.AGENT_FAILED, transfer=last, cause=last.hangup_cause or "cancelled")


def next_agent_or_offer(turn: Turn, transfer: TransferRecord, cause: str) -> None:
    """Try the next agent, or apologise and offer the menu or a message: never silence."""
    ctx, caller = turn.ctx, turn.call
    log.info("agent %s did not take %s (%s)", transfer.to_number, caller.call_control_id, cause)
    if turn.svc.transfers.next_agent(ctx, caller, transfer):
        return
    turn.move(CallStatus.MENU, menu=AFTER_AGENTS, retries=0)
    open_menu(ctx, caller, AFTER_AGENTS, ctx.menu.no_agent)
