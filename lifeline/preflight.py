"""What every entry point checks before it serves, each problem found whatever else is wrong,
and `flask check`, which prints it all without serving."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from lifeline.ivr.config import (
    TWILIO_KEYS,
    Settings,
    bundled_examples,
    file_setting,
    serving_problems,
    settings_source,
)
from lifeline.ivr.errors import ConfigError, LifelineError, Problem
from lifeline.ivr.menu import Menu, load_menu
from lifeline.providers.twilio.settings import twilio_settings
from lifeline.providers.voices import settle_menu_voice
from lifeline.transfer.rules import RuleSet, load_rules, menu_and_rules_warnings

from .environment import load_all_settings, load_env_file
from .reporting import EX_CONFIG, print_problems, problem_lines, problems_of


@dataclass
class Findings:
    """Every problem and warning of a deployment's settings, menu and rules."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: Settings | None = None  # None when the settings themselves have problems


def inspect(config: Mapping[str, object] | None = None) -> Findings:
    """Check the settings (the outputs' too), the Twilio account, the menu and the rules as a server
    does, opening nothing: no database, no network, no model."""
    found = Findings()
    source = settings_source(config)
    try:
        found.settings = load_all_settings(config, Path.cwd() / "instance")[0]
    except ConfigError as exc:
        found.problems += exc.problems
        found.warnings += exc.warnings
    else:
        found.warnings += found.settings.warnings
        found.problems += serving_problems(found.settings)
    # Each part below is checked even when the settings failed, from what they would have read:
    # fixing an engine must not be what reveals a malformed Account SID or a broken menu.
    said = {p.setting for p in found.problems if p.setting}
    try:
        twilio_settings(found.settings or _twilio_part(source))
    except LifelineError as exc:
        found.problems += [p for p in problems_of(exc) if p.setting not in said]
    menu: Menu | None = None
    rules: RuleSet | None = None
    ivr_path = file_setting(source, "LIFELINE_IVR")
    rules_path = file_setting(source, "LIFELINE_RULES")
    if "LIFELINE_IVR" not in said:  # else the file is missing, and that is said
        try:
            menu = load_menu(ivr_path)
        except LifelineError as exc:
            found.problems += problems_of(exc)
    if "LIFELINE_RULES" not in said:
        try:
            rules = load_rules(rules_path)
        except LifelineError as exc:
            found.problems += problems_of(exc)
    if menu is not None and found.settings is not None:
        menu, voice_problems, voice_warnings = settle_menu_voice(found.settings, menu)
        found.problems += voice_problems
        found.warnings += voice_warnings
    if menu is not None and rules is not None:
        found.warnings += menu_and_rules_warnings(menu, rules, rules_path, ivr_path)
    return found


def _twilio_part(source: Mapping[str, str]) -> Settings:
    """Settings holding only what the Twilio account's check reads, for when the rest failed."""
    def get(name: str) -> str | None:
        return source.get(name, "").strip() or None

    public_url = get("LIFELINE_PUBLIC_URL")
    return Settings(telnyx=None, public_url=public_url.rstrip("/") if public_url else None, engine="local",
                    agents=(), ivr_path=Path(), rules_path=Path(), database_url="",
                    media_url=get("LIFELINE_MEDIA_URL"),
                    transcription_language=get("LIFELINE_TRANSCRIPTION_LANGUAGE"),
                    twilio={k: v for k in TWILIO_KEYS if (v := get(k))})


@click.command("check")
def check_command() -> None:
    """Check the settings, the menu and the rules as a server would, without serving; exit 78 on problems."""
    load_env_file()
    found = inspect()
    warnings = list(found.warnings)
    if found.settings is not None:
        warnings += bundled_examples(found.settings, settings_source(None))
    lines = problem_lines(ConfigError(found.problems)) if found.problems else []
    print_problems(lines, warnings, stream=sys.stdout)
    # The database is not opened: it may be across the network, and `flask db current` reads it.
    if lines:
        click.echo(f"{_count(len(lines), 'problem')}, {_count(len(warnings), 'warning')}: "
                   "fix the problems, then run `flask check` again")
        raise SystemExit(EX_CONFIG)
    click.echo(f"settings, menu and rules: no problems, {_count(len(warnings), 'warning')} "
               "(the database is checked by `flask db current`)")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
