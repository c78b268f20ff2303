"""Per-engine transcription settings: built to the SDK's own types, refused at start-up with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.insight.telnyx import TelnyxTranscription
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError
from lifeline.ivr.telnyx_schema import check, check_action, dial_type

GOOD = {"TELNYX_API_KEY": "KEY_x", "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}


def _answer_body(tmp_path: Path, **env: str) -> dict[str, object]:
    settings = load_settings({**GOOD, **env}, tmp_path)
    return TelnyxTranscription(settings).answer_options("v3:x")


@pytest.mark.parametrize(("env", "engine_config"), [
    ({}, {"transcription_engine": "Telnyx", "language": "en"}),
    # The Telnyx engine takes short codes only: en-US means en.
    ({"LIFELINE_TRANSCRIPTION_LANGUAGE": "en-US"}, {"transcription_engine": "Telnyx", "language": "en"}),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "deepgram", "LIFELINE_TRANSCRIPTION_MODEL": "deepgram/nova-3",
      "LIFELINE_TRANSCRIPTION_LANGUAGE": "en-gb"},
     {"transcription_engine": "deepgram/nova-3", "transcription_model": "deepgram/nova-3",
      "language": "en-GB"}),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Azure", "LIFELINE_TRANSCRIPTION_REGION": "westeurope"},
     {"transcription_engine": "Azure", "language": "en", "region": "westeurope"}),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Google", "LIFELINE_TRANSCRIPTION_LANGUAGE": "de"},
     {"transcription_engine": "Google", "language": "de"}),
])
def test_each_engine_gets_the_config_the_sdk_types_accept(tmp_path: Path, env: dict[str, str],
                                                          engine_config: dict[str, str]) -> None:
    body = _answer_body(tmp_path, **env)
    config = body["transcription_config"]
    assert isinstance(config, dict)
    assert config["transcription_engine_config"] == engine_config
    assert check_action("answer", body) == []


def test_a_dial_carries_the_same_transcription_config_as_an_answer(tmp_path: Path) -> None:
    engine = TelnyxTranscription(load_settings(GOOD, tmp_path))
    dial = engine.dial_options()
    assert dial == engine.answer_options("v3:x")
    required = {"connection_id": "1494404757140276705", "to": "+15550001111", "from": "+15550100000"}
    assert check({**required, **dial}, dial_type()) == []


@pytest.mark.parametrize(("env", "named"), [
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Deepgram"},
     "LIFELINE_TRANSCRIPTION_MODEL is not set: the Deepgram engine needs a model; set one of "
     "deepgram/nova-2, deepgram/nova-3"),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Deepgram", "LIFELINE_TRANSCRIPTION_MODEL": "nova-3"},
     "LIFELINE_TRANSCRIPTION_MODEL='nova-3' is not a Deepgram model"),
    # nova-3 has regional English only: the bare default `en` is refused with the choices.
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Deepgram", "LIFELINE_TRANSCRIPTION_MODEL": "deepgram/nova-3"},
     "LIFELINE_TRANSCRIPTION_LANGUAGE='en' is not a language of the Deepgram (deepgram/nova-3) engine: "
     "for this language it offers en-US"),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Azure"},
     "LIFELINE_TRANSCRIPTION_REGION is not set: the Azure engine needs a region; set one of"),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Azure", "LIFELINE_TRANSCRIPTION_REGION": "mars"},
     "LIFELINE_TRANSCRIPTION_REGION='mars' is not a Azure region"),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "Whisperer"},
     "LIFELINE_TRANSCRIPTION_ENGINE='Whisperer' is not a Telnyx transcription engine: choose one of"),
    ({"LIFELINE_TRANSCRIPTION_LANGUAGE": "klingon"},
     "LIFELINE_TRANSCRIPTION_LANGUAGE='klingon' is not a language of the Telnyx engine"),
    ({"LIFELINE_TRANSCRIPTION_REGION": "eastus"},
     "LIFELINE_TRANSCRIPTION_REGION='eastus': the Telnyx engine takes no region"),
    ({"LIFELINE_TRANSCRIPTION_ENGINE": "AssemblyAI", "LIFELINE_TRANSCRIPTION_LANGUAGE": "fr"},
     "the AssemblyAI engine detects the language itself and takes none"),
])
def test_a_config_telnyx_would_refuse_stops_startup_with_the_fix(tmp_path: Path, env: dict[str, str],
                                                                 named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, **env}, tmp_path)
    assert named in str(caught.value)


def test_transcription_settings_are_not_checked_for_the_local_engine(tmp_path: Path) -> None:
    settings = load_settings({**GOOD, "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": "https://x.example",
                              "LIFELINE_TRANSCRIPTION_ENGINE": "Deepgram"}, tmp_path)
    assert settings.transcription_config is None
