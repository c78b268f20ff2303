"""Telnyx transcription: Telnyx does speech-to-text and posts `call.transcription` webhooks."""

from __future__ import annotations

import copy
from typing import Any

from lifeline.ivr.config import Settings
from lifeline.ivr.errors import ConfigError

from .base import ListeningEngine


class TelnyxTranscription(ListeningEngine):
    """Starts Telnyx transcription of the caller's track when the call is answered (or dialled)."""

    name = "telnyx"
    provider_transcribes = True

    def __init__(self, settings: Settings) -> None:
        if settings.transcription_config is None:
            raise ConfigError("the telnyx engine has no transcription settings: set "
                              "LIFELINE_ENGINE=telnyx before loading the settings")
        # Built and checked against the SDK's types by the settings, once, at start-up.
        self._config = dict(settings.transcription_config)

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        return {"transcription": True, "transcription_config": copy.deepcopy(self._config)}

    def dial_options(self) -> dict[str, Any]:
        # `dial` takes the same `transcription_config` type as `answer` (TranscriptionStartRequestParam
        # in the SDK): Telnyx starts transcribing at the answer, so no first words are lost.
        return {"transcription": True, "transcription_config": copy.deepcopy(self._config)}
