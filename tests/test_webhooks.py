"""The webhook door: forged or stale requests 403, malformed 400, never a 500, nothing stored."""

from __future__ import annotations

import base64
import json
import time

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from lifeline.ivr.security import sign
from lifeline.simulator.emulator import Emulator

from .conftest import WebhookFactory

INITIATED = {"call_control_id": "v3:test-1", "call_leg_id": "leg-1", "call_session_id": "sess-1",
             "direction": "incoming", "state": "parked", "from": "+15551230001",
             "to": "+15550100000", "client_state": None}


def stored_events(app: Flask) -> int:
    store = app.extensions["lifeline"].store
    with store.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT count(*) FROM webhook_events").scalar_one()


def post(app: Flask, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return app.test_client().post("/webhooks/telnyx", data=body, headers=headers)


def test_signed_event_is_acknowledged_and_recorded(app: Flask, signed: WebhookFactory) -> None:
    response = post(app, *signed("call.initiated", INITIATED))
    assert response.status_code == 200
    assert response.get_json()["result"] == "handled"
    assert stored_events(app) == 1


@pytest.mark.parametrize("case", ["unsigned", "no_timestamp", "forged_key", "tampered_body",
                                  "stale", "future", "garbage_signature", "timestamp_not_number",
                                  "timestamp_of_400_digits", "timestamp_with_underscores"])
def test_bad_signature_is_refused_with_403_and_touches_nothing(
        app: Flask, signed: WebhookFactory, case: str) -> None:
    body, headers = signed("call.initiated", INITIATED)
    now = int(time.time())
    if case == "unsigned":
        headers = {"content-type": "application/json"}
    elif case == "no_timestamp":
        del headers["telnyx-timestamp"]
    elif case == "forged_key":
        headers = {"content-type": "application/json", **sign(SigningKey.generate(), body, now)}
    elif case == "tampered_body":
        body = body.replace(b"+15551230001", b"+15551239999")
    elif case == "stale":
        body, headers = signed("call.initiated", INITIATED, ts=now - 301)
    elif case == "future":
        body, headers = signed("call.initiated", INITIATED, ts=now + 301)
    elif case == "garbage_signature":
        headers["telnyx-signature-ed25519"] = "not base64!"
    elif case == "timestamp_not_number":
        headers["telnyx-timestamp"] = "yesterday"
    elif case == "timestamp_of_400_digits":  # int() reads it; the window's float arithmetic overflowed
        headers["telnyx-timestamp"] = "9" * 400
    elif case == "timestamp_with_underscores":  # int() reads "1_764_000_000" too
        headers["telnyx-timestamp"] = f"{now:_}"
    response = post(app, body, headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert stored_events(app) == 0


def test_timestamp_just_inside_the_window_is_accepted(app: Flask, signed: WebhookFactory) -> None:
    response = post(app, *signed("call.initiated", INITIATED, ts=int(time.time()) - 290))
    assert response.status_code == 200


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "not JSON"),
    (b"[]", "no `data` object"),
    (b'{"data": {"event_type": "call.initiated", "payload": {}}}', "data.id"),
    (b'{"data": {"id": "' + b"e" * 201 + b'", "event_type": "call.initiated", "payload": {}}}',
     "data.id is longer than 200 characters"),
    (b'{"data": {"id": "e1", "payload": {}}}', "data.event_type"),
    (b'{"data": {"id": "e1", "event_type": "call.initiated", "payload": []}}', "data.payload"),
    (b'{"data": {"id": "e1", "event_type": "call.hangup", "payload": {"call_control_id": 7}}}',
     "payload.call_control_id"),
    (b'{"data": {"id": "e1", "event_type": "call.transcription", "payload": '
     b'{"call_control_id": "x", "transcription_data": {"transcript": 5}}}}', "transcript"),
    (b"\xff\xfe", "not JSON"),
])
def test_malformed_body_is_refused_with_400_and_touches_nothing(
        app: Flask, emulator: Emulator, body: bytes, message: str) -> None:
    headers = {"content-type": "application/json", **sign(emulator.signing_key, body, int(time.time()))}
    response = post(app, body, headers)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]
    assert stored_events(app) == 0


def test_unknown_event_type_is_acknowledged_and_ignored(app: Flask, signed: WebhookFactory) -> None:
    response = post(app, *signed("call.deepfake_detection.result", {"call_control_id": "v3:x"}))
    assert response.status_code == 200
    assert response.get_json()["result"] == "ignored"


def test_duplicate_event_is_acknowledged_without_a_second_effect(
        app: Flask, emulator: Emulator, signed: WebhookFactory) -> None:
    body, headers = signed("call.initiated", INITIATED, event_id="evt-dup")
    first, second = post(app, body, headers), post(app, body, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.get_json()["result"] == "duplicate"
    app.extensions["lifeline"].sender.wait_idle(5)
    assert len(emulator.commands_for("v3:test-1", "answer")) == 1


def test_oversized_body_gets_413_in_the_json_error_shape(app: Flask, signed: WebhookFactory) -> None:
    body, headers = signed("call.initiated", {**INITIATED, "padding": "x" * 300_000})
    response = post(app, body, headers)
    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413


def test_transcript_digits_are_masked_in_the_audit_record(app: Flask, signed: WebhookFactory) -> None:
    post(app, *signed("call.transcription", {"call_control_id": "v3:test-1", "transcription_data": {
        "transcript": "my card is 4111 1111 1111 1111 and pin 1234", "confidence": 0.9,
        "is_final": True}}))
    store = app.extensions["lifeline"].store
    with store.engine.connect() as conn:
        payload = json.loads(conn.exec_driver_sql("SELECT payload FROM webhook_events").scalar_one())
    assert payload["transcription_data"]["transcript"] == "my card is #### #### #### #### and pin ####"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=4),
                 max_leaves=12).map(lambda v: json.dumps({"data": v}).encode()),
))
def test_hostile_signed_bodies_never_cause_a_500(app: Flask, emulator: Emulator, body: bytes) -> None:
    headers = {"content-type": "application/json", **sign(emulator.signing_key, body, int(time.time()))}
    assert post(app, body, headers).status_code in (200, 400)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Control characters are left out: no HTTP client can put them in a header value.
@given(signature=st.text(max_size=120),
       stamp=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20))
def test_hostile_signature_headers_are_403_never_500(
        app: Flask, signed: WebhookFactory, signature: str, stamp: str) -> None:
    body, _ = signed("call.initiated", INITIATED)
    headers = {"telnyx-signature-ed25519": base64.b64encode(signature.encode()).decode(),
               "telnyx-timestamp": stamp}
    assert post(app, body, headers).status_code == 403
    assert stored_events(app) == 0


def test_a_recognition_result_is_kept_within_what_one_can_be() -> None:
    from lifeline.ivr.events import TRANSCRIPT_MAX, Transcription, parse_event
    for confidence, kept in ((1e300, 1.0), (-5, 0.0), (0.42, 0.42), (None, None)):
        assert Transcription.of("hello", confidence, True).confidence == kept
    assert Transcription.of("hello", float("nan"), True).confidence is None
    assert Transcription.of("hello", 10 ** 400, True).confidence is None  # past any float
    assert len(Transcription.of("x" * 200_000, 0.9, True).text) == TRANSCRIPT_MAX
    failed = parse_event(json.dumps({"data": {"id": "e1", "event_type": "streaming.failed", "payload": {
        "call_control_id": "v3:x", "failure_reason": "r" * 100_000}}}).encode())
    assert failed.failure_reason is not None and len(failed.failure_reason) == 500
