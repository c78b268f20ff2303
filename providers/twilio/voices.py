"""The menu's voice (written in Telnyx's notation) as Twilio's `<Say voice>` names it.

Twilio speaks Amazon Polly voices as `Polly.<Name>`, with `-Neural` or `-Generative` after the name
for those engines (`Polly.Joanna-Neural`, `Polly.Lucia-Generative`). Telnyx writes the same voices
`AWS.Polly.<Name>[-Neural|-Generative]`, and also puts the engine before the name
(`AWS.Polly.Generative.Lucia`, `aws.Polly.Neural.Joanna`), with the prefix in any case. Telnyx's
other voices (`female`/`male`, `Telnyx.*`, `Azure.*`, `ElevenLabs.*`, ...) have no Twilio
counterpart: Twilio logs warning 13321/13511 for a voice it does not know, and the caller hears
the wrong voice or nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from ivr.config import Settings
from ivr.errors import Problem
from ivr.menu import Menu
from ivr.yamlfile import line_of

_POLLY = re.compile(r"^aws\.polly\.(?P<rest>.+)$", re.IGNORECASE)
_ENGINE_FIRST = re.compile(r"^(?P<engine>standard|neural|generative)\.(?P<name>[^.\s-]+)$", re.IGNORECASE)
_ENGINE_LAST = re.compile(r"^(?P<name>[^.\s-]+)(?:-(?P<engine>standard|neural|generative))?$", re.IGNORECASE)
_SUFFIX = {"standard": "", "neural": "-Neural", "generative": "-Generative"}
EXAMPLE = "AWS.Polly.Joanna-Neural"


def twilio_voice(voice: str | None) -> str | None:
    """Twilio's name for the menu's voice, or None when Twilio has none (its default voice speaks)."""
    found = _POLLY.match(voice or "")
    if found is None:
        return None
    named = _ENGINE_FIRST.match(found["rest"]) or _ENGINE_LAST.match(found["rest"])
    if named is None:
        return None  # e.g. Polly's long-form engine, which Twilio does not offer
    return f"Polly.{named['name']}{_SUFFIX[(named['engine'] or 'standard').lower()]}"


def menu_voice_findings(settings: Settings, menu: Menu) -> tuple[list[Problem], list[str]]:
    """(problems, warnings) about the menu's voice on Twilio; none when Twilio is not configured."""
    if not (settings.twilio.get("TWILIO_ACCOUNT_SID") or settings.twilio.get("TWILIO_AUTH_TOKEN")):
        return [], []  # as providers.twilio.settings decides whether Twilio is in use
    return voice_findings(menu.voice, settings.ivr_path, telnyx_too=settings.telnyx is not None)


def voice_findings(voice: str, ivr_path: Path, telnyx_too: bool) -> tuple[list[Problem], list[str]]:
    """(problems, warnings) for a deployment with Twilio whose menu says `voice`.

    Twilio alone: a voice Twilio cannot speak stops start-up, at the file's `voice` key (start-up's
    report prints its file:line). With Telnyx too, the voice is the Telnyx calls' to choose, and Telnyx speaks
    it: stopping the deployment for it would take the Telnyx number down over the Twilio one's
    voice, so it is a warning, and Twilio calls hear the account's default voice instead.
    """
    if twilio_voice(voice) is not None:
        return [], []
    if not telnyx_too:
        return [Problem(f"`voice: {voice}` is not a voice Twilio can speak: Twilio speaks Amazon Polly "
                        "voices, written AWS.Polly.<Name> (e.g. AWS.Polly.Joanna, "
                        f"{EXAMPLE}, AWS.Polly.Generative.Lucia)",
                        setting="LIFELINE_IVR", path=ivr_path, keys=("voice",))], []
    line = line_of(ivr_path, ["voice"])
    where = f"{ivr_path}:{line}" if line else str(ivr_path)
    return [], [f"{where}: `voice: {voice}` is not a voice Twilio can speak: Telnyx calls hear it, "
                "Twilio calls hear the Twilio account's default voice (Console > Voice > Text-to-speech); "
                f"an Amazon Polly voice (e.g. {EXAMPLE}) is spoken by both"]
