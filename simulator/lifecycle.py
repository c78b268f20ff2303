"""The legs' lifecycle: creating legs, playing prompts, gathers, bridging, streams, hanging up.

Every change happens under one lock (`Legs.lock`) and is announced by a webhook of the leg.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from .clock import Timers
from .delivery import WebhookDelivery, iso_now
from .legs import CallLog, Leg

SPEECH_CHARS_PER_S = 15.0
RING_S = 2.0
# How an agent who does not take the call ends their leg.
HANGUP_CAUSES = {"no_answer": "timeout", "busy": "user_busy", "reject": "call_rejected"}


class Legs:
    """Every leg the emulator knows, and what happens to them over time."""

    def __init__(self, speed: float, timers: Timers, delivery: WebhookDelivery) -> None:
        self.speed = speed
        self.timers = timers
        self.delivery = delivery
        self.lock = threading.RLock()
        self._legs: dict[str, Leg] = {}

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
        """Send a webhook about a leg."""
        self.delivery.submit(leg.call_control_id, leg.log, event_type, {**leg.base_payload(), **fields})

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
            self.emit(caller, "call.bridged")
            self.emit(agent, "call.bridged")

    # ----- media streams ----------------------------------------------------------------------

    def open_stream(self, leg: Leg, url: str) -> None:
        """Telnyx connects to the app's stream_url and starts sending the caller's audio."""
        from .streamer import MediaStreamer

        with self.lock:
            if leg.ended:
                return
            self.close_stream(leg)
            leg.stream_url = url
            leg.streamer = MediaStreamer(url, leg.call_control_id, self.speed,
                                         on_failed=lambda why: self.stream_failed(leg, url, why))
            self.emit(leg, "streaming.started", stream_url=url)
        leg.streamer.start()

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
            leg.streamer = None
            self.emit(leg, "streaming.failed", failure_reason=reason, stream_id=None,
                      stream_params={"stream_url": url, "track": "inbound_track"},
                      stream_type="websocket")

    # ----- recordings and hangups -------------------------------------------------------------

    def recording_saved(self, leg: Leg) -> None:
        """Post the recording of a leg, if one was being made."""
        if leg.recording is None:
            return
        url = f"https://emulator.invalid/recordings/{leg.call_leg_id}.{leg.recording}"
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
