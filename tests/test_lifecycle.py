"""Out-of-order and lost lifecycle events never leave a call open (no zombie calls)."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.calls import monitor as monitor_module
from lifeline.ivr.store import CallRecord, CallStatus, CommandStatus, TransferStatus
from lifeline.simulator.emulator import Emulator, Fault
from lifeline.simulator.runner import Simulation

from .conftest import WebhookFactory, wait_until
from .test_call_flow import settle, start_call, store
from .test_webhooks import INITIATED, post

CCID = INITIATED["call_control_id"]


def test_a_hangup_before_initiated_closes_the_call_and_it_is_never_answered(
        app: Flask, emulator: Emulator, signed: WebhookFactory) -> None:
    hangup = post(app, *signed("call.hangup", {"call_control_id": CCID, "call_session_id": "sess-1",
                                               "hangup_cause": "normal_clearing"}))
    assert hangup.status_code == 200
    assert post(app, *signed("call.initiated", INITIATED)).status_code == 200
    post(app, *signed("call.answered", {"call_control_id": CCID}))
    app.extensions["lifeline"].sender.wait_idle(5)
    call = app.extensions["lifeline"].store.get_call(CCID)
    assert call is not None
    assert (call.status, call.outcome, call.hangup_cause) == (CallStatus.ENDED, "missed",
                                                              "normal_clearing")
    assert emulator.commands_for(CCID) == []  # neither answered nor greeted
    # Still a call the outputs hear of: on the feed (so its webhooks and summary follow), once.
    feed = app.extensions["lifeline"].outputs.store.feed_for_call(CCID)
    assert [(e.kind, e.data.get("outcome")) for e in feed] == [("call.started", None),
                                                               ("call.ended", "missed")]


def test_an_agent_legs_early_hangup_is_not_taken_for_a_caller(app: Flask, signed: WebhookFactory) -> None:
    from lifeline.ivr.events import encode_client_state
    state = encode_client_state({"role": "agent", "caller": "v3:someone", "attempt": 1})
    post(app, *signed("call.hangup", {"call_control_id": "v3:agent-leg", "client_state": state}))
    assert app.extensions["lifeline"].store.get_call("v3:agent-leg") is None


def test_call_ended_on_a_later_command_closes_the_call_as_a_hangup_would(live: Simulation) -> None:
    leg = start_call(live)
    settle(live, leg)
    # Telnyx ended the leg, and its call.hangup is lost: the next menu command learns it first.
    live.emulator.inject(Fault("gather_using_speak", status=422, code="90018"))
    live.emulator.press(leg, "3")
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).status == CallStatus.ENDED)
    call = store(live).get_call(leg.call_control_id)
    # The caller hung up in the menu: `completed`, as the hangup would have said, not `lost`.
    assert (call.hangup_cause, call.outcome) == ("call_ended_90018", "completed")
    assert CommandStatus.CALL_ENDED in {o.status for o in store(live).outbox(leg.call_control_id)}


def test_call_ended_on_a_transfer_cancels_it_and_closes_the_call(live: Simulation) -> None:
    leg = start_call(live)
    settle(live, leg)
    live.emulator.inject(Fault("transfer", status=422, code="90018"))
    live.emulator.press(leg, "0")
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).status == CallStatus.ENDED)
    assert [t.status for t in store(live).transfers(leg.call_control_id)] == [TransferStatus.CANCELLED]


class FakeTelnyxStatus:
    """Telnyx's call-status lookup: every leg is gone (or every one alive); records who asked."""

    def __init__(self, alive: bool = False) -> None:
        self.asked: list[str] = []
        self._alive = alive
        self._lock = threading.Lock()

    def is_alive(self, call_control_id: str) -> bool:
        with self._lock:
            self.asked.append(call_control_id)
        return self._alive


def idle_calls(app: Flask, count: int, idle_s: float = 3600) -> None:
    long_ago = time.time() - idle_s
    with app.extensions["lifeline"].store.unit() as tx:
        for n in range(count):
            created = long_ago + n  # distinct ages: the old code looked at the newest 100 only
            tx.insert_call(CallRecord(f"v3:idle-{n}", f"s-{n}", f"l-{n}", "+15551230001", "+15550100000",
                                      CallStatus.MENU, created, created, menu="main", answered_at=created))


def fake_status(app: Flask, sleeps: list[float], alive: bool = False) -> FakeTelnyxStatus:
    """Point the app's monitor at a fake status lookup and a recording sleep."""
    fake = FakeTelnyxStatus(alive)
    sweeper = app.extensions["lifeline"].monitor
    sweeper._provider = fake  # the monitor asks the provider is_alive only, here
    sweeper._sleep = sleeps.append
    return fake


def test_the_stale_sweep_reaches_every_active_call_not_only_the_newest(app: Flask) -> None:
    idle_calls(app, 250)
    sleeps: list[float] = []
    fake = fake_status(app, sleeps)
    sweeper = app.extensions["lifeline"].monitor
    closed = [sweeper.sweep().closed for _ in range(15)]
    assert sum(closed) == 250
    assert max(closed) <= monitor_module.STALE_CHECKS_PER_SWEEP  # the per-sweep budget holds
    assert sorted(fake.asked) == sorted(f"v3:idle-{n}" for n in range(250))  # each asked about once
    # Asked at a bounded pace: a pause between every two lookups of a sweep.
    assert sleeps.count(monitor_module.STALE_CHECK_SPACING_S) == 250 - len([c for c in closed if c])
    assert app.extensions["lifeline"].store.list_calls(limit=500, active_only=True) == []


def test_a_call_found_alive_is_not_asked_about_again_within_the_stale_period(app: Flask) -> None:
    idle_calls(app, 3)
    fake = fake_status(app, [], alive=True)
    sweeper = app.extensions["lifeline"].monitor
    assert sweeper.sweep().closed == 0
    assert sweeper.sweep().closed == 0
    assert len(fake.asked) == 3


@pytest.mark.postgres
def test_two_sweepers_on_postgres_ask_telnyx_about_each_idle_call_once(
        app_config: dict[str, object], pg_database: str) -> None:
    apps = [create_app({**app_config, "DATABASE_URL": pg_database}, migrate=True) for _ in range(2)]
    try:
        idle_calls(apps[0], 60)
        fakes = [fake_status(a, []) for a in apps]
        barrier = threading.Barrier(2)

        def sweep(app: Flask) -> None:
            barrier.wait()
            for _ in range(3):
                app.extensions["lifeline"].monitor.sweep()

        threads = [threading.Thread(target=sweep, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        asked = fakes[0].asked + fakes[1].asked
        assert len(asked) == len(set(asked)) == 60
        assert apps[0].extensions["lifeline"].store.list_calls(limit=100, active_only=True) == []
    finally:
        for app in apps:
            app.extensions["lifeline"].close()


def test_a_caller_who_hangs_up_while_lifeline_is_answering_is_missed(
        app: Flask, emulator: Emulator, signed: WebhookFactory) -> None:
    assert post(app, *signed("call.initiated", INITIATED)).status_code == 200
    post(app, *signed("call.hangup", {"call_control_id": CCID, "hangup_cause": "normal_clearing"}))
    call = app.extensions["lifeline"].store.get_call(CCID)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "missed")


def test_a_dial_out_whose_initiated_was_lost_is_recorded_and_heard_from_its_answer(
        app: Flask, signed: WebhookFactory) -> None:
    from lifeline.ivr.events import encode_client_state
    state = encode_client_state({"role": "dialout", "dtmf": "", "listening": True, "summary_to": None})
    leg = {"call_control_id": "v3:dialled-lost", "call_leg_id": "leg-9", "call_session_id": "sess-9",
           "from": "+15550100000", "to": "+15557770000", "direction": "outgoing", "state": "answered",
           "client_state": state}
    assert post(app, *signed("call.answered", leg)).status_code == 200
    call = app.extensions["lifeline"].store.get_call("v3:dialled-lost")
    assert call is not None and (call.status, call.to_number) == (CallStatus.ANALYSING, "+15557770000")
