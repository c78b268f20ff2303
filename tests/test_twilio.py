"""Twilio: signed webhooks, duplicates, the TwiML Lifeline emits, Media Streams, REST and transfers."""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from lifeline import create_app
from lifeline.insight.frames import MalformedFrame
from lifeline.ivr.context import command_id_for
from lifeline.ivr.errors import ConfigError, StoreError
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.store import CallStatus, Command, CommandStatus, TransferStatus
from lifeline.ivr.telnyx_api import SendOutcome
from lifeline.providers import Provider, ProviderCommands, WebhookRequest
from lifeline.providers.twilio.frames import parse_twilio_frame
from lifeline.providers.twilio.rest import TwilioCommands
from lifeline.providers.twilio.settings import TwilioSettings
from lifeline.providers.twilio.twiml import TwimlRenderer
from lifeline.simulator.faults import Fault
from lifeline.simulator.legs import CallLog, Leg
from lifeline.simulator.report import print_call
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario
from lifeline.simulator.twilio.emulator import TwilioEmulator

from .conftest import AGENTS, wait_until
from .conftest import TWILIO_ACCOUNT as ACCOUNT
from .conftest import TWILIO_PUBLIC as PUBLIC
from .conftest import TWILIO_TOKEN as TOKEN

SID = "CA" + "1" * 32


def twilio_only_config(tmp_path: Path) -> dict[str, object]:
    """A deployment with a Twilio number and no Telnyx settings at all."""
    return {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
            "LIFELINE_PUBLIC_URL": PUBLIC, "LIFELINE_ENGINE": "twilio", "LIFELINE_AGENTS": AGENTS,
            "LIFELINE_API_TOKEN": "test-api-token-0123", "LIFELINE_DIAL_FROM": "+15550100000",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'lifeline.db'}"}


@pytest.fixture
def twilio_only_app(tmp_path: Path) -> Iterator[Flask]:
    """An app that answers a Twilio number only: no Telnyx settings."""
    application = create_app(twilio_only_config(tmp_path), migrate=True)
    yield application
    application.extensions["lifeline"].close()


def post(app: Flask, path: str, form: dict[str, str], *, token: str = TOKEN, signed_url: str | None = None,
         idempotency: str | None = None, tamper: dict[str, str] | None = None) -> TestResponse:
    """POST a form the way Twilio does, signed over the public URL (or the one given)."""
    signature = RequestValidator(token).compute_signature(signed_url or f"{PUBLIC}{path}", form)
    headers = {"X-Twilio-Signature": signature}
    if idempotency:
        headers["I-Twilio-Idempotency-Token"] = idempotency
    return app.test_client().post(path, data={**form, **(tamper or {})}, headers=headers)


def call_form(sid: str = SID, **extra: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT, "From": "+15551230001", "To": "+15550100000",
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


def twiml(response: TestResponse) -> ET.Element:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response"
    return root


# ----- signatures ---------------------------------------------------------------------------------

def test_a_signed_voice_webhook_is_answered_with_transcription_and_the_menu(twilio_app: Flask) -> None:
    root = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form()))
    transcription = root.find("Start/Transcription")
    assert transcription is not None
    assert transcription.get("statusCallbackUrl") == f"{PUBLIC}/webhooks/twilio/transcription"
    assert transcription.get("track") == "inbound_track"
    gather = root.find("Gather")
    assert (gather is not None and gather.get("numDigits") == "1"
            and gather.get("actionOnEmptyResult") == "true")
    assert gather.get("action", "").startswith(f"{PUBLIC}/webhooks/twilio/gather?step=")
    say = gather.find("Say")
    assert say is not None and "Thank you for calling" in (say.text or "")
    assert say.get("voice") == "Polly.Joanna-Neural"
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and call.status == CallStatus.MENU


@pytest.mark.parametrize("how", ["forged", "tampered", "wrong_url", "unsigned"])
def test_an_unverifiable_request_gets_403_and_touches_nothing(twilio_app: Flask, how: str) -> None:
    path = "/webhooks/twilio/voice"
    if how == "unsigned":
        response = twilio_app.test_client().post(path, data=call_form())
    else:
        response = post(twilio_app, path, call_form(),
                        token="not-the-auth-token" if how == "forged" else TOKEN,
                        tamper={"From": "+15559999999"} if how == "tampered" else None,
                        signed_url=("http://10.0.0.5:8000/webhooks/twilio/voice" if how == "wrong_url"
                                    else None))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "invalid_signature"
    lifeline = twilio_app.extensions["lifeline"]
    assert lifeline.store.get_call(SID) is None
    assert lifeline.store.events(SID) == []


def test_a_request_signed_with_a_webhooks_shared_key_is_403_naming_that_not_the_auth_token(
        twilio_app: Flask) -> None:
    form = call_form()
    signature = RequestValidator("webhooks-shared-key-secret").compute_signature(
        f"{PUBLIC}/webhooks/twilio/voice", form, algorithm="HMAC_SHA256")
    response = twilio_app.test_client().post("/webhooks/twilio/voice", data=form, headers={
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"})
    message = response.get_json()["error"]["message"]
    assert response.status_code == 403 and "shared key ('HMAC_SHA256')" in message
    assert "TWILIO_AUTH_TOKEN" not in message
    assert twilio_app.extensions["lifeline"].store.get_call(SID) is None


def test_a_malformed_call_sid_is_400_not_500(twilio_app: Flask) -> None:
    response = post(twilio_app, "/webhooks/twilio/voice", call_form(sid="CA-not-a-sid"))
    assert response.status_code == 400
    assert "Call SID" in response.get_json()["error"]["message"]


def test_twilios_rfc_2822_timestamp_is_stored_as_iso_8601_and_an_unreadable_one_as_none(
        twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form(Timestamp="Tue, 01 Nov 2016 03:59:13 +0200"))
    post(twilio_app, "/webhooks/twilio/status", call_form(CallStatus="completed", Timestamp="yesterday"))
    store = twilio_app.extensions["lifeline"].store
    assert [(e["event_type"], e["occurred_at"]) for e in store.events(SID)] == [
        ("call.initiated", "2016-11-01T01:59:13Z"), ("call.answered", "2016-11-01T01:59:13Z"),
        ("call.hangup", None)]
    extreme = post(twilio_app, "/webhooks/twilio/status", call_form(  # a year past 9999 overflows
        sid="CA" + "7" * 32, CallStatus="completed", Timestamp="Tue, 01 Nov 99999999999 01:59:13 +0000"))
    assert extreme.status_code == 204
    assert [e["occurred_at"] for e in store.events("CA" + "7" * 32)] == [None]


# ----- duplicates ---------------------------------------------------------------------------------

def test_a_retried_voice_webhook_has_no_second_effect_and_still_gets_twiml(twilio_app: Flask) -> None:
    first = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form(), idempotency="retry-1"))
    again = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form(), idempotency="retry-1"))
    lifeline = twilio_app.extensions["lifeline"]
    names = [entry.command.name for entry in lifeline.store.outbox(SID)]
    assert names == ["answer", "gather_using_speak"]
    assert len(lifeline.store.events(SID)) == 2  # call.initiated and call.answered, once each
    # Twilio only retries when our answer did not reach it: the retry still starts listening and the menu.
    assert again.find("Start/Transcription") is not None and again.find("Gather") is not None
    assert first.find("Gather/Say").text == again.find("Gather/Say").text  # type: ignore[union-attr]


def test_a_duplicated_key_press_is_routed_once(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    form = call_form(CallStatus="in-progress", Digits="1")
    first = twiml(post(twilio_app, "/webhooks/twilio/gather?step=a", form, idempotency="key-1"))
    twiml(post(twilio_app, "/webhooks/twilio/gather?step=a", form, idempotency="key-1"))
    lifeline = twilio_app.extensions["lifeline"]
    gathers = [e for e in lifeline.store.outbox(SID) if e.command.name == "gather_using_speak"]
    assert len(gathers) == 2  # the greeting's menu and the balance menu; the duplicate added none
    assert "checking account" in (first.find("Gather/Say").text or "").lower()  # type: ignore[union-attr]


def test_a_captured_request_replayed_with_a_new_idempotency_token_does_not_act_again(
        twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    form = call_form(CallStatus="in-progress", Digits="1")
    twiml(post(twilio_app, "/webhooks/twilio/gather?step=r", form, idempotency="twilio-1"))
    # The token is not signed: anyone holding the signed request can send it again with another.
    replayed = twiml(post(twilio_app, "/webhooks/twilio/gather?step=r", form, idempotency="forged-2"))
    store = twilio_app.extensions["lifeline"].store
    assert [e["event_type"] for e in store.events(SID)].count("call.gather.ended") == 1
    assert [e.command.name for e in store.outbox(SID)].count("gather_using_speak") == 2  # greeting, balance
    assert "checking account" in (replayed.find("Gather/Say").text or "")  # type: ignore[union-attr]


def test_menus_said_again_on_resume_and_answered_with_the_same_key_are_each_routed(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    said = []
    for _ in range(2):  # the menu the call is in, as a resume says it; then the caller presses 1
        held = follow(twilio_app, ET.fromstring(f'<Redirect method="POST">{PUBLIC}/webhooks/twilio/resume'
                                                '</Redirect>'))
        gather = held.find("Gather")
        assert gather is not None
        said.append(follow(twilio_app, ET.fromstring(f'<Redirect method="POST">{gather.get("action")}'
                                                     '</Redirect>'), Digits="1"))
    assert "checking account" in (said[0].find("Gather/Say").text or "")  # main -> balance
    assert "checking balance" in (said[1].find("Gather/Say").text or "")  # balance -> its `say`


# ----- the call flow through Twilio's endpoints ------------------------------------------------------

def test_a_key_press_is_answered_after_one_write_to_the_store_which_records_the_answer_sent(
        twilio_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    store = twilio_app.extensions["lifeline"].store
    writes: list[str] = []
    unit, mark = store.unit, store.mark_command

    def counted_unit() -> Any:
        writes.append("unit")
        return unit()

    def counted_mark(*args: Any) -> bool:
        writes.append("mark_command")
        return bool(mark(*args))

    monkeypatch.setattr(store, "unit", counted_unit)
    monkeypatch.setattr(store, "mark_command", counted_mark)
    root = twiml(post(twilio_app, "/webhooks/twilio/gather?step=p", call_form(CallStatus="in-progress",
                                                                             Digits="0")))
    assert root.find("Dial") is not None and writes == ["unit"]
    transfer = next(e for e in store.outbox(SID) if e.command.name == "transfer")
    assert (transfer.status, transfer.attempts) == (CommandStatus.SENT, 1)


def test_the_operator_key_dials_the_first_agent_with_the_reason_in_the_whisper(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    root = twiml(post(twilio_app, "/webhooks/twilio/gather?step=b",
                      call_form(CallStatus="in-progress", Digits="0")))
    dial = root.find("Dial")
    assert dial is not None and dial.get("timeout") == "30" and dial.get("callerId") == "+15550100000"
    action = urlsplit(dial.get("action", ""))
    assert action.path == "/webhooks/twilio/dial" and parse_qs(action.query) == {"caller": [SID],
                                                                                 "attempt": ["1"]}
    number = dial.find("Number")
    assert number is not None and number.text == AGENTS.split(",")[0]
    assert "initiated ringing answered completed" == number.get("statusCallbackEvent")
    whisper_query = urlsplit(number.get("url", "")).query
    whisper = twiml(post(twilio_app, f"/webhooks/twilio/whisper?{whisper_query}",
                         call_form(sid="CA" + "3" * 32, CallStatus="in-progress", Direction="outbound-dial")))
    assert "pressed 0" in (whisper.find("Say").text or "")  # type: ignore[union-attr]
    transfer = twilio_app.extensions["lifeline"].store.transfers(SID)[0]
    assert transfer.status == TransferStatus.REQUESTED and transfer.rule == "dtmf_0"


def dial_outcome(app: Flask, attempt: int, status: str, bridged: str | None = None) -> ET.Element:
    form = call_form(CallStatus="in-progress", DialCallStatus=status,
                     DialCallSid="CA" + str(attempt + 4) * 32,
                     **({"DialBridged": bridged} if bridged is not None else {}))
    return twiml(post(app, f"/webhooks/twilio/dial?caller={SID}&attempt={attempt}", form))


def test_an_agent_who_does_not_answer_leads_to_the_next_then_to_the_apology_menu(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    post(twilio_app, "/webhooks/twilio/gather?step=c", call_form(CallStatus="in-progress", Digits="0"))
    second = dial_outcome(twilio_app, 1, "no-answer")
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]
    offer = dial_outcome(twilio_app, 2, "busy")
    assert offer.find("Dial") is None
    assert "leave a message" in (offer.find("Gather/Say").text or "")  # type: ignore[union-attr]
    lifeline = twilio_app.extensions["lifeline"]
    transfers = lifeline.store.transfers(SID)
    assert [(t.status, t.hangup_cause) for t in transfers] == [
        (TransferStatus.FAILED, "timeout"), (TransferStatus.FAILED, "user_busy")]
    assert lifeline.store.get_call(SID).status == CallStatus.MENU  # type: ignore[union-attr]


def test_a_dial_call_status_twilio_does_not_document_is_logged_and_leads_to_the_next_agent(
        twilio_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    post(twilio_app, "/webhooks/twilio/gather?step=c2", call_form(CallStatus="in-progress", Digits="0"))
    with caplog.at_level("WARNING", logger="lifeline.providers.twilio.events"):
        second = dial_outcome(twilio_app, 1, "screened-out")  # a 400 would be Twilio's "application error"
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]
    [first, _] = twilio_app.extensions["lifeline"].store.transfers(SID)
    assert (first.status, first.hangup_cause) == (TransferStatus.FAILED, "unspecified")
    assert "'screened-out'" in caplog.text


def follow(app: Flask, redirect: ET.Element | None, **form: str) -> ET.Element:
    """What Twilio gets when it follows a <Redirect> of ours, as the caller's call."""
    assert redirect is not None and redirect.get("method") == "POST"
    url = urlsplit(redirect.text or "")
    assert f"{url.scheme}://{url.netloc}" == PUBLIC
    return twiml(post(app, f"{url.path}?{url.query}" if url.query else url.path,
                      call_form(CallStatus="in-progress", **form), idempotency=str(uuid.uuid4())))


def leave_a_message(app: Flask) -> ET.Element:
    """No agent takes the call, the caller chooses voicemail: the document that records."""
    post(app, "/webhooks/twilio/voice", call_form())
    post(app, "/webhooks/twilio/gather?step=d", call_form(CallStatus="in-progress", Digits="0"))
    dial_outcome(app, 1, "failed")
    dial_outcome(app, 2, "no-answer")
    prompt = twiml(post(app, "/webhooks/twilio/gather?step=e",
                        call_form(CallStatus="in-progress", Digits="2")))
    # The beep and the recording wait until "leave a message after the tone" has been said.
    assert prompt.find("Record") is None and prompt.find("Say") is not None
    redirect = prompt.find("Redirect")
    assert redirect is not None and "spoken" in (redirect.text or "")
    return follow(app, redirect)


def test_the_voicemail_choice_records_after_the_last_agent(twilio_app: Flask) -> None:
    root = leave_a_message(twilio_app)
    record = root.find("Record")
    assert record is not None and record.get("playBeep") == "true" and record.get("maxLength") == "120"
    post(twilio_app, "/webhooks/twilio/recording", call_form(  # plain http, and not Twilio's API host
        CallStatus="completed", RecordingStatus="completed", RecordingUrl="http://elsewhere.example/RE0"))
    assert twilio_app.extensions["lifeline"].store.get_call(SID).recording_url is None
    post(twilio_app, "/webhooks/twilio/recording", call_form(
        CallStatus="completed", RecordingStatus="completed", RecordingUrl="https://api.twilio.com/rec/RE1"))
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and call.recording_url == "https://api.twilio.com/rec/RE1.mp3"


def test_a_recorded_message_is_followed_by_the_goodbye_and_then_the_hangup(twilio_app: Flask) -> None:
    root = leave_a_message(twilio_app)
    record = root.find("Record")
    # Set, not Twilio's defaults (5 s of silence, any key): a pause or a key pressed mid-message
    # would end it.
    assert record is not None and (record.get("timeout"), record.get("finishOnKey")) == ("10", "#")
    assert [verb.tag for verb in root] == ["Record", "Redirect"]  # an empty recording requests no action
    assert urlsplit(root.find("Redirect").text or "").path == "/webhooks/twilio/recorded"  # type: ignore[union-attr]
    thanks = follow(twilio_app, ET.fromstring(f'<Redirect method="POST">{record.get("action")}</Redirect>'),
                    RecordingUrl="https://api.twilio.com/rec/RE2", RecordingDuration="12", Digits="#")
    assert [verb.tag for verb in thanks] == ["Say", "Redirect"]
    assert thanks.find("Say").text == "Thank you for calling Lifeline Bank. Goodbye."  # type: ignore[union-attr]
    again = follow(twilio_app, ET.fromstring(f'<Redirect method="POST">{record.get("action")}</Redirect>'),
                   RecordingUrl="https://api.twilio.com/rec/RE2", RecordingDuration="12", Digits="#")
    assert again.find("Say") is None  # Twilio's retry of the action: thanked once (the monitor hangs up)
    assert [verb.tag for verb in follow(twilio_app, thanks.find("Redirect"))] == ["Hangup"]
    said = [e.command.params["payload"] for e in twilio_app.extensions["lifeline"].store.outbox(SID)
            if e.command.name == "speak"]
    assert said.count("Thank you for calling Lifeline Bank. Goodbye.") == 1


def answer_as_agent(app: Flask, agent: str, step: str) -> None:
    """The caller presses 0, and the first agent's phone reports the answer (before the whisper)."""
    post(app, "/webhooks/twilio/voice", call_form())
    post(app, f"/webhooks/twilio/gather?step={step}", call_form(CallStatus="in-progress", Digits="0"))
    response = post(app, f"/webhooks/twilio/agent?caller={SID}&attempt=1",
                    call_form(sid=agent, CallStatus="in-progress", Direction="outbound-dial",
                              ParentCallSid=SID))
    assert response.status_code == 204


def on_agent_leg(app: Flask, agent: str, step: str, attempt: int = 1) -> ET.Element:
    """A document Twilio asks for on an agent's answered leg: the whisper, or its end (`whispered`,
    which only an agent still on the line asks for)."""
    return twiml(post(app, f"/webhooks/twilio/{step}?caller={SID}&attempt={attempt}",
                      call_form(sid=agent, CallStatus="in-progress", Direction="outbound-dial",
                                ParentCallSid=SID)))


def whisper_to(app: Flask, agent: str) -> ET.Element:
    """The whisper document Twilio runs on the agent's leg once they answer."""
    return on_agent_leg(app, agent, "whisper")


def test_an_answered_agent_is_connected_once_the_whisper_is_heard_and_the_end_of_the_bridge_hangs_up(
        twilio_app: Flask) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "f")
    lifeline = twilio_app.extensions["lifeline"]
    # Answered is not connected: Twilio runs the whisper on the agent's leg first.
    assert lifeline.store.get_call(SID).status == CallStatus.TRANSFERRING  # type: ignore[union-attr]
    assert lifeline.store.transfers(SID)[0].status == TransferStatus.RINGING
    whisper = whisper_to(twilio_app, agent)
    assert [verb.tag for verb in whisper] == ["Say", "Redirect"]
    done = urlsplit(whisper.find("Redirect").text or "")  # type: ignore[union-attr]
    assert done.path == "/webhooks/twilio/whispered"
    heard = twiml(post(twilio_app, f"/webhooks/twilio/whispered?{done.query}",
                       call_form(sid=agent, CallStatus="in-progress", Direction="outbound-dial",
                                 ParentCallSid=SID)))
    assert list(heard) == []  # the whisper's document ends empty: Twilio connects the two
    assert lifeline.store.get_call(SID).status == CallStatus.TRANSFERRED  # type: ignore[union-attr]
    [transfer] = lifeline.store.transfers(SID)
    assert (transfer.status, transfer.agent_call_control_id) == (TransferStatus.CONNECTED, agent)
    end = dial_outcome(twilio_app, 1, "completed")
    assert [verb.tag for verb in end] == ["Hangup"]  # the agent hung up: the call is over
    assert lifeline.store.transfers(SID)[0].status == TransferStatus.CONNECTED


@pytest.mark.parametrize("reported", ["completed", "no-answer"])
def test_an_agent_who_hangs_up_during_the_whisper_is_not_connected_and_the_next_agent_is_dialled(
        twilio_app: Flask, reported: str) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "g")
    whisper_to(twilio_app, agent)  # the agent puts the phone down while it is said
    second = dial_outcome(twilio_app, 1, reported)
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]
    lifeline = twilio_app.extensions["lifeline"]
    first = lifeline.store.transfers(SID)[0]
    assert first.status == TransferStatus.FAILED
    assert first.hangup_cause == ("dial_completed" if reported == "completed" else "timeout")
    assert lifeline.store.get_call(SID).status == CallStatus.TRANSFERRING  # type: ignore[union-attr]


def test_a_whisper_heard_after_its_attempt_failed_connects_nobody_and_the_next_agent_still_rings(
        twilio_app: Flask) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "i")
    second = dial_outcome(twilio_app, 1, "completed")  # the Dial action overtook the whisper's end
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]
    let_go = on_agent_leg(twilio_app, agent, "whispered")
    assert [verb.tag for verb in let_go] == ["Hangup"]  # agent 1 is let go
    lifeline = twilio_app.extensions["lifeline"]
    assert [t.status for t in lifeline.store.transfers(SID)] == [TransferStatus.FAILED,
                                                                 TransferStatus.REQUESTED]
    assert lifeline.store.get_call(SID).status == CallStatus.TRANSFERRING  # type: ignore[union-attr]
    offer = dial_outcome(twilio_app, 2, "no-answer")  # and the apology follows, not a hang-up
    assert "leave a message" in (offer.find("Gather/Say").text or "")  # type: ignore[union-attr]


def test_a_whisper_heard_after_the_caller_was_offered_the_apology_leaves_them_in_the_menu(
        twilio_app: Flask) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "j")
    dial_outcome(twilio_app, 1, "completed")
    dial_outcome(twilio_app, 2, "busy")
    assert [verb.tag for verb in on_agent_leg(twilio_app, agent, "whispered")] == ["Hangup"]
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and (call.status, call.menu) == (CallStatus.MENU, "_after_agents")
    transfers = twilio_app.extensions["lifeline"].store.transfers(SID)
    assert all(t.status == TransferStatus.FAILED for t in transfers)


def hear_the_whisper_out(app: Flask, agent: str, attempt: int = 1) -> None:
    """The agent hears the whisper to its end and Lifeline answers its last request: connected."""
    assert list(on_agent_leg(app, agent, "whispered", attempt)) == []


@pytest.mark.parametrize("reported", ["completed", "no-answer"])
def test_a_connection_twilio_says_it_never_bridged_moves_on_to_the_next_agent_once(
        twilio_app: Flask, reported: str) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "k")
    hear_the_whisper_out(twilio_app, agent)
    lifeline = twilio_app.extensions["lifeline"]
    assert lifeline.store.get_call(SID).status == CallStatus.TRANSFERRED  # type: ignore[union-attr]
    # Our answer never reached Twilio in time: the agent's leg ends without the two joined.
    second = dial_outcome(twilio_app, 1, reported, bridged="false")
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]
    assert second.find("Hangup") is None
    call = lifeline.store.get_call(SID)
    assert call is not None and (call.status, call.outcome) == (CallStatus.TRANSFERRING, None)
    assert [(t.status, t.hangup_cause) for t in lifeline.store.transfers(SID)] == [
        (TransferStatus.FAILED, "not_bridged"), (TransferStatus.REQUESTED, None)]
    # Both parties were heard from the bridge on; the caller alone is again, or the menu's prompts
    # would be filed as the agent's words.
    listening = [(e.command.name, e.command.params.get("transcription_tracks"))
                 for e in lifeline.store.outbox(SID) if e.command.name.startswith("transcription_")]
    assert listening == [("transcription_stop", None), ("transcription_start", "both"),
                         ("transcription_stop", None), ("transcription_start", "inbound")]
    again = dial_outcome(twilio_app, 1, reported, bridged="false")  # Twilio's retry of the action
    assert again.find("Dial") is None  # no second ring of agent 2
    assert len([e for e in lifeline.store.outbox(SID) if e.command.name == "transfer"]) == 2


def test_the_last_agent_never_bridged_leaves_the_caller_in_the_apology_menu_not_hung_up(
        twilio_app: Flask) -> None:
    agent = "CA" + "6" * 32
    answer_as_agent(twilio_app, agent, "l")
    dial_outcome(twilio_app, 1, "busy", bridged="false")
    post(twilio_app, f"/webhooks/twilio/agent?caller={SID}&attempt=2",
         call_form(sid=agent, CallStatus="in-progress", Direction="outbound-dial", ParentCallSid=SID))
    hear_the_whisper_out(twilio_app, agent, attempt=2)
    offer = dial_outcome(twilio_app, 2, "completed", bridged="false")
    assert offer.find("Hangup") is None
    assert "leave a message" in (offer.find("Gather/Say").text or "")  # type: ignore[union-attr]
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and (call.status, call.menu) == (CallStatus.MENU, "_after_agents")


def test_a_bridged_conversations_end_still_hangs_up_whatever_dial_bridged_says(twilio_app: Flask) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "m")
    hear_the_whisper_out(twilio_app, agent)
    assert [verb.tag for verb in dial_outcome(twilio_app, 1, "completed", bridged="true")] == ["Hangup"]
    assert twilio_app.extensions["lifeline"].store.transfers(SID)[0].status == TransferStatus.CONNECTED


def test_a_whispers_end_whose_bridge_cannot_be_recorded_lets_the_agent_go_and_the_caller_moves_on(
        twilio_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "n")
    store = twilio_app.extensions["lifeline"].store
    healthy = store.unit

    @contextmanager
    def commit_fails() -> Iterator[Any]:
        with healthy() as tx:
            yield tx
            raise StoreError("database unavailable: connection lost")  # rolled back

    monkeypatch.setattr(store, "unit", commit_fails)
    assert [verb.tag for verb in on_agent_leg(twilio_app, agent, "whispered")] == ["Hangup"]
    monkeypatch.setattr(store, "unit", healthy)
    assert store.transfers(SID)[0].status == TransferStatus.RINGING  # nothing was kept
    second = dial_outcome(twilio_app, 1, "completed", bridged="false")
    assert second.find("Dial/Number").text == AGENTS.split(",")[1]  # type: ignore[union-attr]


@pytest.mark.parametrize("dial_first", [False, True])
def test_the_whispers_end_is_answered_from_its_unit_of_work_not_from_a_read_after_it(
        twilio_app: Flask, monkeypatch: pytest.MonkeyPatch, dial_first: bool) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "o")
    if dial_first:
        dial_outcome(twilio_app, 1, "completed")  # the attempt failed: agent 2 rings now
    store = twilio_app.extensions["lifeline"].store

    def down(*args: object) -> None:
        raise StoreError("database unavailable: connection lost")

    for read in ("get_call", "transfers"):  # the store's own reads, outside any unit of work
        monkeypatch.setattr(store, read, down)
    answer = [verb.tag for verb in on_agent_leg(twilio_app, agent, "whispered")]
    monkeypatch.undo()
    assert answer == (["Hangup"] if dial_first else [])  # never agent 1 joined while agent 2 rings
    expected = TransferStatus.FAILED if dial_first else TransferStatus.CONNECTED
    assert store.transfers(SID)[0].status == expected


def test_an_agent_who_finishes_the_whisper_after_the_caller_left_is_let_go(twilio_app: Flask) -> None:
    agent = "CA" + "4" * 32
    answer_as_agent(twilio_app, agent, "h")
    whisper = whisper_to(twilio_app, agent)
    post(twilio_app, "/webhooks/twilio/status", call_form(CallStatus="completed"))  # the caller hangs up
    done = urlsplit(whisper.find("Redirect").text or "")  # type: ignore[union-attr]
    heard = twiml(post(twilio_app, f"/webhooks/twilio/whispered?{done.query}",
                       call_form(sid=agent, CallStatus="in-progress", Direction="outbound-dial",
                                 ParentCallSid=SID)))
    assert [verb.tag for verb in heard] == ["Hangup"]
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and call.status == CallStatus.ENDED and call.outcome != "transferred"


def test_a_transcribed_utterance_is_heard_once_and_can_escalate(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    form = call_form(CallStatus="in-progress", TranscriptionEvent="transcription-content", Final="true",
                     Track="inbound_track", TranscriptionSid="GT1", SequenceId="1",
                     TranscriptionData=json.dumps({"transcript": "get me a real person now",
                                                   "confidence": 0.9}))
    for _ in range(2):
        assert post(twilio_app, "/webhooks/twilio/transcription", form).status_code == 204
    lifeline = twilio_app.extensions["lifeline"]
    assert [m["text"] for m in lifeline.store.messages(SID)] == ["get me a real person now"]
    assert len(lifeline.store.transfers(SID)) == 1


def test_a_failed_stream_is_restarted_once_then_listening_is_lost(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    lifeline = twilio_app.extensions["lifeline"]
    for stream in ("MZ1", "MZ1", "MZ2"):
        form = call_form(CallStatus="in-progress", StreamSid=stream, StreamEvent="stream-error",
                         StreamError="connection refused")
        assert post(twilio_app, "/webhooks/twilio/stream", form).status_code == 204
    call = lifeline.store.get_call(SID)
    assert call is not None and call.listening == "lost"


def test_a_transcription_error_tells_the_call_its_words_are_no_longer_heard(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    lifeline = twilio_app.extensions["lifeline"]
    form = call_form(CallStatus="in-progress", TranscriptionSid="GT" + "1" * 32,
                     TranscriptionEvent="transcription-error", TranscriptionError="engine unavailable")
    for _ in range(2):  # a retried callback tells it once
        assert post(twilio_app, "/webhooks/twilio/transcription", form).status_code == 204
    call = lifeline.store.get_call(SID)
    assert call is not None and call.listening == "lost"  # the twilio engine has no stream to restart
    states = [e.data["state"] for e in lifeline.store.feed_events(SID) if e.kind == "listening"]
    assert len(states) == 1


# ----- the TwiML of each command, parsed back -----------------------------------------------------

SETTINGS = TwilioSettings(ACCOUNT, TOKEN, "http://127.0.0.1:9", PUBLIC)


def command(name: str, **params: object) -> Command:
    return Command(command_id_for(SID, name), SID, name, dict(params))


def render(*commands: Command) -> ET.Element:
    return ET.fromstring(str(TwimlRenderer(SETTINGS).render(commands)))


def test_the_local_engine_answer_streams_to_the_token_path_over_wss() -> None:
    root = render(command("answer", stream_url="wss://x/media/telnyx?token=abc.def",
                          stream_track="inbound_track"),
                  command("hangup"))
    stream = root.find("Start/Stream")
    assert stream is not None and stream.get("url") == "wss://lifeline.example.com/media/twilio/abc.def"
    assert stream.get("statusCallback") == f"{PUBLIC}/webhooks/twilio/stream"


def test_a_trailing_say_is_followed_by_the_spoken_redirect_and_nothing_holds_with_a_pause() -> None:
    goodbye = command("speak", payload="Goodbye.", voice="AWS.Polly.Amy-Neural", language="en-GB")
    said = render(goodbye)
    assert [v.tag for v in said] == ["Say", "Redirect"]
    assert said.find("Say").get("voice") == "Polly.Amy-Neural"  # type: ignore[union-attr]
    spoken = f"{PUBLIC}/webhooks/twilio/spoken?step={goodbye.command_id}"  # which speak has been said
    assert (said.find("Redirect").text or "") == spoken  # type: ignore[union-attr]
    held = render()
    assert [v.tag for v in held] == ["Pause", "Redirect"]
    assert (held.find("Redirect").text or "").endswith("/webhooks/twilio/resume")  # type: ignore[union-attr]


def test_a_sip_agent_gets_the_reason_as_sip_headers() -> None:
    root = render(command("transfer", to="sip:agent@example.com", timeout_secs=20,
                          client_state=encode_client_state({"reason": "asked for a person",
                                                            "rule": "keywords",
                                                            "attempt": 1}),
                          target_leg_client_state=encode_client_state({"role": "agent", "caller": SID,
                                                                       "attempt": 1})))
    sip = root.find("Dial/Sip")
    assert sip is not None
    assert sip.text == ("sip:agent@example.com?X-Lifeline-Reason=asked%20for%20a%20person"
                        "&X-Lifeline-Rule=keywords")


# ----- Media Streams messages ---------------------------------------------------------------------

def test_media_streams_messages_parse_into_frames() -> None:
    start = parse_twilio_frame(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ9",
                                           "start": {
        "streamSid": "MZ9", "callSid": SID, "tracks": ["inbound"], "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    assert (start.event, start.stream_id, start.call_control_id, start.encoding, start.sample_rate) == \
        ("start", "MZ9", SID, "PCMU", 8000)
    media = parse_twilio_frame(json.dumps({"event": "media", "sequenceNumber": "2", "streamSid": "MZ9",
                                           "media": {"track": "inbound", "chunk": "7", "timestamp": "140",
                                                     "payload": "//8="}}))
    assert (media.chunk, media.track, media.payload, media.sequence) == (7, "inbound", b"\xff\xff", 2)
    assert parse_twilio_frame('{"event": "mark", "streamSid": "MZ9", "mark": {"name": "x"}}').event == "mark"
    assert parse_twilio_frame('{"event": "stop", "streamSid": "MZ9", "stop": {}}').event == "stop"
    for bad in ("not json", '{"no": "event"}', '{"event": "media", "media": {"payload": "%%%"}}'):
        with pytest.raises(MalformedFrame):
            parse_twilio_frame(bad)


# ----- REST against the emulator ------------------------------------------------------------------

def rest_client(emu: TwilioEmulator) -> TwilioCommands:
    settings = TwilioSettings(emu.account_sid, emu.auth_token, emu.base_url or "", PUBLIC)
    return TwilioCommands(settings, TwimlRenderer(settings), timeout_s=2.0, attempts=3, sleep=lambda s: None)


def test_an_update_on_an_ended_call_is_the_normal_21220_race(twilio_emulator: TwilioEmulator) -> None:
    leg = twilio_emulator._new_leg("+15551230001", "+15550100000", "inbound", "caller", CallLog("s"))
    with twilio_emulator._lock:
        twilio_emulator._end(leg, "completed", notify=False)
    outcome = rest_client(twilio_emulator).send(Command("c1", leg.call_control_id, "hangup", {}))
    assert outcome.status == CommandStatus.CALL_ENDED
    assert [r["status"] for r in twilio_emulator.requests] == [400]


def test_a_refused_update_is_retried_only_when_twilio_surely_did_not_act(
        twilio_emulator: TwilioEmulator) -> None:
    leg = twilio_emulator._new_leg("+15551230001", "+15550100000", "inbound", "caller", CallLog("s"))
    client = rest_client(twilio_emulator)
    twilio_emulator.inject(Fault("update", times=1, status=503, code="20503"))
    assert client.send(Command("c2", leg.call_control_id, "speak",
                               {"payload": "hi"})).status == CommandStatus.SENT
    assert [r["status"] for r in twilio_emulator.requests] == [503, 200]
    twilio_emulator.inject(Fault("update", times=1, status=500, code="20500"))
    outcome = client.send(Command("c3", leg.call_control_id, "speak", {"payload": "hi"}))
    assert outcome.attempts == 1 and [r["status"] for r in twilio_emulator.requests][-1] == 500
    assert ET.fromstring(leg.update or "").find("Say").text == "hi"  # type: ignore[union-attr]


LONG_PROMPT = "Please stay on the line while we look at your account. " * 80  # 4,400 characters


def test_an_update_too_long_for_inline_twiml_is_fetched_from_us_and_runs_whole() -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=20, provider="twilio") as sim:
        leg = sim.emulator.incoming_call()
        assert sim.emulator.wait_for_gather(leg, 10)
        sid = leg.call_control_id
        inline = sim.emulator.rest("update", sid, {"Twiml": f"<Response><Say>{LONG_PROMPT}</Say></Response>"})
        assert (inline[0], inline[1]["code"]) == (400, 32018)  # as Twilio refuses it
        lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
        said = Command("long-1", sid, "speak", {"payload": LONG_PROMPT, "voice": "AWS.Polly.Joanna-Neural"})
        with lifeline.store.unit() as tx:  # queued outside a Twilio request: it goes by REST
            tx.enqueue([said])
        lifeline.sender.submit([said])
        assert lifeline.sender.wait_idle(10)
        [update] = [r for r in sim.emulator.requests if r["name"] == "update" and r["status"] == 200]
        assert "Twiml" not in update["body"] and update["body"]["Method"] == "POST"
        fetched = urlsplit(update["body"]["Url"])
        assert (fetched.path, parse_qs(fetched.query)) == ("/webhooks/twilio/twiml", {"commands": ["long-1"]})
        assert [e.status for e in lifeline.store.outbox(sid) if e.command.command_id == "long-1"] == [
            CommandStatus.SENT]

        def ran() -> bool:  # the emulator fetched the document in place of the menu, and runs it
            return any(e.get("type") == "twilio.redirect" and e["status"] == 200 for e in leg.log.timeline)

        assert wait_until(ran, 10) and not leg.ended and leg.gather is None


def test_the_document_of_a_long_update_holds_only_that_calls_named_commands(twilio_app: Flask) -> None:
    other = "CA" + "9" * 32
    mine = Command("long-2", SID, "speak", {"payload": LONG_PROMPT})
    theirs = Command("long-3", other, "speak", {"payload": "Not for you."})
    with twilio_app.extensions["lifeline"].store.unit() as tx:
        tx.enqueue([mine, theirs])
    root = twiml(post(twilio_app, "/webhooks/twilio/twiml?commands=long-3,long-2",
                      call_form(CallStatus="in-progress")))
    assert [verb.tag for verb in root] == ["Say", "Redirect"]
    assert root.find("Say").text == LONG_PROMPT  # type: ignore[union-attr]


def test_wrong_credentials_are_refused_by_the_emulator_like_twilio(twilio_emulator: TwilioEmulator) -> None:
    settings = TwilioSettings(twilio_emulator.account_sid, "wrong", twilio_emulator.base_url or "", PUBLIC)
    client = TwilioCommands(settings, TwimlRenderer(settings), timeout_s=2.0, attempts=1)
    assert client.send(Command("c4", SID, "hangup", {})).status == CommandStatus.REJECTED


# ----- whole calls through the emulator -------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "calls"


def test_the_example_callers_pass_on_twilio_with_twilio_transcription() -> None:
    names = ["02-asks-for-human.yaml", "03-operator-key.yaml", "04-slow-burn.yaml", "08-agent-no-answer.yaml",
             "09-hangup-mid-menu.yaml", "11-not-angry.yaml"]
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=5, provider="twilio") as sim:
        results = sim.run([load_scenario(EXAMPLES / n) for n in names], concurrency=3)
    failed = {r.scenario.name: r.problems for r in results if not r.passed}
    assert not failed
    no_answer = results[3]
    assert [t["to"] for t in no_answer.transfer_commands] == AGENTS.split(",")
    assert [len(r.transfer_commands) for r in results] == [1, 1, 1, 2, 0, 0]


def test_a_bridged_call_on_twilio_is_recorded_as_transferred() -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=5, provider="twilio") as sim:
        result = sim.run([load_scenario(EXAMPLES / "04-slow-burn.yaml")])[0]
        lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
        assert wait_until(lambda: lifeline.store.get_call(result.leg.call_control_id).status == "ended")
        call = lifeline.store.get_call(result.leg.call_control_id)
    assert result.outcome == "transferred" and call.outcome == "transferred"
    # the rule's reason as a person would say it: its figures are for the console, not the agent's ear
    whispers = [e["text"] for e in result.leg.log.timeline if e.get("type") == "whisper"]
    assert whispers and whispers[0].startswith("Caller coming through: ") and "(" not in whispers[0], whispers
    printed: list[str] = []
    print_call(result, printed.append)  # what `flask simulate --provider twilio` prints
    assert any('agent     hears: "Caller coming through: ' in line for line in printed), printed


def test_a_hangup_that_overtakes_the_voice_webhook_still_closes_the_call(twilio_app: Flask) -> None:
    assert post(twilio_app, "/webhooks/twilio/status", call_form(CallStatus="completed")).status_code == 204
    root = twiml(post(twilio_app, "/webhooks/twilio/voice", call_form()))
    assert root.find("Hangup") is not None and root.find("Gather") is None
    call = twilio_app.extensions["lifeline"].store.get_call(SID)
    assert call is not None and (call.status, call.outcome) == (CallStatus.ENDED, "missed")
    assert call.from_number == call_form()["From"]  # whom to call back


class _Recorder(Provider):
    """A provider that records what it was asked to send (a fake, for the router)."""

    def __init__(self, name: str, prefix: str | None) -> None:
        self.name, self._prefix, self.sent = name, prefix, []  # type: ignore[var-annotated]

    def owns(self, call_control_id: str) -> bool:
        return self._prefix is None or call_control_id.startswith(self._prefix)

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> list:  # type: ignore[type-arg]
        return []

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        self.sent.append(command.call_control_id)
        return SendOutcome(CommandStatus.SENT, 1)

    def parse_media(self, raw: str | bytes):  # type: ignore[no-untyped-def]
        raise MalformedFrame("not used")


def test_commands_go_to_the_provider_that_owns_the_call_and_telnyx_takes_the_rest() -> None:
    telnyx, twilio = _Recorder("telnyx", None), _Recorder("twilio", "CA")
    router = ProviderCommands([telnyx, twilio])
    for ccid in ("v3:abc", SID, "v3:def"):
        router.send(Command("c", ccid, "hangup", {}))
    assert telnyx.sent == ["v3:abc", "v3:def"] and twilio.sent == [SID]


@pytest.mark.parametrize(("extra", "named"), [
    ({"TWILIO_AUTH_TOKEN": TOKEN}, "TWILIO_ACCOUNT_SID is not set: copy the Account SID"),
    ({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "AC123"},
     "TWILIO_ACCOUNT_SID='AC123' is not an Account SID"),
    ({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "SK" + "0" * 32},
     "(SK... is an API Key's SID; the Account SID starts with AC)"),
    ({"TWILIO_ACCOUNT_SID": ACCOUNT}, "TWILIO_AUTH_TOKEN is not set"),
])
def test_half_of_twilios_settings_stops_startup_naming_the_missing_one(
        app_config: dict[str, object], extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app({**app_config, "LIFELINE_PUBLIC_URL": PUBLIC, **extra})
    assert named in str(caught.value)


def test_one_sweep_of_a_deployment_with_twilio_reports_what_it_did(twilio_app: Flask) -> None:
    result = twilio_app.test_cli_runner().invoke(args=["monitor", "--once"])
    assert result.exit_code == 0, result.exception
    assert result.output.startswith("Sweep done:\n  swept 0 active calls\n"), result.output


def test_an_update_whose_connection_drops_after_sending_is_not_repeated_one_never_sent_is() -> None:
    import socket
    import threading

    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def read_then_hang_up() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                        [h for h in data.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
                        .split(b":")[1]):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                received.append(data)  # the whole update arrived; no answer comes

    threading.Thread(target=read_then_hang_up, daemon=True).start()
    port = server.getsockname()[1]
    try:
        settings = TwilioSettings("AC" + "0" * 32, "token", f"http://127.0.0.1:{port}", PUBLIC)
        client = TwilioCommands(settings, TwimlRenderer(settings), timeout_s=2.0, attempts=3,
                                sleep=lambda s: None)
        outcome = client.send(Command("c5", SID, "speak", {"payload": "hi"}))
        assert (outcome.status, outcome.attempts) == (CommandStatus.SENT, 1)
        assert len(received) == 1  # Twilio may have acted on it: a second update could dial twice
    finally:
        server.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    nothing_listens = closed.getsockname()[1]
    closed.close()
    settings = TwilioSettings("AC" + "0" * 32, "token", f"http://127.0.0.1:{nothing_listens}", PUBLIC)
    client = TwilioCommands(settings, TwimlRenderer(settings), timeout_s=2.0, attempts=3,
                            sleep=lambda s: None)
    outcome = client.send(Command("c6", SID, "speak", {"payload": "hi"}))
    assert (outcome.status, outcome.attempts) == (CommandStatus.PENDING, 3)  # never reached: retried


def test_a_query_string_that_is_not_utf8_is_a_400_and_the_whisper_url_carries_no_reason(
        twilio_app: Flask) -> None:
    bad = twilio_app.test_client().post("/webhooks/twilio/voice", data=call_form(),
                                        environ_overrides={"QUERY_STRING": "a=\xff"})  # WSGI's latin-1
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    root = twiml(post(twilio_app, "/webhooks/twilio/gather?step=b",
                      call_form(CallStatus="in-progress", Digits="0")))
    number = root.find("Dial/Number")
    assert number is not None and set(parse_qs(urlsplit(number.get("url", "")).query)) == {"caller",
                                                                                           "attempt"}


# ----- a Twilio-only deployment -------------------------------------------------------------------

def test_a_twilio_only_app_starts_and_answers_its_number(twilio_only_app: Flask) -> None:
    assert twilio_only_app.extensions["lifeline"].settings.telnyx is None
    root = twiml(post(twilio_only_app, "/webhooks/twilio/voice", call_form()))
    assert root.find("Start/Transcription") is not None and root.find("Gather") is not None


def test_a_twilio_only_deployment_takes_whole_calls_through_the_emulator() -> None:
    names = ["02-asks-for-human.yaml", "03-operator-key.yaml", "11-not-angry.yaml"]
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=5, provider="twilio") as sim:
        assert sim.config["TELNYX_API_KEY"] == sim.config["TELNYX_PUBLIC_KEY"] == ""
        assert sim.app.extensions["lifeline"].settings.telnyx is None
        results = sim.run([load_scenario(EXAMPLES / n) for n in names], concurrency=3)
    assert {r.scenario.name: r.problems for r in results if not r.passed} == {}
    assert [len(r.transfer_commands) for r in results] == [1, 1, 0]


def test_the_telnyx_webhook_of_a_twilio_only_app_is_404_naming_the_settings_and_records_nothing(
        twilio_only_app: Flask) -> None:
    body = {"data": {"event_type": "call.initiated", "id": "ev-1", "occurred_at": "2026-01-01T00:00:00Z",
                     "payload": {"call_control_id": "v3:abc", "from": "+15551230001", "to": "+15550100000"}}}
    response = twilio_only_app.test_client().post("/webhooks/telnyx", json=body)
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "not_configured" and error["status"] == 404
    assert error["message"].startswith("Telnyx is not configured on this deployment: set TELNYX_API_KEY and "
                                       "TELNYX_PUBLIC_KEY")
    store = twilio_only_app.extensions["lifeline"].store
    assert store.get_call("v3:abc") is None and store.events("v3:abc") == []


def test_the_twilio_webhooks_of_a_telnyx_only_app_are_404_naming_the_settings(app: Flask) -> None:
    for path in ("/webhooks/twilio/voice", "/webhooks/twilio/gather?step=b"):
        response = app.test_client().post(path, data=call_form())
        assert response.status_code == 404, path
        error = response.get_json()["error"]
        assert error["code"] == "not_configured"
        assert error["message"].startswith("Twilio is not configured on this deployment: set "
                                           "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    assert app.extensions["lifeline"].store.get_call(SID) is None


def test_dial_out_in_a_twilio_only_app_says_it_needs_telnyx(twilio_only_app: Flask) -> None:
    response = twilio_only_app.test_client().post(
        "/api/calls", json={"to": "+15557770000"}, headers={"Authorization": "Bearer test-api-token-0123"})
    assert response.status_code == 409
    assert response.get_json()["error"]["message"].startswith(
        "dialling out needs Telnyx, which is not configured")
    assert twilio_only_app.extensions["lifeline"].store.list_calls() == []
    result = twilio_only_app.test_cli_runner().invoke(args=["dial", "+15557770000"])
    assert result.exit_code != 0 and "dialling out needs Telnyx" in result.output


def test_twilio_only_a_telnyx_leg_is_never_asked_about_its_commands_are_refused_and_the_sweep_runs(
        twilio_only_app: Flask) -> None:
    lifeline = twilio_only_app.extensions["lifeline"]
    telnyx = lifeline.telnyx  # the stand-in: a leftover Telnyx call reaches neither Twilio nor a client
    assert telnyx.is_alive("v3:left-over") is None
    outcome = telnyx.send(Command("c-1", "v3:left-over", "hangup", {}))
    assert outcome.status == CommandStatus.REJECTED and "Telnyx is not configured" in (outcome.error or "")
    result = twilio_only_app.test_cli_runner().invoke(args=["monitor", "--once"])
    assert result.exit_code == 0, result.exception
    assert result.output.startswith("Sweep done:\n  swept 0 active calls\n"), result.output


def test_no_provider_at_all_stops_startup_with_one_line_naming_both(tmp_path: Path) -> None:
    config = {k: v for k, v in twilio_only_config(tmp_path).items() if not k.startswith("TWILIO_")}
    with pytest.raises(ConfigError) as caught:
        create_app(config)
    [line] = str(caught.value).splitlines()
    assert line.startswith("neither Telnyx nor Twilio is configured")


def test_the_servers_start_up_check_stops_a_half_set_twilio_account_naming_the_missing_setting(
        tmp_path: Path) -> None:
    from lifeline.ivr.errors import LifelineError
    from lifeline.startup import check
    config = {k: v for k, v in twilio_only_config(tmp_path).items() if k != "TWILIO_AUTH_TOKEN"}
    with pytest.raises(LifelineError) as caught:
        check(config)  # what gunicorn's master runs before any worker starts
    assert "TWILIO_AUTH_TOKEN is not set" in str(caught.value)


def test_a_twilio_command_the_router_could_not_deliver_never_declares_telnyx_unreachable(
        twilio_app: Flask) -> None:
    lifeline = twilio_app.extensions["lifeline"]
    with lifeline.store.unit() as tx:  # Twilio's API (TWILIO_API_BASE_URL) is a closed port here
        tx.enqueue([Command(f"c-{n}", SID, "hangup", {}) for n in range(3)])
    time.sleep(0.01)
    assert lifeline.sender.resend_due(0.0, 0.0) == 3  # the sweep's resend: through the router
    assert lifeline.sender.wait_idle(30)
    assert [o.status for o in lifeline.store.outbox(SID)] == [CommandStatus.PENDING] * 3  # not delivered
    assert lifeline.sender.reachability.state == "ok"


def test_a_command_queued_behind_a_slow_update_and_handed_to_the_sweeps_resend_goes_once(
        app_config: dict[str, object], twilio_emulator: TwilioEmulator) -> None:
    # Twilio's REST API has no idempotency key: a command that waits in its call's queue past the
    # resend age is handed to a resend (by any process's sweep), and must then not go twice.
    import threading

    app = create_app({**app_config, **twilio_emulator.app_settings(), "LIFELINE_PUBLIC_URL": PUBLIC,
                      "LIFELINE_ENGINE": "twilio"}, migrate=True)
    lifeline = app.extensions["lifeline"]
    release = threading.Event()
    try:
        twilio_emulator.inject(Fault("update", hold=release))  # Twilio sits on the first update
        first, second = (Command(f"say-{n}", SID, "speak", {"payload": f"line {n}"}) for n in (1, 2))
        for command in (first, second):  # two units of work: two updates, in order on the call's lane
            with lifeline.store.unit() as tx:
                tx.enqueue([command])
            lifeline.sender.submit([command])
        time.sleep(0.2)  # the first update is with Twilio, the second waits on the call's lane
        lifeline.store.mark_command(first.command_id, CommandStatus.SENT, 1, None)  # out of the sweep's view
        time.sleep(0.01)
        assert lifeline.sender.resend_due(0.0, 0.0) == 1  # the second, still queued behind the first
        release.set()
        assert lifeline.sender.wait_idle(30)
        updates = [r for r in twilio_emulator.requests if r["name"] == "update"]
        said = [body for r in updates for body in [str(r["body"])] if "line 2" in body]
        assert len(said) == 1, updates
    finally:
        release.set()
        lifeline.close()


def test_the_sweeps_resends_of_separate_units_go_as_separate_updates_so_a_gather_never_holds_a_dial(
        app_config: dict[str, object], twilio_emulator: TwilioEmulator) -> None:
    app = create_app({**app_config, **twilio_emulator.app_settings(), "LIFELINE_PUBLIC_URL": PUBLIC,
                      "LIFELINE_ENGINE": "twilio"}, migrate=True)
    lifeline = app.extensions["lifeline"]
    try:
        menu = Command("menu-1", SID, "gather_using_speak", {"payload": "Press 1 for balances",
                                                             "valid_digits": "1", "maximum_digits": 1})
        state = encode_client_state({"attempt": 1})
        transfer = Command("transfer-1", SID, "transfer", {"to": AGENTS.split(",")[0], "client_state": state})
        for command in (menu, transfer):  # two units of work, neither delivered (both left pending)
            with lifeline.store.unit() as tx:
                tx.enqueue([command])
        time.sleep(0.01)
        assert lifeline.sender.resend_due(0.0, 0.0) == 2
        assert lifeline.sender.wait_idle(30)
        updates = [r for r in twilio_emulator.requests if r["name"] == "update"]
        documents = [str(r["body"].get("Twiml", "")) for r in updates]
        assert len(documents) == 2, documents
        assert "<Gather" in documents[0] and "<Dial" not in documents[0]
        assert "<Dial" in documents[1] and "<Gather" not in documents[1]
    finally:
        lifeline.close()


def test_a_hash_key_in_the_menu_is_routed_on_twilio_not_taken_as_the_finishing_key(tmp_path: Path) -> None:
    ivr = tmp_path / "ivr.yaml"
    ivr.write_text('greeting: Hello.\nstart: main\nmenus:\n  main:\n    prompt: Press hash to leave.\n'
                   '    options:\n      "#": {say: "You pressed hash.", then: goodbye}\n')
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_IVR": str(ivr)}, engine="twilio", speed=20,
                    provider="twilio") as sim:
        leg = sim.emulator.incoming_call()
        assert wait_until(lambda: leg.gather is not None, 5)
        sim.emulator.press(leg, "#")
        store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
        sid = leg.call_control_id
        assert wait_until(lambda: store.get_call(sid).outcome is not None, 5)
        gathered = [json.loads(e["payload"]).get("Digits") for e in store.events(sid)
                    if e["event_type"] == "call.gather.ended"]
        assert gathered == ["#"] and store.get_call(sid).retries == 0  # routed, not heard as no choice


def _offered_after_every_agent(sim: Simulation, agent: str) -> tuple[Leg, Any]:
    """A caller who presses 0 when every agent of the call behaves as `agent`, once offered the
    menu after the agents; the leg and the app's services."""
    leg = sim.emulator.incoming_call(agent=agent)
    assert sim.emulator.wait_for_gather(leg, 10)
    sim.emulator.press(leg, "0")
    lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]

    def offered() -> bool:
        call = lifeline.store.get_call(leg.call_control_id)
        return call is not None and call.status == CallStatus.MENU and call.menu == "_after_agents"

    assert wait_until(offered, 30)
    return leg, lifeline


def test_agents_whose_whispered_answer_is_lost_leave_the_caller_in_the_apology_menu_not_hung_up() -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=5, provider="twilio") as sim:
        leg, lifeline = _offered_after_every_agent(sim, "whisper_answer_lost")
        transfers = lifeline.store.transfers(leg.call_control_id)
        assert [(t.status, t.hangup_cause) for t in transfers] == [(TransferStatus.FAILED, "not_bridged")] * 2
        assert not leg.ended and not leg.log.bridged
        # Each was recorded connected as its whisper ended, then undone when Twilio said otherwise.
        said = [(e.data["attempt"], e.data["status"]) for e in lifeline.store.feed_events(leg.call_control_id)
                if e.kind == "transfer" and e.data["status"] in ("connected", "failed")]
        assert said == [(1, "connected"), (1, "failed"), (2, "connected"), (2, "failed")]
        sim.emulator.caller_hangs_up(leg)
        assert wait_until(lambda: lifeline.store.get_call(leg.call_control_id).outcome == "no_agent", 10)


@pytest.mark.parametrize("reported", ["completed", "no-answer"])
def test_agents_who_hang_up_in_the_whisper_leave_the_caller_in_the_apology_menu_not_hung_up(
        reported: str) -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=5, provider="twilio") as sim:
        sim.emulator.whisper_hangup_status = reported
        leg, lifeline = _offered_after_every_agent(sim, "hangs_up_in_whisper")
        transfers = lifeline.store.transfers(leg.call_control_id)
        expected = "dial_completed" if reported == "completed" else "timeout"
        assert [(t.status, t.hangup_cause) for t in transfers] == [(TransferStatus.FAILED, expected)] * 2
        assert not leg.ended and not leg.log.bridged
        sim.emulator.caller_hangs_up(leg)
        assert wait_until(lambda: lifeline.store.get_call(leg.call_control_id).outcome == "no_agent", 10)
    whispers = [e for e in leg.log.timeline if e.get("type") == "whisper"]
    assert len(whispers) == 2 and all(e["text"].startswith("Caller coming through") for e in whispers)
