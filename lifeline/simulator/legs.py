"""What the emulator knows about each call leg and each emulated call (a caller's session)."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

_gather_tokens = itertools.count(1)


@dataclass
class Gather:
    """An open gather_using_speak: which keys count and how many to collect."""

    valid: str
    max_digits: int
    timeout_s: float
    terminating: str = "#"  # Telnyx's default terminating_digit; "" makes `#` an ordinary key
    min_digits: int = 1
    token: int = field(default_factory=lambda: next(_gather_tokens))
    digits: str = ""
    finished: bool = False  # the finishing key was pressed (Twilio's finishOnKey)


@dataclass
class CallLog:
    """One emulated call as the report sees it: every webhook, command and caller turn."""

    session_id: str
    t0: float = field(default_factory=time.monotonic)
    t0_wall: float = field(default_factory=time.time)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    trigger_sent_at: float | None = None
    escalation_latency_ms: float | None = None
    trigger_trailing_silence_s: float = 0.0  # near-silence between the words' true end and the last frame
    answered: bool = False
    bridged: bool = False
    ended_by: str | None = None
    webhook_failures: int = 0
    in_flight: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def t_ms(self, at: float | None = None) -> float:
        """Milliseconds since the call started."""
        return round(((time.monotonic() if at is None else at) - self.t0) * 1000, 1)

    def add(self, entry: dict[str, Any]) -> None:
        """Append to the timeline (thread-safe)."""
        with self.cond:
            self.timeline.append(entry)

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no webhook of this call is queued or in flight."""
        with self.cond:
            return self.cond.wait_for(lambda: self.in_flight == 0, timeout)


@dataclass
class Leg:
    """One call leg: the caller's, or an agent's created by a transfer."""

    call_control_id: str
    call_leg_id: str
    from_: str
    to: str
    direction: str
    state: str
    role: str
    log: CallLog
    agent_behaviour: str = "answer"
    client_state: str | None = None
    answered: bool = False
    ended: bool = False
    transcribing: bool = False
    transcription_tracks: str = "inbound"
    transcription_names_track: bool = True  # only Telnyx's own engine says which track it heard
    dtmf_received: str = ""  # keys the app sent to this leg (send_dtmf)
    stream_url: str | None = None
    stream_track: str = "inbound_track"
    streamer: Any = None
    recording: str | None = None
    codec: str = "PCMU"  # the call's own codec
    recording_started: float = 0.0
    gather: Gather | None = None
    media_free_at: float = 0.0
    bridged_with: str | None = None
    agent_legs: list[str] = field(default_factory=list)
    seen_command_ids: dict[str, float] = field(default_factory=dict)

    def base_payload(self) -> dict[str, Any]:
        """Fields present on every call event of this leg."""
        return {
            "call_control_id": self.call_control_id,
            "call_leg_id": self.call_leg_id,
            "call_session_id": self.log.session_id,
            "connection_id": "1494404757140276705",
            "client_state": self.client_state,
            "from": self.from_,
            "to": self.to,
        }


def wait_for_gather(lock: threading.Lock | threading.RLock, leg: Leg, timeout: float) -> bool:
    """Block until the app has a menu open on this leg (True) or the leg ended or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if leg.gather is not None:
                return True
            if leg.ended:
                return False
        time.sleep(0.005)  # the emulators change legs under their lock and signal nothing
    return False
