"""Twilio: the menu's voice (Telnyx's notation) as Twilio says it; start-up on a voice it cannot say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.ivr.errors import ConfigError, LifelineError
from lifeline.providers.twilio.voices import telnyx_polly, twilio_voice
from lifeline.startup import check, problem_lines

from .conftest import TWILIO_ACCOUNT, TWILIO_PUBLIC, TWILIO_TOKEN
from .test_twilio import SID, call_form, post, twilio_only_config, twiml

MENU = ("greeting: Hello.\nstart: main\nmenus:\n  main:\n    prompt: Press 1.\n    options:\n"
        "      \"1\": {goodbye: true}\n")


@pytest.mark.parametrize(("menu", "twilio"), [
    ("AWS.Polly.Joanna-Neural", "Polly.Joanna-Neural"),
    ("aws.Polly.Joanna-Neural", "Polly.Joanna-Neural"),  # Telnyx's docs write the prefix in lower case
    ("AWS.POLLY.Amy", "Polly.Amy"),
    ("AWS.Polly.Generative.Lucia", "Polly.Lucia-Generative"),  # Telnyx puts the engine first
    ("aws.Polly.Neural.Joanna", "Polly.Joanna-Neural"),
    ("AWS.Polly.Standard.Joanna", "Polly.Joanna"),
    ("AWS.Polly.Danielle-Generative", "Polly.Danielle-Generative"),
    ("AWS.Polly.Danielle-LongForm", None),  # an engine Twilio does not offer
    ("female", None), ("male", None), ("Telnyx.KokoroTTS.af", None), ("Azure.en-CA-ClaraNeural", None),
    ("ElevenLabs.eleven_multilingual_v2.21m00Tcm4TlvDq8ikWAM", None), (None, None),
    # Twilio's own names are said as written.
    ("Polly.Joanna", "Polly.Joanna"), ("Polly.Joanna-Neural", "Polly.Joanna-Neural"),
    ("Polly.Lucia-Generative", "Polly.Lucia-Generative"),
    ("Google.en-US-Standard-C", "Google.en-US-Standard-C"),
    ("Google.en-GB-Neural2-A", "Google.en-GB-Neural2-A"),
    ("Google.en-US-Chirp3-HD-Aoede", "Google.en-US-Chirp3-HD-Aoede"), ("man", "man"), ("woman", "woman"),
    ("Polly.Joanna-LongForm", None), ("Google.Standard", None), ("alice", None),
])
def test_a_menu_voice_maps_to_twilios_polly_name_or_to_none_when_twilio_has_no_such_voice(
        menu: str | None, twilio: str | None) -> None:
    assert twilio_voice(menu) == twilio


def menu_file(tmp_path: Path, voice: str) -> Path:
    ivr = tmp_path / "ivr.yaml"
    ivr.write_text(f"voice: {voice}\n{MENU}")
    return ivr


@pytest.mark.parametrize(("polly", "telnyx"), [
    ("Polly.Joanna", "AWS.Polly.Joanna"), ("Polly.Joanna-Neural", "AWS.Polly.Joanna-Neural"),
    ("Polly.Lucia-Generative", "AWS.Polly.Generative.Lucia"),
    ("Google.en-US-Standard-C", None), ("man", None), ("AWS.Polly.Joanna", None),
])
def test_twilios_polly_names_have_telnyx_names_that_map_back_to_the_same_voice(
        polly: str, telnyx: str | None) -> None:
    assert telnyx_polly(polly) == telnyx
    if telnyx is not None:
        assert twilio_voice(telnyx) == polly


@pytest.mark.parametrize(("voice", "said"), [
    ("Polly.Joanna-Neural", "Polly.Joanna-Neural"), ("Google.en-US-Standard-C", "Google.en-US-Standard-C"),
    ("woman", "woman"),
])
def test_a_twilio_only_deployment_says_the_menu_and_the_whisper_in_twilios_own_voice_names(
        tmp_path: Path, voice: str, said: str) -> None:
    config = {**twilio_only_config(tmp_path), "LIFELINE_IVR": str(menu_file(tmp_path, voice))}
    check(config)  # what gunicorn's master runs: no problem
    app = create_app(config, migrate=True)
    try:
        assert not [w for w in app.extensions["lifeline"].settings.warnings if "voice" in w]
        say = twiml(post(app, "/webhooks/twilio/voice", call_form())).find("Gather/Say")
        assert say is not None and say.get("voice") == said
        goodbye = twiml(post(app, "/webhooks/twilio/gather?step=v", call_form(CallStatus="in-progress",
                                                                             Digits="1"))).find("Say")
        assert goodbye is not None and goodbye.get("voice") == said
    finally:
        app.extensions["lifeline"].close()


@pytest.mark.parametrize("voice", ["Telnyx.KokoroTTS.af", "female"])
def test_a_twilio_only_deployment_whose_menu_voice_twilio_cannot_speak_stops_startup_naming_file_and_line(
        tmp_path: Path, voice: str) -> None:
    config = {**twilio_only_config(tmp_path), "LIFELINE_IVR": str(menu_file(tmp_path, voice))}
    with pytest.raises(ConfigError) as refused:
        create_app(config)
    assert f"`voice: {voice}` is not a voice Twilio can speak: write one of Twilio's" in str(refused.value)
    with pytest.raises(LifelineError) as caught:
        check(config)  # what gunicorn's master runs before any worker starts
    [line] = [p for p in problem_lines(caught.value) if "voice" in p]
    assert line.startswith(f"{tmp_path / 'ivr.yaml'}:1: `voice: {voice}`") and line.endswith("(LIFELINE_IVR)")


@pytest.fixture
def side_by_side(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    """Telnyx and Twilio numbers on one deployment, with a menu voice only Telnyx speaks."""
    application = create_app({
        **app_config, "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9", "LIFELINE_PUBLIC_URL": TWILIO_PUBLIC,
        "LIFELINE_ENGINE": "twilio", "LIFELINE_IVR": str(menu_file(tmp_path, "Telnyx.KokoroTTS.af"))},
        migrate=True)
    yield application
    application.extensions["lifeline"].close()


def test_beside_telnyx_a_voice_twilio_cannot_speak_is_a_warning_and_twilio_calls_get_its_default_voice(
        side_by_side: Flask, tmp_path: Path) -> None:
    warnings = side_by_side.extensions["lifeline"].settings.warnings
    [warning] = [w for w in warnings if "Twilio can speak" in w]
    assert warning.startswith(f"{tmp_path / 'ivr.yaml'}:1: `voice: Telnyx.KokoroTTS.af`")
    say = twiml(post(side_by_side, "/webhooks/twilio/voice", call_form())).find("Gather/Say")
    assert say is not None and say.get("voice") is None and say.get("language") == "en-US"


def test_the_whisper_is_said_in_the_menus_voice_and_language(twilio_app: Flask) -> None:
    post(twilio_app, "/webhooks/twilio/voice", call_form())
    post(twilio_app, "/webhooks/twilio/gather?step=w", call_form(CallStatus="in-progress", Digits="0"))
    whisper = twiml(post(twilio_app, f"/webhooks/twilio/whisper?caller={SID}&attempt=1",
                         call_form(sid="CA" + "4" * 32, CallStatus="in-progress", Direction="outbound-dial",
                                   ParentCallSid=SID)))
    say = whisper.find("Say")
    assert say is not None and (say.get("voice"), say.get("language")) == ("Polly.Joanna-Neural", "en-US")
