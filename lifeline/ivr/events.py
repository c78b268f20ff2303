"""Typed Telnyx Call Control events, parsed from the raw webhook body."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import MalformedEvent
from .sanitize import clean_text, load_json

# Identifiers are keys in the store: one longer than its column is no Telnyx id, and cutting it
# short could merge two calls, so it is refused rather than truncated.
ID_MAX = 255


def storable_id(value: str) -> bool:
    """Whether a call could have this id: no NUL, no lone surrogate, at most ID_MAX characters.

    The store answers "not found" for an id no call can have without querying: PostgreSQL would
    refuse the NUL with an error instead.
    """
    return len(value) <= ID_MAX and clean_text(value) == value
# meta.attempt is informational (the event id dedupes); past any real redelivery count it reads as 1.
ATTEMPT_MAX = 1000
TRANSCRIPT_MAX = 5000  # characters of one recognition result that are kept
REASON_MAX = 500  # characters of a provider's failure reason that are kept and logged


@dataclass(frozen=True)
class Transcription:
    """One recognition result of a `call.transcription` event."""

    text: str
    confidence: float | None
    is_final: bool
    track: str | None = None  # "inbound" (the caller) or "outbound" (the agent, after a bridge)

    @classmethod
    def of(cls, text: str, confidence: float | None, is_final: bool,
           track: str | None = None) -> Transcription:
        """A provider's result kept within what a recognition result can be: at most
        TRANSCRIPT_MAX characters (an utterance is a few hundred), a confidence from 0 to 1 (None
        when it is no number at all), whatever a signed payload held."""
        if confidence is not None:
            try:
                number = float(confidence)  # an integer of 400 digits is past any float
            except OverflowError:
                number = math.nan
            confidence = min(max(number, 0.0), 1.0) if math.isfinite(number) else None
        return cls(text[:TRANSCRIPT_MAX], confidence, is_final, track)


# The `state` of a `call.bridged` that asks to be allowed rather than reports a bridge: Twilio
# connects an agent only once the whisper's last document answers, so a bridge for an attempt that
# failed meanwhile (its Dial action handled first) can still be declined.
BRIDGE_ASKED = "whisper_ended"
# The `state` of an agent leg's `call.hangup` whose provider says the leg was never bridged to the
# caller (Twilio's DialBridged=false), whatever Lifeline recorded: the one case where an attempt
# recorded as connected is undone, because the bridge was recorded when it was asked for.
NOT_BRIDGED = "not_bridged"


@dataclass(frozen=True)
class CallEvent:
    """A Telnyx webhook, reduced to the fields Lifeline acts on."""

    id: str
    type: str
    occurred_at: str | None
    call_control_id: str | None
    call_leg_id: str | None = None
    call_session_id: str | None = None
    from_: str | None = None
    to: str | None = None
    direction: str | None = None
    state: str | None = None
    client_state: dict[str, Any] | None = None
    digits: str | None = None
    digit: str | None = None
    status: str | None = None
    hangup_cause: str | None = None
    transcription: Transcription | None = None
    failure_reason: str | None = None
    attempt: int = 1
    payload: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_inbound_new_call(self) -> bool:
        """A caller's fresh leg, waiting for us to answer it."""
        return self.direction == "incoming" and self.state == "parked"


def parse_event(body: bytes) -> CallEvent:
    """Parse a webhook body into a CallEvent or raise MalformedEvent saying what is wrong."""
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise MalformedEvent("body has no `data` object (is the Call Control app on webhook API v2?)")
    data = document["data"]
    event_id = data.get("id")
    event_type = data.get("event_type")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("data.id must be a non-empty string")
    if len(event_id) > 200:
        raise MalformedEvent("data.id is longer than 200 characters; no Telnyx event id is")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise MalformedEvent("data.event_type must be a non-empty string")
    payload = data.get("payload") if data.get("payload") is not None else {}
    if not isinstance(payload, dict):
        raise MalformedEvent("data.payload must be an object")
    meta = as_object(document.get("meta"))
    attempt = meta.get("attempt", 1)
    return CallEvent(
        id=event_id,
        type=event_type,
        occurred_at=_text(data, "occurred_at"),
        call_control_id=_identifier(payload, "call_control_id"),
        call_leg_id=_identifier(payload, "call_leg_id"),
        call_session_id=_identifier(payload, "call_session_id"),
        from_=_text(payload, "from"),
        to=_text(payload, "to"),
        direction=_text(payload, "direction"),
        state=_text(payload, "state"),
        client_state=decode_client_state(_text(payload, "client_state")),
        digits=_text(payload, "digits"),
        digit=_text(payload, "digit"),
        status=_text(payload, "status"),
        hangup_cause=_text(payload, "hangup_cause"),
        transcription=_transcription(payload),
        failure_reason=(_text(payload, "failure_reason") or "")[:REASON_MAX] or None,
        attempt=attempt if type(attempt) is int and 1 <= attempt <= ATTEMPT_MAX else 1,
        payload=payload,
    )


def encode_client_state(state: dict[str, Any]) -> str:
    """Base64 of compact JSON, on one line: Telnyx truncates client_state at a newline."""
    return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_client_state(value: str | None) -> dict[str, Any] | None:
    """Decode a client_state we set; anything else (foreign or corrupt) reads as None."""
    if not value:
        return None
    try:
        decoded = load_json(base64.b64decode(value, validate=True), "client_state")
    except (binascii.Error, ValueError, MalformedEvent):
        return None
    return decoded if isinstance(decoded, dict) else None


def _finite(number: float) -> bool:
    try:
        return math.isfinite(float(number))
    except OverflowError:  # an int past float's range (10**400)
        return False


def as_object(value: object) -> dict[str, Any]:
    """A JSON object as a dict; anything else (absent, a list, a string) as an empty one."""
    return value if isinstance(value, dict) else {}


def _text(source: dict[str, Any], key: str) -> str | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"payload.{key} must be a string")
    return value


def _identifier(source: dict[str, Any], key: str) -> str | None:
    value = _text(source, key)
    if value is not None and len(value) > ID_MAX:
        raise MalformedEvent(f"payload.{key} is longer than {ID_MAX} characters; no Telnyx id is")
    return value


def _transcription(payload: dict[str, Any]) -> Transcription | None:
    data = payload.get("transcription_data")
    if data is None:
        return None
    if not isinstance(data, dict):
        raise MalformedEvent("payload.transcription_data must be an object")
    text = data.get("transcript")
    confidence = data.get("confidence")
    if not isinstance(text, str):
        raise MalformedEvent("payload.transcription_data.transcript must be a string")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, (int, float))):
        raise MalformedEvent("payload.transcription_data.confidence must be a number")
    if confidence is not None and not _finite(confidence):
        raise MalformedEvent("payload.transcription_data.confidence must be a finite number")
    return Transcription.of(text, confidence, data.get("is_final", True) is True,
                            _text(data, "transcription_track"))
