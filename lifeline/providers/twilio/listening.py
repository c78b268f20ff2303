"""Lifeline's listening commands on a Twilio call: the names of what they start, and their tracks.

Twilio stops a Stream or a real-time Transcription by its SID or by the name it was started
with, and keeps no list of a call's streams we could ask for. So every one Lifeline starts
(in the answer's TwiML or through REST) is named after the command that starts it, and a stop
stops the one the call's last start before it named: the outbox holds both, so no state is
added, and a resent stop finds the same name. A command id is unique per call (the outbox
keeps one row per id), so the names are too, as Twilio's docs ask of a Stream's name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from lifeline.ivr.store import CallStore, Command, OutboxEntry

Kind = Literal["stream", "transcription"]
NAME_PREFIX = "lifeline-"
STOPS: dict[str, Kind] = {"streaming_stop": "stream", "transcription_stop": "transcription"}
# Telnyx's transcription_tracks (the call flow's provider-neutral form) as Twilio's Track.
_TRANSCRIPTION_TRACKS = {"inbound": "inbound_track", "outbound": "outbound_track", "both": "both_tracks"}
_STREAM_TRACKS = frozenset(_TRANSCRIPTION_TRACKS.values())


def start_name(command: Command) -> str:
    """The name of the Stream or Transcription a command starts: unique on its call."""
    return NAME_PREFIX + hashlib.sha256(command.command_id.encode()).hexdigest()[:16]


def started_by(command: Command) -> Kind | None:
    """What a command starts on Twilio: a stream, a transcription, or nothing."""
    if command.name == "streaming_start":
        return "stream"
    if command.name == "transcription_start":
        return "transcription"
    if command.name == "answer":
        # As the answer's TwiML has it: a stream when the engine gave a URL, else transcription.
        if isinstance(command.params.get("stream_url"), str):
            return "stream"
        if command.params.get("transcription"):
            return "transcription"
    return None


def name_to_stop(stop: Command, outbox: Sequence[OutboxEntry]) -> str | None:
    """The name of what `stop` stops: the call's last start of its kind queued before it.

    None when Lifeline started none (nothing of ours runs). `outbox` is the call's, oldest first.
    """
    kind = STOPS[stop.name]
    name = None
    for entry in outbox:
        if entry.command.command_id == stop.command_id:
            break
        if started_by(entry.command) == kind:
            name = start_name(entry.command)
    return name


def stop_name(store: CallStore, command: Command) -> str | None:
    """For a stop, the name of what it stops (from the call's outbox); None for other commands."""
    if command.name not in STOPS:
        return None
    return name_to_stop(command, store.outbox(command.call_control_id))


def stream_track(params: Mapping[str, Any]) -> str:
    """Twilio's Track for a stream: the command's `stream_track`, the caller's alone by default."""
    track = params.get("stream_track")
    return track if isinstance(track, str) and track in _STREAM_TRACKS else "inbound_track"


def transcription_track(params: Mapping[str, Any]) -> str:
    """Twilio's Track for a transcription, from `transcription_tracks` (inbound, outbound, both)."""
    return _TRANSCRIPTION_TRACKS.get(str(params.get("transcription_tracks") or "inbound"), "inbound_track")

