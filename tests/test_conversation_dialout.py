"""Dial out and analyse: the far end is heard (never escalated), then transcript, summary and email."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller

from lifeline.conversation.dialout import allowed
from lifeline.conversation.settings import load_output_settings
from lifeline.ivr.errors import ConfigError
from lifeline.simulator.caller import far_end_player
from lifeline.simulator.legs import Leg
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario

from .conftest import AGENTS, ROOT, wait_until
from .test_conversation_out import AUTH, TOKEN, Inbox, free_port

FAR_END = "+15557770000"
SCENARIO = ROOT / "examples" / "conversation" / "conference-bridge.yaml"


def dial_config(port: int) -> dict[str, Any]:
    return {"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": TOKEN,
            "TELNYX_CONNECTION_ID": "1494404757140276705",
            "LIFELINE_DIAL_FROM": "+15550100000", "LIFELINE_SMTP_URL": f"smtp://127.0.0.1:{port}"}


def test_a_dial_out_call_is_heard_summarised_and_emailed() -> None:
    port = free_port()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with Simulation(dial_config(port), speed=20) as sim:
            sim.emulator.far_ends[FAR_END] = far_end_player(sim.emulator, load_scenario(SCENARIO))
            client = sim.app.test_client()  # type: ignore[union-attr]
            placed = client.post("/api/calls", headers=AUTH,
                                 json={"to": FAR_END, "dtmf": "1234#", "summary_to": "Me <me@example.com>"})
            assert placed.status_code == 201, placed.get_json()
            ccid = placed.get_json()["call_control_id"]
            [dialled] = [r for r in sim.emulator.requests if r["name"] == "dial"]
            assert dialled["body"]["to"] == FAR_END and dialled["body"]["from"] == "+15550100000"
            outputs = sim.app.extensions["conversation"]  # type: ignore[union-attr]
            assert wait_until(lambda: outputs.summaries.get(ccid) is not None, 20)
            leg = sim.emulator.leg(ccid)
            assert leg is not None and leg.dtmf_received == "1234#"
            sent = [c for c in sim.emulator.commands_for(ccid, "send_dtmf") if c["status"] == 200]
            assert len(sent) == 1
            assert not sim.emulator.commands_for(ccid, "gather_using_speak")  # no menu on a dial-out
            transcript = client.get(f"/api/calls/{ccid}/transcript", headers=AUTH).get_json()
            assert [(m["party"], m["text"]) for m in transcript["messages"]] == [
                ("far_end", "Welcome to the quarterly review. Can everyone hear me?"),
                ("far_end", "This is terrible, I want to speak to a person, the numbers are awful."),
                ("far_end", "I'll send the revised budget by Friday. Please cancel the Monday meeting.")]
            store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
            assert store.decisions(ccid) == [] and not sim.emulator.commands_for(ccid, "transfer")
            summary = outputs.summaries.get(ccid)["summary"]
            assert summary["outcome"] == "completed" and summary["to"] == FAR_END
            assert [a["text"] for a in summary["action_items"]] == [
                "I'll send the revised budget by Friday.", "Please cancel the Monday meeting."]
            assert wait_until(lambda: bool(inbox.messages), 10)
            assert inbox.messages[0]["To"] == "Me <me@example.com>"
    finally:
        smtp.stop()


def test_dial_out_refuses_bad_requests_and_changes_nothing() -> None:
    with Simulation(dial_config(free_port()), speed=20) as sim:
        client = sim.app.test_client()  # type: ignore[union-attr]
        for body in ({"to": "5551234"}, {"to": FAR_END, "dtmf": "12;rm"},
                     {"to": FAR_END, "summary_to": "nobody"}, {"to": FAR_END, "extra": 1}, {}):
            response = client.post("/api/calls", headers=AUTH, json=body)
            assert response.status_code == 400, body
        assert client.post("/api/calls", json={"to": FAR_END}).status_code == 401
        assert not [r for r in sim.emulator.requests if r["name"] == "dial"]
        assert sim.app.extensions["lifeline"].store.list_calls() == []  # type: ignore[union-attr]


def test_a_dial_telnyx_refuses_is_a_422_naming_the_provider_and_records_no_call() -> None:
    with Simulation(dial_config(free_port()), speed=20) as sim:
        sim.emulator.api_key = "another-key"  # Telnyx refuses our key: HTTP 401
        response = sim.app.test_client().post(  # type: ignore[union-attr]
            "/api/calls", headers=AUTH, json={"to": FAR_END})
        error = response.get_json()["error"]
        assert (response.status_code, error["code"]) == (422, "provider_error")
        assert error["message"].startswith("Telnyx refused the dial: HTTP 401")
        assert sim.app.extensions["lifeline"].store.list_calls() == []  # type: ignore[union-attr]


def test_flask_dial_places_the_call_and_names_it() -> None:
    with Simulation(dial_config(free_port()), speed=20) as sim:
        sim.emulator.far_ends[FAR_END] = far_end_player(sim.emulator, load_scenario(SCENARIO))
        runner = sim.app.test_cli_runner()  # type: ignore[union-attr]
        result = runner.invoke(args=["dial", FAR_END, "--dtmf", "99#"])
        assert result.exit_code == 0, result.output
        ccid = result.output.strip().rsplit(" ", 1)[-1]
        outputs = sim.app.extensions["conversation"]  # type: ignore[union-attr]
        assert wait_until(lambda: outputs.summaries.get(ccid) is not None, 20)
        assert sim.emulator.leg(ccid).dtmf_received == "99#"  # type: ignore[union-attr]
        bad = runner.invoke(args=["dial", "not-a-number"])
        assert bad.exit_code != 0 and "E.164" in bad.output


def test_a_telnyx_dial_out_transcribes_from_the_answer_without_a_second_start() -> None:
    # The far end speaks the instant it answers, before the app could have reacted to
    # `call.answered`: only a dial that asked for transcription itself hears these words.
    with Simulation(dial_config(free_port()), speed=20) as sim:
        first_words = "Hello, this is the bridge."

        def speaks_at_once(leg: Leg) -> None:
            sim.emulator.say(leg, first_words, 0)
            sim.emulator.caller_hangs_up(leg)

        sim.emulator.far_ends[FAR_END] = speaks_at_once
        client = sim.app.test_client()  # type: ignore[union-attr]
        placed = client.post("/api/calls", headers=AUTH, json={"to": FAR_END})
        assert placed.status_code == 201, placed.get_json()
        ccid = placed.get_json()["call_control_id"]
        [dialled] = [r for r in sim.emulator.requests if r["name"] == "dial"]
        settings = sim.app.extensions["lifeline"].settings  # type: ignore[union-attr]
        assert dialled["body"]["transcription"] is True
        assert dialled["body"]["transcription_config"] == settings.transcription_config
        outputs = sim.app.extensions["conversation"]  # type: ignore[union-attr]
        assert wait_until(lambda: outputs.summaries.get(ccid) is not None, 20)
        transcript = client.get(f"/api/calls/{ccid}/transcript", headers=AUTH).get_json()
        assert [(m["party"], m["text"]) for m in transcript["messages"]] == [("far_end", first_words)]
        assert sim.emulator.commands_for(ccid, "transcription_start") == []


class _DownUnits:
    """A unit of work whose database is down."""

    def run(self, event: Any, work: Any) -> Any:
        from lifeline.ivr.errors import StoreError
        raise StoreError("database unavailable: OperationalError")


def test_a_dialled_call_the_store_could_not_record_is_hung_up_not_left_ringing() -> None:
    with Simulation(dial_config(free_port()), speed=20) as sim:
        outputs = sim.app.extensions["conversation"]  # type: ignore[union-attr]
        outputs.dialout._units = _DownUnits()
        response = sim.app.test_client().post("/api/calls", headers=AUTH, json={"to": FAR_END})  # type: ignore[union-attr]
        assert response.status_code == 503
        [dial] = [r for r in sim.emulator.requests if r["name"] == "dial"]
        hangups = [r for r in sim.emulator.requests
                   if r["name"] == "hangup" and r["call_control_id"] == dial["call_control_id"]]
        assert [h["status"] for h in hangups] == [200]


def test_a_dial_whose_answer_times_out_is_504_then_recorded_from_its_first_event_and_a_keyed_retry_rings_once(
        ) -> None:
    from lifeline.simulator.faults import Fault
    config = {**dial_config(free_port()), "LIFELINE_COMMAND_TIMEOUT": "0.5"}
    with Simulation(config, speed=20) as sim:
        client = sim.app.test_client()  # type: ignore[union-attr]
        store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
        keyed = {**AUTH, "Idempotency-Key": "dial-7f3a"}
        sim.emulator.inject(Fault("dial", delay_s=1.5))  # Telnyx places the call, answers too late
        late = client.post("/api/calls", headers=keyed, json={"to": FAR_END, "summary_to": "me@example.com"})
        error = late.get_json()["error"]
        assert (late.status_code, error["code"]) == (504, "provider_timeout")
        assert "may have been placed" in error["message"] and "Idempotency-Key" in error["message"]
        # Not lost: its first event records it, with what the request asked.
        assert wait_until(lambda: len(store.list_calls()) == 1, 10)
        [call] = store.list_calls()
        assert (call.to_number, call.status) in {(FAR_END, "dialing"), (FAR_END, "analysing")}
        started = [e.data for e in sim.app.extensions["conversation"].store.feed_for_call(  # type: ignore[union-attr]
            call.call_control_id, ("call.started",))]
        assert [(s["direction"], s["summary_to"]) for s in started] == [("outbound", "me@example.com")]
        # The client retries as told, with the same key: Telnyx ignores a dial it has seen, no second ring.
        again = client.post("/api/calls", headers=keyed, json={"to": FAR_END, "summary_to": "me@example.com"})
        assert again.status_code == 201 and again.get_json()["call_control_id"] == call.call_control_id
        dials = [r for r in sim.emulator.requests if r["name"] == "dial"]
        assert len(dials) == 2 and len({d["command_id"] for d in dials}) == 1
        assert len(store.list_calls()) == 1
        # The same key for another number names another request: that number is dialled.
        other = client.post("/api/calls", headers=keyed, json={"to": "+15557770001"})
        assert other.status_code == 201 and other.get_json()["call_control_id"] != call.call_control_id
        assert client.post("/api/calls", headers={**AUTH, "Idempotency-Key": "é"},
                           json={"to": FAR_END}).status_code == 400


def test_a_destination_outside_the_dial_allow_list_is_refused_by_name_and_never_dialled() -> None:
    config = {**dial_config(free_port()), "LIFELINE_DIAL_ALLOW": "+44, +1555777, sip:conf.example.com"}
    with Simulation(config, speed=20) as sim:
        client = sim.app.test_client()  # type: ignore[union-attr]
        refused = client.post("/api/calls", headers=AUTH, json={"to": "+19005550100"})
        error = refused.get_json()["error"]
        assert (refused.status_code, error["code"]) == (403, "dial_out_not_allowed")
        assert "LIFELINE_DIAL_ALLOW" in error["message"] and "+44, +1555777" in error["message"]
        runner = sim.app.test_cli_runner()  # type: ignore[union-attr]
        cli = runner.invoke(args=["dial", "sip:bridge@conf.example.com.evil.test"])
        assert cli.exit_code != 0 and "LIFELINE_DIAL_ALLOW" in cli.output
        assert not [r for r in sim.emulator.requests if r["name"] == "dial"]
        assert sim.app.extensions["lifeline"].store.list_calls() == []  # type: ignore[union-attr]
        sim.emulator.far_ends[FAR_END] = far_end_player(sim.emulator, load_scenario(SCENARIO))
        assert client.post("/api/calls", headers=AUTH, json={"to": FAR_END}).status_code == 201  # +1555777...


@pytest.mark.parametrize(("to", "expected"), [
    ("+447700900123", True), ("+15557770000", True), ("+15557780000", False), ("+19005550100", False),
    ("sip:bridge@conf.example.com", True), ("sips:bridge@CONF.example.com:5061;transport=tls", True),
    ("sip:bridge@conf.example.com.evil.test", False), ("sip:bridge@other.example.com", False),
])
def test_the_allow_list_matches_numbers_by_prefix_and_sip_uris_by_their_whole_domain(
        to: str, expected: bool) -> None:
    assert allowed(to, ("+44", "+1555777", "sip:conf.example.com")) is expected


@pytest.mark.parametrize("entry", ["44", "+44 20", "+1-900", "sip:", "conf.example.com", "+1234567890123456"])
def test_a_malformed_dial_allow_entry_is_named_at_start(entry: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_output_settings({"LIFELINE_DIAL_ALLOW": f"+44,{entry}"})
    [problem] = caught.value.problems
    assert problem.setting == "LIFELINE_DIAL_ALLOW" and "E.164 prefixes" in problem.message
