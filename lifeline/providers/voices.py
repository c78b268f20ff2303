"""The menu's voice on this deployment's providers: what each says, and what stops start-up.

A menu's `voice` is written as Telnyx names voices or as Twilio does. Which names work depends on
the providers configured, so the check runs where the deployment is known (the app factory and
start-up's check), not when the menu file is read.
"""

from __future__ import annotations

from dataclasses import replace

from lifeline.ivr.config import Settings
from lifeline.ivr.errors import Problem
from lifeline.ivr.menu import Menu, telnyx_voice_problem

from .twilio.voices import EXAMPLE, is_twilio_name, telnyx_polly, voice_findings


def settle_menu_voice(settings: Settings, menu: Menu) -> tuple[Menu, list[Problem], list[str]]:
    """The menu with its voice as the providers will say it, and (problems, warnings) about it.

    A Polly voice written as Twilio names it is held as Telnyx does: both providers' names follow
    from that exactly (lifeline/providers/twilio/voices.py). Telnyx refuses a prompt in a voice it does not
    know, so with Telnyx configured such a voice stops start-up; Twilio's side is `voice_findings`.
    """
    written = menu.voice
    mapped = telnyx_polly(written)
    if mapped is not None:
        menu = replace(menu, voice=mapped)
    problems: list[Problem] = []
    if settings.telnyx is not None:
        why = telnyx_voice_problem(menu.voice)
        if why is not None and is_twilio_name(written):
            why = (f"`voice: {written}` is Twilio's name for a voice Telnyx does not offer, and Telnyx "
                   "refuses a prompt in a voice it does not know: choose an Amazon Polly voice, which "
                   f"both speak (e.g. Polly.Joanna-Neural, or {EXAMPLE} as Telnyx writes it)")
        if why is not None:
            problems.append(Problem(why, setting="LIFELINE_IVR", path=settings.ivr_path, keys=("voice",)))
    warnings: list[str] = []
    if settings.twilio.get("TWILIO_ACCOUNT_SID") or settings.twilio.get("TWILIO_AUTH_TOKEN"):
        # As lifeline.providers.twilio.settings decides whether Twilio is in use.
        twilio_problems, warnings = voice_findings(menu.voice, settings.ivr_path,
                                                   telnyx_too=settings.telnyx is not None)
        problems += twilio_problems
    return menu, problems, warnings
