"""Which party's audio an engine hears, and the commands that change it mid-call.

Before a bridge Lifeline hears the caller only; after it, both parties (the caller's leg's
outbound track carries the agent's voice). Pausing stops hearing altogether.
"""

from __future__ import annotations

from typing import Any

from .base import ListeningEngine

Commands = list[tuple[str, dict[str, Any]]]


def stop(engine: ListeningEngine, call_control_id: str) -> Commands:
    """Commands that stop the provider sending or transcribing this call's audio."""
    if engine.provider_transcribes:
        return [("transcription_stop", {})]
    if engine.restart_options(call_control_id) is not None:
        return [("streaming_stop", {})]
    return []


def start(engine: ListeningEngine, call_control_id: str, both: bool) -> Commands:
    """Commands that start hearing the caller, or both parties, again."""
    if engine.provider_transcribes:
        config = dict(engine.answer_options(call_control_id).get("transcription_config", {}))
        if both:
            config["transcription_tracks"] = "both"
        return [("transcription_start", config)]
    options = engine.restart_options(call_control_id)
    if options is None:
        return []
    return [("streaming_start", {**options, "stream_track": "both_tracks"} if both else options)]


def both_parties(engine: ListeningEngine, call_control_id: str) -> Commands:
    """After a bridge: hear the agent too (Telnyx transcription or the media stream of both tracks)."""
    started = start(engine, call_control_id, both=True)
    return [*stop(engine, call_control_id), *started] if started else []


# The local engine's listener of the outbound track names its messages' sources with this.
AGENT_STREAM_SUFFIX = ":agent"


def party_of(track: str | None) -> str:
    """The party a transcription track carries on the caller's leg."""
    return "agent" if track == "outbound" else "caller"


def party_of_source(source_id: str) -> str:
    """The party of a local-engine message, from the stream its source id names."""
    return "agent" if f"{AGENT_STREAM_SUFFIX}:" in source_id else "caller"
