"""Issue 10 item 5: a stuck command never holds back a call's menu or transfer for long, while the
orders that matter are kept (lifeline/ivr/outbox.py's docstring lists them). Checked by order and count
with the emulator's faults, never by wall-clock thresholds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lifeline.ivr.lanes import BoundedLanes
from lifeline.ivr.outbox import CommandSender
from lifeline.ivr.store import Command, CommandStatus
from lifeline.ivr.store.memory import MemoryStore
from lifeline.ivr.telnyx_api import SendOutcome
from lifeline.simulator.emulator import Fault
from lifeline.simulator.runner import Simulation

from .conftest import AGENTS, wait_until


@contextmanager
def serving(command_timeout_s: float) -> Iterator[Simulation]:
    """The app on loopback; each command attempt may take `command_timeout_s`."""
    config = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_COMMAND_TIMEOUT": str(command_timeout_s),
              "LIFELINE_COMMAND_HOLD": "0.2"}
    with Simulation(config, speed=20) as simulation:
        yield simulation
        assert simulation.emulator.refused == []


@pytest.fixture
def sim() -> Iterator[Simulation]:
    """A short command timeout, so a stuck command is retried soon."""
    with serving(0.5) as simulation:
        yield simulation


@pytest.fixture
def patient_sim() -> Iterator[Simulation]:
    """A long command timeout: a stuck attempt stays stuck until the test lets Telnyx reply."""
    with serving(30) as simulation:
        yield simulation


def _outbox(sim: Simulation, ccid: str, name: str) -> list[Any]:
    store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
    return [o for o in store.outbox(ccid) if o.command.name == name]


def _accepted(sim: Simulation, ccid: str, name: str) -> list[dict[str, Any]]:
    return [r for r in sim.emulator.commands_for(ccid, name) if r["status"] == 200 and not r.get("duplicate")]


def test_the_menu_goes_out_while_telnyx_still_owes_the_answer_its_reply(patient_sim: Simulation) -> None:
    sim = patient_sim
    replied = threading.Event()
    sim.emulator.inject(Fault("answer", reply_hold=replied))  # answered, but the reply hangs
    leg = sim.emulator.incoming_call()
    try:
        # Before, the menu queued behind the answer's attempts (4 x the timeout, ~21 s in production).
        assert sim.emulator.wait_for_gather(leg, 10), "the menu waited for the answer's reply"
        assert [o.status for o in _outbox(sim, leg.call_control_id, "answer")] == [CommandStatus.PENDING]
    finally:
        replied.set()
    # The answer is not retried once the menu was accepted (a later accepted command proves it).
    assert wait_until(lambda: [o.status for o in _outbox(sim, leg.call_control_id, "answer")]
                      in ([CommandStatus.SENT], [CommandStatus.SUPERSEDED]), 10)
    assert len(sim.emulator.commands_for(leg.call_control_id, "answer")) == 1


def test_a_stuck_handoff_line_does_not_hold_back_the_transfer_and_is_then_dropped(sim: Simulation) -> None:
    leg = sim.emulator.incoming_call()
    assert sim.emulator.wait_for_gather(leg, 10)
    stuck = threading.Event()
    sim.emulator.inject(Fault("speak", hold=stuck))  # Telnyx sits on the handoff line
    try:
        sim.emulator.press(leg, "0")
        assert wait_until(lambda: bool(_accepted(sim, leg.call_control_id, "transfer")), 10), \
            "the transfer waited behind the stuck speak"
        assert sim.emulator.commands_for(leg.call_control_id, "speak") == []  # still stuck, unanswered
        # The line's attempt times out; its retry finds the transfer accepted and is not sent. On a
        # loaded machine every retry may come before the transfer's acceptance is recorded: then
        # the monitor's resend finds it, later, and drops the line all the same.
        assert wait_until(lambda: [o.status for o in _outbox(sim, leg.call_control_id, "speak")]
                          == [CommandStatus.SUPERSEDED], 30)
        assert sim.emulator.commands_for(leg.call_control_id, "speak") == []
    finally:
        stuck.set()
    assert wait_until(lambda: leg.log.bridged, 10)


def test_a_stuck_command_of_one_call_does_not_hold_back_another_calls_menu(patient_sim: Simulation) -> None:
    sim = patient_sim
    replied = threading.Event()
    sim.emulator.inject(Fault("answer", reply_hold=replied))
    first = sim.emulator.incoming_call(from_="+15551230001")
    try:
        assert wait_until(lambda: first.answered, 10)
        second = sim.emulator.incoming_call(from_="+15551230002")
        assert sim.emulator.wait_for_gather(second, 10)
        second_answer = _outbox(sim, second.call_control_id, "answer")
        assert [o.status for o in second_answer] == [CommandStatus.SENT]
        assert [o.status for o in _outbox(sim, first.call_control_id, "answer")] == [CommandStatus.PENDING]
    finally:
        replied.set()


def _goodbye_then_sweep(sim: Simulation, leg: Any) -> tuple[Any, float]:
    """Press the menu's goodbye key; returns the monitor and the goodbye's wait bound."""
    lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
    sim.emulator.press(leg, "9")  # examples/ivr.yaml: `9: {goodbye: true}`
    assert wait_until(lambda: lifeline.store.get_call(leg.call_control_id).status == "ending", 10)
    return lifeline.monitor, lifeline.menu.goodbye_wait_s


def test_a_goodbye_whose_speak_never_ends_is_hung_up_by_the_sweep_after_the_bound(sim: Simulation) -> None:
    leg = sim.emulator.incoming_call()
    assert sim.emulator.wait_for_gather(leg, 10)
    sim.emulator.inject(Fault("speak", drop=True))  # accepted, never played: no call.speak.ended
    monitor, bound = _goodbye_then_sweep(sim, leg)
    assert wait_until(lambda: bool(_accepted(sim, leg.call_control_id, "speak")), 10)
    monitor.sweep(now=time.time() + bound - 1)
    sim.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    assert sim.emulator.commands_for(leg.call_control_id, "hangup") == []  # not yet overdue
    monitor.sweep(now=time.time() + bound + monitor.interval_s)  # the next sweep
    assert wait_until(lambda: leg.ended, 10), "the hangup still waits for the goodbye's end"
    assert len(_accepted(sim, leg.call_control_id, "hangup")) == 1


def test_a_goodbye_stuck_at_telnyx_holds_the_overdue_hangup_back_only_for_the_hold(
        patient_sim: Simulation) -> None:
    sim = patient_sim
    leg = sim.emulator.incoming_call()
    assert sim.emulator.wait_for_gather(leg, 10)
    stuck = threading.Event()
    sim.emulator.inject(Fault("speak", hold=stuck))  # Telnyx sits on the goodbye's speak
    try:
        monitor, bound = _goodbye_then_sweep(sim, leg)
        monitor.sweep(now=time.time() + bound + 1)
        assert wait_until(lambda: leg.ended, 10), "the hangup waited behind the stuck goodbye"
        assert sim.emulator.commands_for(leg.call_control_id, "speak") == []  # still unanswered
    finally:
        stuck.set()


# ----- the lanes and the staleness rule, without HTTP -------------------------------------------


def test_lanes_keep_order_when_each_item_finishes_in_time() -> None:
    lanes = BoundedLanes(4, hold_s=30, name="test")
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def item(key: str, n: int) -> None:
        with lock:
            seen.append((key, n))

    for n in range(30):
        for key in ("a", "b", "c"):
            lanes.submit(key, lambda k=key, i=n: item(k, i))  # type: ignore[misc]
    assert lanes.wait_idle(10)
    lanes.shutdown()
    for key in ("a", "b", "c"):
        assert [n for k, n in seen if k == key] == list(range(30))


def test_a_blocked_item_holds_its_lane_back_only_until_the_hold_ends() -> None:
    overtaken: list[str] = []
    lanes = BoundedLanes(4, hold_s=0.05, name="test", on_overtake=lambda key, _: overtaken.append(key))
    unblock, second_ran, third_ran = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    def step(name: str, then: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            order.append(name)
            then()
        return run

    lanes.submit("call", step("first", lambda: unblock.wait(10)))
    lanes.submit("call", step("second", second_ran.set))
    lanes.submit("call", step("third", third_ran.set))
    try:
        assert second_ran.wait(10) and third_ran.wait(10), "the lane waited for its blocked head"
        assert not unblock.is_set()
        assert order == ["first", "second", "third"]  # they still started in order
        assert overtaken == ["call"]  # only the second waited for the blocked first
    finally:
        unblock.set()
    assert lanes.wait_idle(10)
    lanes.shutdown()


class _Recorder:
    """A command client that records what it was asked to send and accepts it; a command named in
    `stuck` is answered only once that event is set."""

    base_url = "http://telnyx.invalid"

    def __init__(self, stuck: dict[str, threading.Event] | None = None) -> None:
        self.sent: list[str] = []
        self._stuck = stuck or {}

    def send(self, command: Command, wanted: object = None) -> SendOutcome:
        self.sent.append(command.name)
        release = self._stuck.get(command.name)
        if release is not None:
            release.wait(10)
        return SendOutcome(CommandStatus.SENT, 1)

    def close(self) -> None:
        return None


def _queue(store: MemoryStore, *names: str) -> list[Command]:
    commands = [Command(f"cmd-{i}-{name}", "v3:call", name, {}) for i, name in enumerate(names)]
    with store.unit() as tx:
        tx.enqueue(commands)
    return commands


@pytest.mark.parametrize(("earlier", "later", "stale"), [
    ("speak", "transfer", True),
    ("gather_using_speak", "gather_using_speak", True),
    ("answer", "gather_using_speak", True),
    ("streaming_start", "streaming_stop", True),
    ("streaming_start", "speak", False),  # only its own stop makes a start stale
    ("transfer", "speak", False),  # a transfer is never dropped
    ("hangup", "speak", False),
    ("transcription_stop", "transcription_start", False),  # a stop is never dropped
])
def test_a_command_is_stale_only_once_telnyx_accepted_a_later_one_that_outdates_it(
        earlier: str, later: str, stale: bool) -> None:
    store = MemoryStore()
    sender = CommandSender(store, _Recorder(), 2)  # type: ignore[arg-type]
    first, second = _queue(store, earlier, later)
    assert sender.stale_because(first) is None  # nothing later accepted yet
    store.mark_command(second.command_id, CommandStatus.SENT, 1, None)
    assert (sender.stale_because(first) is not None) is stale
    assert sender.stale_because(second) is None  # nothing comes after the later one
    sender.close()


def test_the_sweep_gives_up_a_stale_prompt_instead_of_resending_it(tmp_path: Path) -> None:
    store = MemoryStore()
    telnyx = _Recorder()
    sender = CommandSender(store, telnyx, 2)  # type: ignore[arg-type]
    line, transfer = _queue(store, "speak", "transfer")
    store.mark_command(transfer.command_id, CommandStatus.SENT, 1, None)
    assert sender.resend_due(older_than_s=0) == 0
    assert sender.wait_idle(5)
    assert telnyx.sent == []
    [entry] = [o for o in store.outbox("v3:call") if o.command.command_id == line.command_id]
    assert entry.status == CommandStatus.SUPERSEDED and "transfer" in (entry.last_error or "")
    sender.close()


def test_a_menu_overtakes_a_stuck_prompt_but_a_restart_waits_for_its_stop() -> None:
    store = MemoryStore()
    stuck = {"speak": threading.Event(), "transcription_stop": threading.Event()}
    telnyx = _Recorder(stuck)
    sender = CommandSender(store, telnyx, 4, hold_s=0.01)  # type: ignore[arg-type]
    try:
        sender.submit(_queue(store, "speak", "gather_using_speak"))
        assert wait_until(lambda: telnyx.sent == ["speak", "gather_using_speak"], 5)
        # Transcription restarted for both parties after a bridge: the start must not overtake.
        restart = [Command(f"both-{name}", "v3:other", name, {})
                   for name in ("transcription_stop", "transcription_start")]
        sender.submit(restart)
        assert wait_until(lambda: "transcription_stop" in telnyx.sent, 5)
        assert not wait_until(lambda: "transcription_start" in telnyx.sent, 0.3)  # 30 holds later
        stuck["transcription_stop"].set()
        assert wait_until(lambda: telnyx.sent[-1] == "transcription_start", 5)
    finally:
        for event in stuck.values():
            event.set()
        sender.close()


def test_work_that_releases_its_lane_lets_the_next_item_start_while_it_finishes() -> None:
    lanes = BoundedLanes(4, hold_s=30, name="test")
    finish, second_ran = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        order.append("first")
        lanes.release()
        finish.wait(10)  # bookkeeping no later item waits for
        order.append("first done")

    lanes.submit("call", first)
    lanes.submit("call", lambda: (order.append("second"), second_ran.set()))  # type: ignore[func-returns-value]
    try:
        assert second_ran.wait(10), "the second waited for the whole of the first"
        assert order == ["first", "second"]
    finally:
        finish.set()
    assert lanes.wait_idle(10)
    lanes.shutdown()
    assert order == ["first", "second", "first done"]
    lanes.release()  # outside running work it does nothing


class _SlowMarks(MemoryStore):
    """A store whose recording of a command's outcome waits until `marks` is set (the write lock
    queued behind webhooks)."""

    def __init__(self) -> None:
        super().__init__()
        self.marks = threading.Event()

    def mark_command(self, command_id: str, status: str, attempts: int, error: str | None) -> bool:
        self.marks.wait(10)
        return super().mark_command(command_id, status, attempts, error)


def test_the_transfer_follows_its_handoff_line_as_soon_as_telnyx_answered_it_not_once_it_is_recorded(
) -> None:
    store = _SlowMarks()
    telnyx = _Recorder()
    sender = CommandSender(store, telnyx, 4, hold_s=30)  # type: ignore[arg-type]
    try:
        commands = _queue(store, "speak", "transfer")
        sender.submit(commands)
        assert wait_until(lambda: telnyx.sent == ["speak", "transfer"], 5)
        assert [o.status for o in store.outbox("v3:call")] == [CommandStatus.PENDING] * 2  # not recorded yet
        store.marks.set()
        assert sender.wait_idle(5)
        assert [o.status for o in store.outbox("v3:call")] == [CommandStatus.SENT] * 2
    finally:
        store.marks.set()
        sender.close()


def test_the_sweep_does_not_send_again_a_command_this_process_is_still_trying() -> None:
    store = MemoryStore()
    release = threading.Event()
    telnyx = _Recorder(stuck={"transfer": release})
    sender = CommandSender(store, telnyx, 4)  # type: ignore[arg-type]
    try:
        sender.submit(_queue(store, "transfer"))
        assert wait_until(lambda: telnyx.sent == ["transfer"], 5)
        # Telnyx has not answered yet (timeouts and back-off can run past the sweep's age).
        assert sender.resend_due(older_than_s=-1) == 0
        release.set()
        assert sender.wait_idle(5)
        assert telnyx.sent == ["transfer"]
        assert [o.status for o in store.outbox("v3:call")] == [CommandStatus.SENT]
        assert sender.resend_due(older_than_s=-1) == 0  # settled: nothing left to resend
    finally:
        release.set()
        sender.close()


def test_a_pending_transfer_whose_attempt_was_closed_is_given_up_not_resent() -> None:
    from lifeline.ivr.store import TransferRecord, TransferStatus
    store = MemoryStore()
    telnyx = _Recorder()
    sender = CommandSender(store, telnyx, 4)  # type: ignore[arg-type]
    try:
        [transfer] = _queue(store, "transfer")
        now = time.time()
        with store.unit() as tx:
            tx.add_transfer(TransferRecord("v3:call", 1, "+15550001111", transfer.command_id, "asked",
                                           "asks_for_human", TransferStatus.FAILED, now, now))
        assert sender.resend_due(older_than_s=-1) == 0
        assert telnyx.sent == []
        [entry] = store.outbox("v3:call")
        assert (entry.status == CommandStatus.SUPERSEDED
                and "transfer attempt 1 (failed)" in (entry.last_error or ""))
    finally:
        sender.close()
