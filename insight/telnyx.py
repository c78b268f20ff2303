"""Telnyx transcription: Telnyx does speech-to-text and posts `call.transcription` webhooks."""

from __future__ import annotations

from typing import Any

from ivr.config import Settings  # noqa: TC001

from .base import ListeningEngine


class TelnyxTranscription(ListeningEngine):
    """Starts Telnyx transcription of the caller's track when the call is answered."""

    name = "telnyx"

    def __init__(self, settings: Settings) -> None:
        self._engine = settings.transcription_engine
        self._language = settings.transcription_language

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        return {
            "transcription": True,
            "transcription_config": {
                "transcription_engine": self._engine,
                "transcription_engine_config": {"transcription_engine": self._engine,
                                                "language": self._language},
                "transcription_tracks": "inbound",
            },
        }
