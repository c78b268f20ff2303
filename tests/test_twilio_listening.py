"""Changing what Lifeline hears on a Twilio call: pause, resume, and both parties after a bridge."""

from __future__ import annotations

import pytest

from insight import tracks
from lifeline import create_app

SID = "CA" + "1" * 32


@pytest.mark.parametrize("engine", ["telnyx", "twilio"])
def test_a_provider_transcribing_engine_pauses_resumes_and_hears_both_parties_whatever_its_name(
        app_config: dict[str, object], engine: str) -> None:
    app = create_app({**app_config, "LIFELINE_ENGINE": engine}, migrate=True)
    try:
        listening = app.extensions["lifeline"].engine
        assert tracks.stop(listening, SID) == [("transcription_stop", {})]
        [(name, params)] = tracks.start(listening, SID, both=True)
        assert name == "transcription_start" and params["transcription_tracks"] == "both"
        assert [n for n, _ in tracks.both_parties(listening, SID)] == ["transcription_stop", "transcription_start"]
    finally:
        app.extensions["lifeline"].close()
