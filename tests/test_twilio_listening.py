"""Changing what Lifeline hears on a Twilio call: pause, resume, and both parties after a bridge.

Twilio stops a Stream or Transcription only by its SID or name; the emulator keeps every one a
call starts, as Twilio does, so a stream that is never stopped goes on being heard.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.insight import tracks
from lifeline.ivr.config import load_settings
from lifeline.ivr.store import CallStatus, Command, CommandStatus
from lifeline.providers.twilio.listening import start_name
from lifeline.simulator.audio import load_pcmu
from lifeline.simulator.faults import Fault
from lifeline.simulator.legs import CallLog
from lifeline.simulator.runner import Simulation
from lifeline.simulator.twilio.emulator import TwilioEmulator, TwilioLeg

from .conftest import AGENTS, ROOT, wait_until
from .conftest import TWILIO_PUBLIC as PUBLIC
from .test_twilio import SID, call_form, command, post, render, rest_client, twilio_only_config, twiml

AUTH = {"Authorization": "Bearer test-token"}
CALLER_AUDIO = ROOT / "examples" / "calls" / "audio"
AGENT_AUDIO = ROOT / "examples" / "conversation" / "audio"
UNUSED_NAME = "lifeline-0000000000000000"


def simulation(engine: str, speed: float) -> Simulation:
    """The app and the Twilio emulator, with the API open to AUTH."""
    return Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": "test-token"}, engine=engine,
                      speed=speed, provider="twilio")


@pytest.fixture
def streamed() -> Iterator[Simulation]:
    """Twilio streams the call's audio to the local engine."""
    with simulation("local", speed=1) as sim:
        yield sim


@pytest.fixture
def transcribed() -> Iterator[Simulation]:
    """Twilio's own real-time transcription (the twilio engine)."""
    with simulation("twilio", speed=20) as sim:
        yield sim


def lifeline(sim: Simulation) -> Any:
    return sim.app.extensions["lifeline"]  # type: ignore[union-attr]


def answered(sim: Simulation) -> TwilioLeg:
    """A caller in the menu, heard through what the answer started."""
    leg: TwilioLeg = sim.emulator.incoming_call()
    assert sim.emulator.wait_for_gather(leg, 10)
    if sim.config["LIFELINE_ENGINE"] == "local":
        assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5, 10)
    return leg


def set_listening(sim: Simulation, leg: TwilioLeg, paused: bool) -> None:
    """Pause or resume through the API, and wait until the provider has been told."""
    response = sim.app.test_client().post(  # type: ignore[union-attr]
        f"/api/calls/{leg.call_control_id}/listening", json={"paused": paused}, headers=AUTH)
    assert response.status_code == 200 and response.get_json()["changed"] is True
    assert lifeline(sim).sender.wait_idle(10)


def requests(sim: Simulation, leg: TwilioLeg, *names: str) -> list[dict[str, Any]]:
    """The REST requests Twilio got for the call, of the names given."""
    return [r for r in sim.emulator.requests
            if r["call_control_id"] == leg.call_control_id and r["name"] in names]


def bridged(sim: Simulation, leg: TwilioLeg) -> None:
    """The caller presses 0 and the first agent answers; wait for listening to be widened."""
    sim.emulator.press(leg, "0")
    assert wait_until(lambda: leg.bridged_with is not None, 15)
    assert wait_until(lambda: len(requests(sim, leg, "streams", "transcriptions")) == 1, 10)
    assert lifeline(sim).sender.wait_idle(10)


def feed(sim: Simulation, leg: TwilioLeg) -> list[tuple[str, str]]:
    """Every line published for the call: (party, text)."""
    events = lifeline(sim).outputs.store.feed_for_call(leg.call_control_id, ("message",))
    return [(e.data["party"], e.data["text"]) for e in events]


# ----- names in TwiML, and the engines that change provider transcription ---------------------------

def test_the_answer_names_what_it_starts_and_a_retried_voice_webhook_keeps_that_name(
        twilio_app: Flask) -> None:
    first = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form(), idempotency="retry-1"))
    again = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form(), idempotency="retry-1"))
    outbox = twilio_app.extensions["lifeline"].store.outbox(SID)
    [answer] = [e.command for e in outbox if e.command.name == "answer"]
    transcriptions = [root.find("Start/Transcription") for root in (first, again)]
    # The retry's TwiML starts what the queued answer names: a later stop names the one that runs.
    assert [t.get("name") for t in transcriptions] == [start_name(answer)] * 2  # type: ignore[union-attr]
    assert transcriptions[0].get("track") == "inbound_track"  # type: ignore[union-attr]
    answer_with_stream = command("answer", stream_url="wss://x/media/telnyx?token=abc.def",
                                 stream_track="inbound_track")
    stream = render(answer_with_stream).find("Start/Stream")
    assert stream is not None and stream.get("name") == start_name(answer_with_stream)
    assert stream.get("name", "").startswith("lifeline-") and stream.get("track") == "inbound_track"


@pytest.mark.parametrize("engine", ["telnyx", "twilio"])
def test_a_provider_transcribing_engine_pauses_resumes_and_hears_both_parties_whatever_its_name(
        app_config: dict[str, object], engine: str) -> None:
    app = create_app({**app_config, "LIFELINE_ENGINE": engine}, migrate=True)
    try:
        listening = app.extensions["lifeline"].engine
        assert tracks.stop(listening, SID) == [("transcription_stop", {})]
        [(name, params)] = tracks.start(listening, SID, both=True)
        assert name == "transcription_start" and params["transcription_tracks"] == "both"
        widened = [n for n, _ in tracks.both_parties(listening, SID)]
        assert widened == ["transcription_stop", "transcription_start"]
    finally:
        app.extensions["lifeline"].close()


# ----- stops Twilio no longer has something for --------------------------------------------------------

def test_a_stop_whose_stream_is_gone_is_done_after_one_request_and_a_stop_of_nothing_sends_none(
        twilio_emulator: TwilioEmulator) -> None:
    leg = twilio_emulator._new_leg("+15551230001", "+15550100000", "inbound", "caller", CallLog("s"))
    client = rest_client(twilio_emulator)
    for name in ("streaming_stop", "transcription_stop"):
        outcome = client.send(Command(f"c-{name}", leg.call_control_id, name, {}), UNUSED_NAME)
        # Done, not CALL_ENDED: that would close a call that goes on; not PENDING: resent for ever.
        assert (outcome.status, outcome.attempts) == (CommandStatus.SENT, 1)
    assert [(r["name"], r["target"], r["status"]) for r in twilio_emulator.requests] == [
        ("stream_update", UNUSED_NAME, 404), ("transcription_update", UNUSED_NAME, 404)]
    nothing = client.send(Command("c-none", leg.call_control_id, "streaming_stop", {}), None)
    assert nothing.status == CommandStatus.SENT and len(twilio_emulator.requests) == 2


def test_a_pause_whose_transcription_twilio_no_longer_has_is_settled_and_not_resent(
        transcribed: Simulation) -> None:
    leg = answered(transcribed)
    transcribed.emulator.inject(Fault("transcription_update", times=1, status=404, code="20404"))
    set_listening(transcribed, leg, paused=True)
    store = lifeline(transcribed).store
    [stop] = [e for e in store.outbox(leg.call_control_id) if e.command.name == "transcription_stop"]
    assert stop.status == CommandStatus.SENT and stop.attempts == 1
    assert lifeline(transcribed).sender.resend_due(0.0, 0.0) == 0
    assert len(requests(transcribed, leg, "transcription_update")) == 1
    assert store.get_call(leg.call_control_id).status == CallStatus.MENU  # the call goes on


def test_a_stop_twilio_could_not_take_is_resent_by_the_sweep_under_the_name_of_what_it_stops(
        transcribed: Simulation) -> None:
    leg = answered(transcribed)
    [first] = leg.transcriptions
    transcribed.emulator.inject(Fault("transcription_update", times=4, status=503, code="20503"))
    set_listening(transcribed, leg, paused=True)  # every attempt refused before Twilio acted
    store = lifeline(transcribed).store
    [stop] = [e for e in store.outbox(leg.call_control_id) if e.command.name == "transcription_stop"]
    assert stop.status == CommandStatus.PENDING and leg.transcribing
    # The outbox resends it through its router, to TwilioProvider.send.
    assert lifeline(transcribed).sender.resend_due(0.0, 0.0) == 1
    assert lifeline(transcribed).sender.wait_idle(10)
    resent = requests(transcribed, leg, "transcription_update")[-1]
    assert (resent["target"], resent["status"]) == (first.name, 200) and not leg.transcribing
    [settled] = [e for e in store.outbox(leg.call_control_id) if e.command.name == "transcription_stop"]
    assert settled.status == CommandStatus.SENT


# ----- the local engine: Twilio streams the audio ------------------------------------------------------

def test_pausing_a_streamed_call_stops_its_named_stream_and_no_more_audio_arrives(
        streamed: Simulation) -> None:
    leg = answered(streamed)
    first = leg.streamer
    set_listening(streamed, leg, paused=True)
    [stop] = requests(streamed, leg, "stream_update")
    assert (stop["target"], stop["body"], stop["status"]) == (first.name, {"Status": "stopped"}, 200)
    assert first.stopped and leg.streamer is None  # nothing of the call is streamed any more
    media = streamed.app.extensions["media_streams"]  # type: ignore[union-attr]
    assert wait_until(lambda: media.count() == 0, 5)  # Twilio's `stop` closed the app's socket
    sent = first.sent_frames
    time.sleep(0.3)
    assert first.sent_frames == sent


def test_resuming_a_streamed_call_starts_one_new_named_stream_so_each_line_is_heard_once(
        streamed: Simulation) -> None:
    leg = answered(streamed)
    first = leg.streamer
    set_listening(streamed, leg, paused=True)
    set_listening(streamed, leg, paused=False)
    [start] = requests(streamed, leg, "streams")
    assert start["status"] == 201 and start["body"]["Track"] == "inbound_track"
    assert start["body"]["Name"].startswith("lifeline-") and start["body"]["Name"] != first.name
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5, 10)
    assert [s.name for s in leg.live_streams("inbound")] == [start["body"]["Name"]]
    streamed.emulator.say(leg, "", 0, audio=load_pcmu(CALLER_AUDIO / "01-calm-balance-1.wav"))
    store = lifeline(streamed).store
    assert wait_until(lambda: len(store.messages(leg.call_control_id)) > 0, 20)
    lifeline(streamed).engine.wait_idle(20)
    time.sleep(0.5)  # a second stream's copy of the line would come in now
    assert len(store.messages(leg.call_control_id)) == 1


def test_after_a_bridge_the_callers_stream_stops_before_a_both_tracks_stream_starts_and_the_agent_is_heard(
        streamed: Simulation) -> None:
    leg = answered(streamed)
    first = leg.streamer
    bridged(streamed, leg)
    changes = requests(streamed, leg, "stream_update", "streams")
    assert [(r["name"], r["status"]) for r in changes] == [("stream_update", 200), ("streams", 201)]
    assert changes[0]["target"] == first.name and changes[1]["body"]["Track"] == "both_tracks"
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5, 10)
    assert first.stopped and [s.track for s in leg.live_streams("inbound")] == ["both_tracks"]
    words = "Hello, this is Dana from cards. I'm sorry about your card."
    assert streamed.emulator.agent_says(leg, words, 3.0, audio=load_pcmu(AGENT_AUDIO / "agent-1.wav"))
    assert wait_until(lambda: any(party == "agent" for party, _ in feed(streamed, leg)), 20)
    lifeline(streamed).engine.wait_idle(20)
    agent = " ".join(text.lower() for party, text in feed(streamed, leg) if party == "agent")
    assert "card" in agent
    assert not lifeline(streamed).store.messages(leg.call_control_id)  # the agent is not the caller


# ----- the twilio engine: Twilio transcribes -----------------------------------------------------------

def test_pausing_and_resuming_twilio_transcription_stops_it_by_name_and_starts_exactly_one_more(
        transcribed: Simulation) -> None:
    leg = answered(transcribed)
    [first] = leg.transcriptions
    assert first.name is not None and first.name.startswith("lifeline-") and first.track == "inbound_track"
    set_listening(transcribed, leg, paused=True)
    [stop] = requests(transcribed, leg, "transcription_update")
    assert (stop["target"], stop["body"], stop["status"]) == (first.name, {"Status": "stopped"}, 200)
    assert not leg.transcribing
    transcribed.emulator.say(leg, "my card number is 4111 1111 1111 1111", 0.1)
    set_listening(transcribed, leg, paused=False)
    [start] = requests(transcribed, leg, "transcriptions")
    assert start["body"]["Track"] == "inbound_track" and start["body"]["Name"] not in (None, first.name)
    assert [t.name for t in leg.transcriptions if not t.stopped] == [start["body"]["Name"]]
    transcribed.emulator.say(leg, "Thanks, that is all.", 0.1)
    assert leg.log.wait_quiet(5)
    stored = lifeline(transcribed).store.messages(leg.call_control_id)
    assert [m["text"] for m in stored] == ["Thanks, that is all."]


def test_a_transcription_resumed_mid_utterance_hears_only_the_words_after_the_resume(
        transcribed: Simulation) -> None:
    leg = answered(transcribed)
    set_listening(transcribed, leg, paused=True)
    words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet "
             "kilo lima mike november oscar papa quebec romeo sierra tango").split()
    # 40 s of speech at speed 20: 2 real seconds, resumed about half way through.
    speaking = threading.Thread(target=transcribed.emulator.say, args=(leg, " ".join(words), 40.0))
    speaking.start()
    time.sleep(1.0)
    set_listening(transcribed, leg, paused=False)
    speaking.join(10)
    assert leg.log.wait_quiet(5)
    [heard] = [m["text"] for m in lifeline(transcribed).store.messages(leg.call_control_id)]
    kept = heard.split()
    # Only a tail of the utterance: what was said before the transcription restarted is not in it.
    assert kept == words[len(words) - len(kept):] and 1 <= len(kept) <= 12, heard


def test_after_a_bridge_twilio_transcribes_both_tracks_and_the_agents_words_are_the_agents(
        transcribed: Simulation) -> None:
    leg = answered(transcribed)
    [first] = leg.transcriptions
    bridged(transcribed, leg)
    changes = requests(transcribed, leg, "transcription_update", "transcriptions")
    assert [(r["name"], r["status"]) for r in changes] == [
        ("transcription_update", 200), ("transcriptions", 201)]
    assert changes[0]["target"] == first.name and changes[1]["body"]["Track"] == "both_tracks"
    assert [t.track for t in leg.transcriptions if not t.stopped] == ["both_tracks"]
    assert transcribed.emulator.agent_says(leg, "I can sort out that refund for you today", 0.1)
    transcribed.emulator.say(leg, "Thank you so much", 0.1)
    assert leg.log.wait_quiet(5)
    assert feed(transcribed, leg)[-2:] == [("agent", "I can sort out that refund for you today"),
                                          ("caller", "Thank you so much")]
    stored = lifeline(transcribed).store.messages(leg.call_control_id)
    assert [m["text"] for m in stored] == ["Thank you so much"]


def test_a_twilio_voicemail_is_fetched_with_the_account_credentials_and_kept(transcribed: Simulation) -> None:
    leg = transcribed.emulator.incoming_call(agent="busy")
    assert transcribed.emulator.wait_for_gather(leg, 10)
    transcribed.emulator.press(leg, "0")  # the operator is busy: then the offer of a message
    assert wait_until(lambda: leg.gather is None, 5)
    assert transcribed.emulator.wait_for_gather(leg, 15)
    transcribed.emulator.press(leg, "2")
    assert wait_until(lambda: leg.recording is not None, 10)
    time.sleep(0.2)  # a few seconds of message in scenario time
    transcribed.emulator.caller_hangs_up(leg)
    store = lifeline(transcribed).store
    assert wait_until(lambda: store.get_call(leg.call_control_id).recording_status == "kept", 15), \
        store.get_call(leg.call_control_id)
    call = store.get_call(leg.call_control_id)
    assert call.outcome == "voicemail" and call.recording_attempts == 1
    assert Path(call.recording_path).read_bytes() in transcribed.emulator.recordings.values()


# ----- the emulator is as strict as Twilio's docs ------------------------------------------------------

def test_the_emulator_refuses_a_name_used_before_on_the_call_and_stops_one_by_name_or_sid(
        twilio_emulator: TwilioEmulator) -> None:
    leg = twilio_emulator._new_leg("+15551230001", "+15550100000", "inbound", "caller", CallLog("s"))
    sid = leg.call_control_id
    started = twilio_emulator.rest("transcriptions", sid, {"Name": "t1", "Track": "both_tracks"})
    assert started[0] == 201 and started[1]["name"] == "t1"
    assert twilio_emulator.rest("transcriptions", sid, {"Name": "t1"})[0] == 400
    assert twilio_emulator.rest("transcription_update", sid, {"Status": "stopped"}, "t1")[0] == 200
    assert twilio_emulator.rest("transcriptions", sid, {"Name": "t1"})[0] == 400  # a stopped one's too
    second = twilio_emulator.rest("transcriptions", sid, {"Name": "t2"})[1]["sid"]
    assert twilio_emulator.rest("transcription_update", sid, {"Status": "stopped"}, second)[0] == 200
    assert twilio_emulator.rest("transcription_update", sid, {"Status": "stopped"}, "t3")[0] == 404
    assert not leg.transcribing


# ----- Twilio's transcription settings ------------------------------------------------------------

def test_twilio_transcribes_in_the_whole_locale_while_telnyx_engines_get_its_primary_subtag(
        app_config: dict[str, object], twilio_emulator: TwilioEmulator) -> None:
    app = create_app({**app_config, **twilio_emulator.app_settings(), "LIFELINE_PUBLIC_URL": PUBLIC,
                      "LIFELINE_ENGINE": "twilio", "LIFELINE_TRANSCRIPTION_LANGUAGE": "es-US"}, migrate=True)
    lifeline = app.extensions["lifeline"]
    try:
        answered = twiml(post(app, "/webhooks/twilio/voice", call_form(), token=twilio_emulator.auth_token))
        assert answered.find("Start/Transcription").get("languageCode") == "es-US"  # type: ignore[union-attr]
        leg = twilio_emulator._new_leg("+15551230001", "+15550100000", "inbound", "caller", CallLog("s"))
        [(name, params)] = tracks.start(lifeline.engine, leg.call_control_id, both=False)  # a resume
        sent = app.extensions["lifeline_twilio"].provider.send_batch(
            [Command("resume-1", leg.call_control_id, name, params)])
        assert sent.status == CommandStatus.SENT
        assert twilio_emulator.requests[-1]["body"]["LanguageCode"] == "es-US"
        # Telnyx calls of the same deployment: its engine takes the short code.
        assert lifeline.settings.transcription_config["transcription_engine_config"]["language"] == "es"
    finally:
        lifeline.close()


@pytest.mark.parametrize("telnyx_too", [False, True])
def test_telnyx_transcription_settings_twilios_engine_ignores_are_a_startup_warning_naming_each(
        app_config: dict[str, object], tmp_path: Path, telnyx_too: bool) -> None:
    given = {"LIFELINE_TRANSCRIPTION_ENGINE": "Deepgram", "LIFELINE_TRANSCRIPTION_MODEL": "deepgram/nova-3",
             "LIFELINE_TRANSCRIPTION_LANGUAGE": "en-US"}
    config = {**(app_config if telnyx_too else {}), **twilio_only_config(tmp_path), **given}
    warnings = [w for w in load_settings(config, tmp_path).warnings if "Twilio's real-time" in w]
    assert [w.split("=")[0] for w in warnings] == ["LIFELINE_TRANSCRIPTION_ENGINE",
                                                   "LIFELINE_TRANSCRIPTION_MODEL"]
    assert all(w.endswith("it applies to Telnyx calls only" if telnyx_too else "unset it") for w in warnings)
    heard_by_telnyx = load_settings({**config, "LIFELINE_ENGINE": "local"}, tmp_path)
    assert not [w for w in heard_by_telnyx.warnings if "Twilio's real-time" in w]
