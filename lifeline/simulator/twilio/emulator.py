"""A Twilio Programmable Voice emulator: real HTTP on loopback, webhooks signed as Twilio signs them.

The caller's call runs its TwiML in a thread of its own, verb by verb (Start/Stream,
Start/Transcription, Say, Gather, Dial/Number|Sip, Record, Redirect, Pause, Hangup), posting
form-encoded, X-Twilio-Signature-signed requests to Lifeline and following the TwiML it answers.
A REST call update replaces the running document at once, as on Twilio. The caller-facing
methods are the Telnyx emulator's, so the same scripted callers and reports drive both.

Streams and real-time transcriptions are kept per call by SID and by the name they were started
with, as Twilio keeps them: several may run at once (each gets the caller's audio, so a second
stream of the caller means every line is heard twice), and each is stopped on its own with
`POST .../Streams/{name or SID}.json` (`.../Transcriptions/...`) and `Status=stopped`. A
transcription started mid-utterance (a resume) posts only the words spoken after it started.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import httpx
from twilio.request_validator import RequestValidator

from lifeline.ivr.serial import KeyedSerialExecutor

from ..emulator import OUR_NUMBER
from ..faults import Chaos, Fault
from ..legs import CallLog, Gather, Leg, wait_for_gather
from ..lifecycle import RING_S, SPEECH_CHARS_PER_S, silent_wav
from .streamer import TRACKS

log = logging.getLogger(__name__)
POLL_S = 0.01
DIAL_OUTCOME = {"no_answer": "no-answer", "busy": "busy", "reject": "failed"}
# Agent behaviours whose phone is picked up (what happens next is the whisper's to tell).
ANSWERING = ("answer", "hangs_up_in_whisper", "whisper_answer_lost")
Reply = tuple[int, dict[str, Any]]
# Twilio's docs name no error code for a name already used on the call, nor for a bad Status or
# Track; these are the emulator's own, all 400s (what Lifeline's client acts on is the status).
NAME_IN_USE, BAD_PARAMETER = 40001, 40002
TWIML_TOO_LONG, INLINE_TWIML_CHARS = 32018, 4000  # Twilio's limit on a call update's inline TwiML


def twilio_error(status: int, code: int, message: str) -> Reply:
    """Twilio's REST error body."""
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


@dataclass
class Transcription:
    """One real-time transcription of a call: Twilio posts each utterance of its track(s)."""

    sid: str
    name: str | None
    track: str  # inbound_track, outbound_track or both_tracks
    url: str | None
    stopped: bool = False
    sequence: int = 0
    started_at: float = field(default_factory=time.monotonic)  # words spoken before it are not heard

    def carries(self, track: str) -> bool:
        """Whether it transcribes the `inbound` (caller) or `outbound` (agent) track now."""
        return not self.stopped and track in TRACKS[self.track]

    def stop(self) -> None:
        """Nothing more is transcribed."""
        self.stopped = True


@dataclass
class TwilioLeg(Leg):
    """A Twilio call: a Leg plus what running TwiML needs.

    `streamer` is the stream started last that still runs (None when none does); `streams` and
    `transcriptions` hold every one started on the call, stopped ones too, since a name stays used.
    """

    status: str = "ringing"
    update: str | None = None  # TwiML from a REST update, waiting to replace the running document
    interrupt: threading.Event = field(default_factory=threading.Event)
    streams: list[Any] = field(default_factory=list)  # TwilioStreamer, oldest first
    transcriptions: list[Transcription] = field(default_factory=list)

    def live_streams(self, track: str) -> list[Any]:
        """The running streams that send the `inbound` or `outbound` track."""
        return [s for s in self.streams if not s.stopped and s.carries(track)]

    def settle(self) -> None:
        """Bring `streamer` and `transcribing` in line with what runs (after any start or stop)."""
        running = [s for s in self.streams if not s.stopped]
        self.streamer = running[-1] if running else None
        self.transcribing = any(not t.stopped for t in self.transcriptions)


class TwilioEmulator:
    """Twilio as seen by one Lifeline app."""

    def __init__(self, speed: float = 1.0, chaos: Chaos | None = None, account_sid: str | None = None,
                 auth_token: str | None = None) -> None:
        # Made for each run unless given (`simulate --app-url` keeps one account between runs).
        self.account_sid = account_sid or "AC" + uuid.uuid4().hex
        self.auth_token = auth_token or secrets.token_hex(16)
        self.validator = RequestValidator(self.auth_token)
        self.speed = speed
        self.chaos = chaos
        self.app_url: str | None = None  # Lifeline's public URL: the number's voice URL is under it
        self.base_url: str | None = None  # this emulator's REST API
        self.requests: list[dict[str, Any]] = []
        self.recordings: dict[str, bytes] = {}  # what its recording URLs serve, by recording SID
        self._legs: dict[str, TwilioLeg] = {}
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._closed = False
        self._streams_stopped = False  # set by stop_streams: no new stream may start after it
        # The DialCallStatus for an agent who hung up during the whisper: Twilio's docs do not say,
        # and its own samples read either `completed` or another status as "not taken".
        self.whisper_hangup_status = "completed"
        self._callbacks = KeyedSerialExecutor(64, "twilio-callback")
        self._http = httpx.Client(timeout=15.0, limits=httpx.Limits(max_connections=2000,
                                                                    max_keepalive_connections=500))

    def app_settings(self) -> dict[str, str]:
        """The settings pointing a Lifeline app at this emulator."""
        return {"TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_API_BASE_URL": self.base_url or ""}

    def scaled(self, seconds: float) -> float:
        """Real seconds for a duration in scenario time."""
        return seconds / self.speed

    # ----- the caller's side, driven by scripts and tests -------------------------------------

    def incoming_call(self, from_: str = "+15551230001", to: str = OUR_NUMBER,
                      agent: str = "answer") -> TwilioLeg:
        """A new inbound call: Twilio requests the number's voice URL and runs what it answers."""
        leg = self._new_leg(from_, to, "inbound", "caller", CallLog(str(uuid.uuid4())))
        leg.agent_behaviour = agent
        threading.Thread(target=self._run_call, args=(leg,), name="twilio-call", daemon=True).start()
        return leg

    def press(self, leg: Leg, digits: str) -> None:
        """The caller presses keys; only an open <Gather> hears them (one-way streams carry no DTMF)."""
        for digit in digits:
            with self._lock:
                if leg.ended or leg.gather is None:
                    continue
                if leg.gather.terminating and digit == leg.gather.terminating:
                    leg.gather.finished = True  # Twilio submits what came before, without the key
                    continue
                leg.gather.digits += digit

    def say(self, leg: Leg, text: str, seconds: float, audio: bytes | None = None) -> None:
        """The caller talks: sent on every running stream of the caller's track (as Twilio forks
        the audio to each), and posted by every running transcription of it."""
        assert isinstance(leg, TwilioLeg)
        began = time.monotonic()
        if self._play(leg, "inbound", audio, seconds):
            leg.log.trigger_sent_at = time.monotonic()
        with self._lock:
            if not leg.ended:
                self._transcribe(leg, "inbound", text, 0.93, began)

    def agent_says(self, leg: Leg, text: str, seconds: float, audio: bytes | None = None) -> bool:
        """The agent bridged to this caller talks: on the outbound track of the caller's streams
        that carry it (both_tracks), transcribed by those of its transcriptions that hear it.
        False when no agent is on the line."""
        assert isinstance(leg, TwilioLeg)
        began = time.monotonic()
        self._play(leg, "outbound", audio, seconds)
        with self._lock:
            if leg.ended or leg.bridged_with is None:
                return False
            self._transcribe(leg, "outbound", text, 0.91, began)
            return True

    def _play(self, leg: TwilioLeg, track: str, audio: bytes | None, seconds: float) -> bool:
        """Speech on a track of every running stream that carries it; False (time passes) if none."""
        with self._lock:
            streams = leg.live_streams(track)
        if not streams or audio is None:
            time.sleep(self.scaled(seconds))
            return False
        played = [stream.play(audio, track=track) for stream in streams]
        for done in played:
            done.wait(timeout=self.scaled(len(audio) / 8000) + 10)
        return True

    def _transcribe(self, leg: TwilioLeg, track: str, text: str, confidence: float, began: float) -> None:
        """Each running transcription of the track posts what it heard of the utterance spoken from
        `began` until now (the lock is held)."""
        ended = time.monotonic()
        for transcription in leg.transcriptions:
            if not transcription.carries(track) or not transcription.url:
                continue
            heard = _heard_since(text, began, ended, transcription.started_at)
            if not heard:
                continue
            transcription.sequence += 1
            params = {"TranscriptionEvent": "transcription-content", "TranscriptionSid": transcription.sid,
                      "SequenceId": str(transcription.sequence), "Track": f"{track}_track", "Final": "true",
                      "LanguageCode": "en-US", "TranscriptionData": json.dumps({"transcript": heard,
                                                                                "confidence": confidence})}
            self._callback(leg, transcription.url, params, "transcription", trigger=track == "inbound")

    def caller_hangs_up(self, leg: Leg) -> None:
        """The caller puts the phone down."""
        assert isinstance(leg, TwilioLeg)
        with self._lock:
            if not leg.ended:
                leg.log.ended_by = leg.log.ended_by or "caller"
                self._end(leg, "completed")

    def wait_for_gather(self, leg: Leg, timeout: float) -> bool:
        """Block until a <Gather> is open on this call (or it ended)."""
        return wait_for_gather(self._lock, leg, timeout)

    def inject(self, fault: Fault) -> None:
        """Arm a fault for the next matching REST request(s): update, streams, transcriptions."""
        with self._lock:
            self._faults.append(fault)

    def leg(self, sid: str) -> TwilioLeg | None:
        """Look up a call by its SID."""
        with self._lock:
            return self._legs.get(sid)

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until no status callback is queued or in flight."""
        return self._callbacks.wait_idle(timeout)

    def stop_streams(self) -> None:
        """Stop every media stream (before the app's server goes away under them)."""
        with self._lock:
            self._streams_stopped = True
            for leg in self._legs.values():
                for stream in leg.streams:
                    stream.stop()
                leg.settle()

    def close(self) -> None:
        """Stop callbacks and the HTTP client."""
        with self._lock:
            self._closed = True
            for leg in self._legs.values():
                if not leg.ended:
                    self._end(leg, "completed", notify=False)
        self._callbacks.shutdown(wait=False)
        self._http.close()

    # ----- REST API (called by lifeline.simulator.twilio.server) ---------------------------------------

    def authorized(self, username: str | None, password: str | None) -> bool:
        """HTTP basic auth with the Account SID and Auth Token."""
        return username == self.account_sid and password == self.auth_token

    def rest(self, name: str, sid: str, form: dict[str, str], target: str | None = None) -> Reply:
        """One REST request on a call: `fetch`, `update`, `streams`, `transcriptions`, or
        `stream_update` / `transcription_update` of the one whose name or SID is `target`."""
        fault = self._take_fault(name) or self._chaos_fault(name)
        if fault and fault.hold is not None:
            fault.hold.wait(timeout=30)
        now = time.monotonic()
        entry: dict[str, object] = {"t": now, "call_control_id": sid, "name": name, "body": dict(form)}
        if target is not None:
            entry["target"] = target
        with self._lock:
            leg = self._legs.get(sid)
            reply = self._decide(leg, name, form, fault, target)
            entry["status"] = reply[0]
            self.requests.append(entry)
            if leg is not None and name != "fetch":
                leg.log.add({"t_ms": leg.log.t_ms(now), "kind": "command", "type": name,
                             "status": reply[0]})
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)  # Twilio acted but answers late
        return reply

    def _decide(self, leg: TwilioLeg | None, name: str, form: dict[str, str], fault: Fault | None,
                target: str | None = None) -> Reply:
        if fault and fault.status:
            return twilio_error(fault.status, int(fault.code) if fault.code.isdigit() else 20500,
                                "Injected failure")
        if leg is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        if name == "fetch":
            return 200, self._resource(leg)
        if fault and fault.drop:
            return 200, self._resource(leg)
        if leg.ended:
            return twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if name == "update":
            if form.get("Status") in ("completed", "canceled"):
                leg.log.ended_by = leg.log.ended_by or ("app" if leg.role == "caller" else None)
                self._end(leg, "completed" if leg.answered else "canceled")
                return 200, self._resource(leg)
            twiml, url = form.get("Twiml"), form.get("Url")
            if twiml and len(twiml) > INLINE_TWIML_CHARS:
                return twilio_error(400, TWIML_TOO_LONG, "Twiml size exceeded maximum allowed value of "
                                    f"{INLINE_TWIML_CHARS} characters")
            if not twiml and url:
                # Twilio fetches the URL's document and runs it in place of the current one, as a
                # <Redirect> to it does.
                twiml = f'<Response><Redirect method="POST">{escape(url)}</Redirect></Response>'
            if not twiml:
                return twilio_error(400, 21205, "Url or Twiml is required")
            try:
                root = ET.fromstring(twiml)
                if root.tag != "Response":
                    raise ET.ParseError("root is not <Response>")
            except ET.ParseError:
                return twilio_error(400, 12100, "Document parse failure")
            self._note_transfers(leg, root)
            leg.update = twiml
            leg.interrupt.set()
            return 200, self._resource(leg)
        if name == "streams":
            url = form.get("Url", "")
            if not url.startswith(("ws://", "wss://")):
                return twilio_error(400, 21236, "Url must be a wss:// URL")
            refused = _refusal("Stream", leg.streams, form.get("Name"), form.get("Track"))
            if refused is not None:
                return refused
            stream_sid = self._open_stream(leg, url, form.get("StatusCallback"), {}, form.get("Name") or None,
                                           form.get("Track") or "inbound_track")
            return 201, self._resource_of(leg, stream_sid, form.get("Name") or None)
        if name == "transcriptions":
            refused = _refusal("Transcription", leg.transcriptions, form.get("Name"), form.get("Track"))
            if refused is not None:
                return refused
            transcription = self._start_transcription(leg, form.get("Name") or None,
                                                      form.get("Track") or "inbound_track",
                                                      form.get("StatusCallbackUrl"))
            return 201, self._resource_of(leg, transcription.sid, transcription.name)
        if name in ("stream_update", "transcription_update"):
            return self._stop(leg, leg.streams if name == "stream_update" else leg.transcriptions,
                              target or "", form)
        return twilio_error(404, 20404, f"no such resource {name!r}")

    def _resource_of(self, leg: TwilioLeg, sid: str, name: str | None,
                     status: str = "in-progress") -> dict[str, Any]:
        """A Stream or Transcription resource as the REST API returns it."""
        return {"sid": sid, "name": name, "account_sid": self.account_sid, "call_sid": leg.call_control_id,
                "status": status}

    def _stop(self, leg: TwilioLeg, started: list[Any], target: str, form: dict[str, str]) -> Reply:
        """Stop one stream or transcription of the call, found by its SID or its name."""
        if form.get("Status") != "stopped":
            return twilio_error(400, BAD_PARAMETER, "Status must be stopped")
        found = next((s for s in started if target in (s.sid, s.name)), None)
        if found is None:
            return twilio_error(404, 20404, f"The requested resource {target} was not found")
        # Stopping one that already stopped is answered as done (our reading: the docs say nothing).
        found.stop()
        leg.settle()
        return 200, self._resource_of(leg, found.sid, found.name, "stopped")

    def _resource(self, leg: TwilioLeg) -> dict[str, Any]:
        return {"sid": leg.call_control_id, "account_sid": self.account_sid, "status": leg.status,
                "from": leg.from_, "to": leg.to,
                "direction": "inbound" if leg.role == "caller" else "outbound-dial",
                "api_version": "2010-04-01", "parent_call_sid": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{leg.call_control_id}.json"}

    def _chaos_fault(self, name: str) -> Fault | None:
        if self.chaos is None or name == "fetch":
            return None
        if self.chaos.happens(0.5):
            return Fault(name, status=503, code="20503")
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

    # ----- running TwiML ----------------------------------------------------------------------

    def _run_call(self, leg: TwilioLeg) -> None:
        document = self._fetch(leg, self._url("voice"), "voice")
        while document is not None and not leg.ended:
            document = self._execute(leg, document)
        with self._lock:
            if not leg.ended:
                leg.log.ended_by = leg.log.ended_by or "app"
                self._end(leg, "completed")

    def _url(self, path: str) -> str:
        return f"{self.app_url}/webhooks/twilio/{path}"

    def _execute(self, leg: TwilioLeg, document: str) -> str | None:
        """Run one TwiML document; returns the next one (action, redirect, update) or None."""
        try:
            root = ET.fromstring(document)
        except ET.ParseError as exc:
            self._problem(leg, f"TwiML did not parse: {exc}")
            return None
        if root.tag != "Response":
            self._problem(leg, f"TwiML root is <{root.tag}>, not <Response>")
            return None
        if not leg.answered:
            leg.answered = True
            leg.log.answered = True
            leg.status = "in-progress"
        for verb in root:
            handler = _VERBS.get(verb.tag)
            if handler is None:
                self._problem(leg, f"TwiML verb <{verb.tag}> is not one the emulator knows")
                return None
            outcome = handler(self, leg, verb)
            if leg.ended:
                return None
            if leg.update is not None:
                return self._take_update(leg)
            if outcome is not None:
                return outcome
        return None

    def _take_update(self, leg: TwilioLeg) -> str | None:
        with self._lock:
            update, leg.update = leg.update, None
            leg.interrupt.clear()
            leg.gather = None
        return update

    def _wait(self, leg: TwilioLeg, seconds: float) -> bool:
        """Wait scenario-scaled seconds; False when an update or the hangup cut it short."""
        deadline = time.monotonic() + self.scaled(seconds)
        while time.monotonic() < deadline:
            if leg.ended or leg.update is not None:
                return False
            if leg.gather is not None and leg.gather.digits:
                return True  # a key press cuts a <Gather>'s prompt short
            leg.interrupt.wait(min(POLL_S * 2, max(0.0, deadline - time.monotonic())))
        return not leg.ended and leg.update is None

    def _say(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        self._wait(leg, len(verb.text or "") / SPEECH_CHARS_PER_S)
        return None

    def _pause(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        self._wait(leg, float(verb.get("length", "1")))
        return None

    def _hangup(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        with self._lock:
            leg.log.ended_by = leg.log.ended_by or "app"
            self._end(leg, "completed")
        return None

    def _redirect(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        return self._fetch(leg, (verb.text or "").strip(), "redirect")

    def _start(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        for noun in verb:
            if noun.tag not in ("Stream", "Transcription"):
                self._problem(leg, f"<Start><{noun.tag}> is not supported by the emulator")
                continue
            name, track = noun.get("name"), noun.get("track") or "inbound_track"
            with self._lock:
                started = leg.streams if noun.tag == "Stream" else leg.transcriptions
                refused = _refusal(noun.tag, started, name, track)
                if refused is None and noun.tag == "Stream":
                    parameters = {p.get("name", ""): p.get("value", "") for p in noun if p.tag == "Parameter"}
                    self._open_stream(leg, noun.get("url", ""), noun.get("statusCallback"), parameters,
                                      name, track)
                elif refused is None:
                    self._start_transcription(leg, name, track, noun.get("statusCallbackUrl"))
            if refused is not None:  # nothing starts; the document goes on
                self._problem(leg, f"<Start><{noun.tag}>: {refused[1]['message']}")
        return None

    def _gather(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        gather = Gather(valid="0123456789*#", max_digits=int(verb.get("numDigits", "128")),
                        timeout_s=float(verb.get("timeout", "5")), terminating=verb.get("finishOnKey", "#"))
        with self._lock:
            leg.gather = gather
        for noun in verb:
            if noun.tag == "Say" and not gather.digits and not gather.finished:
                self._say(leg, noun)
        if leg.ended or leg.update is not None:
            with self._lock:
                leg.gather = None
            return None
        waited_from = time.monotonic()
        while (not leg.ended and leg.update is None and len(gather.digits) < gather.max_digits
               and not gather.finished):
            if time.monotonic() - waited_from > self.scaled(gather.timeout_s):
                break
            leg.interrupt.wait(POLL_S)
        with self._lock:
            leg.gather = None
        if leg.ended or leg.update is not None:
            return None
        digits = gather.digits[:gather.max_digits]
        if not digits and verb.get("actionOnEmptyResult") != "true":
            return None
        if digits:
            leg.log.trigger_sent_at = time.monotonic()
        return self._fetch(leg, verb.get("action") or self._url("voice"), "gather", Digits=digits)

    def _dial(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        nouns = [n for n in verb if n.tag in ("Number", "Sip")]
        if len(nouns) != 1:
            self._problem(leg, "<Dial> must hold exactly one <Number> or <Sip> here")
            return None
        noun = nouns[0]
        to = (noun.text or "").strip()
        whisper = noun.get("url")
        agent = self._new_leg(verb.get("callerId") or leg.to, to.split("?")[0], "outbound-dial", "agent",
                              leg.log)
        agent.agent_behaviour = leg.agent_behaviour
        leg.agent_legs.append(agent.call_control_id)
        callback = noun.get("statusCallback")
        wanted = set((noun.get("statusCallbackEvent") or "completed").split())
        agent_params = {"ParentCallSid": leg.call_control_id}
        if callback and "initiated" in wanted:
            self._callback(agent, callback, {**agent_params, "CallStatus": "initiated"}, "agent")
        if callback and "ringing" in wanted:
            self._callback(agent, callback, {**agent_params, "CallStatus": "ringing"}, "agent")
        rang = self._wait(leg, RING_S)
        if not rang:  # the caller hung up or the call was redirected while the agent's phone rang
            with self._lock:
                self._end(agent, "canceled", notify=False)
            return None
        if agent.agent_behaviour not in ANSWERING:
            outcome = DIAL_OUTCOME.get(agent.agent_behaviour, "no-answer")
            with self._lock:
                self._end(agent, outcome, notify=False)
            if callback and "completed" in wanted:
                self._callback(agent, callback, {**agent_params, "CallStatus": outcome}, "agent")
            return self._fetch(leg, verb.get("action") or "", "dial", DialCallStatus=outcome,
                               DialCallSid=agent.call_control_id,
                               DialBridged="false") if verb.get("action") else None
        agent.answered = True
        agent.status = "in-progress"
        # Twilio reports the answer as the agent picks up, then runs the whisper on the agent's leg;
        # the legs are connected only once its documents end with the agent still there.
        if callback and "answered" in wanted:
            self._callback(agent, callback, {**agent_params, "CallStatus": "in-progress"}, "agent")
        ended_callback = callback if "completed" in wanted else None
        if whisper and not self._whisper(leg, agent, whisper):
            return self._agent_leg_over(leg, agent, verb, ended_callback, self.whisper_hangup_status,
                                        bridged=False)
        with self._lock:
            leg.bridged_with, agent.bridged_with = agent.call_control_id, leg.call_control_id
            leg.log.bridged = True
        while not leg.ended and not agent.ended and leg.update is None:
            leg.interrupt.wait(POLL_S * 5)
        return self._agent_leg_over(leg, agent, verb, ended_callback, "completed", bridged=True)

    def _agent_leg_over(self, leg: TwilioLeg, agent: TwilioLeg, verb: ET.Element, callback: str | None,
                        dial_status: str, bridged: bool) -> str | None:
        """End an answered agent's leg: its `completed` callback, then the <Dial> action's request
        (unless the caller's call ended or was redirected meanwhile), saying whether the two legs
        were ever joined (`DialBridged`)."""
        with self._lock:
            if not agent.ended:
                self._end(agent, "completed", notify=False)
        if callback:
            self._callback(agent, callback, {"ParentCallSid": leg.call_control_id, "CallStatus": "completed"},
                           "agent")
        if leg.ended or leg.update is not None or not verb.get("action"):
            return None
        return self._fetch(leg, verb.get("action") or "", "dial", DialCallStatus=dial_status,
                           DialCallSid=agent.call_control_id, DialBridged="true" if bridged else "false")

    def _whisper(self, leg: TwilioLeg, agent: TwilioLeg, url: str) -> bool:
        """Run the whisper's documents on the agent's leg (while the caller waits); True when they
        end with both still there. An agent `hangs_up_in_whisper` puts the phone down during its
        first <Say>; for an agent `whisper_answer_lost`, Lifeline's answer to the whisper's last
        request is made but never reaches Twilio in time, so the legs are not joined."""
        heard: list[str] = []
        document = self._fetch(agent, url, "whisper", ParentCallSid=leg.call_control_id)
        try:
            while document is not None:
                try:
                    root = ET.fromstring(document)
                except ET.ParseError as exc:
                    self._problem(leg, f"the whisper's TwiML did not parse: {exc}")
                    return False
                following: str | None = None
                for verb in root:
                    if verb.tag == "Say":
                        heard.append((verb.text or "").strip())
                        if agent.agent_behaviour == "hangs_up_in_whisper":
                            return False
                        if not self._wait(leg, len(verb.text or "") / SPEECH_CHARS_PER_S) or agent.ended:
                            return False
                    elif verb.tag == "Pause":
                        if not self._wait(leg, float(verb.get("length", "1"))) or agent.ended:
                            return False
                    elif verb.tag == "Redirect":
                        following = self._fetch(agent, (verb.text or "").strip(), "whispered",
                                                ParentCallSid=leg.call_control_id)
                        if following is None or agent.agent_behaviour == "whisper_answer_lost":
                            return False  # Twilio's "application error" to the agent, then their leg ends
                        break
                    elif verb.tag == "Hangup":
                        return False
                    else:
                        self._problem(leg, f"<{verb.tag}> in a whisper is not one the emulator runs")
                        return False
                document = following
            return not (agent.ended or leg.ended)
        finally:
            leg.log.add({"t_ms": leg.log.t_ms(), "kind": "agent", "type": "whisper", "text": " ".join(heard)})

    def _record(self, leg: TwilioLeg, verb: ET.Element) -> str | None:
        leg.recording = "mp3"
        started = time.monotonic()
        self._wait(leg, float(verb.get("maxLength", "3600")))
        # Served by this emulator's API (as Twilio serves it from its own), behind the account's
        # credentials, as for an account that requires HTTP auth on media: WAV, Twilio's default.
        sid = f"RE{uuid.uuid4().hex}"
        seconds = min(max((time.monotonic() - started) * self.speed, 1.0), 120.0)
        with self._lock:
            self.recordings[sid] = silent_wav(seconds)
            while len(self.recordings) > 100:  # `flask dev` runs for hours: keep the latest only
                del self.recordings[next(iter(self.recordings))]
        url = f"{self.base_url or 'https://api.twilio.com'}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        status_url = verb.get("recordingStatusCallback")
        if status_url:
            self._callback(leg, status_url, {"RecordingUrl": url, "RecordingStatus": "completed",
                                             "RecordingSid": url.rsplit("/", 1)[1]}, "recording")
        if leg.ended or leg.update is not None or not verb.get("action"):
            return None
        return self._fetch(leg, verb.get("action") or "", "recorded", RecordingUrl=url)

    # ----- streams, legs, requests ------------------------------------------------------------

    def _open_stream(self, leg: TwilioLeg, url: str, status_url: str | None,
                     parameters: dict[str, str], name: str | None = None,
                     track: str = "inbound_track") -> str:
        """Start one more stream of the call (the others go on, as on Twilio); returns its SID."""
        from .streamer import TwilioStreamer

        def failed(why: str) -> None:
            with self._lock:
                if leg.ended or streamer.stopped:
                    return
                streamer.stop()  # a stream that failed is over; Twilio does not reconnect it
                leg.settle()
            if status_url:
                self._callback(leg, status_url, {"StreamSid": streamer.stream_id,
                                                 "StreamEvent": "stream-error", "StreamError": why}, "stream")

        with self._lock:
            streamer = TwilioStreamer(url, leg.call_control_id, self.account_sid, self.speed, failed,
                                      parameters, name=name, track=track)
            if leg.ended or self._streams_stopped:
                return streamer.stream_id  # the servers are shutting down: it would connect to nothing
            leg.streams.append(streamer)
            leg.stream_url, leg.stream_track = url, track
            leg.settle()
        streamer.start()
        return streamer.stream_id

    def _start_transcription(self, leg: TwilioLeg, name: str | None, track: str,
                             url: str | None) -> Transcription:
        """Start one more transcription of the call (the lock is held)."""
        transcription = Transcription("GT" + uuid.uuid4().hex, name, track, url)
        if not leg.ended:
            leg.transcriptions.append(transcription)
            leg.settle()
        return transcription

    def _new_leg(self, from_: str, to: str, direction: str, role: str, call_log: CallLog) -> TwilioLeg:
        leg = TwilioLeg(call_control_id="CA" + uuid.uuid4().hex, call_leg_id="", from_=from_, to=to,
                        direction=direction, state="ringing", role=role, log=call_log)
        with self._lock:
            self._legs[leg.call_control_id] = leg
        return leg

    def _end(self, leg: TwilioLeg, status: str, notify: bool = True) -> None:
        """The call is over (the lock is held)."""
        if leg.ended:
            return
        leg.ended = True
        leg.status = status
        leg.gather = None
        leg.interrupt.set()
        for started in [*leg.streams, *leg.transcriptions]:
            started.stop()
        leg.settle()
        if leg.role == "caller" and notify:
            self._callback(leg, self._url("status"), {"CallStatus": status, "CallDuration":
                                                      str(int(leg.log.t_ms() / 1000))}, "status")
        peer = self._legs.get(leg.bridged_with or "")
        if peer is not None and not peer.ended:
            self._end(peer, "completed", notify=peer.role == "caller")
        for agent_id in leg.agent_legs:
            agent = self._legs.get(agent_id)
            if agent is not None and not agent.ended:
                self._end(agent, "canceled", notify=False)

    def _problem(self, leg: TwilioLeg, what: str) -> None:
        log.error("call %s: %s", leg.call_control_id, what)
        leg.log.add({"t_ms": leg.log.t_ms(), "kind": "error", "type": "twiml", "text": what})
        leg.log.webhook_failures += 1

    def _params(self, leg: TwilioLeg, extra: dict[str, str]) -> dict[str, str]:
        return {"AccountSid": self.account_sid, "CallSid": leg.call_control_id, "From": leg.from_,
                "To": leg.to, "CallStatus": leg.status, "ApiVersion": "2010-04-01",
                "Direction": "inbound" if leg.role == "caller" else "outbound-dial", **extra}

    def _fetch(self, leg: TwilioLeg, url: str, label: str, **extra: str) -> str | None:
        """A request Twilio waits on for TwiML; a lost response is retried with the same token."""
        params = self._params(leg, extra)
        token = str(uuid.uuid4())
        attempts = 2 if self.chaos is not None and self.chaos.happens() else 1
        body: str | None = None
        for _ in range(attempts):  # under chaos, the first answer is "lost" and Twilio asks again
            status, body = self._send(leg.log, url, params, label, token)
            if not 200 <= status < 300:
                leg.log.webhook_failures += 1
                return None
        if body and "<Dial" in body:
            try:
                self._note_transfers(leg, ET.fromstring(body))
            except ET.ParseError:
                pass  # reported when the document runs
        return body

    def _note_transfers(self, leg: TwilioLeg, root: ET.Element) -> None:
        """A document with a <Dial> reached us: that is the transfer command, whenever it runs."""
        received = time.monotonic()
        for dial in root.iter("Dial"):
            for noun in dial:
                if noun.tag not in ("Number", "Sip"):
                    continue
                query = parse_qs(urlsplit(noun.get("url") or "").query)
                leg.log.transfers.append({
                    "t_ms": leg.log.t_ms(received), "to": (noun.text or "").strip().split("?")[0],
                    "command_id": None, "client_state": {"reason": (query.get("reason") or [""])[0],
                                                         "rule": (query.get("rule") or [""])[0]}})
                if leg.log.escalation_latency_ms is None and leg.log.trigger_sent_at is not None:
                    leg.log.escalation_latency_ms = round((received - leg.log.trigger_sent_at) * 1000, 2)

    def _callback(self, leg: TwilioLeg, url: str, extra: dict[str, str], label: str,
                  trigger: bool = False) -> None:
        """An informational callback, sent in order per call off the call's thread."""
        params = self._params(leg, extra)
        if label in ("status", "agent"):  # Twilio's call status callbacks carry an RFC 2822 time
            params["Timestamp"] = format_datetime(datetime.now(UTC))
        token = str(uuid.uuid4())
        call_log = leg.log
        if self._closed:
            return  # the emulator is shutting down: calls still running post nothing more
        with call_log.cond:
            call_log.in_flight += 1

        def deliver() -> None:
            try:
                if trigger:
                    call_log.trigger_sent_at = time.monotonic()
                status, _ = self._send(call_log, url, params, label, token)
                if self.chaos is not None and self.chaos.happens():
                    status2, _ = self._send(call_log, url, params, label, token, duplicate=True)
                    status = status if 200 <= status2 < 300 else status2
                if not 200 <= status < 300:
                    call_log.webhook_failures += 1
            finally:
                with call_log.cond:
                    call_log.in_flight -= 1
                    call_log.cond.notify_all()

        try:
            self._callbacks.submit(call_log.session_id, deliver)
        except RuntimeError:  # shut down between the check above and now
            with call_log.cond:
                call_log.in_flight -= 1
                call_log.cond.notify_all()

    def _send(self, call_log: CallLog, url: str, params: dict[str, str], label: str, token: str,
              duplicate: bool = False) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params),
                   "I-Twilio-Idempotency-Token": token, "User-Agent": "TwilioProxy/1.1"}
        sent = time.monotonic()
        if self._closed:
            return 0, ""
        try:
            response = self._http.post(url, data=params, headers=headers)
            status, text = response.status_code, response.text
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: the client closed meanwhile
            log.warning("Twilio %s request not delivered: %s", label, exc)
            status, text = 0, ""
        entry: dict[str, Any] = {"t_ms": call_log.t_ms(sent), "kind": "webhook", "type": f"twilio.{label}",
                                 "status": status, "ack_ms": round((time.monotonic() - sent) * 1000, 2)}
        if duplicate:
            entry["duplicate"] = True
        call_log.add(entry)
        return status, text


_VERBS = {"Say": TwilioEmulator._say, "Pause": TwilioEmulator._pause, "Hangup": TwilioEmulator._hangup,
          "Redirect": TwilioEmulator._redirect, "Start": TwilioEmulator._start,
          "Gather": TwilioEmulator._gather, "Dial": TwilioEmulator._dial, "Record": TwilioEmulator._record}


def _refusal(kind: str, started: list[Any], name: str | None, track: str | None) -> Reply | None:
    """Why a new Stream or Transcription cannot start, or None.

    Twilio's docs call a Stream's name unique per call; the emulator is strict about it, holds
    Transcriptions to the same, and counts stopped ones too (our reading: nothing says a name is
    freed when its stream stops).
    """
    if track is not None and track not in TRACKS:
        return twilio_error(400, BAD_PARAMETER, f"Track must be one of {', '.join(TRACKS)}")
    if name and any(s.name == name for s in started):
        return twilio_error(400, NAME_IN_USE, f"A {kind} named {name!r} was already started on this call")
    return None


def _heard_since(text: str, began: float, ended: float, started_at: float) -> str:
    """The words of an utterance spoken from `began` to `ended` that a transcription started at
    `started_at` hears: a transcription started (a resume) mid-utterance does not hear the words
    already begun, so a test can tell whether words said just before a resume are kept. The words
    are taken as evenly spread over the utterance."""
    if started_at <= began:
        return text
    words = text.split()
    if started_at >= ended or not words:
        return ""
    first = math.ceil(len(words) * (started_at - began) / (ended - began))
    return " ".join(words[first:])

