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
    if engine.name == "telnyx":
        return [("transcription_stop", {})]
    if engine.restart_options(call_control_id) is not None:
        return [("streaming_stop", {})]
    return []


def start(engine: ListeningEngine, call_control_id: str, both: bool) -> Commands:
    """Commands that start hearing the caller, or both parties, again."""
    if engine.name == "telnyx":
        config = dict(engine.answer_options(call_control_id).get("transcription_config", {}))
        if both:
            config["transcription_tracks"] = "both"
        return [("transcription_start", config)]
    options = engine.restart_options(call_control_id)
    if options is None:
        return []
    # The local engine's media handler hears only the inbound track today (insight/media.py),
    # so asking for both tracks there would only double the audio sent to us.
    return [("streaming_start", options)]


def both_parties(engine: ListeningEngine, call_control_id: str) -> Commands:
    """After a bridge: hear the agent too (Telnyx transcription of both tracks)."""
    if engine.name != "telnyx":
        return []
    return [*stop(engine, call_control_id), *start(engine, call_control_id, both=True)]


def party_of(track: str | None) -> str:
    """The party a transcription track carries on the caller's leg."""
    return "agent" if track == "outbound" else "caller"
