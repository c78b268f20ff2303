"""A Telnyx Call Control emulator: real HTTP on loopback, real signed webhooks, real timing.

It implements the commands Lifeline sends with Telnyx's response and error shapes, plays the
caller's leg under a script's control and the agent's leg as the scenario says, and records
every webhook, command and caller turn with a timestamp. `speed` > 1 compresses the time that
speech, rings and timeouts take (tests use it); latencies are always measured in real time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from nacl.signing import SigningKey

from ivr.events import decode_client_state
from ivr.security import sign
from ivr.serial import KeyedSerialExecutor

from .clock import Timers
from .legs import CallLog, Gather, Leg

log = logging.getLogger(__name__)
SPEECH_CHARS_PER_S = 15.0
RING_S = 2.0
DEDUPE_WINDOW_S = 60.0
HANGUP_CAUSES = {"no_answer": "timeout", "busy": "user_busy", "reject": "call_rejected"}
OUR_NUMBER = "+15550100000"
TRIGGER_EVENTS = ("call.transcription", "call.dtmf.received")

Reply = tuple[int, dict[str, Any]]


def ok() -> Reply:
    """Telnyx's success body for call commands."""
    return 200, {"data": {"result": "ok"}}


def error(status: int, code: str, title: str, detail: str = "") -> Reply:
    """Telnyx's error body."""
    return status, {"errors": [{"code": code, "title": title, "detail": detail or title}]}


@dataclass
class Fault:
    """Make the next `times` matching commands fail, answer late, or wait for a signal."""

    command: str
    times: int = 1
    status: int | None = None
    code: str = "10007"
    delay_s: float = 0.0
    hold: threading.Event | None = None
    drop: bool = False  # answer 200 but do nothing, as if the command were lost inside Telnyx


@dataclass
class Chaos:
    """Misbehave like a bad day at Telnyx, each with probability `rate` (seeded, reproducible)."""

    rate: float
    seed: int = 7
    timeout_s: float = 1.5  # longer than the app's command timeout in chaos runs

    def __post_init__(self) -> None:
        import random
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def happens(self, share: float = 1.0) -> bool:
        """Roll the dice for one misbehaviour."""
        with self._lock:
            return self._random.random() < self.rate * share

    def delay(self) -> float:
        """How late a delayed webhook arrives."""
        with self._lock:
            return self._random.uniform(0.05, 0.4)


class Emulator:
    """Telnyx as seen by one Lifeline app."""

    def __init__(self, api_key: str = "KEY_emulator", speed: float = 1.0, chaos: Chaos | None = None) -> None:
        self.api_key = api_key
        self.speed = speed
        self.chaos = chaos
        self.signing_key = SigningKey.generate()
        self.webhook_url: str | None = None
        self.base_url: str | None = None
        self.requests: list[dict[str, Any]] = []
        self._legs: dict[str, Leg] = {}
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._timers = Timers()
        self._delivery = KeyedSerialExecutor(64, "emulator-webhook")
        # Room for every concurrent call's webhook: a pool that queues would inflate measured acks.
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(max_connections=2000,
                                                                    max_keepalive_connections=500))
        self._commands: dict[str, Callable[[Leg, dict[str, Any]], Reply]] = {
            "answer": self._answer, "speak": self._speak,
            "gather_using_speak": self._gather_using_speak, "transfer": self._transfer,
            "hangup": self._hangup, "transcription_start": self._transcription_start,
            "transcription_stop": self._transcription_stop,
            "streaming_start": self._streaming_start, "streaming_stop": self._streaming_stop,
            "record_start": self._record_start, "record_stop": self._record_stop,
            "send_dtmf": self._send_dtmf,
        }
        # Far ends of calls the app dials out, by number: played on a thread once answered.
        self.far_ends: dict[str, Callable[[Leg], None]] = {}

    @property
    def public_key_b64(self) -> str:
        """The key Lifeline must verify our webhooks with (TELNYX_PUBLIC_KEY)."""
        import base64
        return base64.b64encode(bytes(self.signing_key.verify_key)).decode()

    def scaled(self, seconds: float) -> float:
        """Real seconds for a duration in scenario time."""
        return seconds / self.speed

    # ----- the caller's side, driven by scripts and tests -------------------------------------

    def incoming_call(self, from_: str = "+15551230001", to: str = OUR_NUMBER,
                      agent: str = "answer") -> Leg:
        """A new inbound call: Telnyx parks it and posts call.initiated."""
        leg = self._new_leg(from_, to, "incoming", "parked", "caller", CallLog(str(uuid.uuid4())))
        leg.agent_behaviour = agent
        self._emit(leg, "call.initiated", direction="incoming", state="parked",
                   start_time=_iso_now(), caller_id_name=from_)
        return leg

    def press(self, leg: Leg, digits: str) -> None:
        """The caller presses keys, whatever the IVR is doing."""
        for digit in digits:
            with self._lock:
                if leg.ended:
                    return
                self._emit(leg, "call.dtmf.received", digit=digit)
                gather = leg.gather
                if gather is None:
                    continue
                leg.media_free_at = time.monotonic()  # a key press cuts the prompt short
                if digit not in gather.valid:
                    self._end_gather(leg, "invalid", gather.digits + digit)
                    continue
                gather.digits += digit
                if len(gather.digits) >= gather.max_digits:
                    self._end_gather(leg, "valid", gather.digits)

    def say(self, leg: Leg, text: str, seconds: float, audio: bytes | None = None) -> None:
        """The caller talks: streamed as audio if the app asked for a stream, else for `seconds`
        (scenario time); with transcription on, Telnyx then posts a final transcript."""
        streamer = leg.streamer
        if streamer is not None and audio is not None:
            played = streamer.play(audio)
            played.wait(timeout=self.scaled(len(audio) / 8000) + 10)
            leg.log.trigger_sent_at = time.monotonic()  # the last frame of the utterance left
        else:
            time.sleep(self.scaled(seconds))
        with self._lock:
            if leg.ended or not leg.transcribing or leg.transcription_tracks == "outbound":
                return
            self._emit(leg, "call.transcription", transcription_data={
                "transcript": text, "confidence": 0.93, "is_final": True,
                "transcription_track": "inbound"})

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
                self._emit(leg, "call.transcription", transcription_data={
                    "transcript": text, "confidence": 0.91, "is_final": True,
                    "transcription_track": "outbound"})
            return True

    def caller_hangs_up(self, leg: Leg) -> None:
        """The caller puts the phone down."""
        with self._lock:
            if not leg.ended:
                leg.log.ended_by = leg.log.ended_by or "caller"
                self._end(leg, "normal_clearing", "caller")

    def wait_for_gather(self, leg: Leg, timeout: float) -> bool:
        """Block until the IVR has a menu open on this leg (or the leg ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if leg.gather is not None:
                    return True
                if leg.ended:
                    return False
            time.sleep(0.005)
        return False

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the next matching command(s)."""
        with self._lock:
            self._faults.append(fault)

    def leg(self, call_control_id: str) -> Leg | None:
        """Look up a leg by its call_control_id."""
        with self._lock:
            return self._legs.get(call_control_id)

    def commands_for(self, call_control_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """Command requests received for a leg (every HTTP attempt), optionally of one name."""
        with self._lock:
            return [r for r in self.requests if r["call_control_id"] == call_control_id
                    and (name is None or r["name"] == name)]

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until no webhook is queued or in flight."""
        return self._delivery.wait_idle(timeout)

    def close(self) -> None:
        """Stop timers, deliveries and the HTTP client."""
        self._timers.stop()
        self._delivery.shutdown(wait=False)
        self._http.close()

    # ----- the HTTP API (called by simulator.server) ------------------------------------------

    def handle_command(self, call_control_id: str, name: str, body: dict[str, Any],
                       authorization: str | None) -> Reply:
        """Execute one Call Control command as Telnyx would."""
        if not self._authorized(authorization):
            return error(401, "10009", "Authentication failed", "check the API key")
        fault = self._take_fault(name) or self._chaos_fault(name)
        if fault and fault.hold is not None:
            fault.hold.wait(timeout=30)
        entry = {"t": time.monotonic(), "call_control_id": call_control_id, "name": name,
                 "command_id": body.get("command_id"), "body": body}
        reply = self._execute(call_control_id, name, body, entry, fault)
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)  # Telnyx did the work but answers late
        return reply

    def dial(self, body: dict[str, Any], authorization: str | None, answer: str = "answer") -> Reply:
        """POST /v2/calls: an outbound call; the far end answers after the ring (or does not)."""
        if not self._authorized(authorization):
            return error(401, "10009", "Authentication failed", "check the API key")
        missing = [k for k in ("connection_id", "to", "from")
                   if not isinstance(body.get(k), str) or not body[k]]
        if missing:
            return error(422, "10004", "Missing required parameter", f"{', '.join(missing)} required")
        leg = self._new_leg(body["from"], body["to"], "outgoing", "parked", "callee",
                            CallLog(str(uuid.uuid4())))
        leg.client_state = body.get("client_state")
        leg.agent_behaviour = answer
        with self._lock:
            self.requests.append({"t": time.monotonic(), "call_control_id": leg.call_control_id,
                                  "name": "dial", "command_id": body.get("command_id"), "body": body,
                                  "status": 200})
        self._emit(leg, "call.initiated", direction="outgoing", state="parked", start_time=_iso_now())

        def far_end_decides() -> None:
            with self._lock:
                if leg.ended:
                    return
                if leg.agent_behaviour != "answer":
                    self._end(leg, HANGUP_CAUSES.get(leg.agent_behaviour, "timeout"), "callee")
                    return
                leg.answered = True
                self._emit(leg, "call.answered", state="answered", start_time=_iso_now())
                script = self.far_ends.get(leg.to)
                if script is not None:
                    threading.Thread(target=script, args=(leg,), name="far-end", daemon=True).start()

        self._timers.after(self.scaled(RING_S), far_end_decides)
        return 200, {"data": {"record_type": "call", "call_control_id": leg.call_control_id,
                              "call_leg_id": leg.call_leg_id, "call_session_id": leg.log.session_id,
                              "is_alive": False, "client_state": leg.client_state}}

    def _authorized(self, authorization: str | None) -> bool:
        return authorization == f"Bearer {self.api_key}"

    def call_status(self, call_control_id: str, authorization: str | None) -> Reply:
        """GET /v2/calls/{id}: whether the leg is still up."""
        if not self._authorized(authorization):
            return error(401, "10009", "Authentication failed", "check the API key")
        with self._lock:
            leg = self._legs.get(call_control_id)
            if leg is None:
                return error(404, "10005", "Resource not found")
            return 200, {"data": {"record_type": "call", "call_control_id": leg.call_control_id,
                                  "call_leg_id": leg.call_leg_id, "call_session_id": leg.log.session_id,
                                  "is_alive": not leg.ended, "call_duration": 0}}

    def _execute(self, call_control_id: str, name: str, body: dict[str, Any],
                 entry: dict[str, Any], fault: Fault | None) -> Reply:
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
            return reply

    def _decide(self, leg: Leg | None, name: str, body: dict[str, Any], entry: dict[str, Any],
                fault: Fault | None) -> Reply:
        if fault and fault.status:
            return error(fault.status, fault.code, "Injected failure", f"emulator fault on {name}")
        if fault and fault.drop:
            return ok()
        if leg is None:
            return error(422, "90015", "Invalid Call Control ID")
        handler = self._commands.get(name)
        if handler is None:
            return error(404, "10005", "Resource not found", f"no action {name!r}")
        if leg.ended:
            return error(422, "90018", "Call has already ended",
                         "This call is no longer active and can't receive commands.")
        command_id = body.get("command_id")
        now = time.monotonic()
        if command_id and now - leg.seen_command_ids.get(command_id, -1e9) < DEDUPE_WINDOW_S:
            entry["duplicate"] = True
            return ok()
        reply = handler(leg, body)
        if reply[0] == 200:
            if command_id:
                leg.seen_command_ids[command_id] = now
            if body.get("client_state"):
                leg.client_state = body["client_state"]
        return reply

    def _chaos_fault(self, name: str) -> Fault | None:
        if self.chaos is None:
            return None
        if self.chaos.happens(0.5):
            return Fault(name, status=500, code="10007")
        if self.chaos.happens(0.25):
            return Fault(name, delay_s=self.chaos.timeout_s)
        return None

    def _take_fault(self, name: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.command == name and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    # ----- commands ---------------------------------------------------------------------------

    def _answer(self, leg: Leg, body: dict[str, Any]) -> Reply:
        if leg.direction != "incoming":
            return error(422, "90102", "Cannot answer an outbound call")
        if leg.answered:
            return ok()
        leg.answered = True
        leg.transcribing = bool(body.get("transcription"))
        config = body.get("transcription_config")
        if isinstance(config, dict) and isinstance(config.get("transcription_tracks"), str):
            leg.transcription_tracks = config["transcription_tracks"]
        leg.log.answered = True
        self._timers.after(self.scaled(0.05), lambda: self._emit_if_up(
            leg, "call.answered", state="answered", start_time=_iso_now()))
        if isinstance(body.get("stream_url"), str):
            leg.stream_track = str(body.get("stream_track") or "inbound_track")
            self._timers.after(self.scaled(0.05), lambda: self._open_stream(leg, body["stream_url"]))
        return ok()

    def _speak(self, leg: Leg, body: dict[str, Any]) -> Reply:
        problem = self._media_problem(leg, body)
        if problem:
            return problem
        start, end = self._play(leg, body["payload"])
        self._timers.at(start, lambda: self._emit_if_up(leg, "call.speak.started"))
        self._timers.at(end, lambda: self._emit_if_up(leg, "call.speak.ended", status="completed"))
        return ok()

    def _gather_using_speak(self, leg: Leg, body: dict[str, Any]) -> Reply:
        problem = self._media_problem(leg, body)
        if problem:
            return problem
        _, end = self._play(leg, body["payload"])
        gather = Gather(valid=str(body.get("valid_digits") or "0123456789#*"),
                        max_digits=int(body.get("maximum_digits") or 128),
                        timeout_s=int(body.get("timeout_millis") or 60000) / 1000)
        leg.gather = gather
        self._timers.at(end + self.scaled(gather.timeout_s),
                        lambda: self._gather_timed_out(leg, gather.token))
        return ok()

    def _transfer(self, leg: Leg, body: dict[str, Any]) -> Reply:
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return error(422, "10004", "Missing required parameter", "to is required")
        leg.gather = None
        agent = self._new_leg(body.get("from") or leg.to, to, "outgoing", "bridging", "agent", leg.log)
        agent.client_state = body.get("target_leg_client_state")
        agent.agent_behaviour = leg.agent_behaviour
        leg.agent_legs.append(agent.call_control_id)
        leg.log.transfers.append({
            "t_ms": leg.log.t_ms(), "to": to, "command_id": body.get("command_id"),
            "client_state": decode_client_state(body.get("client_state")) or body.get("client_state")})
        if leg.log.escalation_latency_ms is None and leg.log.trigger_sent_at is not None:
            leg.log.escalation_latency_ms = round((time.monotonic() - leg.log.trigger_sent_at) * 1000, 2)
        self._emit(agent, "call.initiated", direction="outgoing", state="bridging",
                   start_time=_iso_now())
        self._timers.after(self.scaled(RING_S), lambda: self._agent_decides(leg, agent))
        return ok()

    def _hangup(self, leg: Leg, body: dict[str, Any]) -> Reply:
        leg.log.ended_by = leg.log.ended_by or ("app" if leg.role == "caller" else None)
        self._end(leg, "normal_clearing", "callee")
        return ok()

    def _transcription_start(self, leg: Leg, body: dict[str, Any]) -> Reply:
        if not leg.answered:
            return error(422, "90034", "Call not answered yet")
        if leg.transcribing:
            return error(422, "90054", "Call transcription is already in progress")
        leg.transcribing = True
        leg.transcription_tracks = str(body.get("transcription_tracks") or "inbound")
        return ok()

    def _transcription_stop(self, leg: Leg, body: dict[str, Any]) -> Reply:
        leg.transcribing = False
        return ok()

    def _send_dtmf(self, leg: Leg, body: dict[str, Any]) -> Reply:
        digits = body.get("digits")
        if not isinstance(digits, str) or not digits:
            return error(422, "10004", "Missing required parameter", "digits is required")
        if not leg.answered:
            return error(422, "90034", "Call not answered yet")
        leg.dtmf_received += digits
        return ok()

    def _record_start(self, leg: Leg, body: dict[str, Any]) -> Reply:
        if not leg.answered:
            return error(422, "90034", "Call not answered yet")
        if body.get("format") not in ("mp3", "wav") or body.get("channels") not in ("single", "dual"):
            return error(422, "10004", "Missing required parameter", "format and channels are required")
        leg.recording = str(body["format"])
        return ok()

    def _record_stop(self, leg: Leg, body: dict[str, Any]) -> Reply:
        self._recording_saved(leg)
        return ok()

    def _recording_saved(self, leg: Leg) -> None:
        if leg.recording is None:
            return
        url = f"https://emulator.invalid/recordings/{leg.call_leg_id}.{leg.recording}"
        self._emit(leg, "call.recording.saved", recording_urls={leg.recording: url},
                   channels="single", recording_started_at=_iso_now(), recording_ended_at=_iso_now())
        leg.recording = None

    def _streaming_start(self, leg: Leg, body: dict[str, Any]) -> Reply:
        if not isinstance(body.get("stream_url"), str):
            return error(422, "10004", "Missing required parameter", "stream_url is required")
        if not leg.answered:
            return error(422, "90034", "Call not answered yet")
        leg.stream_track = str(body.get("stream_track") or "inbound_track")
        self._timers.after(0, lambda: self._open_stream(leg, body["stream_url"]))
        return ok()

    def _streaming_stop(self, leg: Leg, body: dict[str, Any]) -> Reply:
        self._close_stream(leg)
        return ok()

    def _open_stream(self, leg: Leg, url: str) -> None:
        """Telnyx connects to the app's stream_url and starts sending the caller's audio."""
        from .streamer import MediaStreamer

        with self._lock:
            if leg.ended:
                return
            self._close_stream(leg)
            leg.stream_url = url
            leg.streamer = MediaStreamer(url, leg.call_control_id, self.speed,
                                         on_failed=lambda why: self._stream_failed(leg, url, why),
                                         both_tracks=leg.stream_track == "both_tracks")
            self._emit(leg, "streaming.started", stream_url=url)
        leg.streamer.start()

    def _close_stream(self, leg: Leg) -> None:
        if leg.streamer is not None:
            leg.streamer.stop()
            leg.streamer = None
            if not leg.ended:
                self._emit(leg, "streaming.stopped", stream_url=leg.stream_url)

    def _stream_failed(self, leg: Leg, url: str, reason: str) -> None:
        with self._lock:
            if leg.ended or leg.stream_url != url:
                return
            leg.streamer = None
            self._emit(leg, "streaming.failed", failure_reason=reason, stream_id=None,
                       stream_params={"stream_url": url, "track": "inbound_track"},
                       stream_type="websocket")

    # ----- leg mechanics ----------------------------------------------------------------------

    def _new_leg(self, from_: str, to: str, direction: str, state: str, role: str,
                 call_log: CallLog) -> Leg:
        leg = Leg(call_control_id=f"v3:emu-{uuid.uuid4().hex}", call_leg_id=str(uuid.uuid4()),
                  from_=from_, to=to, direction=direction, state=state, role=role, log=call_log)
        with self._lock:
            self._legs[leg.call_control_id] = leg
        return leg

    def _media_problem(self, leg: Leg, body: dict[str, Any]) -> Reply | None:
        if not leg.answered:
            return error(422, "90034", "Call not answered yet")
        if not isinstance(body.get("payload"), str) or not body["payload"].strip():
            return error(422, "10004", "Missing required parameter", "payload is required")
        if not isinstance(body.get("voice"), str):
            return error(422, "10004", "Missing required parameter", "voice is required")
        return None

    def _play(self, leg: Leg, text: str) -> tuple[float, float]:
        """Queue speech behind whatever is playing; returns its start and end times."""
        start = max(time.monotonic(), leg.media_free_at)
        end = start + self.scaled(len(text) / SPEECH_CHARS_PER_S)
        leg.media_free_at = end
        return start, end

    def _end_gather(self, leg: Leg, status: str, digits: str) -> None:
        leg.gather = None
        self._emit(leg, "call.gather.ended", status=status, digits=digits)

    def _gather_timed_out(self, leg: Leg, token: int) -> None:
        with self._lock:
            if not leg.ended and leg.gather is not None and leg.gather.token == token:
                self._end_gather(leg, "timeout", leg.gather.digits)

    def _agent_decides(self, caller: Leg, agent: Leg) -> None:
        with self._lock:
            if agent.ended:
                return
            if caller.ended:
                self._end(agent, "originator_cancel", "caller")
                return
            if agent.agent_behaviour != "answer":
                self._end(agent, HANGUP_CAUSES.get(agent.agent_behaviour, "timeout"), "callee")
                return
            agent.answered = True
            agent.state = "answered"
            self._emit(agent, "call.answered", state="answered", start_time=_iso_now())
            caller.bridged_with, agent.bridged_with = agent.call_control_id, caller.call_control_id
            caller.log.bridged = True
            self._emit(caller, "call.bridged")
            self._emit(agent, "call.bridged")

    def _end(self, leg: Leg, cause: str, source: str) -> None:
        leg.ended = True
        leg.gather = None
        leg.transcribing = False
        if leg.streamer is not None:
            leg.streamer.stop()
            leg.streamer = None
        self._emit(leg, "call.hangup", state="hangup", hangup_cause=cause, hangup_source=source,
                   sip_hangup_cause="unspecified", start_time=_iso_now())
        self._recording_saved(leg)  # Telnyx posts the recording after the hangup
        peer = self._legs.get(leg.bridged_with or "")
        if peer is not None and not peer.ended:
            self._end(peer, "normal_clearing", source)
        for agent_id in leg.agent_legs:
            agent = self._legs.get(agent_id)
            if agent is not None and not agent.ended and not agent.answered:
                self._end(agent, "originator_cancel", "caller")

    # ----- webhooks ---------------------------------------------------------------------------

    def _emit_if_up(self, leg: Leg, event_type: str, **fields: Any) -> None:
        with self._lock:
            if not leg.ended:
                self._emit(leg, event_type, **fields)

    def _emit(self, leg: Leg, event_type: str, **fields: Any) -> None:
        payload = {**leg.base_payload(), **fields}
        call_log = leg.log
        with call_log.cond:
            call_log.in_flight += 1
        deliver = lambda: self._deliver(call_log, event_type, payload)  # noqa: E731
        if self.chaos is not None and self.chaos.happens():
            # Late, and so out of order with what this leg sends next.
            late_key = f"late-{uuid.uuid4()}"
            self._timers.after(self.chaos.delay(), lambda: self._delivery.submit(late_key, deliver))
            return
        self._delivery.submit(leg.call_control_id, deliver)

    def _deliver(self, call_log: CallLog, event_type: str, payload: dict[str, Any]) -> None:
        try:
            self._post(call_log, event_type, payload)
        finally:
            with call_log.cond:
                call_log.in_flight -= 1
                call_log.cond.notify_all()

    def _post(self, call_log: CallLog, event_type: str, payload: dict[str, Any]) -> None:
        if not self.webhook_url:
            return
        event_id = str(uuid.uuid4())
        for attempt in range(1, 4):  # Telnyx redelivers on 5xx and timeouts
            body = json.dumps({
                "data": {"record_type": "event", "event_type": event_type, "id": event_id,
                         "occurred_at": _iso_now(), "payload": payload},
                "meta": {"attempt": attempt, "delivered_to": self.webhook_url}}).encode()
            status = self._send(call_log, event_type, body)
            if 200 <= status < 300:
                if self.chaos is not None and self.chaos.happens():
                    # The very same event again, as Telnyx sometimes does.
                    duplicate = self._send(call_log, event_type, body, duplicate=True)
                    if not 200 <= duplicate < 300:
                        call_log.webhook_failures += 1
                return
            if 400 <= status < 500:
                break
            time.sleep(0.2 * attempt)
        call_log.webhook_failures += 1

    def _send(self, call_log: CallLog, event_type: str, body: bytes, duplicate: bool = False) -> int:
        """POST one signed delivery and put it on the call's timeline; 0 when nothing answered."""
        headers = {"content-type": "application/json", "user-agent": "telnyx-webhooks",
                   **sign(self.signing_key, body, int(time.time()))}
        sent = time.monotonic()
        if event_type in TRIGGER_EVENTS and not duplicate:
            call_log.trigger_sent_at = sent
        try:
            status = self._http.post(self.webhook_url or "", content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            log.warning("webhook %s not delivered: %s", event_type, exc)
            status = 0
        entry = {"t_ms": call_log.t_ms(sent), "kind": "webhook", "type": event_type, "status": status,
                 "ack_ms": round((time.monotonic() - sent) * 1000, 2)}
        if duplicate:
            entry["duplicate"] = True
        call_log.add(entry)
        return status


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
