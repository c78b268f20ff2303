"""The menu's voice as Twilio's `<Say voice>` names it, and Twilio's own names as Telnyx would.

A menu may name its voice either way. Twilio's `<Say>` takes `man`, `woman`, Amazon Polly voices
as `Polly.<Name>` (with `-Neural` or `-Generative` after the name for those engines:
`Polly.Joanna-Neural`, `Polly.Lucia-Generative`) and Google voices as `Google.<locale>-<model>-<voice>`
(`Google.en-US-Standard-C`); those are said as written. Telnyx writes the same Polly voices
`AWS.Polly.<Name>[-Neural|-Generative]`, or with the engine before the name
(`AWS.Polly.Generative.Lucia`, `aws.Polly.Neural.Joanna`), the prefix in any case; those are said
on Twilio under Twilio's name. Telnyx's other voices (`female`/`male`, `Telnyx.*`, `Azure.*`,
`ElevenLabs.*`, ...) have no Twilio counterpart: Twilio logs warning 13321/13511 for a voice it
does not know, and the caller hears the wrong voice or nothing. Of Twilio's own names, only the
Polly ones have an exact Telnyx counterpart (`telnyx_polly`); Telnyx offers no Google voice.
"""

from __future__ import annotations

import re
from pathlib import Path

from lifeline.ivr.errors import Problem
from lifeline.ivr.yamlfile import line_of

_POLLY = re.compile(r"^aws\.polly\.(?P<rest>.+)$", re.IGNORECASE)
_ENGINE_FIRST = re.compile(r"^(?P<engine>standard|neural|generative)\.(?P<name>[^.\s-]+)$", re.IGNORECASE)
_ENGINE_LAST = re.compile(r"^(?P<name>[^.\s-]+)(?:-(?P<engine>standard|neural|generative))?$", re.IGNORECASE)
_SUFFIX = {"standard": "", "neural": "-Neural", "generative": "-Generative"}
# Twilio's own names, spelt as its docs spell them (Twilio does not say it reads them in any case).
_TWILIO_POLLY = re.compile(r"^Polly\.(?P<name>[A-Z][A-Za-z]+)(?:-(?P<engine>Neural|Generative))?$")
_TWILIO_GOOGLE = re.compile(r"^Google\.[a-z]{2,3}-[A-Z0-9]{2,3}(?:-[A-Za-z0-9]+){2,3}$")
_TWILIO_BASIC = ("man", "woman")
EXAMPLE = "AWS.Polly.Joanna-Neural"


def is_twilio_name(voice: str) -> bool:
    """Whether the voice is written as Twilio's `<Say voice>` names it."""
    return voice in _TWILIO_BASIC or bool(_TWILIO_POLLY.match(voice) or _TWILIO_GOOGLE.match(voice))


def twilio_voice(voice: str | None) -> str | None:
    """Twilio's name for the menu's voice, or None when Twilio has none (its default voice speaks)."""
    if voice is not None and is_twilio_name(voice):
        return voice
    found = _POLLY.match(voice or "")
    if found is None:
        return None
    named = _ENGINE_FIRST.match(found["rest"]) or _ENGINE_LAST.match(found["rest"])
    if named is None:
        return None  # e.g. Polly's long-form engine, which Twilio does not offer
    return f"Polly.{named['name']}{_SUFFIX[(named['engine'] or 'standard').lower()]}"


def telnyx_polly(voice: str) -> str | None:
    """Telnyx's name for a Polly voice written as Twilio names it; None for any other voice.

    Standard and neural as the telnyx SDK's `speak` documents them (`AWS.Polly.Joanna`, `-Neural`
    appended); generative in the engine-first form of Telnyx's AWS Polly voice page. Each maps
    back to the same Twilio name (`twilio_voice`), so either provider says the voice written.
    """
    found = _TWILIO_POLLY.match(voice)
    if found is None:
        return None
    if found["engine"] == "Generative":
        return f"AWS.Polly.Generative.{found['name']}"
    return f"AWS.Polly.{found['name']}{'-Neural' if found['engine'] else ''}"


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
        return [Problem(f"`voice: {voice}` is not a voice Twilio can speak: write one of Twilio's "
                        "(Polly.Joanna-Neural, Google.en-US-Standard-C, man, woman) or an Amazon Polly "
                        f"voice as Telnyx writes it ({EXAMPLE}, AWS.Polly.Generative.Lucia)",
                        setting="LIFELINE_IVR", path=ivr_path, keys=("voice",))], []
    line = line_of(ivr_path, ["voice"])
    where = f"{ivr_path}:{line}" if line else str(ivr_path)
    return [], [f"{where}: `voice: {voice}` is not a voice Twilio can speak: Telnyx calls hear it, "
                "Twilio calls hear the Twilio account's default voice (Console > Voice > Text-to-speech); "
                f"an Amazon Polly voice (e.g. {EXAMPLE}) is spoken by both"]
