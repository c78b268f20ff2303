"""The call state machine and the handlers, run without I/O: in-memory store, no HTTP, no threads."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from lifeline.calls.machine import InvalidTransition, Machine, Transition, Trigger, Turn
from lifeline.calls.service import CallService
from lifeline.calls.services import Services
from lifeline.calls.transitions import ACTIVE, MACHINE, TRANSITIONS
from lifeline.calls.unit import UnitOfWork
from lifeline.insight.base import ListeningEngine, Reading
from lifeline.insight.understand import Understanding
from lifeline.ivr.errors import StoreError
from lifeline.ivr.events import BRIDGE_ASKED, NOT_BRIDGED, CallEvent
from lifeline.ivr.masking import mask_digits
from lifeline.ivr.menu import AFTER_AGENTS, load_menu
from lifeline.ivr.store import CallRecord, CallStatus, Command, CommandStatus, TransferStatus
from lifeline.ivr.store.memory import MemoryStore, MemoryStoreTx
from lifeline.transfer.executor import TransferExecutor
from lifeline.transfer.rules import load_rules

from .conftest import ROOT

CALLER = "v3:caller-1"
AGENTS = ("+15550001111", "+15550002222")


class FakeEngine(ListeningEngine):
    """Records what the state machine asked of it, and when."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        return {"transcription": True}

    def call_answered(self, call_control_id: str) -> None:
        self.calls.append(("answered", call_control_id))

    def stop(self, call_control_id: str) -> None:
        self.calls.append(("stop", call_control_id))


class Sent:
    """Stands in for the outbox sender: keeps what was submitted after commit."""

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def in_answer(self, commands: Sequence[Command]) -> frozenset[str]:
        return frozenset()

    def submit(self, commands: Sequence[Command]) -> None:
        self.commands.extend(commands)

    def names(self) -> list[str]:
        return [c.name for c in self.commands]


@functools.lru_cache(maxsize=1)
def understanding() -> Understanding:
    """One scorer for every flow: it is read-only, and loading the embeddings takes a moment."""
    return Understanding()


class Flow:
    """A call service wired to memory: feed events, read the store and the commands sent."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.sent = Sent()
        self.engine = FakeEngine()
        rules = load_rules(ROOT / "examples" / "rules.yaml")
        self.services = Services(engine=self.engine, scorer=understanding(), rules=rules,
                                 transfers=TransferExecutor(AGENTS, 30, rules.handoff))
        self.units = UnitOfWork(self.store, load_menu(ROOT / "examples" / "ivr.yaml"), self.sent)
        self.calls = CallService(self.store, self.units, self.services, MACHINE)

    def event(self, event_type: str, ccid: str = CALLER, **fields: Any) -> str:
        payload = fields.pop("payload", {})
        return self.calls.handle(CallEvent(id=str(uuid.uuid4()), type=event_type, occurred_at=None,
                                           call_control_id=ccid, payload=payload, **fields))

    def answered_call(self) -> None:
        self.event("call.initiated", direction="incoming", state="parked", from_="+15551230001",
                   to="+15550100000")
        self.event("call.answered")

    def status(self) -> str:
        call = self.store.get_call(CALLER)
        assert call is not None
        return call.status

    def agent_leg(self, attempt: int) -> dict[str, Any]:
        """The fields of an event on the agent leg of a transfer attempt (its client_state)."""
        return {"client_state": {"role": "agent", "caller": CALLER, "attempt": attempt}}


@pytest.fixture
def flow() -> Flow:
    return Flow()


def test_every_transition_leads_only_to_real_statuses_and_ended_is_final() -> None:
    for (status, trigger), transition in TRANSITIONS.items():
        assert isinstance(status, CallStatus) and isinstance(trigger, Trigger)
        assert transition.to <= set(CallStatus)
    from_ended = {trigger for (status, trigger) in TRANSITIONS if status == CallStatus.ENDED}
    # An ended call still keeps a late recording and words transcribed after the hangup (for
    # its transcript), but nothing moves it out of `ended`.
    assert from_ended == {Trigger.RECORDING, Trigger.HEARD}
    assert all(not TRANSITIONS[(CallStatus.ENDED, t)].to for t in from_ended)
    assert all((s, Trigger.HANGUP) in TRANSITIONS for s in ACTIVE)


def test_a_new_call_is_answered_then_greeted_and_the_engine_hears_of_it_after_commit(flow: Flow) -> None:
    flow.event("call.initiated", direction="incoming", state="parked")
    assert flow.status() == CallStatus.ANSWERING and flow.sent.names() == ["answer"]
    assert flow.engine.calls == []
    flow.event("call.answered")
    assert flow.status() == CallStatus.MENU
    assert flow.sent.names() == ["answer", "gather_using_speak"]
    assert flow.engine.calls == [("answered", CALLER)]


def test_key_0_transfers_once_by_its_one_route(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    assert flow.status() == CallStatus.TRANSFERRING
    assert flow.sent.names().count("transfer") == 1
    before = len(flow.sent.commands)
    flow.event("call.gather.ended", status="valid", digits="0")
    assert len(flow.sent.commands) == before  # the menu does not act on 0 a second time
    [decision] = flow.store.decisions(CALLER)
    assert decision["rule"] == "dtmf_0"


def test_an_impossible_transition_is_a_logged_no_op(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    sent = len(flow.sent.commands)
    with caplog.at_level(logging.INFO, logger="lifeline.calls.machine"):
        flow.event("call.gather.ended", status="valid", digits="1")
    assert flow.status() == CallStatus.TRANSFERRING and len(flow.sent.commands) == sent
    assert "key ignored in status transferring (no such transition)" in caplog.text


def test_an_action_moving_outside_its_row_raises_and_rolls_back(flow: Flow) -> None:
    def wrong(turn: Turn) -> None:
        turn.move(CallStatus.ENDED)

    flow.answered_call()
    bad = Machine({(CallStatus.MENU, Trigger.KEY): Transition(wrong, frozenset({CallStatus.ENDING}))})
    flow.calls = CallService(flow.store, flow.units, flow.services, bad)
    sent = len(flow.sent.commands)
    with pytest.raises(InvalidTransition, match="not ended"):
        flow.event("call.gather.ended", status="valid", digits="1")
    assert flow.status() == CallStatus.MENU and len(flow.sent.commands) == sent


def test_a_rolled_back_unit_sends_nothing_and_runs_no_effect(flow: Flow) -> None:
    flow.event("call.initiated", direction="incoming", state="parked")

    def crash(ctx: Any) -> None:
        ctx.send("speak", CALLER, "never", payload="x", voice="v")
        ctx.after_commit(lambda: flow.engine.calls.append(("effect", CALLER)))
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        flow.units.run(CallEvent(id="e", type="x", occurred_at=None, call_control_id=CALLER), crash)
    assert flow.sent.names() == ["answer"] and flow.engine.calls == []


def test_no_agent_answering_offers_the_after_agents_menu_then_voicemail(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    for attempt in (1, 2):
        flow.event("call.hangup", ccid=f"v3:agent-{attempt}", hangup_cause="timeout",
                   **flow.agent_leg(attempt))
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.menu) == (CallStatus.MENU, AFTER_AGENTS)
    assert [t.status for t in flow.store.transfers(CALLER)] == [TransferStatus.FAILED] * 2
    assert flow.sent.commands[-1].params["valid_digits"] == "12"
    flow.event("call.gather.ended", status="valid", digits="2")
    assert flow.status() == CallStatus.VOICEMAIL
    assert flow.sent.names()[-1] == "speak"  # the prompt first: recording waits for it to end
    flow.event("call.speak.ended", status="completed")
    assert flow.sent.names()[-2:] == ["speak", "record_start"]
    flow.event("call.speak.ended", status="completed")  # a later prompt end starts nothing more
    assert flow.sent.names().count("record_start") == 1


def tick(flow: Flow, now: float) -> None:
    """One monitor tick on the caller's call, at `now`."""
    from lifeline.calls.unit import internal_event

    def on_call(ctx: Any) -> None:
        call = ctx.tx.get_call(CALLER)
        if MACHINE.allows(call.status, Trigger.TICK):
            MACHINE.fire(ctx, flow.services, call, Trigger.TICK, now=now)
    flow.units.run(internal_event("test.tick", None), on_call)


def choose_voicemail(flow: Flow) -> None:
    """The caller asks for a person, no agent answers, and they choose to leave a message."""
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    for attempt in (1, 2):
        flow.event("call.hangup", ccid=f"v3:agent-{attempt}", hangup_cause="timeout",
                   **flow.agent_leg(attempt))
    flow.event("call.gather.ended", status="valid", digits="2")


def leave_a_message(flow: Flow) -> None:
    choose_voicemail(flow)
    flow.event("call.speak.ended", status="completed")
    assert flow.sent.names()[-1] == "record_start"


def test_a_message_saved_while_the_caller_stays_on_is_thanked_then_hung_up_as_voicemail(flow: Flow) -> None:
    import time

    from lifeline.calls.voicemail import STILL_ON_AFTER_SAVED_S
    leave_a_message(flow)
    saved = {"role": "caller", "call": CALLER}
    flow.event("call.recording.saved", ccid=None, client_state=saved,
               payload={"recording_urls": {"wav": "https://example.com/message.wav"}})
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.recording_url) == (CallStatus.VOICEMAIL,
                                                                      "https://example.com/message.wav")
    assert flow.sent.names()[-1] == "record_start"  # the caller's own hangup may be on its way
    tick(flow, time.time() + 1)
    assert flow.sent.names()[-1] == "record_start"
    tick(flow, time.time() + STILL_ON_AFTER_SAVED_S + 1)  # still on the line: the message hit its longest
    goodbye = load_menu(ROOT / "examples" / "ivr.yaml").goodbye
    assert flow.sent.names()[-1] == "speak" and flow.sent.commands[-1].params["payload"] == goodbye
    flow.event("call.speak.ended", status="completed")
    assert flow.sent.names()[-1] == "hangup"
    sent = flow.sent.names()
    for later in (2, 20, 200):  # the provider's hangup is slow: nothing is said or sent again meanwhile
        tick(flow, time.time() + STILL_ON_AFTER_SAVED_S + later)
    assert flow.sent.names() == sent
    flow.event("call.hangup", hangup_cause="normal_clearing")
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "voicemail")
    assert flow.sent.names().count("hangup") == 1


def test_a_caller_who_hangs_up_to_end_the_message_is_not_spoken_to(flow: Flow) -> None:
    import time

    from lifeline.calls.voicemail import STILL_ON_AFTER_SAVED_S
    leave_a_message(flow)
    sent = flow.sent.names()
    flow.event("call.recording.saved", ccid=None, client_state={"role": "caller", "call": CALLER},
               payload={"recording_urls": {"wav": "https://example.com/message.wav"}})
    flow.event("call.hangup", hangup_cause="normal_clearing")  # just after its saved event
    tick(flow, time.time() + STILL_ON_AFTER_SAVED_S + 1)
    assert flow.sent.names() == sent
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.outcome, call.hangup_cause) == ("voicemail", "normal_clearing")


def test_a_voicemail_whose_events_never_come_still_ends_from_the_monitor(flow: Flow) -> None:
    import time

    from lifeline.calls.voicemail import SAVED_GRACE_S
    from lifeline.ivr.menu import VOICEMAIL_MAX_S
    menu = load_menu(ROOT / "examples" / "ivr.yaml")
    prompt_s = menu.say_wait_s(menu.leave_message)
    choose_voicemail(flow)
    now = time.time()
    tick(flow, now + 1)
    assert "record_start" not in flow.sent.names()  # the prompt is still being said
    tick(flow, now + prompt_s + 1)  # its call.speak.ended was lost: record anyway
    assert flow.sent.names()[-1] == "record_start"
    tick(flow, now + prompt_s + 2)
    assert flow.sent.names()[-1] == "record_start"  # recording: nothing to do yet
    tick(flow, now + prompt_s + VOICEMAIL_MAX_S + SAVED_GRACE_S + 2)  # no saved event ever
    assert flow.sent.names()[-1] == "hangup"
    tick(flow, now + prompt_s + VOICEMAIL_MAX_S + SAVED_GRACE_S + 60)
    assert flow.sent.names().count("hangup") == 1  # once sent, the provider's call.hangup ends it


def test_caller_hanging_up_while_an_agent_rings_cancels_and_stops_after_commit(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    flow.event("call.initiated", ccid="v3:agent-1", direction="outgoing", state="bridging",
               **flow.agent_leg(1))
    flow.event("call.hangup", hangup_cause="normal_clearing")
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "abandoned")
    [transfer] = flow.store.transfers(CALLER)
    assert transfer.status == TransferStatus.CANCELLED
    assert flow.sent.commands[-1].name == "hangup" and flow.sent.commands[-1].call_control_id == "v3:agent-1"
    assert flow.engine.calls[-1] == ("stop", CALLER)


def test_bridging_marks_the_call_transferred(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    flow.event("call.bridged", ccid="v3:agent-1", **flow.agent_leg(1))
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.TRANSFERRED, "transferred")
    assert flow.store.transfers(CALLER)[0].status == TransferStatus.CONNECTED


def connect_then_report_never_bridged(flow: Flow, attempt: int = 1) -> None:
    """Agent `attempt` is recorded connected as its whisper ends, then its leg's end says the legs
    were never joined."""
    flow.event("call.bridged", ccid=f"v3:agent-{attempt}", state=BRIDGE_ASKED, **flow.agent_leg(attempt))
    assert flow.status() == CallStatus.TRANSFERRED
    flow.event("call.hangup", ccid=f"v3:agent-{attempt}", hangup_cause="dial_completed", state=NOT_BRIDGED,
               **flow.agent_leg(attempt))


def test_a_connection_reported_never_bridged_fails_its_attempt_and_dials_the_next_agent_once(
        flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    connect_then_report_never_bridged(flow)
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.TRANSFERRING, None)
    assert [(t.status, t.hangup_cause) for t in flow.store.transfers(CALLER)] == [
        (TransferStatus.FAILED, NOT_BRIDGED), (TransferStatus.REQUESTED, None)]
    assert [c.params["to"] for c in flow.sent.commands if c.name == "transfer"] == list(AGENTS)
    # The same report again, by another delivery: the call is no longer with that agent.
    flow.event("call.hangup", ccid="v3:agent-1", hangup_cause="dial_completed", state=NOT_BRIDGED,
               **flow.agent_leg(1))
    assert [c.params["to"] for c in flow.sent.commands if c.name == "transfer"] == list(AGENTS)
    assert len(flow.store.transfers(CALLER)) == 2


def test_the_last_agent_reported_never_bridged_leads_to_the_apology_menu_not_a_hangup(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    flow.event("call.hangup", ccid="v3:agent-1", hangup_cause="timeout", **flow.agent_leg(1))
    connect_then_report_never_bridged(flow, attempt=2)
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.menu) == (CallStatus.MENU, AFTER_AGENTS)
    assert flow.sent.names()[-1] == "gather_using_speak" and "hangup" not in flow.sent.names()
    feed = [e.data for e in flow.store.feed_events(CALLER) if e.kind == "transfer"]
    assert {"attempt": 2, "status": "failed", "cause": NOT_BRIDGED}.items() <= feed[-1].items()


def test_a_never_bridged_report_for_a_connection_that_stands_changes_nothing(flow: Flow) -> None:
    flow.answered_call()
    flow.event("call.dtmf.received", digit="0")
    flow.event("call.bridged", ccid="v3:agent-1", **flow.agent_leg(1))
    flow.event("call.hangup", hangup_cause="normal_clearing")  # the conversation is over
    flow.event("call.hangup", ccid="v3:agent-1", hangup_cause="dial_completed", state=NOT_BRIDGED,
               **flow.agent_leg(1))
    call = flow.store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "transferred")
    assert [t.status for t in flow.store.transfers(CALLER)] == [TransferStatus.CONNECTED]


def test_a_heard_request_for_a_person_escalates_and_silence_reprompts_then_says_goodbye(flow: Flow) -> None:
    flow.answered_call()
    flow.calls.hear(CALLER, "fake", "m1", "I want to speak to a real person", 0.9)
    assert flow.status() == CallStatus.TRANSFERRING
    other = Flow()
    other.answered_call()
    for _ in range(2):
        other.event("call.gather.ended", status="timeout")
    assert other.status() == CallStatus.MENU
    other.event("call.gather.ended", status="timeout")
    assert other.status() == CallStatus.ENDING
    other.event("call.speak.ended")
    assert other.sent.names()[-1] == "hangup"


def test_a_heard_lines_stored_mood_is_weighed_over_the_recognisers_masked_readings(flow: Flow) -> None:
    flow.answered_call()
    words = "my card 4929 1234 5678 9012 was charged twice, this is a disgrace"
    other = "my card 4929 1234 5678 9012 was charged twice, thank you so much"
    flow.calls.hear(CALLER, "fake", "m1", words, 0.6, readings=(Reading(words, 0.6), Reading(other, 0.2)))
    [message] = flow.store.messages(CALLER)
    scorer = flow.services.scorer
    alone, calmer = scorer.analyse(mask_digits(words)), scorer.analyse(mask_digits(other))
    assert abs(alone.frustration["calm"] - calmer.frustration["calm"]) > 0.05  # the readings differ
    assert "4929" not in message["text"]
    assert message["analysis"]["intents"] == pytest.approx(alone.intents, abs=1e-4)
    for level, p in message["analysis"]["frustration"].items():
        assert p == pytest.approx(3 * alone.frustration[level] / 4 + calmer.frustration[level] / 4, abs=1e-4)
    assert message["score"] == pytest.approx(3 * alone.score / 4 + calmer.score / 4, abs=1e-4)


class FailingCommit(MemoryStore):
    """A store whose next unit of work that changes a call fails as it commits (it rolls back)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    @contextmanager
    def unit(self) -> Iterator[MemoryStoreTx]:
        with super().unit() as tx:
            changed: list[str] = []
            update = tx.update_call

            def noted(call_control_id: str, **values: Any) -> None:
                changed.append(call_control_id)
                update(call_control_id, **values)

            tx.update_call = noted  # type: ignore[method-assign]
            yield tx
            if self.fail_next and changed:
                self.fail_next = False
                raise StoreError("database unavailable: connection lost")


def test_a_redelivered_answer_after_a_rollback_starts_the_engine_once() -> None:
    store = FailingCommit()
    flow = Flow(store)
    flow.event("call.initiated", direction="incoming", state="parked")
    answered = CallEvent(id="answered-1", type="call.answered", occurred_at=None, call_control_id=CALLER)
    store.fail_next = True
    with pytest.raises(StoreError):
        flow.calls.handle(answered)
    assert flow.engine.calls == [] and flow.status() == CallStatus.ANSWERING
    assert flow.calls.handle(answered) == "handled"  # Telnyx redelivers the same event
    assert flow.engine.calls == [("answered", CALLER)]
    assert flow.calls.handle(answered) == "duplicate"
    assert flow.engine.calls == [("answered", CALLER)]


def test_a_lost_stream_whose_first_report_failed_to_commit_is_lost_at_the_next_report() -> None:
    store = FailingCommit()
    flow = Flow(store)
    flow.answered_call()
    before = store.get_call(CALLER)
    assert before is not None
    store.fail_next = True
    with pytest.raises(StoreError):
        flow.calls.stream_lost(CALLER, "socket closed", once="stream-lost:MZ1")
    call = store.get_call(CALLER)
    assert call is not None and call.listening == before.listening  # nothing of it was kept
    flow.calls.stream_lost(CALLER, "socket closed", once="stream-lost:MZ1")  # the status callback
    after = store.get_call(CALLER)
    assert after is not None and after.listening != before.listening
    assert after.listening_reason and "socket closed" in after.listening_reason
    flow.calls.stream_lost(CALLER, "reported again", once="stream-lost:MZ1")
    again = store.get_call(CALLER)
    assert again is not None and again.listening_reason == after.listening_reason  # once per stream


def test_one_requests_events_are_kept_together_or_not_at_all() -> None:
    store = FailingCommit()
    flow = Flow(store)
    new = CallEvent(id="voice-1:initiated", type="call.initiated", occurred_at=None, call_control_id=CALLER,
                    direction="incoming", state="parked", from_="+15551230001", to="+15550100000")
    answered = CallEvent(id="voice-1:answered", type="call.answered", occurred_at=None,
                         call_control_id=CALLER)
    store.fail_next = True  # the answer's change of the call fails as the unit commits
    with pytest.raises(StoreError):
        flow.calls.handle_all([new, answered])
    assert store.get_call(CALLER) is None and store.events(CALLER) == []  # the new call went too
    assert flow.sent.names() == []
    assert flow.calls.handle_all([new, answered]) == ["handled", "handled"]  # the provider's retry
    assert flow.status() == CallStatus.MENU


def test_one_unit_of_work_takes_the_events_of_one_call_only(flow: Flow) -> None:
    events = [CallEvent(id=f"e-{ccid}", type="call.hangup", occurred_at=None, call_control_id=ccid)
              for ccid in (CALLER, "v3:other")]
    with pytest.raises(ValueError, match="one call"):
        flow.calls.handle_all(events)
    assert flow.store.events(CALLER) == []


def test_an_answer_overtaken_by_words_that_escalated_is_noted_without_a_greeting(flow: Flow) -> None:
    flow.event("call.initiated", direction="incoming", state="parked")
    flow.calls.hear(CALLER, "fake", "m1", "I want to speak to a real person", 0.9)
    assert flow.status() == CallStatus.TRANSFERRING
    sent = flow.sent.names()
    flow.event("call.answered")
    call = flow.store.get_call(CALLER)
    assert call is not None and call.status == CallStatus.TRANSFERRING and call.answered_at is not None
    assert flow.sent.names() == sent  # no greeting over the handoff
    assert flow.engine.calls == [("answered", CALLER)]
    flow.event("call.answered")  # a redelivery with another id changes nothing more
    assert flow.engine.calls == [("answered", CALLER)]


def _refuse_the_hangup(flow: Flow) -> None:
    """The provider answers the call's hangup with a final refusal."""
    [hangup] = [c for c in flow.sent.commands if c.name == "hangup"]
    assert flow.store.mark_command(hangup.command_id, CommandStatus.REJECTED, 1, "HTTP 422 10015")


@pytest.mark.parametrize("ending", ["goodbye", "voicemail"])
def test_a_refused_hangup_is_sent_once_more_and_no_more(flow: Flow, ending: str) -> None:
    import time

    from lifeline.calls.voicemail import SAVED_GRACE_S
    from lifeline.ivr.menu import VOICEMAIL_MAX_S
    if ending == "goodbye":
        flow.answered_call()
        for _ in range(3):
            flow.event("call.gather.ended", status="timeout")
        flow.event("call.speak.ended")
    else:
        choose_voicemail(flow)
        flow.event("call.speak.ended", status="completed")
        tick(flow, time.time() + VOICEMAIL_MAX_S + SAVED_GRACE_S + 2)  # no message was ever saved
    assert flow.sent.names()[-1] == "hangup"
    later = time.time()  # when the hangup was sent
    _refuse_the_hangup(flow)
    wait = load_menu(ROOT / "examples" / "ivr.yaml").goodbye_wait_s
    tick(flow, later + 1)
    assert flow.sent.names().count("hangup") == 1  # not yet: the refusal may be a moment's
    for more in (wait + 2, wait + 60, wait + 600):
        tick(flow, later + more)
    hangups = [c for c in flow.sent.commands if c.name == "hangup"]
    assert len(hangups) == 2 and hangups[0].command_id != hangups[1].command_id


class RacingStore(MemoryStore):
    """A store whose next look at the caller's call misses it, as when another worker's
    `call.initiated` records the call between a unit's read and its insert."""

    def __init__(self) -> None:
        super().__init__()
        self.miss_next = False

    @contextmanager
    def unit(self) -> Iterator[MemoryStoreTx]:
        with super().unit() as tx:
            get_call = tx.get_call

            def raced(call_control_id: str, lock: bool = True) -> CallRecord | None:
                if call_control_id == CALLER and self.miss_next:
                    self.miss_next = False
                    return None
                return get_call(call_control_id, lock)

            tx.get_call = raced  # type: ignore[method-assign]
            yield tx


def test_a_hangup_whose_initiated_another_worker_recorded_at_the_same_moment_closes_the_call() -> None:
    store = RacingStore()
    flow = Flow(store)
    flow.answered_call()
    store.miss_next = True  # the hangup's unit does not see the call, and its insert loses
    flow.event("call.hangup", hangup_cause="normal_clearing")
    call = store.get_call(CALLER)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "completed")
