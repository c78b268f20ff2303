"""The monitor's sweep: stragglers resent, time-based rules, stuck transfers, lost calls, many sweepers."""

from __future__ import annotations

import threading
import time

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from lifeline import create_app
from lifeline.ivr.errors import StoreError
from lifeline.ivr.store import CallRecord, CallStatus, CommandStatus, TransferStatus
from lifeline.simulator.emulator import Fault
from lifeline.simulator.runner import Simulation

from .conftest import AGENTS, make_signer, wait_until
from .test_call_flow import accepted, settle, start_call, store

# What the SQL store raises while its server is down (lifeline/ivr/store/sql_errors.py).
OUTAGE = ("cannot list calls: the database at postgresql+psycopg://db/lifeline is unavailable "
          "(OperationalError: connection refused); check DATABASE_URL and that the database server "
          "is running")


def say(sim: Simulation, leg, text: str) -> None:  # type: ignore[no-untyped-def]
    body, headers = make_signer(sim.emulator)("call.transcription", {
        **leg.base_payload(),
        "transcription_data": {"transcript": text, "confidence": 0.9, "is_final": True}})
    assert sim.app.test_client().post("/webhooks/telnyx", data=body, headers=headers).status_code == 200  # type: ignore[union-attr]


def monitor(sim: Simulation):  # type: ignore[no-untyped-def]
    return sim.app.extensions["lifeline"].monitor  # type: ignore[union-attr]


def test_restarted_app_resends_what_the_old_one_left_pending(live: Simulation) -> None:
    live.emulator.inject(Fault("answer", status=503, times=4))
    leg = live.emulator.incoming_call()
    assert wait_until(lambda: len(live.emulator.commands_for(leg.call_control_id)) == 4)
    live.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    sweeper = live.restart_app().extensions["lifeline"].monitor
    sweeper.resend_after_s = 0
    assert sweeper.sweep().resent == 1
    assert live.emulator.wait_for_gather(leg, 5), "the resent answer did not bring up the menu"
    live.emulator.press(leg, "3")
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).menu == "cards")


def test_long_unhappy_call_is_escalated_by_the_time_rule(live: Simulation) -> None:
    leg = start_call(live)
    say(live, leg, "this is a bit annoying")
    assert monitor(live).sweep().escalated == 0
    report = monitor(live).sweep(now=time.time() + 300)
    assert report.escalated == 1
    settle(live, leg)
    [transfer] = accepted(live, leg.call_control_id, "transfer")
    [decision] = store(live).decisions(leg.call_control_id)
    assert decision["rule"] == "long_in_menu"
    assert decision["evidence"][0]["text"] == "this is a bit annoying"
    assert monitor(live).sweep(now=time.time() + 600).escalated == 0


def assert_put_through_to_the_second_agent(live: Simulation, leg, cause: str) -> None:  # type: ignore[no-untyped-def]
    """The first attempt failed for `cause` and the caller is with the second agent."""
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    first, second = store(live).transfers(leg.call_control_id)
    assert (first.status, first.hangup_cause) == (TransferStatus.FAILED, cause)
    assert (second.to_number, second.status) == (AGENTS.split(",")[1], TransferStatus.CONNECTED)


def test_transfer_that_never_rang_moves_on_to_the_next_agent(live: Simulation) -> None:
    live.emulator.inject(Fault("transfer", drop=True))
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "transfer")) == 1)
    assert monitor(live).sweep().unstuck == 0
    assert monitor(live).sweep(now=time.time() + 61).unstuck == 1
    assert_put_through_to_the_second_agent(live, leg, "no_outcome")


def transfer_left_pending(live: Simulation, failures: int):  # type: ignore[no-untyped-def]
    """A caller presses 0 while Telnyx answers `failures` transfer requests with 503: once the
    sender has used its four tries, the transfer waits in the outbox. Returns the caller's leg."""
    live.emulator.inject(Fault("transfer", status=503, times=failures))
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: any(o.command.name == "transfer" and o.attempts == 4
                                  for o in store(live).outbox(leg.call_control_id)), 15)
    live.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    return leg


def test_a_transfer_not_yet_taken_is_resent_and_never_doubled_by_moving_on(live: Simulation) -> None:
    leg = transfer_left_pending(live, failures=4)  # every try of the first send fails
    sweeper = monitor(live)
    sweeper.resend_after_s = 0
    # Long past the agent's ringing timeout, but Telnyx never took the transfer: resend it, stay.
    assert sweeper.sweep(now=time.time() + 61).unstuck == 0
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    assert sweeper.sweep(now=time.time() + 62).unstuck == 0
    settle(live, leg)
    [sent] = accepted(live, leg.call_control_id, "transfer")
    assert sent["body"]["to"] == AGENTS.split(",")[0]
    [only] = store(live).transfers(leg.call_control_id)
    assert only.status == TransferStatus.CONNECTED


def test_a_transfer_never_taken_is_given_up_after_twice_the_stuck_time_and_the_caller_moves_on(
        live: Simulation) -> None:
    leg = transfer_left_pending(live, failures=1000)  # Telnyx never takes a transfer
    sweeper = monitor(live)
    assert sweeper.sweep(now=time.time() + 110).unstuck == 0  # still resent, still the first agent
    settle(live, leg)
    assert sweeper.sweep(now=time.time() + 125).unstuck == 1
    settle(live, leg)
    first = store(live).transfers(leg.call_control_id)[0]
    assert (first.status, first.hangup_cause) == (TransferStatus.FAILED, "not_taken")
    assert len(store(live).transfers(leg.call_control_id)) == 2  # the next agent is tried
    # The closed attempt's transfer is never sent again.
    sweeper.resend_after_s = 0
    sweeper.sweep()
    [entry] = [o for o in store(live).outbox(leg.call_control_id) if o.command.command_id == first.command_id]
    assert entry.status == CommandStatus.SUPERSEDED


def test_a_refused_transfer_moves_on_at_the_next_sweep_not_after_the_ringing_timeout(
        live: Simulation) -> None:
    live.emulator.inject(Fault("transfer", status=422))
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: any(o.command.name == "transfer" and o.status == CommandStatus.REJECTED
                                  for o in store(live).outbox(leg.call_control_id)))
    assert monitor(live).sweep().unstuck == 1
    assert_put_through_to_the_second_agent(live, leg, "transfer_rejected")


def test_an_agent_leg_that_shows_up_after_the_caller_left_is_hung_up(live: Simulation) -> None:
    live.emulator.inject(Fault("transfer", drop=True))  # taken, but its leg's webhooks come late
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "transfer")) == 1)
    live.emulator.caller_hangs_up(leg)
    settle(live, leg)
    [cancelled] = store(live).transfers(leg.call_control_id)
    assert cancelled.status == TransferStatus.CANCELLED
    [transfer] = [o.command for o in store(live).outbox(leg.call_control_id) if o.command.name == "transfer"]
    body, headers = make_signer(live.emulator)("call.initiated", {
        "call_control_id": "v3:agent-late", "call_leg_id": "agent-late", "call_session_id": "s-late",
        "direction": "outgoing", "from": "+15550100000", "to": AGENTS.split(",")[0], "state": "bridging",
        "client_state": transfer.params["target_leg_client_state"]})  # what the agent's leg carries
    assert live.app.test_client().post("/webhooks/telnyx", data=body, headers=headers).status_code == 200  # type: ignore[union-attr]
    assert [o.command.name for o in store(live).outbox("v3:agent-late")] == ["hangup"]
    [late] = store(live).transfers(leg.call_control_id)
    assert (late.status, late.agent_call_control_id) == (TransferStatus.CANCELLED, "v3:agent-late")


def test_a_cancelled_agent_leg_while_the_caller_is_still_up_moves_on_to_the_next_agent(
        live: Simulation) -> None:
    # originator_cancel usually means the caller hung up, and their own hangup follows; when it
    # does not (Twilio reports a <Dial> our own update cut short this way), the caller must not wait
    # in silence with no attempt open.
    live.emulator.inject(Fault("transfer", drop=True))  # taken; its leg's webhooks are posted here
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "transfer")) == 1)
    [transfer] = [o.command for o in store(live).outbox(leg.call_control_id) if o.command.name == "transfer"]
    agent_leg = {"call_control_id": "v3:agent-cancel", "call_leg_id": "agent-cancel",
                 "call_session_id": "s-c", "direction": "outgoing", "from": "+15550100000",
                 "to": AGENTS.split(",")[0],
                 "client_state": transfer.params["target_leg_client_state"]}
    client = live.app.test_client()  # type: ignore[union-attr]
    for kind, extra in (("call.initiated", {"state": "bridging"}),
                        ("call.hangup", {"hangup_cause": "originator_cancel"})):
        body, headers = make_signer(live.emulator)(kind, {**agent_leg, **extra})
        assert client.post("/webhooks/telnyx", data=body, headers=headers).status_code == 200
    [cancelled] = store(live).transfers(leg.call_control_id)
    assert cancelled.status == TransferStatus.CANCELLED
    assert store(live).get_call(leg.call_control_id).status == CallStatus.TRANSFERRING
    assert monitor(live).sweep().unstuck == 0  # the caller's own hangup may still be on its way
    assert monitor(live).sweep(now=time.time() + 31).unstuck == 1
    settle(live, leg)
    first, second = store(live).transfers(leg.call_control_id)[:2]
    assert (first.status, first.hangup_cause) == (TransferStatus.CANCELLED, "originator_cancel")
    assert second.to_number == AGENTS.split(",")[1]
    assert len(accepted(live, leg.call_control_id, "transfer")) == 2


def test_an_answered_agent_whose_bridge_was_never_reported_is_connected_not_rung_over(
        live: Simulation) -> None:
    live.emulator.lose_webhooks("call.bridged")
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: leg.log.bridged)  # the caller talks to the first agent
    settle(live, leg)
    [ringing] = store(live).transfers(leg.call_control_id)
    assert ringing.status == TransferStatus.RINGING  # as far as the app knows
    assert monitor(live).sweep(now=time.time() + 61).unstuck == 1
    settle(live, leg)
    [connected] = store(live).transfers(leg.call_control_id)
    assert connected.status == TransferStatus.CONNECTED
    call = store(live).get_call(leg.call_control_id)
    assert (call.status, call.outcome) == (CallStatus.TRANSFERRED, "transferred")
    assert len(accepted(live, leg.call_control_id, "transfer")) == 1


def test_a_ringing_agent_leg_gone_without_its_hangup_reported_moves_on(live: Simulation) -> None:
    live.emulator.lose_webhooks("call.hangup")  # the first agent's: busy, and never reported
    leg = start_call(live, agent="busy")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: any(t.status == TransferStatus.RINGING
                                  for t in store(live).transfers(leg.call_control_id)))
    first_leg = store(live).transfers(leg.call_control_id)[0].agent_call_control_id
    assert wait_until(lambda: live.emulator.leg(first_leg).ended)  # type: ignore[union-attr]
    settle(live, leg)
    assert monitor(live).sweep().unstuck == 0  # not past the ringing timeout yet
    assert monitor(live).sweep(now=time.time() + 61).unstuck == 1
    settle(live, leg)
    first, second = store(live).transfers(leg.call_control_id)[:2]
    assert (first.status, first.hangup_cause) == (TransferStatus.FAILED, "no_outcome")
    assert second.to_number == AGENTS.split(",")[1]


def test_call_whose_hangup_was_lost_is_closed(live: Simulation) -> None:
    gone, alive = start_call(live), start_call(live)
    gone.ended = True  # Telnyx ended the leg but its call.hangup never reached us
    assert monitor(live).sweep().closed == 0  # not idle long enough to ask Telnyx
    assert monitor(live).sweep(now=time.time() + 1000).closed == 1
    call = store(live).get_call(gone.call_control_id)
    assert (call.status, call.outcome, call.hangup_cause) == (CallStatus.ENDED, "lost", "lost")
    assert store(live).get_call(alive.call_control_id).status == CallStatus.MENU


def test_sentiment_transfer_records_the_decision_and_says_the_handoff_first(live: Simulation) -> None:
    leg = start_call(live)
    say(live, leg, "I already explained this and it still isn't fixed")
    say(live, leg, "this is getting really frustrating")
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    requests = [r for r in live.emulator.commands_for(leg.call_control_id)
                if r["name"] in ("speak", "transfer")]
    assert [r["name"] for r in requests] == ["speak", "transfer"]
    assert requests[0]["body"]["payload"] == "Let me connect you to someone who can help."
    assert requests[0]["body"]["stop"] == "all"  # said now, not after the menu prompt it interrupts
    [decision] = store(live).decisions(leg.call_control_id)
    assert decision["rule"] == "annoyed_twice"
    assert [e["score"] < -0.2 for e in decision["evidence"]] == [True, True]
    assert all(e["frustration"]["annoyed"] + e["frustration"]["angry"] >= 0.7 for e in decision["evidence"])
    messages = store(live).messages(leg.call_control_id)
    assert [m["label"] for m in messages] == ["negative", "negative"]


@pytest.mark.postgres
def test_two_sweepers_on_postgres_touch_each_call_once(app_config: dict[str, object],
                                                       pg_database: str) -> None:
    apps: list[Flask] = [create_app({**app_config, "DATABASE_URL": pg_database}, migrate=True)
                         for _ in range(2)]
    try:
        now = time.time()
        with apps[0].extensions["lifeline"].store.unit() as tx:
            for n in range(250):
                tx.insert_call(CallRecord(f"v3:pg-{n}", f"s-{n}", f"l-{n}", "+15551230001", "+15550100000",
                                          CallStatus.MENU, now, now, menu="main", answered_at=now))
        counts: list[int] = []
        barrier = threading.Barrier(2)

        def sweep(app: Flask) -> None:
            barrier.wait()
            counts.append(app.extensions["lifeline"].monitor.sweep().swept)

        threads = [threading.Thread(target=sweep, args=(a,)) for a in apps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(counts) == 250, counts
        assert apps[0].extensions["lifeline"].monitor.sweep().swept == 0  # all stamped this interval
    finally:
        for app in apps:
            app.extensions["lifeline"].close()


def test_sent_commands_are_never_resent(live: Simulation) -> None:
    leg = start_call(live)
    settle(live, leg)
    sweeper = monitor(live)
    sweeper.resend_after_s = 0
    assert sweeper.sweep().resent == 0
    assert {o.status for o in store(live).outbox(leg.call_control_id)} == {CommandStatus.SENT}


def test_flask_monitor_once_prints_a_readable_report(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["monitor", "--once"])
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Sweep done:", "  swept 0 active calls", "  resent 0 commands the provider had not taken",
        "  escalated 0 calls on time-based rules", "  moved on from 0 transfers that got no outcome",
        "  closed 0 calls the provider no longer knows"]
    assert "SweepReport(" not in result.output


def test_commands_of_a_call_that_ended_are_not_resent(live: Simulation) -> None:
    live.emulator.inject(Fault("answer", status=503, times=4))
    leg = live.emulator.incoming_call()
    assert wait_until(lambda: len(live.emulator.commands_for(leg.call_control_id)) == 4)
    live.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    live.emulator.caller_hangs_up(leg)
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).status == CallStatus.ENDED)
    sweeper = monitor(live)
    sweeper.resend_after_s = 0
    assert sweeper.sweep().resent == 0
    [entry] = [o for o in store(live).outbox(leg.call_control_id) if o.command.name == "answer"]
    assert (entry.status, entry.attempts) == (CommandStatus.CALL_ENDED, 4)
    assert len(live.emulator.commands_for(leg.call_control_id, "answer")) == 4  # nothing went out again


def test_the_sweep_resends_an_untried_command_only_once_its_sender_must_have_given_up(
        live: Simulation) -> None:
    from lifeline.ivr.telnyx_api import longest_send_s
    settings = live.app.extensions["lifeline"].settings  # type: ignore[union-attr]
    # Every attempt timing out takes at least this long, before any pause between them.
    assert longest_send_s(settings.command_attempts, settings.command_timeout_s) > \
        settings.command_attempts * settings.command_timeout_s
    assert monitor(live).resend_untried_after_s > settings.command_attempts * settings.command_timeout_s
    assert monitor(live).resend_after_s == 10.0  # one its sender gave up on


def test_the_schedules_sweep_leaves_lost_call_questions_to_the_upkeep_job(live: Simulation) -> None:
    # A provider slow to say whether a call is up must not hold back a sweep that transfers.
    asked: list[str] = []

    class Slow:
        def is_alive(self, call_control_id: str) -> bool | None:
            asked.append(call_control_id)
            return False

    leg = start_call(live)
    sweeper = monitor(live)
    sweeper._provider = Slow()  # the provider, as the monitor asks it whether a call is up
    later = time.time() + 1000  # the call has been silent past LIFELINE_STALE_CALL_S
    report = sweeper.sweep(now=later, upkeep=False)  # what the schedule's sweep job runs
    assert (report.closed, asked) == (0, [])
    assert sweeper.upkeep(now=later).closed == 1 and asked == [leg.call_control_id]
    jobs = {job.id for job in sweeper._schedule(BackgroundScheduler()).get_jobs()}
    assert jobs == {"lifeline-sweep", "lifeline-upkeep"}


def test_a_store_outage_is_logged_once_when_it_starts_and_once_when_it_ends_not_each_tick(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    from lifeline.calls.monitor import SweepReport
    sweeper = app.extensions["lifeline"].monitor
    outage = [StoreError(OUTAGE)] * 5

    def sweep() -> SweepReport:
        if outage:
            raise outage.pop()
        return SweepReport()

    with caplog.at_level("INFO", logger="lifeline.calls.monitor"):
        for _ in range(6):
            sweeper._safe(sweep, "sweep")
    lines = [r.getMessage() for r in caplog.records if r.name == "lifeline.calls.monitor"]
    assert len(lines) == 2 and not any(r.exc_info for r in caplog.records), lines
    assert "monitor sweep paused: the call store is unavailable" in lines[0] and "DATABASE_URL" in lines[0]
    assert lines[1].startswith("monitor sweep resumed after")


def test_after_a_store_outage_calls_idle_since_before_it_are_checked_at_once_not_after_the_stale_time(
        live: Simulation) -> None:
    from lifeline.calls.monitor import SweepReport
    gone, alive = start_call(live), start_call(live)
    settle(live, gone)
    settle(live, alive)
    gone.ended = True  # its hangup was refused while the database was down
    time.sleep(0.05)  # both calls' last change is before the outage

    def down() -> SweepReport:
        raise StoreError(OUTAGE)

    monitor(live)._safe(down, "upkeep")
    assert monitor(live).upkeep().closed == 0  # still down as far as the monitor knows: no recheck
    monitor(live)._safe(SweepReport, "upkeep")  # the store answers again
    assert monitor(live).upkeep().closed == 1  # at once, not LIFELINE_STALE_CALL_S later
    assert store(live).get_call(gone.call_control_id).outcome == "lost"
    assert store(live).get_call(alive.call_control_id).status == CallStatus.MENU
    assert monitor(live).upkeep().closed == 0 and monitor(live)._recheck_idle_before is None
