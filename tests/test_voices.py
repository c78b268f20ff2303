"""The menu's voice on a deployment's providers: Twilio's own names on Telnyx, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline import create_app
from lifeline.ivr.errors import ConfigError, LifelineError
from lifeline.startup import check, problem_lines

from .conftest import TWILIO_ACCOUNT, TWILIO_PUBLIC, TWILIO_TOKEN
from .test_twilio import call_form, post, twiml
from .test_twilio_voices import menu_file

TWILIO = {"TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
          "TWILIO_API_BASE_URL": "http://127.0.0.1:9", "LIFELINE_PUBLIC_URL": TWILIO_PUBLIC,
          "LIFELINE_ENGINE": "twilio"}


@pytest.mark.parametrize(("written", "telnyx"), [
    ("Polly.Joanna", "AWS.Polly.Joanna"), ("Polly.Joanna-Neural", "AWS.Polly.Joanna-Neural"),
    ("Polly.Lucia-Generative", "AWS.Polly.Generative.Lucia"),
    ("AWS.Polly.Joanna-Neural", "AWS.Polly.Joanna-Neural"),  # Telnyx's own name is left as it is
])
def test_a_telnyx_deployment_says_twilios_polly_names_under_telnyxs_own(
        app_config: dict[str, object], tmp_path: Path, written: str, telnyx: str) -> None:
    app = create_app({**app_config, "LIFELINE_IVR": str(menu_file(tmp_path, written))}, migrate=True)
    try:
        menu = app.extensions["lifeline"].menu
        assert menu.voice == telnyx and menu.gather(menu.start)["voice"] == telnyx
        assert not [w for w in app.extensions["lifeline"].settings.warnings if "voice" in w]
    finally:
        app.extensions["lifeline"].close()


@pytest.mark.parametrize("voice", ["Google.en-US-Standard-C", "man", "woman"])
@pytest.mark.parametrize("with_twilio", [False, True])
def test_a_twilio_voice_telnyx_does_not_offer_stops_a_deployment_with_telnyx_naming_the_fix(
        app_config: dict[str, object], tmp_path: Path, voice: str, with_twilio: bool) -> None:
    config = {**app_config, **(TWILIO if with_twilio else {}),
              "LIFELINE_IVR": str(menu_file(tmp_path, voice))}
    with pytest.raises(ConfigError) as refused:
        create_app(config)
    assert f"`voice: {voice}` is Twilio's name for a voice Telnyx does not offer" in str(refused.value)
    with pytest.raises(LifelineError) as caught:
        check(config)  # what gunicorn's master runs before any worker starts
    [line] = [p for p in problem_lines(caught.value) if "voice" in p]
    assert line.startswith(f"{tmp_path / 'ivr.yaml'}:1: `voice: {voice}`")
    assert "choose an Amazon Polly voice, which both speak (e.g. Polly.Joanna-Neural" in line
    assert line.endswith("(LIFELINE_IVR)")


def test_side_by_side_a_twilio_polly_name_is_said_by_each_provider_under_its_own_name(
        app_config: dict[str, object], tmp_path: Path) -> None:
    ivr = menu_file(tmp_path, "Polly.Joanna-Neural")
    app = create_app({**app_config, **TWILIO, "LIFELINE_IVR": str(ivr)}, migrate=True)
    try:
        assert app.extensions["lifeline"].menu.voice == "AWS.Polly.Joanna-Neural"  # Telnyx's calls
        say = twiml(post(app, "/webhooks/twilio/voice", call_form())).find("Gather/Say")
        assert say is not None and say.get("voice") == "Polly.Joanna-Neural"  # Twilio's calls
    finally:
        app.extensions["lifeline"].close()
