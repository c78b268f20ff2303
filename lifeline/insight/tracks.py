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


# Telnyx's transcription engines that say which track each transcript came from (the SDK's
# `transcription_track`: "only available when transcription_engine is B", its own engine).
ENGINES_NAMING_TRACKS = ("Telnyx", "B")


def start(engine: ListeningEngine, call_control_id: str, both: bool) -> Commands:
    """Commands that start hearing the caller, or both parties, again."""
    if engine.provider_transcribes:
        config = dict(engine.answer_options(call_control_id).get("transcription_config", {}))
        if both and names_tracks(config):
            config["transcription_tracks"] = "both"
        return [("transcription_start", config)]
    options = engine.restart_options(call_control_id)
    if options is None:
        return []
    return [("streaming_start", {**options, "stream_track": "both_tracks"} if both else options)]


def both_parties(engine: ListeningEngine, call_control_id: str) -> Commands:
    """After a bridge: hear the agent too (Telnyx transcription or the media stream of both tracks).

    Nothing when the transcription engine does not name the track it heard: the agent's words
    would arrive as the caller's, so the caller alone is heard on, as before the bridge."""
    if engine.provider_transcribes and not names_tracks(
            engine.answer_options(call_control_id).get("transcription_config", {})):
        return []
    started = start(engine, call_control_id, both=True)
    return [*stop(engine, call_control_id), *started] if started else []


def caller_only(engine: ListeningEngine, call_control_id: str) -> Commands:
    """After a bridge that turned out never to have been made: hear the caller alone again, as
    before it (both parties' audio would file the menu's prompts as the agent's words)."""
    if not both_parties(engine, call_control_id):
        return []  # hearing both was never started, so there is nothing to undo
    return [*stop(engine, call_control_id), *start(engine, call_control_id, both=False)]


def names_tracks(config: dict[str, Any]) -> bool:
    """Whether transcripts under this `transcription_config` say which party spoke (Telnyx's own
    engine fills `transcription_track`; the emulator posts as Telnyx would by this too)."""
    # Twilio's always do, but its calls carry the same settings: a deployment that names another
    # Telnyx engine hears only the caller after a bridge on either provider, which loses the
    # agent's words rather than file them as the caller's.
    return str(config.get("transcription_engine") or "Telnyx") in ENGINES_NAMING_TRACKS


# The local engine's listener of the outbound track names its messages' sources with this.
AGENT_STREAM_SUFFIX = ":agent"


def party_of(track: str | None) -> str:
    """The party a transcription track carries on the caller's leg."""
    return "agent" if track == "outbound" else "caller"


def party_of_source(source_id: str) -> str:
    """The party of a local-engine message, from the stream its source id names."""
    return "agent" if f"{AGENT_STREAM_SUFFIX}:" in source_id else "caller"
