"""What each Call Control command does to a leg, as a table of behaviours.

A behaviour names its preconditions (an answered leg, required parameters) so that they are
checked once, by `run`, in the same order for every command, with Telnyx's error shapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lifeline.insight.tracks import names_tracks
from lifeline.ivr.events import decode_client_state
from lifeline.ivr.menu import KEYS

from .delivery import iso_now
from .legs import Gather, Leg
from .lifecycle import RING_S, Legs
from .replies import Reply, error, missing, not_answered, ok


@dataclass(frozen=True)
class Behaviour:
    """One command: what it needs before it runs, and what it does."""

    act: Callable[[Legs, Leg, dict[str, Any]], Reply]
    needs_answer: bool = False
    required: tuple[str, ...] = ()  # parameters that must be non-empty strings


def run(legs: Legs, leg: Leg, name: str, body: dict[str, Any]) -> Reply:
    """Check a command's preconditions, then carry it out."""
    behaviour = COMMANDS[name]
    absent = [k for k in behaviour.required if not isinstance(body.get(k), str) or not body[k].strip()]
    if behaviour.needs_answer and not leg.answered:
        return not_answered()
    if absent:
        return missing(", ".join(absent))
    return behaviour.act(legs, leg, body)


def listen_from_answer(leg: Leg, body: dict[str, Any]) -> None:
    """Start transcribing a leg at its answer when its `answer` or `dial` asked for it."""
    leg.transcribing = bool(body.get("transcription"))
    config = body.get("transcription_config")
    if isinstance(config, dict):
        _transcribe_as(leg, config)


def _transcribe_as(leg: Leg, config: dict[str, Any]) -> None:
    leg.transcription_tracks = str(config.get("transcription_tracks") or "inbound")
    leg.transcription_names_track = names_tracks(config)


def _answer(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    if leg.direction != "incoming":
        return error(422, "90102", "Cannot answer an outbound call")
    if leg.answered:
        return ok()
    leg.answered = True
    listen_from_answer(leg, body)
    leg.log.answered = True
    legs.timers.after(legs.scaled(0.05), lambda: legs.emit_if_up(
        leg, "call.answered", state="answered", start_time=iso_now()))
    if isinstance(body.get("stream_url"), str):
        leg.stream_track = str(body.get("stream_track") or "inbound_track")
        legs.timers.after(legs.scaled(0.05), lambda: legs.open_stream(
            leg, body["stream_url"], body.get("stream_codec")))
    return ok()


def _speak(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    if body.get("stop") in ("current", "all"):
        leg.media_free_at = time.monotonic()  # what was playing stops; this is said at once
    start, end = legs.play(leg, body["payload"])
    legs.timers.at(start, lambda: legs.emit_if_up(leg, "call.speak.started"))
    legs.timers.at(end, lambda: legs.emit_if_up(leg, "call.speak.ended", status="completed"))
    return ok()


def _gather_using_speak(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    _, end = legs.play(leg, body["payload"])
    gather = Gather(valid=str(body.get("valid_digits") or KEYS),
                    max_digits=int(body.get("maximum_digits") or 128),
                    min_digits=int(body.get("minimum_digits") or 1),
                    terminating=str(body.get("terminating_digit", "#")),
                    timeout_s=int(body.get("timeout_millis") or 60000) / 1000)
    leg.gather = gather
    legs.timers.at(end + legs.scaled(gather.timeout_s), lambda: legs.gather_timed_out(leg, gather.token))
    return ok()


def _transfer(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    to = body["to"]
    leg.gather = None
    agent = legs.new(body.get("from") or leg.to, to, "outgoing", "bridging", "agent", leg.log)
    agent.client_state = body.get("target_leg_client_state")
    agent.agent_behaviour = leg.agent_behaviour
    leg.agent_legs.append(agent.call_control_id)
    leg.log.transfers.append({
        "t_ms": leg.log.t_ms(), "to": to, "command_id": body.get("command_id"),
        "client_state": decode_client_state(body.get("client_state")) or body.get("client_state")})
    if leg.log.escalation_latency_ms is None and leg.log.trigger_sent_at is not None:
        leg.log.escalation_latency_ms = round((time.monotonic() - leg.log.trigger_sent_at) * 1000, 2)
    legs.emit(agent, "call.initiated", direction="outgoing", state="bridging", start_time=iso_now())
    legs.timers.after(legs.scaled(RING_S), lambda: legs.agent_decides(leg, agent))
    return ok()


def _hangup(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    leg.log.ended_by = leg.log.ended_by or ("app" if leg.role == "caller" else None)
    legs.end(leg, "normal_clearing", "callee")
    return ok()


def _transcription_start(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    if leg.transcribing:
        return error(422, "90054", "Call transcription is already in progress")
    leg.transcribing = True
    _transcribe_as(leg, body)
    return ok()


def _transcription_stop(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    leg.transcribing = False
    return ok()


def _send_dtmf(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    leg.dtmf_received += body["digits"]
    return ok()


def _record_start(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    if body.get("format") not in ("mp3", "wav") or body.get("channels") not in ("single", "dual"):
        return missing("format and channels are")
    leg.recording = str(body["format"])
    leg.recording_started = time.monotonic()
    return ok()


def _record_stop(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    legs.recording_saved(leg)
    return ok()


def _streaming_start(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    leg.stream_track = str(body.get("stream_track") or "inbound_track")
    legs.timers.after(0, lambda: legs.open_stream(leg, body["stream_url"], body.get("stream_codec")))
    return ok()


def _streaming_stop(legs: Legs, leg: Leg, body: dict[str, Any]) -> Reply:
    legs.close_stream(leg)
    return ok()


COMMANDS: dict[str, Behaviour] = {
    "answer": Behaviour(_answer),
    "speak": Behaviour(_speak, needs_answer=True, required=("payload", "voice")),
    "gather_using_speak": Behaviour(_gather_using_speak, needs_answer=True, required=("payload", "voice")),
    "transfer": Behaviour(_transfer, required=("to",)),
    "hangup": Behaviour(_hangup),
    "transcription_start": Behaviour(_transcription_start, needs_answer=True),
    "transcription_stop": Behaviour(_transcription_stop),
    "record_start": Behaviour(_record_start, needs_answer=True),
    "record_stop": Behaviour(_record_stop),
    "streaming_start": Behaviour(_streaming_start, needs_answer=True, required=("stream_url",)),
    "streaming_stop": Behaviour(_streaming_stop),
    "send_dtmf": Behaviour(_send_dtmf, needs_answer=True, required=("digits",)),
}
