"""The legs' lifecycle: creating legs, playing prompts, gathers, bridging, streams, hanging up.

Every change happens under one lock (`Legs.lock`) and is announced by a webhook of the leg.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from typing import Any

from .clock import Timers
from .delivery import WebhookDelivery, iso_now
from .legs import CallLog, Leg
from .strict import payload_fields

SPEECH_CHARS_PER_S = 15.0
RING_S = 2.0
# How an agent who does not take the call ends their leg.
HANGUP_CAUSES = {"no_answer": "timeout", "busy": "user_busy", "reject": "call_rejected"}
SAMPLE_RATES = {"G722": 16000, "L16": 16000, "OPUS": 16000, "AMR-WB": 16000}  # others: 8000


class Legs:
    """Every leg the emulator knows, and what happens to them over time."""

    def __init__(self, speed: float, timers: Timers, delivery: WebhookDelivery) -> None:
        self.speed = speed
        self.timers = timers
        self.delivery = delivery
        self.lock = threading.RLock()
        self._legs: dict[str, Leg] = {}
        self.base_url: str | None = None  # where recording URLs point (the emulator's server)
        self.recordings: dict[str, bytes] = {}  # what recording URLs serve, by file name
        self.transcodes = True  # whether Telnyx can give a stream the stream_codec asked for
        self._streams_stopped = False  # set by stop_streams: no new stream may start after it
        # Streams the app's socket refused or dropped, by URL (no query) and reason: `simulate
        # --app-url` names them, since its callers then fail for want of the audio, not of a rule.
        self.failed_streams: Counter[tuple[str, str]] = Counter()

    def scaled(self, seconds: float) -> float:
        """Real seconds for a duration in scenario time."""
        return seconds / self.speed

    def get(self, call_control_id: str) -> Leg | None:
        """Look up a leg by its call_control_id."""
        with self.lock:
            return self._legs.get(call_control_id)

    def new(self, from_: str, to: str, direction: str, state: str, role: str, call_log: CallLog) -> Leg:
        """Create a leg (its call.initiated is the caller's to emit)."""
        leg = Leg(call_control_id=f"v3:emu-{uuid.uuid4().hex}", call_leg_id=str(uuid.uuid4()),
                  from_=from_, to=to, direction=direction, state=state, role=role, log=call_log)
        with self.lock:
            self._legs[leg.call_control_id] = leg
        return leg

    # ----- webhooks ---------------------------------------------------------------------------

    def emit(self, leg: Leg, event_type: str, **fields: Any) -> None:
        """Send a webhook about a leg, with the leg's common fields as far as the SDK's model of
        this event has them (no `from` on call.transcription, no call_control_id on
        call.recording.saved)."""
        allowed = payload_fields(event_type)
        common = {k: v for k, v in leg.base_payload().items() if k in allowed}
        self.delivery.submit(leg.call_control_id, leg.log, event_type, {**common, **fields})

    def emit_if_up(self, leg: Leg, event_type: str, **fields: Any) -> None:
        """Send a webhook about a leg unless it has ended meanwhile."""
        with self.lock:
            if not leg.ended:
                self.emit(leg, event_type, **fields)

    # ----- prompts and gathers ----------------------------------------------------------------

    def play(self, leg: Leg, text: str) -> tuple[float, float]:
        """Queue speech behind whatever is playing; returns its start and end times."""
        start = max(time.monotonic(), leg.media_free_at)
        end = start + self.scaled(len(text) / SPEECH_CHARS_PER_S)
        leg.media_free_at = end
        return start, end

    def end_gather(self, leg: Leg, status: str, digits: str) -> None:
        """Close the open gather with its result."""
        leg.gather = None
        self.emit(leg, "call.gather.ended", status=status, digits=digits)

    def gather_timed_out(self, leg: Leg, token: int) -> None:
        """The gather's timeout passed: end it unless the caller answered it meanwhile."""
        with self.lock:
            if not leg.ended and leg.gather is not None and leg.gather.token == token:
                self.end_gather(leg, "timeout", leg.gather.digits)

    # ----- agents -----------------------------------------------------------------------------

    def agent_decides(self, caller: Leg, agent: Leg) -> None:
        """After the ring: the agent answers and is bridged to the caller, or does not."""
        with self.lock:
            if agent.ended:
                return
            if caller.ended:
                self.end(agent, "originator_cancel", "caller")
                return
            if agent.agent_behaviour != "answer":
                self.end(agent, HANGUP_CAUSES.get(agent.agent_behaviour, "timeout"), "callee")
                return
            agent.answered = True
            agent.state = "answered"
            self.emit(agent, "call.answered", state="answered", start_time=iso_now())
            caller.bridged_with, agent.bridged_with = agent.call_control_id, caller.call_control_id
            caller.log.bridged = True
            # The transfer docs name call.bridged on the new leg (B) only.
            self.emit(agent, "call.bridged")

    # ----- media streams ----------------------------------------------------------------------

    def open_stream(self, leg: Leg, url: str, codec: str | None = None) -> None:
        """Telnyx connects to the app's stream_url and starts sending the caller's audio, in the
        `stream_codec` asked for if it can transcode (`transcodes`), else in the call's own."""
        from .streamer import MediaStreamer

        with self.lock:
            if leg.ended or self._streams_stopped:
                return  # a stream asked for while the servers shut down would connect to nothing
            self.close_stream(leg)
            leg.stream_url = url
            encoding = codec if codec and codec != "default" and self.transcodes else leg.codec
            leg.streamer = MediaStreamer(url, leg.call_control_id, self.speed,
                                         on_failed=lambda why: self.stream_failed(leg, url, why),
                                         encoding=encoding, sample_rate=SAMPLE_RATES.get(encoding, 8000),
                                         both_tracks=leg.stream_track == "both_tracks")
            self.emit(leg, "streaming.started", stream_url=url)
        leg.streamer.start()

    def stop_streams(self) -> None:
        """Stop every leg's stream without webhooks (the emulator is shutting down)."""
        with self.lock:
            self._streams_stopped = True
            for leg in self._legs.values():
                if leg.streamer is not None:
                    leg.streamer.stop()

    def close_stream(self, leg: Leg) -> None:
        """Stop streaming a leg's audio."""
        if leg.streamer is not None:
            leg.streamer.stop()
            leg.streamer = None
            if not leg.ended:
                self.emit(leg, "streaming.stopped", stream_url=leg.stream_url)

    def stream_failed(self, leg: Leg, url: str | None, reason: str) -> None:
        """The app's media socket could not be reached or dropped the stream."""
        with self.lock:
            if leg.ended or leg.stream_url != url:
                return
            self.failed_streams[((url or "").split("?")[0], reason)] += 1
            leg.streamer = None
            self.emit(leg, "streaming.failed", failure_reason=reason, stream_id=None,
                      stream_params={"stream_url": url, "track": "inbound_track"},
                      stream_type="websocket")

    # ----- recordings and hangups -------------------------------------------------------------

    def recording_saved(self, leg: Leg) -> None:
        """Post the recording of a leg, if one was being made."""
        if leg.recording is None:
            return
        # The audio the URL serves: silence as long as the recording ran (in scenario time).
        seconds = min(120.0, (time.monotonic() - leg.recording_started) * self.speed)
        name = f"{leg.call_leg_id}.{leg.recording}"
        self.recordings[name] = silent_wav(seconds)
        url = f"{self.base_url or 'https://emulator.invalid'}/recordings/{name}"
        self.emit(leg, "call.recording.saved", recording_urls={leg.recording: url},
                  channels="single", recording_started_at=iso_now(), recording_ended_at=iso_now())
        leg.recording = None

    def end(self, leg: Leg, cause: str, source: str) -> None:
        """Hang a leg up, and with it its bridged peer and any agent still ringing."""
        leg.ended = True
        leg.gather = None
        leg.transcribing = False
        if leg.streamer is not None:
            leg.streamer.stop()
            leg.streamer = None
        self.emit(leg, "call.hangup", state="hangup", hangup_cause=cause, hangup_source=source,
                  sip_hangup_cause="unspecified", start_time=iso_now())
        self.recording_saved(leg)  # Telnyx posts the recording after the hangup
        peer = self._legs.get(leg.bridged_with or "")
        if peer is not None and not peer.ended:
            self.end(peer, "normal_clearing", source)
        for agent_id in leg.agent_legs:
            agent = self._legs.get(agent_id)
            if agent is not None and not agent.ended and not agent.answered:
                self.end(agent, "originator_cancel", "caller")


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of silence (what a recording URL of the emulator serves)."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()
