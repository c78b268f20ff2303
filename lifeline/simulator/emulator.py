"""A Telnyx Call Control emulator: real HTTP on loopback, real signed webhooks, real timing.

This class is the emulator's two faces: the caller's side that scripts and tests drive, and
the REST API that `lifeline.simulator.server` serves to the app. What is behind them lives in small
modules: `lifecycle` (legs over time), `commands` (each command's behaviour, as a table),
`delivery` (signed webhooks with retries), `faults` (armed faults and chaos), `replies`
(Telnyx's answer shapes). `speed` > 1 compresses the time that speech, rings and timeouts
take (tests use it); latencies are always measured in real time.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from nacl.signing import SigningKey

from .audio import trailing_silence_s
from .clock import Timers
from .commands import COMMANDS, listen_from_answer, run
from .delivery import WebhookDelivery, iso_now
from .faults import Chaos, Fault, Faults
from .legs import CallLog, Leg, wait_for_gather
from .lifecycle import HANGUP_CAUSES, RING_S, Legs
from .replies import Reply, error, missing, ok
from .strict import check_command, check_dial

OUR_NUMBER = "+15550100000"
DEDUPE_WINDOW_S = 60.0

__all__ = ["OUR_NUMBER", "Chaos", "Emulator", "Fault", "error", "ok"]


class Emulator:
    """Telnyx as seen by one Lifeline app."""

    def __init__(self, api_key: str = "KEY_emulator", speed: float = 1.0, chaos: Chaos | None = None,
                 signing_key: SigningKey | None = None) -> None:
        self.api_key = api_key
        self.speed = speed
        self.chaos = chaos
        self.signing_key = signing_key or SigningKey.generate()
        self.requests: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []  # command bodies the SDK's types do not accept
        self.call_codec = "PCMU"  # the codec callers' calls use (PCMU, PCMA, G722, L16, OPUS)
        self._faults = Faults(chaos)
        self._dialled: dict[str, Leg] = {}  # dial command_id -> the call it placed
        self._timers = Timers()
        self._delivery = WebhookDelivery(self.signing_key, self._timers, chaos)
        self._legs = Legs(speed, self._timers, self._delivery)
        self._lock = self._legs.lock
        # Far ends of calls the app dials out, by number: played on a thread once answered.
        self.far_ends: dict[str, Callable[[Leg], None]] = {}

    @property
    def webhook_url(self) -> str | None:
        """Where the app receives webhooks."""
        return self._delivery.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._delivery.url = url

    @property
    def base_url(self) -> str | None:
        """Where the emulator's REST API is served (recording URLs point there too)."""
        return self._legs.base_url

    @base_url.setter
    def base_url(self, url: str | None) -> None:
        self._legs.base_url = url

    @property
    def recordings(self) -> dict[str, bytes]:
        """What the recording URLs serve, by file name."""
        return self._legs.recordings

    @property
    def transcodes(self) -> bool:
        """Whether a stream gets the stream_codec asked for (else the call's own codec)."""
        return self._legs.transcodes

    @transcodes.setter
    def transcodes(self, value: bool) -> None:
        self._legs.transcodes = value

    @property
    def webhook_problems(self) -> list[str]:
        """Webhooks sent that the SDK's event models do not accept (the strict emulator's check)."""
        return self._delivery.problems

    @property
    def public_key_b64(self) -> str:
        """The key Lifeline must verify our webhooks with (TELNYX_PUBLIC_KEY)."""
        return base64.b64encode(bytes(self.signing_key.verify_key)).decode()

    def scaled(self, seconds: float) -> float:
        """Real seconds for a duration in scenario time."""
        return self._legs.scaled(seconds)

    # ----- the caller's side, driven by scripts and tests -------------------------------------

    def incoming_call(self, from_: str = "+15551230001", to: str = OUR_NUMBER,
                      agent: str = "answer", codec: str | None = None) -> Leg:
        """A new inbound call: Telnyx parks it and posts call.initiated.

        `codec` is the call's own codec (default: `call_codec`), which a stream carries unless
        the app asks for another with `stream_codec` and `transcodes` is on."""
        leg = self._legs.new(from_, to, "incoming", "parked", "caller", CallLog(str(uuid.uuid4())))
        leg.agent_behaviour = agent
        leg.codec = codec or self.call_codec
        self._legs.emit(leg, "call.initiated", direction="incoming", state="parked",
                        start_time=iso_now(), caller_id_name=from_)
        return leg

    def press(self, leg: Leg, digits: str) -> None:
        """The caller presses keys, whatever the IVR is doing."""
        for digit in digits:
            with self._lock:
                if leg.ended:
                    return
                self._legs.emit(leg, "call.dtmf.received", digit=digit)
                if leg.streamer is not None:
                    leg.streamer.dtmf(digit)
                gather = leg.gather
                if gather is None:
                    continue
                leg.media_free_at = time.monotonic()  # a key press cuts the prompt short
                if gather.terminating and digit == gather.terminating:
                    # The terminating digit ends the gather and is not part of the input.
                    status = "valid" if len(gather.digits) >= gather.min_digits else "invalid"
                    self._legs.end_gather(leg, status, gather.digits)
                    continue
                if digit not in gather.valid:
                    self._legs.end_gather(leg, "invalid", gather.digits + digit)
                    continue
                gather.digits += digit
                if len(gather.digits) >= gather.max_digits:
                    self._legs.end_gather(leg, "valid", gather.digits)

    def say(self, leg: Leg, text: str, seconds: float, audio: bytes | None = None) -> None:
        """The caller talks: streamed as audio if the app asked for a stream, else for `seconds`
        (scenario time); with transcription on, Telnyx then posts a final transcript."""
        streamer = leg.streamer
        if streamer is not None and audio is not None:
            leg.log.trigger_trailing_silence_s = trailing_silence_s(audio)
            # When the last frame will leave; set before it does, since an app that decodes in the
            # pause can transfer while the recording's trailing silence is still playing.
            leg.log.trigger_sent_at = time.monotonic() + self.scaled(len(audio) / 8000)
            played = streamer.play(audio)
            played.wait(timeout=self.scaled(len(audio) / 8000) + 10)
        else:
            time.sleep(self.scaled(seconds))
        with self._lock:
            if leg.ended or not leg.transcribing or leg.transcription_tracks == "outbound":
                return
            self._legs.emit(leg, "call.transcription", transcription_data=_transcript(
                leg, text, 0.93, "inbound"))

    def agent_says(self, leg: Leg, text: str, seconds: float, audio: bytes | None = None) -> bool:
        """The agent bridged to this caller talks: streamed on the outbound track if the app asked
        for both tracks, transcribed if it asked Telnyx for the outbound track. False when no
        agent is on the line."""
        streamer = leg.streamer
        if streamer is not None and audio is not None and streamer.both_tracks:
            streamer.play(audio, track="outbound").wait(timeout=self.scaled(len(audio) / 8000) + 10)
        else:
            time.sleep(self.scaled(seconds))
        with self._lock:
            if leg.ended or leg.bridged_with is None:
                return False
            if leg.transcribing and leg.transcription_tracks in ("outbound", "both"):
                self._legs.emit(leg, "call.transcription", transcription_data=_transcript(
                    leg, text, 0.91, "outbound"))
            return True

    def caller_hangs_up(self, leg: Leg) -> None:
        """The caller puts the phone down."""
        with self._lock:
            if not leg.ended:
                leg.log.ended_by = leg.log.ended_by or "caller"
                self._legs.end(leg, "normal_clearing", "caller")

    def wait_for_gather(self, leg: Leg, timeout: float) -> bool:
        """Block until the IVR has a menu open on this leg (or the leg ended)."""
        return wait_for_gather(self._lock, leg, timeout)

    def drop_stream(self, leg: Leg, reason: str) -> None:
        """The app's media socket fails under the caller's stream (tests)."""
        self._legs.stream_failed(leg, leg.stream_url, reason)

    def failed_streams(self) -> dict[tuple[str, str], int]:
        """How many media streams the app's socket refused or dropped, by URL and reason."""
        with self._lock:
            return dict(self._legs.failed_streams)

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the next matching command(s)."""
        self._faults.arm(fault)

    def lose_webhooks(self, event_type: str, times: int = 1) -> None:
        """The next `times` webhooks of this type never reach the app (Telnyx's retries ran out)."""
        self._delivery.lose(event_type, times)

    def leg(self, call_control_id: str) -> Leg | None:
        """Look up a leg by its call_control_id."""
        return self._legs.get(call_control_id)

    def commands_for(self, call_control_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """Command requests received for a leg (every HTTP attempt), optionally of one name."""
        with self._lock:
            return [r for r in self.requests if r["call_control_id"] == call_control_id
                    and (name is None or r["name"] == name)]

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until no webhook is queued or in flight."""
        return self._delivery.idle(timeout)

    def close(self) -> None:
        """Stop timers, media streams, deliveries and the HTTP client."""
        self._timers.stop()
        self.stop_streams()
        self._delivery.close()

    def stop_streams(self) -> None:
        """Stop every media stream (before the app's server goes away under them)."""
        self._legs.stop_streams()

    # ----- the HTTP API (called by lifeline.simulator.server) ------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        """Whether a request carries our API key (the server checks it once, for every route)."""
        return authorization == f"Bearer {self.api_key}"

    def handle_command(self, call_control_id: str, name: str, body: dict[str, Any]) -> Reply:
        """Execute one Call Control command as Telnyx would."""
        refused = check_command(name, body) if name in COMMANDS else None
        if refused is not None:
            # What real Telnyx refuses, we refuse: the body must fit the SDK's parameter type.
            with self._lock:
                self.refused.append({"call_control_id": call_control_id, "name": name, "body": body,
                                     "errors": refused[1]["errors"]})
            return refused
        fault = self._faults.next_for(name)
        if fault and fault.hold is not None:
            fault.hold.wait(timeout=30)
        entry: dict[str, Any] = {"t": time.monotonic(), "call_control_id": call_control_id, "name": name,
                 "command_id": body.get("command_id"), "body": body}
        with self._lock:
            leg = self._legs.get(call_control_id)
            reply = self._decide(leg, name, body, entry, fault)
            entry["status"] = reply[0]
            self.requests.append(entry)
            if leg is not None:
                logged = {"t_ms": leg.log.t_ms(entry["t"]), "kind": "command", "type": name,
                          "status": reply[0], "command_id": entry["command_id"]}
                if entry.get("duplicate"):
                    logged["duplicate"] = True
                leg.log.add(logged)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)  # Telnyx did the work but answers late
        if fault and fault.reply_hold is not None:
            fault.reply_hold.wait(timeout=30)  # ... or only when the test lets it
        return reply

    def dial(self, body: dict[str, Any], answer: str = "answer") -> Reply:
        """POST /v2/calls: an outbound call; the far end answers after the ring (or does not)."""
        refused = check_dial(body)
        if refused is not None:
            return refused
        absent = [k for k in ("connection_id", "to", "from")
                  if not isinstance(body.get(k), str) or not body[k]]
        if absent:  # the types allow "", Telnyx does not (reference: 10004 for a blank `to`)
            return missing(", ".join(absent))
        fault = self._faults.next_for("dial")
        command_id = body.get("command_id")
        with self._lock:
            earlier = self._dialled.get(command_id) if command_id else None
        if earlier is not None:
            # "Telnyx will ignore others Dial commands with the same command_id" (the SDK): no second
            # call. What it answers then is not documented; this answers with the first dial's call.
            with self._lock:
                self.requests.append({"t": time.monotonic(), "call_control_id": earlier.call_control_id,
                                      "name": "dial", "command_id": command_id, "body": body, "status": 200,
                                      "duplicate": True})
            return 200, self._dialled_reply(earlier)
        legs = self._legs
        leg = legs.new(body["from"], body["to"], "outgoing", "parked", "callee", CallLog(str(uuid.uuid4())))
        if command_id:
            with self._lock:
                self._dialled[command_id] = leg
        leg.client_state = body.get("client_state")
        leg.agent_behaviour = answer
        with self._lock:
            self.requests.append({"t": time.monotonic(), "call_control_id": leg.call_control_id,
                                  "name": "dial", "command_id": body.get("command_id"), "body": body,
                                  "status": 200})
        legs.emit(leg, "call.initiated", direction="outgoing", state="parked", start_time=iso_now())

        def far_end_decides() -> None:
            with self._lock:
                if leg.ended:
                    return
                if leg.agent_behaviour != "answer":
                    legs.end(leg, HANGUP_CAUSES.get(leg.agent_behaviour, "timeout"), "callee")
                    return
                leg.answered = True
                listen_from_answer(leg, body)  # a dial with `transcription` is heard from here on
                legs.emit(leg, "call.answered", state="answered", start_time=iso_now())
                script = self.far_ends.get(leg.to)
                if script is not None:
                    threading.Thread(target=script, args=(leg,), name="far-end", daemon=True).start()

        self._timers.after(self.scaled(RING_S), far_end_decides)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)  # the call is placed, and the answer comes late
        return 200, self._dialled_reply(leg)

    @staticmethod
    def _dialled_reply(leg: Leg) -> dict[str, Any]:
        return {"data": {"record_type": "call", "call_control_id": leg.call_control_id,
                         "call_leg_id": leg.call_leg_id, "call_session_id": leg.log.session_id,
                         "is_alive": False, "client_state": leg.client_state}}

    def call_status(self, call_control_id: str) -> Reply:
        """GET /v2/calls/{id}: whether the leg is still up."""
        with self._lock:
            leg = self._legs.get(call_control_id)
            if leg is None:
                return error(404, "10005", "Resource not found")
            return 200, {"data": {"record_type": "call", "call_control_id": leg.call_control_id,
                                  "call_leg_id": leg.call_leg_id, "call_session_id": leg.log.session_id,
                                  "is_alive": not leg.ended, "call_duration": 0}}

    def _decide(self, leg: Leg | None, name: str, body: dict[str, Any], entry: dict[str, Any],
                fault: Fault | None) -> Reply:
        if fault and fault.status:
            return error(fault.status, fault.code, "Injected failure", f"emulator fault on {name}")
        if fault and fault.drop:
            return ok()
        if leg is None:
            return error(422, "90015", "Invalid Call Control ID")
        if name not in COMMANDS:
            return error(404, "10005", "Resource not found", f"no action {name!r}")
        if leg.ended:
            return error(422, "90018", "Call has already ended",
                         "This call is no longer active and can't receive commands.")
        command_id = body.get("command_id")
        now = time.monotonic()
        if command_id and now - leg.seen_command_ids.get(command_id, -1e9) < DEDUPE_WINDOW_S:
            entry["duplicate"] = True
            return ok()
        reply = run(self._legs, leg, name, body)
        if reply[0] == 200:
            if command_id:
                leg.seen_command_ids[command_id] = now
            if body.get("client_state"):
                leg.client_state = body["client_state"]
        return reply


def _transcript(leg: Leg, text: str, confidence: float, track: str) -> dict[str, Any]:
    """A final transcript as Telnyx posts it: the track is named only by Telnyx's own engine."""
    data: dict[str, Any] = {"transcript": text, "confidence": confidence, "is_final": True}
    if leg.transcription_names_track:
        data["transcription_track"] = track
    return data
