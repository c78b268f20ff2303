"""Starting Lifeline from its entry points, with errors a person can act on.

Every entry point (gunicorn, `flask run`, every `flask` command) goes through here, so a
configuration, menu, rules or database problem prints only its problem lines, each once,
naming the setting or file:line and the fix, and the process exits non-zero. Under the `flask`
command the app's services are built only when a command runs, so `flask --help` and
`flask <command> --help` work with no settings at all.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import socket
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click
from dotenv import dotenv_values
from flask import Flask
from flask.cli import FlaskGroup

from lifeline.insight.understand import understanding_from
from lifeline.ivr import logs
from lifeline.ivr.config import Settings, bundled_examples, load_settings, serving_problems, settings_source
from lifeline.ivr.errors import ConfigError, LifelineError, Problem
from lifeline.ivr.store import MEMORY_URL, open_store

from . import db_cli
from .environment import load_all_settings, load_env_file
from .factory import create_app, register_commands
from .preflight import check_command, inspect
from .reporting import EX_CONFIG as EX_CONFIG  # re-exported: the entry points' names for these
from .reporting import print_problems as print_problems
from .reporting import problem_lines as problem_lines
from .reporting import problems_of as _problems_of

GUNICORN_BOOT_ERROR = 3  # a worker exiting with this makes the gunicorn master stop, not respawn
# What a development command run without provider settings says, naming the command that was run.
_EXAMPLE_ARGS = {"simulate": " examples/calls/*.yaml", "evaluate": " corpus/test"}


def emulator_hint(command: str) -> str:
    """How to give a development command the emulator's placeholder settings."""
    return ("this development command needs no real account, only the emulator's placeholder settings: "
            f"add --env-file examples/emulator.env, e.g. `flask --env-file examples/emulator.env {command}"
            f"{_EXAMPLE_ARGS.get(command, '')}`")


EMULATOR_ENV = Path(__file__).resolve().parent.parent / "examples" / "emulator.env"


def _left_with_emulator_env() -> list[str]:
    """The problem lines a development command would still meet with `--env-file
    examples/emulator.env` (whose settings the environment overrides, as Flask loads it)."""
    given = {k: v for k, v in dotenv_values(EMULATOR_ENV).items() if v is not None and k not in os.environ}
    try:
        load_all_settings({**given, "DATABASE_URL": MEMORY_URL}, Path.cwd() / "instance")
    except ConfigError as exc:
        return problem_lines(exc)
    return []


# The settings whose problems the emulator's placeholder settings solve: a provider's credentials
# (the problem that no provider is configured at all is TELNYX_API_KEY's: the first it asks for).
_PROVIDER_CREDENTIALS = frozenset({"TELNYX_API_KEY", "TELNYX_PUBLIC_KEY"})
Extend = Callable[[Flask], None]
log = logging.getLogger(__name__)


def fail(error: BaseException, code: int = EX_CONFIG, extra: Iterable[str] = ()) -> NoReturn:
    """Print an error's problem lines and exit with code."""
    print_problems([*problem_lines(error), *extra], getattr(error, "warnings", ()))
    raise SystemExit(code)


def check(config: Mapping[str, object] | None = None) -> Settings:
    """Load the settings, the menu and the rules and open the database; LifelineError if any fails."""
    if config is None:
        load_env_file()
    # The outputs' settings too: a worker that cannot start must not be the first to say so.
    # A half-set Twilio account is checked here too, not only in each worker: it must stop the server first.
    found = inspect(config)
    if not found.problems:
        assert found.settings is not None
        try:
            # Opened without touching the schema: only `flask db upgrade` changes it.
            open_store(found.settings.database_url).close()
        except LifelineError as exc:
            found.problems += _problems_of(exc)
    if found.problems or found.settings is None:
        raise _Problems(found.problems, tuple(found.warnings))
    return replace(found.settings, warnings=tuple(found.warnings))


class _Problems(LifelineError):
    """Several start-up problems reported together."""

    def __init__(self, problems: list[Problem], warnings: tuple[str, ...] = ()) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems
        self.warnings = warnings


def check_or_exit() -> Settings:
    """check(), printing its warnings once; on problems print them and exit (gunicorn.conf.py)."""
    try:
        settings = check()
    except LifelineError as exc:
        fail(exc)
    print_problems([], [*settings.warnings, *bundled_examples(settings, settings_source(None))])
    require_current_schema(settings)
    try:
        # Once here in the master, so the workers load the built model instead of each building it.
        understanding_from(settings).warm_cache()
    except LifelineError as exc:
        fail(exc)
    return settings


def require_current_schema(settings: Settings | None = None) -> None:
    """Exit with one line unless the database schema is current (servers never migrate)."""
    if settings is None:
        load_env_file()
        try:
            settings = load_settings(None, Path.cwd() / "instance")
        except LifelineError as exc:
            fail(exc)
    store = open_store(settings.database_url)
    try:
        problem = store.schema_problem()
    except LifelineError as exc:
        fail(exc)
    finally:
        store.close()
    if problem:
        print_problems([problem])
        raise SystemExit(EX_CONFIG)


def secrets_of(settings: Settings) -> list[str]:
    """Values that must never appear in a log line."""
    symbl_secret = settings.symbl.app_secret if settings.symbl else None
    telnyx_key = settings.telnyx.api_key if settings.telnyx else None
    return [s for s in (telnyx_key, settings.twilio.get("TWILIO_AUTH_TOKEN"), settings.api_token,
                        settings.secret_key, settings.metrics_token, symbl_secret) if s]


def entry_app(extend: Extend | None = None, dev_commands: Collection[str] = ()) -> Flask:
    """The app for app.py: built now for a server, or a command shell under the `flask` command.

    Under `flask`, listing and dispatching commands never builds the services (so help works
    with no settings); a command builds them when it runs. `flask run`, `shell` and `routes` get
    the real app, and `run` starts the monitor in the serving process.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is not None and isinstance(ctx.find_root().command, FlaskGroup):
        if isinstance(ctx.command, click.Group):
            return _command_shell(extend, dev_commands)
        return _served_by_flask(ctx, extend)
    try:
        app = create_app()
    except LifelineError as exc:
        fail(exc, GUNICORN_BOOT_ERROR)
    if extend is not None:
        extend(app)
    _warn_if_unserviceable(app)
    _warn_if_unconfigured_server()
    return app


def _warn_if_unconfigured_server() -> None:
    """A server that did not load gunicorn.conf.py starts neither the monitor nor the outputs: say so."""
    # gunicorn.conf.py imports the hooks in the master, and its workers are forked from it.
    if "lifeline.gunicorn_hooks" not in sys.modules:
        log.warning("served without gunicorn.conf.py: this process runs no call monitor (stuck "
                    "transfers, time-based rules) and sends no summaries, webhooks or email; start "
                    "`gunicorn --config gunicorn.conf.py app:app`")


def _warn_if_unserviceable(app: Flask) -> None:
    """A server about to answer 503 to everything (schema not current) says why, once, at start."""
    problem = app.extensions["lifeline"].schema_problem
    if problem:
        log.warning("%s; until then every request is answered 503", problem)


def _served_by_flask(ctx: click.Context, extend: Extend | None) -> Flask:
    try:
        app = create_app()
    except LifelineError as exc:
        fail(exc)
    if extend is not None:
        extend(app)
    lifeline = app.extensions["lifeline"]
    print_problems([], lifeline.settings.warnings)
    refused = serving_problems(lifeline.settings) if ctx.command.name == "run" else []
    if refused:
        lifeline.close()
        fail(ConfigError(refused))
    if ctx.command.name == "run":
        logs.configure(lifeline.settings.log_format, secrets=secrets_of(lifeline.settings))
        _warn_if_unserviceable(app)
        reload = ctx.params.get("reload")
        reloading = ctx.params.get("debug") if reload is None else reload
        serving = not reloading or os.environ.get("WERKZEUG_RUN_MAIN") == "true"
        if serving and not reloading:
            # The monitor and the outputs would start, and do a sweep's or a round's work, before
            # the server finds its port taken: look first. (The reloader's child binds the port
            # its parent already holds, so it is not asked.)
            _port_or_fail(str(ctx.params.get("host") or "127.0.0.1"), int(ctx.params.get("port") or 5000))
        if serving:
            # Said by the serving process only (not the reloader's parent, not `flask db current`):
            # callers would hear the example bank's menu.
            print_problems([], bundled_examples(lifeline.settings, settings_source(None)))
            # The reloader's parent process only watches files; the child serves and sweeps.
            lifeline.load_models()  # the caller's first line must not wait for the models
            lifeline.start_background()  # the monitor and the outputs, as gunicorn's workers do
    return app


def bind_problem(host: str, port: int) -> str | None:
    """Why a server could not bind host:port now (another program has it), or None when it could."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _port_or_fail(host: str, port: int) -> None:
    """Stop with one line when `flask run` could not bind its port (another server has it)."""
    problem = bind_problem(host, port)
    if problem is not None:
        fail(ConfigError(f"cannot serve on {host}:{port} ({problem}): another server has it; "
                         "stop it or give --port"), code=1)


def _command_shell(extend: Extend | None, dev_commands: Collection[str]) -> Flask:
    """A Flask app that only lists and dispatches commands; each builds the real app when it runs."""
    shell = Flask("lifeline", instance_path=str(Path.cwd() / "instance"))
    register_commands(shell)
    if extend is not None:
        extend(shell)

    def build(dev: bool) -> Flask:
        if dev:
            # Development commands place their calls on databases of their own: the app built here
            # lends them its settings and services only, so it opens no database (and makes no file).
            load_env_file()
            app = create_app({"DATABASE_URL": MEMORY_URL})
        else:
            app = create_app()
        if extend is not None:
            extend(app)
        return app

    for name, command in list(shell.cli.commands.items()):
        if name == check_command.name:
            continue  # it checks what building the app would refuse, and must not build it
        # Development commands make and migrate databases of their own, and `flask db` is how the
        # schema is read and brought up to date: neither needs the configured one current.
        dev = name in dev_commands
        shell.cli.commands[name] = guard(command, functools.partial(build, dev), dev=dev,
                                         needs_schema=not dev and name != db_cli.db.name)
    return shell


def guard(command: click.Command, build: Callable[[], Flask], dev: bool = False,
          needs_schema: bool = False) -> click.Command:
    """A copy of command that builds the app first and turns LifelineError into problem lines.

    With `needs_schema` it stops, naming the fix, on a database whose schema is not current,
    before the command acts (`flask dial` would otherwise place a call it cannot record)."""
    guarded = copy.copy(command)
    if isinstance(command, click.Group):
        guarded.commands = {n: guard(c, build, dev, needs_schema)  # type: ignore[attr-defined]
                            for n, c in command.commands.items()}
        return guarded
    original = command.callback
    if original is None:
        return guarded

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            app = build()
        except LifelineError as exc:
            # The hint only where the emulator's env file is the fix, not for a broken rules file.
            if dev and any(p.setting in _PROVIDER_CREDENTIALS for p in _problems_of(exc)):
                # Only what would still be wrong with it (a broken rules file, say), then the hint:
                # not the settings it supplies, nor warnings about what this command chose itself.
                print_problems([*_left_with_emulator_env(), emulator_hint(command.name or "simulate")])
                raise SystemExit(EX_CONFIG) from None
            fail(exc)
        lifeline = app.extensions["lifeline"]
        settings = lifeline.settings
        if not dev:
            # Development commands swap the credentials for the emulator's: placeholders are fine there.
            print_problems([], settings.warnings)
        if needs_schema and lifeline.schema_problem:
            lifeline.close()
            print_problems([lifeline.schema_problem])
            raise SystemExit(EX_CONFIG)
        logs.configure(settings.log_format, level=logging.WARNING if dev else logging.INFO,
                       secrets=secrets_of(settings))
        try:
            with app.app_context():
                return original(*args, **kwargs)
        except LifelineError as exc:
            fail(exc)
        finally:
            lifeline.close()

    guarded.callback = run
    return guarded
