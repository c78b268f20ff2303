"""Parsing Telnyx events and our client_state."""

from __future__ import annotations

import base64
import json

import pytest

from lifeline.ivr.errors import MalformedEvent
from lifeline.ivr.events import decode_client_state, encode_client_state, parse_event
from lifeline.ivr.masking import mask_digits


def envelope(event_type: str, payload: dict[str, object]) -> bytes:
    return json.dumps({"data": {"record_type": "event", "event_type": event_type, "id": "e-1",
                                "occurred_at": "2026-11-22T10:00:00Z", "payload": payload},
                       "meta": {"attempt": 2}}).encode()


def test_initiated_event_is_typed() -> None:
    event = parse_event(envelope("call.initiated", {
        "call_control_id": "v3:abc", "direction": "incoming", "state": "parked", "from": "+1555",
        "to": "+1666", "client_state": None, "unknown_field": [1, 2]}))
    assert (event.type, event.call_control_id, event.from_, event.attempt) == ("call.initiated", "v3:abc",
                                                                              "+1555", 2)
    assert event.is_inbound_new_call


def test_bridging_leg_is_not_a_new_inbound_call() -> None:
    event = parse_event(envelope("call.initiated", {"call_control_id": "v3:agent",
                                                    "direction": "outgoing", "state": "bridging"}))
    assert not event.is_inbound_new_call


def test_transcription_is_typed() -> None:
    event = parse_event(envelope("call.transcription", {"call_control_id": "v3:abc", "transcription_data": {
        "transcript": "hello", "confidence": 0.97, "is_final": True, "transcription_track": "inbound"}}))
    assert event.transcription is not None
    assert (event.transcription.text, event.transcription.confidence, event.transcription.is_final) == (
        "hello", 0.97, True)


def test_interim_transcription_is_not_final() -> None:
    event = parse_event(envelope("call.transcription", {"call_control_id": "v3:abc", "transcription_data": {
        "transcript": "hel", "is_final": False}}))
    assert event.transcription is not None and not event.transcription.is_final


def test_confidence_must_be_a_number() -> None:
    with pytest.raises(MalformedEvent, match="confidence"):
        parse_event(envelope("call.transcription", {"transcription_data": {"transcript": "x",
                                                                           "confidence": "high"}}))


def test_client_state_is_single_line_base64_json_and_round_trips() -> None:
    state = {"reason": "x" * 200, "rule": "asks_for_human", "attempt": 1}
    encoded = encode_client_state(state)
    assert "\n" not in encoded
    assert json.loads(base64.b64decode(encoded, validate=True)) == state
    assert decode_client_state(encoded) == state


@pytest.mark.parametrize("foreign", [None, "", "not base64!", base64.b64encode(b"plain text").decode(),
                                     base64.b64encode(b"[1, 2]").decode()])
def test_foreign_client_state_reads_as_none(foreign: str | None) -> None:
    assert decode_client_state(foreign) is None


@pytest.mark.parametrize(("text", "masked"), [
    ("my card is 4111 1111 1111 1111", "my card is #### #### #### ####"),
    ("pin 1234", "pin ####"),
    ("press 1 then 2", "press 1 then 2"),
    ("call 555-123-4567", "call ###-###-####"),
    ("room 101", "room 101"),
])
def test_digit_strings_are_masked(text: str, masked: str) -> None:
    assert mask_digits(text) == masked
