"""The call's life in one table: status × trigger → (action, the statuses it may lead to).

A trigger missing from a status is a logged no-op (`Machine.fire`), never a silent branch; an
action that moves a call anywhere its row does not list raises `InvalidTransition`. A call
enters the machine in `answering` when its leg is first seen (`caller.on_new_call`).
"""

from __future__ import annotations

from lifeline.ivr.store import CallStatus as S

from . import agent, caller, dialout, listening, voicemail
from .machine import Machine, Transition, Trigger

ACTIVE = (S.ANSWERING, S.MENU, S.ENDING, S.TRANSFERRING, S.TRANSFERRED, S.VOICEMAIL)
DIAL_OUT = (S.DIALING, S.ANALYSING)  # calls Lifeline placed: listened to, never escalated
_DECIDABLE = (S.ANSWERING, S.MENU, S.ENDING)  # a transfer can still be decided

TRANSITIONS: dict[tuple[S, Trigger], Transition] = {
    (S.ANSWERING, Trigger.ANSWERED): Transition(caller.greet, frozenset({S.MENU})),
    # Webhooks can arrive out of order: words heard before `call.answered` may already have
    # escalated the call.
    **{(s, Trigger.ANSWERED): Transition(caller.answered_late) for s in (S.TRANSFERRING, S.TRANSFERRED)},
    (S.MENU, Trigger.KEY): Transition(caller.route_key, frozenset({S.ENDING, S.VOICEMAIL})),
    (S.MENU, Trigger.TICK): Transition(caller.apply_time_rules),
    (S.ENDING, Trigger.SPOKEN): Transition(caller.hang_up_after_goodbye),
    (S.ENDING, Trigger.TICK): Transition(caller.hang_up_if_goodbye_overdue),
    (S.VOICEMAIL, Trigger.SPOKEN): Transition(voicemail.spoken),
    (S.VOICEMAIL, Trigger.TICK): Transition(voicemail.tick),
    (S.VOICEMAIL, Trigger.RECORDED): Transition(voicemail.thank),
    **{(s, Trigger.ESCALATE): Transition(caller.escalate, frozenset({S.TRANSFERRING}))
       for s in _DECIDABLE},
    (S.TRANSFERRING, Trigger.AGENT_FAILED): Transition(agent.next_agent_or_offer, frozenset({S.MENU})),
    # The move itself is AGENT_FAILED's (fired from the action), so this row moves nothing.
    (S.TRANSFERRING, Trigger.TICK): Transition(agent.move_on_after_a_lingering_cancel),
    **{(s, Trigger.BRIDGED): Transition(agent.connected, frozenset({S.TRANSFERRED})) for s in ACTIVE},
    # Only a call still recorded as with its agent can learn that it never was: once it has ended
    # (or moved on) there is nobody left to put through again.
    (S.TRANSFERRED, Trigger.UNBRIDGED): Transition(agent.not_bridged, frozenset({S.TRANSFERRING, S.MENU})),
    **{(s, Trigger.HEARD): Transition(listening.hear) for s in ACTIVE},
    **{(s, Trigger.LISTENING_LOST): Transition(listening.listening_lost) for s in ACTIVE},
    **{(s, Trigger.HANGUP): Transition(caller.hung_up, frozenset({S.ENDED})) for s in (*ACTIVE, *DIAL_OUT)},
    **{(s, Trigger.LOST): Transition(caller.lost, frozenset({S.ENDED})) for s in (*ACTIVE, *DIAL_OUT)},
    (S.DIALING, Trigger.ANSWERED): Transition(dialout.answered, frozenset({S.ANALYSING})),
    (S.ANALYSING, Trigger.HEARD): Transition(listening.hear),
    # Words still being transcribed when the call ended belong in its transcript (no rule acts
    # on an ended call: ESCALATE has no transition there).
    (S.ENDED, Trigger.HEARD): Transition(listening.hear),
    (S.ANALYSING, Trigger.LISTENING_LOST): Transition(listening.listening_lost),
    **{(s, Trigger.RECORDING): Transition(voicemail.keep_recording) for s in (*ACTIVE, S.ENDED)},
}

MACHINE = Machine(TRANSITIONS)
