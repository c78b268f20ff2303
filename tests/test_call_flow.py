"""The IVR and the transfer executor, driven through the real app by the emulator."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lifeline.ivr.store import CallStatus, CommandStatus, TransferStatus
from lifeline.simulator.emulator import OUR_NUMBER, Fault
from lifeline.simulator.legs import Leg
from lifeline.simulator.runner import Simulation

from .conftest import make_signer, wait_until

FIRST_AGENT, SECOND_AGENT = "+15550001111", "+15550002222"


def start_call(sim: Simulation, agent: str = "answer") -> Leg:
    leg = sim.emulator.incoming_call(agent=agent)
    assert sim.emulator.wait_for_gather(leg, 5), "the menu never opened"
    return leg


def settle(sim: Simulation, leg: Leg) -> None:
    for _ in range(3):
        leg.log.wait_quiet(5)
        sim.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]


def accepted(sim: Simulation, ccid: str, name: str) -> list[dict[str, Any]]:
    return [r for r in sim.emulator.commands_for(ccid, name)
            if r["status"] == 200 and not r.get("duplicate")]


def store(sim: Simulation):  # type: ignore[no-untyped-def]
    return sim.app.extensions["lifeline"].store  # type: ignore[union-attr]


def post_signed(sim: Simulation, event_type: str, payload: dict[str, Any], event_id: str | None = None):  # type: ignore[no-untyped-def]
    body, headers = make_signer(sim.emulator)(event_type, payload, event_id)
    return sim.app.test_client().post("/webhooks/telnyx", data=body, headers=headers)  # type: ignore[union-attr]


def test_inbound_call_is_answered_with_transcription_and_greeted(live: Simulation) -> None:
    leg = start_call(live)
    [answer] = accepted(live, leg.call_control_id, "answer")
    assert answer["body"]["transcription"] is True
    assert answer["body"]["transcription_config"]["transcription_tracks"] == "inbound"
    [menu] = accepted(live, leg.call_control_id, "gather_using_speak")
    assert menu["body"]["payload"].startswith("Thank you for calling Lifeline Bank. For your account balance")
    assert menu["body"]["valid_digits"] == "01239"
    assert store(live).get_call(leg.call_control_id).status == CallStatus.MENU


def test_keys_route_to_sub_menus_and_information(live: Simulation) -> None:
    leg = start_call(live)
    live.emulator.press(leg, "3")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2)
    live.emulator.press(leg, "2")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 3)
    prompts = [r["body"]["payload"] for r in accepted(live, leg.call_control_id, "gather_using_speak")]
    assert prompts[1].startswith("To block a lost or stolen card, press 1.")
    assert prompts[2].startswith("Replacement cards arrive within five business days")
    assert "For your account balance, press 1." in prompts[2]
    assert store(live).get_call(leg.call_control_id).menu == "main"


def test_wrong_keys_reprompt_a_bounded_number_of_times_then_say_goodbye(live: Simulation) -> None:
    leg = start_call(live)
    for expected_menus in (2, 3):
        live.emulator.press(leg, "7")
        assert wait_until(lambda n=expected_menus: len(accepted(live, leg.call_control_id,
                                                               "gather_using_speak")) == n)
    live.emulator.press(leg, "7")
    assert wait_until(lambda: leg.ended, timeout=5), "the app never hung up"
    settle(live, leg)
    prompts = [r["body"]["payload"] for r in accepted(live, leg.call_control_id, "gather_using_speak")]
    assert len(prompts) == 3  # the menu, then its two retries (examples/ivr.yaml): never a fourth
    assert all(p.startswith("Sorry, that is not one of the options.") for p in prompts[1:])
    [goodbye] = accepted(live, leg.call_control_id, "speak")
    assert goodbye["body"]["payload"] == "Thank you for calling Lifeline Bank. Goodbye."
    assert len(accepted(live, leg.call_control_id, "hangup")) == 1
    call = store(live).get_call(leg.call_control_id)
    assert (call.status, call.outcome) == (CallStatus.ENDED, "completed")


def test_silence_reprompts_then_ends_the_call(live: Simulation) -> None:
    leg = start_call(live)
    assert wait_until(lambda: leg.ended, timeout=10), "the app never gave up on a silent caller"
    settle(live, leg)
    prompts = [r["body"]["payload"] for r in accepted(live, leg.call_control_id, "gather_using_speak")]
    assert len(prompts) == 3 and all(p.startswith("Sorry, I did not hear a choice.") for p in prompts[1:])


def test_pressing_0_transfers_once_with_the_reason_in_client_state(live: Simulation) -> None:
    leg = start_call(live)
    live.emulator.press(leg, "0")  # produces both call.dtmf.received and call.gather.ended
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    [transfer] = accepted(live, leg.call_control_id, "transfer")
    body = transfer["body"]
    assert (body["to"], body["from"]) == (FIRST_AGENT, OUR_NUMBER)
    assert "\n" not in body["client_state"]
    state = json.loads(base64.b64decode(body["client_state"], validate=True))
    assert state == {"reason": "caller pressed 0 for the operator", "rule": "dtmf_0", "attempt": 1}
    [record] = store(live).transfers(leg.call_control_id)
    assert (record.status, record.command_id) == (TransferStatus.CONNECTED, body["command_id"])
    assert store(live).get_call(leg.call_control_id).status == CallStatus.TRANSFERRED
    # The transfer docs name call.bridged on the new leg (B) only; the caller's call still closes
    # as transferred from that one event.
    bridged = [e for e in leg.log.timeline if e["kind"] == "webhook" and e["type"] == "call.bridged"]
    assert len(bridged) == 1


def test_agent_leg_is_never_answered_by_the_ivr(live: Simulation) -> None:
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    [agent_id] = leg.agent_legs
    assert live.emulator.commands_for(agent_id) == []
    assert store(live).get_call(agent_id) is None


def test_transfer_sent_once_on_duplicate_webhook(live: Simulation) -> None:
    leg = start_call(live)
    payload = {**leg.base_payload(), "digit": "0"}
    responses = [post_signed(live, "call.dtmf.received", payload, event_id="evt-zero") for _ in range(3)]
    assert [r.get_json()["result"] for r in responses] == ["handled", "duplicate", "duplicate"]
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    assert len(live.emulator.commands_for(leg.call_control_id, "transfer")) == 1


def test_concurrent_trigger_deliveries_produce_exactly_one_transfer(live: Simulation) -> None:
    leg = start_call(live)
    payload = {**leg.base_payload(), "transcription_data": {
        "transcript": "get me an operator", "confidence": 0.9, "is_final": True}}
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def deliver(n: int) -> None:
        barrier.wait()
        statuses.append(post_signed(live, "call.transcription", payload, event_id=f"evt-{n}").status_code)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    assert len(live.emulator.commands_for(leg.call_control_id, "transfer")) == 1
    assert len(store(live).messages(leg.call_control_id)) == 10


def test_unanswered_agent_moves_on_to_the_next_then_apologises(live: Simulation) -> None:
    leg = start_call(live, agent="no_answer")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2, 5)
    settle(live, leg)
    assert [t["body"]["to"] for t in accepted(live, leg.call_control_id, "transfer")] == [FIRST_AGENT,
                                                                                         SECOND_AGENT]
    transfers = store(live).transfers(leg.call_control_id)
    assert [(t.status, t.hangup_cause) for t in transfers] == [(TransferStatus.FAILED, "timeout")] * 2
    offer = accepted(live, leg.call_control_id, "gather_using_speak")[-1]["body"]
    assert offer["payload"] == ("Sorry, all of our agents are busy right now. To go back to the menu, "
                                "press 1. To leave a message after the tone, press 2.")
    assert offer["valid_digits"] == "12"
    assert store(live).get_call(leg.call_control_id).status == CallStatus.MENU


def test_caller_can_leave_a_message_when_no_agent_answers(live: Simulation) -> None:
    leg = start_call(live, agent="busy")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2, 5)
    live.emulator.press(leg, "2")
    assert wait_until(lambda: bool(accepted(live, leg.call_control_id, "record_start")))
    [record] = accepted(live, leg.call_control_id, "record_start")
    assert (record["body"]["play_beep"], record["body"]["max_length"], record["body"]["format"]) == (
        True, 120, "wav")
    prompt = accepted(live, leg.call_control_id, "speak")[-1]
    assert prompt["body"]["payload"].startswith("Please leave your message after the tone")
    # The beep and the recording start once the prompt has been said, not while it plays.
    spoken = [e for e in leg.log.timeline if e["kind"] == "webhook" and e["type"] == "call.speak.ended"]
    assert spoken and leg.log.t_ms(record["t"]) >= spoken[-1]["t_ms"]
    time.sleep(0.1)  # 2 s of message in scenario time
    live.emulator.caller_hangs_up(leg)
    settle(live, leg)
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).recording_status == "kept", 5)
    call = store(live).get_call(leg.call_control_id)
    assert (call.status, call.outcome) == (CallStatus.ENDED, "voicemail")
    # Linked without a call_control_id on call.recording.saved, and kept on disk with its checksum.
    kept = Path(call.recording_path)
    assert kept.is_file() and hashlib.sha256(kept.read_bytes()).hexdigest() == call.recording_sha256
    assert call.recording_duration_s is not None and call.recording_duration_s >= 1.0


def test_caller_can_go_back_to_the_menu_when_no_agent_answers(live: Simulation) -> None:
    leg = start_call(live, agent="reject")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2, 5)
    live.emulator.press(leg, "1")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 3, 5)
    menu = accepted(live, leg.call_control_id, "gather_using_speak")[-1]["body"]["payload"]
    assert menu.startswith("For your account balance, press 1.")
    assert store(live).get_call(leg.call_control_id).menu == "main"
    # Ending in the menu after no agent took the caller is a missed escalation, not a finished call.
    live.emulator.caller_hangs_up(leg)
    settle(live, leg)
    call = store(live).get_call(leg.call_control_id)
    assert (call.status, call.outcome) == (CallStatus.ENDED, "no_agent")


@pytest.mark.parametrize("behaviour", ["busy", "reject"])
def test_busy_or_rejecting_agents_are_recorded_with_their_cause(live: Simulation, behaviour: str) -> None:
    leg = start_call(live, agent=behaviour)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(store(live).transfers(leg.call_control_id)) == 2
                      and store(live).transfers(leg.call_control_id)[1].status == TransferStatus.FAILED)
    cause = {"busy": "user_busy", "reject": "call_rejected"}[behaviour]
    assert {t.hangup_cause for t in store(live).transfers(leg.call_control_id)} == {cause}


def test_pressing_0_again_after_every_agent_failed_gets_an_apology_not_silence(live: Simulation) -> None:
    leg = start_call(live, agent="busy")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2, 5)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) >= 3, 5)
    settle(live, leg)
    assert len(accepted(live, leg.call_control_id, "transfer")) == 2
    later = [r["body"]["payload"] for r in accepted(live, leg.call_control_id, "gather_using_speak")[2:]]
    assert later and all(p.endswith("To leave a message after the tone, press 2.") for p in later)


def test_caller_hanging_up_while_the_agent_rings_cancels_the_transfer(live: Simulation) -> None:
    leg = start_call(live)
    live.emulator.press(leg, "0")
    assert wait_until(lambda: bool(leg.agent_legs))
    assert wait_until(lambda: bool(store(live).transfers(leg.call_control_id))
                      and store(live).transfers(leg.call_control_id)[0].agent_call_control_id is not None)
    live.emulator.caller_hangs_up(leg)
    settle(live, leg)
    [transfer] = store(live).transfers(leg.call_control_id)
    assert transfer.status == TransferStatus.CANCELLED
    call = store(live).get_call(leg.call_control_id)
    assert (call.status, call.outcome) == (CallStatus.ENDED, "abandoned")
    agent = live.emulator.leg(leg.agent_legs[0])
    assert agent is not None and agent.ended and not agent.answered


def test_command_after_caller_hangup_ends_quietly_as_call_ended(
        live: Simulation, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    live.emulator.inject(Fault("gather_using_speak", hold=release))
    leg = live.emulator.incoming_call()
    assert wait_until(lambda: leg.answered)
    assert wait_until(lambda: bool(store(live).outbox(leg.call_control_id)[1:]))
    with caplog.at_level(logging.INFO):
        live.emulator.caller_hangs_up(leg)
        leg.log.wait_quiet(5)
        release.set()
        settle(live, leg)
    gather = [o for o in store(live).outbox(leg.call_control_id) if o.command.name == "gather_using_speak"]
    assert [o.status for o in gather] == [CommandStatus.CALL_ENDED]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_webhook_is_acknowledged_while_telnyx_is_still_busy(live: Simulation) -> None:
    release = threading.Event()
    live.emulator.inject(Fault("answer", hold=release))
    leg = live.emulator.incoming_call()
    assert leg.log.wait_quiet(5), "the call.initiated webhook was not acknowledged"
    [ack] = [e for e in leg.log.timeline if e["kind"] == "webhook"]
    assert ack["status"] == 200
    assert not leg.answered, "the ack should not have waited for the answer command"
    release.set()
    assert wait_until(lambda: leg.answered)


def test_state_survives_a_restart_mid_call(live: Simulation) -> None:
    leg = start_call(live)
    live.restart_app()
    live.emulator.press(leg, "3")
    assert wait_until(lambda: len(accepted(live, leg.call_control_id, "gather_using_speak")) == 2)
    prompts = [r["body"]["payload"] for r in accepted(live, leg.call_control_id, "gather_using_speak")]
    assert prompts[-1].startswith("To block a lost or stolen card")
    live.emulator.press(leg, "0")
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    assert store(live).get_call(leg.call_control_id).status == CallStatus.TRANSFERRED


def test_commands_left_pending_are_resent_with_the_same_command_id(live: Simulation) -> None:
    live.emulator.inject(Fault("answer", status=503, times=4))
    leg = live.emulator.incoming_call()
    lifeline = live.app.extensions["lifeline"]  # type: ignore[union-attr]
    assert wait_until(lambda: [o.status for o in lifeline.store.outbox(leg.call_control_id)]
                      == [CommandStatus.PENDING]
                      and len(live.emulator.commands_for(leg.call_control_id)) == 4)
    lifeline.sender.wait_idle(5)
    assert lifeline.sender.resend_due(older_than_s=0) == 1
    assert live.emulator.wait_for_gather(leg, 5)
    answers = live.emulator.commands_for(leg.call_control_id, "answer")
    assert [a["status"] for a in answers] == [503, 503, 503, 503, 200]
    assert len({a["command_id"] for a in answers}) == 1


def test_call_record_api_shows_the_decision_transfer_and_transcript(live: Simulation) -> None:
    leg = start_call(live)
    body, headers = make_signer(live.emulator)("call.transcription", {
        **leg.base_payload(), "transcription_data": {"transcript": "get me a supervisor", "is_final": True}})
    live.app.test_client().post("/webhooks/telnyx", data=body, headers=headers)  # type: ignore[union-attr]
    assert wait_until(lambda: leg.log.bridged)
    settle(live, leg)
    client = live.app.test_client()  # type: ignore[union-attr]
    auth = {"Authorization": "Bearer test-token"}
    assert client.get(f"/api/calls/{leg.call_control_id}").status_code == 401
    assert client.get("/api/calls", headers={"Authorization": "Bearer wrong"}).status_code == 401
    detail = client.get(f"/api/calls/{leg.call_control_id}", headers=auth).get_json()
    assert (detail["call"]["status"], detail["call"]["rule"]) == ("transferred", "caller_intent")
    assert detail["decisions"][0]["rule"] == "caller_intent"
    assert detail["decisions"][0]["evidence"][0]["intents"]["wants_person"] >= 0.9
    assert detail["messages"][0]["analysis"]["intents"]["wants_person"] >= 0.9  # kept with the message
    assert detail["transfers"][0]["status"] == "connected"
    assert detail["messages"][0]["text"] == "get me a supervisor"
    assert [c["name"] for c in detail["commands"]][:2] == ["answer", "gather_using_speak"]
    listing = client.get("/api/calls?active=1", headers=auth).get_json()
    assert [c["call_control_id"] for c in listing["calls"]] == [leg.call_control_id]
    assert client.get("/api/calls/v3:nope", headers=auth).status_code == 404
    assert client.get("/api/calls?limit=x", headers=auth).get_json()["error"]["status"] == 400
    assert client.get("/healthz").get_json()["status"] == "ok"
    client.post("/dashboard/signin", data={"token": "test-token"})
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"Live calls" in page.data


def test_calls_api_is_off_until_a_token_is_configured(app) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().get("/api/calls")
    assert response.status_code == 403
    assert "set LIFELINE_API_TOKEN" in response.get_json()["error"]["message"]


def test_a_hash_key_in_the_menu_is_routed_not_swallowed_as_the_terminator(tmp_path: Path) -> None:
    ivr = tmp_path / "ivr.yaml"
    ivr.write_text('greeting: Hello.\nstart: main\nmenus:\n  main:\n    prompt: Press hash to leave.\n'
                   '    options:\n      "#": {say: "You pressed hash.", then: goodbye}\n')
    with Simulation({"LIFELINE_AGENTS": "+15550001111", "LIFELINE_IVR": str(ivr)}, speed=20) as sim:
        leg = start_call(sim)
        sim.emulator.press(leg, "#")
        assert wait_until(lambda: bool(accepted(sim, leg.call_control_id, "speak")), 5)
        assert accepted(sim, leg.call_control_id, "speak")[0]["body"]["payload"].startswith(
            "You pressed hash.")
        assert sim.emulator.refused == []


def test_every_change_of_a_calls_status_is_on_the_feed_so_a_live_view_knows_where_it_is(
        live: Simulation) -> None:
    leg = start_call(live)
    live.emulator.press(leg, "0")
    # The app has taken the bridge (the emulator's record of sending it is not enough: a hangup
    # sent at once may be handled first).
    assert wait_until(lambda: store(live).get_call(leg.call_control_id).status == CallStatus.TRANSFERRED)
    live.emulator.caller_hangs_up(leg)
    outputs = live.app.extensions["lifeline"].outputs.store  # type: ignore[union-attr]
    assert wait_until(lambda: bool(outputs.feed_for_call(leg.call_control_id, ("call.ended",))), 5)
    feed = outputs.feed_for_call(leg.call_control_id, ("status", "call.ended"))
    assert [(e.kind, e.data.get("status")) for e in feed] == [
        ("status", "menu"), ("status", "transferring"), ("status", "transferred"), ("call.ended", None)]
