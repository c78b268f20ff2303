"""Where settings come from: `.env` (read as `flask` reads it) and the environment, checked whole."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from dotenv import dotenv_values, find_dotenv
from flask.helpers import get_load_dotenv

from lifeline.conversation.settings import OutputSettings, load_output_settings
from lifeline.ivr.config import Settings, load_settings
from lifeline.ivr.errors import ConfigError, Problem


def load_all_settings(config: Mapping[str, object] | None,
                      instance_path: Path) -> tuple[Settings, OutputSettings]:
    """The app's settings and its outputs' (webhooks, email, dial-out), with every problem of both
    in one ConfigError: fixing one group must not reveal the other's only at the next start."""
    problems: list[Problem] = []
    warnings: tuple[str, ...] = ()
    settings: Settings | None = None
    outputs: OutputSettings | None = None
    try:
        settings = load_settings(config, instance_path, file_keys=env_file_keys())
    except ConfigError as exc:
        problems += exc.problems
        warnings = exc.warnings
    try:
        outputs = load_output_settings(config)
    except ConfigError as exc:
        problems += exc.problems
        warnings = warnings or (settings.warnings if settings is not None else ())
    if settings is None or outputs is None:
        raise ConfigError(problems, warnings=warnings)
    return settings, outputs


def load_env_file(owned: Collection[str] = (), path: str | None = None) -> set[str]:
    """Read `.env` as `flask` does: the nearest one from the working directory up; the environment wins.

    One rule for every entry point: gunicorn and `flask` commands started from a subdirectory read
    the same file, so a setting cannot hold under one and not the other. FLASK_SKIP_DOTENV=1 skips
    it, as it skips Flask's. Returns the keys the file set. `owned` are keys an earlier reading set
    (gunicorn's reload, which passes the `path` it read then): those take the file's value now,
    and go if the file no longer has them, so a token rotated in `.env` is in force after the reload.
    """
    if not get_load_dotenv():  # Flask's own reading of FLASK_SKIP_DOTENV
        return set()
    path = path or env_file_path()
    values = dotenv_values(path) if path else {}
    for key in owned:
        if values.get(key) is None:
            os.environ.pop(key, None)
    taken = set()
    for key, value in values.items():
        if value is not None and (key in owned or key not in os.environ):
            os.environ[key] = value
            taken.add(key)
    return taken


def env_file_keys() -> set[str]:
    """The names the `.env` file the entry points read sets (none when it is skipped or absent)."""
    path = env_file_path() if get_load_dotenv() else None
    return set(dotenv_values(path)) if path else set()


def env_file_path() -> str | None:
    """The `.env` file the entry points read: the nearest one from the working directory up."""
    return find_dotenv(".env", usecwd=True) or None


