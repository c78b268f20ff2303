"""Which leg an event is on, and which handler of that leg takes it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lifeline.ivr.context import CallContext
from lifeline.ivr.store import CallRecord, TransferRecord

from . import agent, caller, dialout, listening
from .machine import Machine, Trigger
from .services import Services

log = logging.getLogger(__name__)
CallerHandler = Callable[[CallContext, Services, Machine, CallRecord], None]
AgentHandler = Callable[[CallContext, Services, Machine, TransferRecord], None]


def _trigger(trigger: Trigger) -> CallerHandler:
    def handle(ctx: CallContext, svc: Services, machine: Machine, call: CallRecord) -> None:
        machine.fire(ctx, svc, call, trigger)
    return handle


CALLER_LEG: dict[str, CallerHandler] = {
    "call.answered": _trigger(Trigger.ANSWERED),
    "call.gather.ended": _trigger(Trigger.KEY),
    "call.dtmf.received": caller.on_dtmf,
    "call.speak.ended": _trigger(Trigger.SPOKEN),
    "call.transcription": listening.on_transcription,
    "streaming.failed": listening.on_streaming_failed,
    "call.bridged": _trigger(Trigger.BRIDGED),
    "call.hangup": _trigger(Trigger.HANGUP),
    "call.recording.saved": _trigger(Trigger.RECORDING),
}
AGENT_LEG: dict[str, AgentHandler] = {
    "call.initiated": agent.on_initiated,
    "call.bridged": agent.on_bridged,
    "call.hangup": agent.on_hangup,
}
EVENT_TYPES = frozenset(CALLER_LEG) | frozenset(AGENT_LEG)


def dispatch(ctx: CallContext, svc: Services, machine: Machine) -> None:
    """Hand an event to its leg's handler: the caller's call if we know it, else an agent's leg."""
    event = ctx.event
    call = ctx.tx.get_call(event.call_control_id) if event.call_control_id else _by_client_state(ctx)
    if call is not None:
        handler = CALLER_LEG.get(event.type)
        if handler is not None:
            handler(ctx, svc, machine, call)
        return
    if event.type == "call.initiated" and event.is_inbound_new_call:
        caller.on_new_call(ctx, svc)
        return
    dialled = (event.client_state or {}).get("role") == "dialout"
    if dialled and event.type in ("call.initiated", "call.answered"):
        # A dial-out not recorded yet (its dial's answer timed out): its first event records it,
        # the answer too should its `call.initiated` be lost.
        dialout.adopt(ctx)
        answered = event.type == "call.answered"
        adopted = ctx.tx.get_call(event.call_control_id) if answered and event.call_control_id else None
        if adopted is not None:
            CALLER_LEG[event.type](ctx, svc, machine, adopted)
        return
    agent_handler = AGENT_LEG.get(event.type)
    transfer = agent.find_transfer(ctx) if agent_handler is not None else None
    if agent_handler is not None and transfer is not None:
        agent_handler(ctx, svc, machine, transfer)
    elif event.type == "call.hangup" and not caller.on_hangup_before_initiated(ctx) and event.call_control_id:
        # Its `call.initiated`, handled at the same moment by another worker, recorded the call
        # first (the insert waited for it): the hangup is that call's, not to be dropped.
        raced = ctx.tx.get_call(event.call_control_id)
        if raced is not None:
            CALLER_LEG[event.type](ctx, svc, machine, raced)


def _by_client_state(ctx: CallContext) -> CallRecord | None:
    """The caller's call named by our client_state, for events without a call_control_id.

    `call.recording.saved` carries call_leg_id, call_session_id and client_state but no
    call_control_id (SDK `types/call_recording_saved.py`); record_start set the client_state.
    """
    state = ctx.event.client_state or {}
    named = state.get("call") if state.get("role") == "caller" else None
    if not isinstance(named, str):
        return None
    call = ctx.tx.get_call(named)
    # The leg id must agree, so a client_state copied onto another leg cannot reach this call.
    if call is not None and ctx.event.call_leg_id and call.call_leg_id not in (None, ctx.event.call_leg_id):
        return None
    return call
