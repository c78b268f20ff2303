"""`flask dev` (`make dev`): the app and the emulator kept up on fixed loopback ports, with callers.

Callers from examples/calls arrive one every few seconds, round and round, so the dashboard
and the API always have something to show; the database (instance/dev.db) and the API token
(instance/dev-token) persist between runs; calls an earlier run left up are closed at start
(their emulator is gone). Ctrl-C stops everything.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO

import click
from flask import current_app

from lifeline.ivr.config import PROJECT_ROOT
from lifeline.startup import bind_problem

from .caller import play
from .external import kept_secret
from .runner import REAL_OUTPUTS, Simulation, access_line, caller_number
from .scenario import Scenario, ScenarioError, load_scenarios


@click.command("dev")
@click.argument("scenarios", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="The app's loopback port.")
@click.option("--emulator-port", type=click.IntRange(1, 65535), default=8001, show_default=True,
              help="The Telnyx emulator's loopback port.")
@click.option("--every", type=click.FloatRange(0.2, 600.0), default=8.0, show_default=True,
              help="Seconds between new callers.")
@click.option("--concurrency", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Callers on the line at most at once.")
@click.option("--speed", type=click.FloatRange(0.1, 100.0), default=1.0, show_default=True,
              help="Time compression of the callers' speech and pauses.")
@click.option("--engine", type=click.Choice(["telnyx", "local"]), default="telnyx", show_default=True)
@click.option("--outputs", is_flag=True,
              help="Send the simulated calls' events, summaries and voicemail where your settings say "
                   "(LIFELINE_EVENT_WEBHOOKS, LIFELINE_SMTP_URL, LIFELINE_RECORDINGS_BUCKET...): to try "
                   "your own webhook receiver. Off by default, so nothing real receives them.")
def dev(scenarios: tuple[Path, ...], port: int, emulator_port: int, every: float, concurrency: int,
        speed: float, engine: str, outputs: bool) -> None:
    """Keep the app and the emulator up on loopback, with callers from SCENARIOS (YAML files or
    folders of them; default: examples/calls), until Ctrl-C."""
    settings = current_app.extensions["lifeline"].settings
    for option, wanted in (("--port", port), ("--emulator-port", emulator_port)):
        _free_or_fail(option, wanted)
    try:  # before anything is taken or written: a bad caller stops here, leaving nothing behind
        callers = load_scenarios(scenarios or (PROJECT_ROOT / "examples" / "calls",), engine)
    except ScenarioError as exc:
        raise click.UsageError(str(exc)) from exc
    instance = Path.cwd() / "instance"
    instance.mkdir(exist_ok=True)
    # Held for as long as this runs: a second `flask dev` here would take this one's live calls
    # for an earlier run's and close them (both keep instance/dev.db).
    lock = _only_run_here(instance / "dev.lock")
    token = _token(instance / "dev-token")
    config = {"LIFELINE_AGENTS": ",".join(settings.agents), "LIFELINE_IVR": str(settings.ivr_path),
              "LIFELINE_RULES": str(settings.rules_path), "LIFELINE_API_TOKEN": token}
    kept, ignored = real_outputs(os.environ, outputs)
    config.update(kept)
    if ignored:
        click.echo(f"note: {', '.join(ignored)} from your settings are off here, so simulated calls reach "
                   "no real receiver; add --outputs to send them there")
    stop = threading.Event()
    # Explicit handlers: a shell starts background jobs with SIGINT ignored.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Simulation(config, engine=engine, speed=speed, database_url=f"sqlite:///{instance / 'dev.db'}",
                        app_port=port, emulator_port=emulator_port) as sim:
            assert sim.app is not None
            lifeline = sim.app.extensions["lifeline"]
            # An earlier run's callers were on that run's emulator, which is gone with it.
            left = [c.call_control_id for c in lifeline.store.list_calls(limit=10_000, active_only=True)]
            closed = sum(lifeline.calls.call_gone(ccid, "dev_restart") for ccid in left)
            if closed:
                click.echo(f"closed {closed} call(s) left up by an earlier run")
            lifeline.monitor.start()
            emulator_at = f"emulator http://127.0.0.1:{emulator_port}"
            click.echo("Lifeline dev: " + access_line(sim.url, token, emulator_at, "Ctrl-C to stop"))
            try:
                _loop(sim, callers, every, concurrency, stop)
            except KeyboardInterrupt:
                stop.set()
                # Callers still on the line are cut off on purpose: their failures are not news,
                # including those the emulator's delivery threads log after this command returns.
                logging.disable(logging.CRITICAL)
        click.echo("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lock.close()


def _only_run_here(path: Path) -> IO[str]:
    """Hold the folder's dev lock, or stop naming the run that holds it."""
    held = path.open("a+")
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        held.seek(0)
        other = held.read().strip() or "unknown"
        held.close()
        raise click.ClickException(f"another `flask dev` (pid {other}) is running in this folder and "
                                   "keeps instance/dev.db: stop it first, or start this one from another "
                                   "folder") from None
    held.seek(0)
    held.truncate()
    held.write(str(os.getpid()))
    held.flush()
    return held


def real_outputs(environ: Mapping[str, str], keep: bool) -> tuple[dict[str, str], list[str]]:
    """The settings reaching real systems that this run keeps (with --outputs), and those it leaves off."""
    given = {name: environ[name] for name in REAL_OUTPUTS if environ.get(name, "").strip()}
    return (given, []) if keep else ({}, sorted(given))


def _loop(sim: Simulation, scenarios: list[Scenario], every: float, concurrency: int,
          stop: threading.Event) -> None:
    """Start a caller every `every` seconds, at most `concurrency` on the line, until interrupted."""
    on_line = threading.BoundedSemaphore(concurrency)
    count = 0
    while True:
        if on_line.acquire(timeout=every):
            scenario = scenarios[count % len(scenarios)]
            threading.Thread(target=_call, args=(sim, scenario, count, on_line, stop),
                             name=f"dev-caller-{count}", daemon=True).start()
            count += 1
            time.sleep(every)


def _call(sim: Simulation, scenario: Scenario, index: int, on_line: threading.BoundedSemaphore,
          stop: threading.Event) -> None:
    try:
        play(sim.emulator, scenario, caller_number(index), sim.api)
    except Exception:  # a caller cut off by Ctrl-C, or by the app under test
        if not stop.is_set():
            raise
    finally:
        on_line.release()


def _free_or_fail(option: str, port: int) -> None:
    """One line naming the option when a port is taken (the server's own message names neither)."""
    problem = bind_problem("127.0.0.1", port)
    if problem is not None:
        raise click.UsageError(f"127.0.0.1:{port} is taken by another program ({problem}): "
                               f"stop it, or give {option} another port")


def _token(path: Path) -> str:
    """The dev API token, made once and kept (readable by its owner only)."""
    return kept_secret(path, lambda: secrets.token_urlsafe(24))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
