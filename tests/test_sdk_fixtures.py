"""Real-shaped webhooks: one of every type Lifeline handles, built from the SDK's own event models
(not from our emulator), signed, and run through the app."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from flask import Flask

from lifeline.calls.dispatch import EVENT_TYPES
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.security import sign
from lifeline.ivr.store import CallRecord
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.strict import _event_model, event_problems

CALLER = "v3:sdk-caller-1"
AGENT = "v3:sdk-agent-1"
LEG, SESSION = str(uuid.uuid4()), str(uuid.uuid4())


def sdk_event(event_type: str, **payload: Any) -> dict[str, Any]:
    """`data` of a webhook, validated by and serialised from the SDK's pydantic model."""
    model = _event_model(event_type)
    data = model.model_validate({"record_type": "event", "event_type": event_type,
                                 "id": str(uuid.uuid4()), "occurred_at": "2026-11-22T10:00:00Z",
                                 "payload": payload})
    dumped: dict[str, Any] = data.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert event_problems(dumped) == []
    return dumped


def deliver(app: Flask, emulator: Emulator, data: dict[str, Any]) -> int:
    body = json.dumps({"data": data, "meta": {"attempt": 1, "delivered_to": "https://ivr.example"}}).encode()
    headers = {"content-type": "application/json", **sign(emulator.signing_key, body, int(time.time()))}
    status: int = app.test_client().post("/webhooks/telnyx", data=body, headers=headers).status_code
    return status


def test_every_handled_event_type_built_from_the_sdk_models_runs_through_the_app(
        app: Flask, emulator: Emulator) -> None:
    lifeline = app.extensions["lifeline"]
    store = lifeline.store
    base = {"call_control_id": CALLER, "call_leg_id": LEG, "call_session_id": SESSION,
            "connection_id": "1494404757140276705"}
    caller_state = encode_client_state({"role": "caller", "call": CALLER})

    def run(event_type: str, **payload: Any) -> None:
        assert deliver(app, emulator, sdk_event(event_type, **payload)) == 200, event_type
        lifeline.sender.wait_idle(5)

    seen: set[str] = set()

    def call() -> CallRecord:
        record = store.get_call(CALLER)
        assert record is not None
        return record

    run("call.initiated", **base, direction="incoming", state="parked", **{"from": "+15551230001"},
        to="+15550100000", caller_id_name="+15551230001", client_state=None)
    seen.add("call.initiated")
    assert call().status == "answering"
    run("call.answered", **base, state="answered", **{"from": "+15551230001"}, to="+15550100000")
    assert call().status == "menu"
    run("call.gather.ended", **base, digits="", status="timeout", **{"from": "+15551230001"},
        to="+15550100000")
    assert call().retries == 1  # silence: re-prompted
    run("call.transcription", **base, transcription_data={
        "transcript": "what time do you open", "confidence": 0.93, "is_final": True,
        "transcription_track": "inbound"})
    assert [m["text"] for m in store.messages(CALLER)] == ["what time do you open"]
    run("streaming.failed", **base, failure_reason="connection_failed", stream_id=str(uuid.uuid4()),
        stream_type="websocket", stream_params={"stream_url": "wss://ivr.example/media",
                                                "track": "inbound_track"})
    run("call.dtmf.received", **base, digit="0", **{"from": "+15551230001"}, to="+15550100000")
    assert call().status == "transferring"
    agent_state = encode_client_state({"role": "agent", "caller": CALLER, "attempt": 1})
    agent = {"call_control_id": AGENT, "call_leg_id": str(uuid.uuid4()), "call_session_id": SESSION,
             "connection_id": "1494404757140276705", "client_state": agent_state}
    run("call.initiated", **agent, direction="outgoing", state="bridging", **{"from": "+15550100000"},
        to="+15550001111")
    assert store.transfers(CALLER)[0].agent_call_control_id == AGENT
    run("call.bridged", **agent, **{"from": "+15550100000"}, to="+15550001111")  # leg B only
    assert call().status == "transferred"
    run("call.speak.ended", **base, status="completed")
    run("call.hangup", **base, hangup_cause="normal_clearing", hangup_source="caller",
        sip_hangup_cause="unspecified", state="hangup", start_time="2026-11-22T10:00:00Z")
    assert (call().status, call().outcome) == ("ended", "transferred")
    # No call_control_id on call.recording.saved: the leg id and our client_state find the call.
    run("call.recording.saved", call_leg_id=LEG, call_session_id=SESSION, client_state=caller_state,
        channels="single", recording_urls={"wav": f"{emulator.base_url}/recordings/none.wav"},
        recording_started_at="2026-11-22T10:00:00Z", recording_ended_at="2026-11-22T10:01:00Z")
    assert call().recording_url == f"{emulator.base_url}/recordings/none.wav"
    covered = {"call.initiated", "call.answered", "call.gather.ended", "call.transcription",
               "streaming.failed", "call.dtmf.received", "call.bridged", "call.speak.ended",
               "call.hangup", "call.recording.saved"}
    assert covered == set(EVENT_TYPES)
