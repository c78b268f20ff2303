"""Twilio's form-encoded callbacks as Lifeline's typed events (the ones Telnyx would have sent).

Twilio answers with TwiML where Telnyx takes commands, so one Twilio request can stand for
several Telnyx events: the voice webhook is `call.initiated` then `call.answered`; a `<Gather>`
action is a `call.dtmf.received` per key then `call.gather.ended`. Each gets an id derived from
what the request's signature covers (its URL and form), so a retried request, which Twilio sends
unchanged, is recognised as a duplicate event, and so is a captured one replayed by someone else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

from lifeline.ivr.errors import MalformedEvent
from lifeline.ivr.events import BRIDGE_ASKED, NOT_BRIDGED, CallEvent, Transcription

log = logging.getLogger(__name__)
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
ENDED_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# DialCallStatus of a Dial whose agent never took the call, as the hangup cause Telnyx would give.
AGENT_FAILED_CAUSE = {"no-answer": "timeout", "busy": "user_busy", "failed": "call_rejected",
                      "canceled": "originator_cancel"}
# What ends an agent's leg when Twilio says its Dial completed: after a bridge, the end of the
# conversation (the event changes nothing then); before one, an agent who was never connected.
NOT_CONNECTED_CAUSE = "dial_completed"
# A DialCallStatus Twilio's docs do not list (one added later, say): the agent did not take the call.
UNKNOWN_OUTCOME_CAUSE = "unspecified"


def event_key(url: str, form: Mapping[str, str]) -> str:
    """What identifies one request across Twilio's retries of it: a hash of what its signature
    covers, the URL (query included) and the sorted form.

    Not I-Twilio-Idempotency-Token: no signature covers it, so a captured request sent again with
    a new token would act again (a key pressed twice for a live caller). A request that may
    legitimately come twice with the same form on one call carries what tells them apart in its
    URL: `gather` and `spoken` name the command (`step=`), the agent's callbacks the attempt.
    """
    digest = hashlib.sha256(url.encode())
    getlist = getattr(form, "getlist", None)  # a MultiDict: the signature covers every value
    for key in sorted(form):
        for value in (getlist(key) if getlist is not None else [form[key]]):
            digest.update(f"\0{key}={value}".encode())
    return f"tw-{digest.hexdigest()[:40]}"


def call_sid(form: Mapping[str, str], field: str = "CallSid") -> str:
    """A Call SID from the form, or MalformedEvent naming the field."""
    value = form.get(field, "")
    if not CALL_SID.match(value):
        raise MalformedEvent(f"{field} must be a Twilio Call SID (CA + 32 hex digits)")
    return value


def occurred_at(form: Mapping[str, str]) -> str | None:
    """Twilio's `Timestamp` (RFC 2822, `Tue, 01 Nov 2016 01:59:13 +0000`) as ISO 8601 in UTC, the
    `date-time` our API declares; None when it is missing or unreadable."""
    raw = form.get("Timestamp", "")
    try:
        when = parsedate_to_datetime(raw[:64])
        if when.tzinfo is None:  # `-0000`: RFC 2822's "UTC, origin unknown"
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, IndexError, OverflowError):  # a year past 9999 overflows
        return None


def _event(key: str, suffix: str, kind: str, ccid: str | None, form: Mapping[str, str],
           **fields: object) -> CallEvent:
    return CallEvent(id=f"{key}:{suffix}", type=kind, occurred_at=occurred_at(form),
                     call_control_id=ccid, payload=dict(form), **fields)  # type: ignore[arg-type]


def voice(key: str, form: Mapping[str, str]) -> list[CallEvent]:
    """The number's voice webhook: a new inbound call, answered by the TwiML we return."""
    sid = call_sid(form)
    if form.get("Direction", "inbound") != "inbound":
        raise MalformedEvent("the voice webhook is for inbound calls (Direction=inbound)")
    common = {"from_": form.get("From"), "to": form.get("To"), "call_session_id": sid,
              "call_leg_id": sid}
    return [_event(key, "initiated", "call.initiated", sid, form, direction="incoming",
                   state="parked", **common),
            _event(key, "answered", "call.answered", sid, form, state="answered", **common)]


def status(key: str, form: Mapping[str, str]) -> list[CallEvent]:
    """The caller's call status callback: only its end matters to Lifeline."""
    sid = call_sid(form)
    if form.get("CallStatus") not in ENDED_STATUSES:
        return []
    # The numbers too: a caller never answered (the voice webhook refused in an outage) is recorded
    # from this alone, and a supervisor needs to know whom to call back.
    return [_event(key, "hangup", "call.hangup", sid, form, hangup_cause="normal_clearing",
                   from_=form.get("From"), to=form.get("To"))]


def gather(key: str, form: Mapping[str, str]) -> list[CallEvent]:
    """A `<Gather>` action: each key as it would have been pressed, then the gather's end."""
    sid = call_sid(form)
    digits = form.get("Digits", "")
    if len(digits) > 32 or not set(digits) <= set("0123456789*#"):
        raise MalformedEvent("Digits must be 0-9, * or #")
    events = [_event(key, f"dtmf:{i}", "call.dtmf.received", sid, form, digit=d)
              for i, d in enumerate(digits)]
    events.append(_event(key, "gather", "call.gather.ended", sid, form, digits=digits,
                         status="valid" if digits else "timeout"))
    return events


def spoken(key: str, form: Mapping[str, str]) -> list[CallEvent]:
    """The `<Redirect>` after a `<Say>`: the prompt has been said."""
    return [_event(key, "spoken", "call.speak.ended", call_sid(form), form, status="completed")]


def dial(key: str, form: Mapping[str, str], caller: str, attempt: int) -> list[CallEvent]:
    """A `<Dial>` action: the agent's leg is over. Connected or not is the store's to say (the
    bridge is recorded when the agent has heard the whisper, `whispered`), except that Twilio's
    `DialBridged=false` overrules it: an attempt recorded as connected whose legs Twilio never
    joined (our answer to the whisper's end lost, or later than Twilio waits) is undone. An end
    reported `completed` for a leg never connected is an agent who did not take the call."""
    sid = call_sid(form)
    if sid != caller:
        raise MalformedEvent("the Dial action must come from the caller's call")
    outcome = form.get("DialCallStatus", "")
    agent_sid = form.get("DialCallSid") if CALL_SID.match(form.get("DialCallSid", "")) else None
    state = {"role": "agent", "caller": caller, "attempt": attempt}
    # Absent (an older request, a Dial of another kind) says nothing either way.
    bridged = {"state": NOT_BRIDGED} if form.get("DialBridged", "").lower() == "false" else {}
    if outcome in AGENT_FAILED_CAUSE:
        cause = AGENT_FAILED_CAUSE[outcome]
    elif outcome in ("completed", "answered"):
        # After a bridge this ends nothing more (the attempt is connected, no longer open); an
        # agent who answered and hung up during the whisper was never connected (Twilio says
        # `completed` or `no-answer` then: its docs do not say which), and the caller moves on.
        cause = NOT_CONNECTED_CAUSE
    else:
        # Refusing it (400) would leave the caller to Twilio's "application error" and hang-up; as
        # an agent who did not take the call, the caller is offered the next agent or the apology.
        log.warning("Dial action of %s: DialCallStatus %r is not one Twilio documents; taken as an "
                    "agent who did not take the call", caller, outcome[:40])
        cause = UNKNOWN_OUTCOME_CAUSE
    return [_event(key, "agent-hangup", "call.hangup", agent_sid, form, client_state=state,
                   hangup_cause=cause, **bridged)]


def agent(key: str, form: Mapping[str, str], caller: str, attempt: int) -> list[CallEvent]:
    """A `<Number>` status callback of the agent's leg: ringing, then answered. Answered is not
    connected: Twilio runs the whisper on the agent's leg first (`whispered`)."""
    sid = call_sid(form)
    state = {"role": "agent", "caller": caller, "attempt": attempt}
    if form.get("CallStatus") in ("initiated", "ringing", "queued", "in-progress"):
        return [_event(key, "initiated", "call.initiated", sid, form, client_state=state,
                       direction="outgoing", state="bridging")]
    return []  # the end of the agent's leg arrives as the Dial action, on the caller's call


def whispered(key: str, form: Mapping[str, str], caller: str, attempt: int) -> list[CallEvent]:
    """The agent heard the whisper to its end and is still on the line: the document that follows
    it is empty, so Twilio connects the two legs now."""
    sid = call_sid(form)
    if form.get("ParentCallSid") not in (None, "", caller):
        raise MalformedEvent("the whisper must come from an agent leg of the caller's call")
    state = {"role": "agent", "caller": caller, "attempt": attempt}
    return [_event(key, "bridged", "call.bridged", sid, form, client_state=state, state=BRIDGE_ASKED)]


def recording(key: str, form: Mapping[str, str], api_base_url: str = "") -> list[CallEvent]:
    """A `<Record>` status callback: where the caller's message is (an https URL, or one on the
    configured API's own host, as an emulator on loopback serves it)."""
    sid = call_sid(form)
    url = form.get("RecordingUrl", "")
    on_api = bool(api_base_url) and url.startswith(api_base_url.rstrip("/") + "/")
    if form.get("RecordingStatus", "completed") != "completed" or not (url.startswith("https://") or on_api):
        return []
    return [CallEvent(id=f"{key}:recording", type="call.recording.saved",
                      occurred_at=occurred_at(form), call_control_id=sid,
                      payload={**form, "recording_urls": {"mp3": f"{url}.mp3"}})]


def transcription(form: Mapping[str, str]) -> tuple[str, Transcription, str | None] | None:
    """A real-time transcription callback: (call, result, track), or None for other events."""
    sid = call_sid(form)
    if form.get("TranscriptionEvent") != "transcription-content":
        return None
    try:
        data = json.loads(form.get("TranscriptionData", ""))
    except ValueError:
        raise MalformedEvent("TranscriptionData is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("transcript"), str):
        raise MalformedEvent("TranscriptionData has no transcript")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, type(None))):
        raise MalformedEvent("TranscriptionData.confidence must be a number")
    return sid, Transcription.of(data["transcript"], confidence,
                                 form.get("Final", "true").lower() == "true"), form.get("Track")
