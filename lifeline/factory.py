"""The app factory: reads settings, builds every collaborator once, and wires them together."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from urllib.parse import unquote_to_bytes

from dotenv import dotenv_values, find_dotenv
from flask import Flask, request
from flask.helpers import get_load_dotenv
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing.exceptions import WebsocketMismatch

from calls.monitor import Monitor
from calls.service import CallService
from calls.services import Services
from calls.transitions import MACHINE
from calls.unit import UnitOfWork
from console import views as console_views
from conversation import api as conversation_api
from conversation import cli as conversation_cli
from conversation.hub import FeedHub
from conversation.outputs import Outputs
from conversation.settings import OutputSettings, load_output_settings
from insight import make_engine, media
from insight.asr_queue import Job
from insight.base import ListeningEngine
from insight.endpoint import SAMPLE_RATE
from insight.local import LocalEngine
from insight.media import MediaStreams
from insight.tracks import party_of_source
from insight.understand import understanding_from
from ivr import api, openapi, sessions
from ivr import metrics as metrics_module
from ivr.config import Settings, load_settings
from ivr.errors import ConfigError, ProviderError, RequestError, StoreError, WebhookError, error_response
from ivr.menu import AFTER_AGENTS, OPERATOR_DIGIT, Menu, load_menu
from ivr.metrics import Metrics
from ivr.outbox import CommandSender, Sender
from ivr.recording_sinks import sink_from_settings
from ivr.recordings import RecordingKeeper
from ivr.sanitize import FiniteJSONProvider
from ivr.security import WebhookVerifier
from ivr.store import OutputStore, open_store
from ivr.telnyx_api import TelnyxCommands, longest_send_s
from providers import Provider, ProviderCommands
from providers.telnyx import TelnyxNotConfigured, TelnyxProvider
from providers.telnyx import bp as telnyx_webhooks
from providers.twilio.wiring import build_twilio
from providers.twilio.wiring import refuse_webhooks as refuse_twilio_webhooks
from transfer.executor import TransferExecutor
from transfer.rules import RuleSet, load_rules

from . import cli, db_cli
from .schema_gate import SchemaGate, SchemaWait

log = logging.getLogger(__name__)


@dataclass
class Lifeline:
    """Everything one app instance holds; lives in app.extensions["lifeline"]."""

    settings: Settings
    menu: Menu
    store: OutputStore
    sender: Sender
    telnyx: Provider  # its webhooks and media frames go through it (TelnyxNotConfigured without Telnyx)
    calls: CallService
    monitor: Monitor
    engine: ListeningEngine
    outputs: Outputs
    metrics: Metrics
    services: Services  # the scorer and rules every message goes through (flask evaluate reuses them)
    schema_problem: str | None = None  # one line, when the database's schema is not the code's
    streams: MediaStreams | None = None  # the media sockets' gate and watch (local engine only)
    waiting: SchemaWait | None = None  # the background work, until the schema is current

    def start_background(self) -> None:
        """Start the call monitor (when LIFELINE_MONITOR is on) and the outputs; while the schema is
        behind, as soon as it is current."""
        def start() -> None:
            if self.settings.monitor:
                self.monitor.start()
                log.info("monitor started: sweeping active calls every %g s", self.monitor.interval_s)
            self.outputs.start()  # summaries, webhooks and email out: safe in every process

        self.waiting = SchemaWait(self.store, self)
        self.waiting.start(start)

    def close(self) -> None:
        """Stop the monitor and the outputs, finish queued commands and release connections."""
        if self.waiting is not None:
            self.waiting.stop()
        self.monitor.stop()
        if self.streams is not None:
            self.streams.close()
        self.engine.close()  # its last messages still reach the call flow, so before the sender
        self.outputs.close()
        self.sender.close()
        if self.monitor.recordings is not None:
            self.monitor.recordings.close()
        self.store.close()


def load_all_settings(config: Mapping[str, object] | None,
                      instance_path: Path) -> tuple[Settings, OutputSettings]:
    """The app's settings and its outputs' (webhooks, email, dial-out), with every problem of both
    in one ConfigError: fixing one group must not reveal the other's only at the next start."""
    problems: list[str] = []
    warnings: tuple[str, ...] = ()
    settings: Settings | None = None
    outputs: OutputSettings | None = None
    try:
        settings = load_settings(config, instance_path)
    except ConfigError as exc:
        problems.append(str(exc))
        warnings = exc.warnings
    try:
        outputs = load_output_settings(config)
    except ConfigError as exc:
        problems.append(str(exc))
        warnings = warnings or (settings.warnings if settings is not None else ())
    if settings is None or outputs is None:
        raise ConfigError("\n".join(problems), warnings=warnings)
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


def env_file_path() -> str | None:
    """The `.env` file the entry points read: the nearest one from the working directory up."""
    return find_dotenv(".env", usecwd=True) or None


def menu_and_rules_warnings(menu: Menu, rules: RuleSet, settings: Settings) -> list[str]:
    """Warnings for a rules file with no rule on, and for menu options a `dtmf` rule takes first
    (a key pressed at any moment is the rule's)."""
    found = []
    if not rules.rules:
        found.append(f"{settings.rules_path}: no escalation rule is on: callers are put through only by "
                     f"pressing {OPERATOR_DIGIT}; enable rules there (examples/rules.yaml has the defaults)")
    for node in menu.nodes.values():
        for key in sorted(node.options):
            decision = rules.on_digit(key) if key != OPERATOR_DIGIT else None
            if decision is None:
                continue
            if node.name == AFTER_AGENTS:  # built in, not in the file: name it by what it is
                found.append(f"{settings.rules_path}: rule {decision.rule!r} acts on key {key}, which the "
                             "built-in menu offered when no agent answers uses (1: back to the menu, 2: "
                             f"leave a message): a caller pressing {key} there is put through again instead; "
                             "drop the key from the rule's digits")
                continue
            found.append(f"{settings.rules_path}: rule {decision.rule!r} acts on key {key}, which menu "
                         f"{node.name!r} offers ({settings.ivr_path}): a caller pressing {key} there is "
                         "put through instead; drop the key from the rule's digits or from the menu")
    return found


def create_app(config: Mapping[str, object] | None = None, *, migrate: bool = False) -> Flask:
    """Build the Flask app; config overrides the environment (same variable names).

    The app never changes the schema on its own: it checks it, and while it is not current
    every request gets 503 saying to run `flask db upgrade`, looking again every few seconds
    (gunicorn stops before its workers start: gunicorn.conf.py); the problem is in
    `Lifeline.schema_problem`, for the entry point to report. `migrate=True` upgrades first; it is
    for tools that make their own fresh database (tests, `flask simulate`), never for the served
    app's workers.

    The simulator's commands are not registered here (the product never imports its test tool):
    `app.py` adds them for `flask --app app`. The monitor's schedule is not started here either:
    gunicorn.conf.py starts it in each worker, and `flask monitor` runs it on its own, so CLI
    commands and tests build apps without one.
    """
    if config is None:
        load_env_file()
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.json = FiniteJSONProvider(app)
    settings, output_settings = load_all_settings(config, Path(app.instance_path))
    menu = load_menu(settings.ivr_path)
    rules = load_rules(settings.rules_path)
    settings = replace(settings,
                       warnings=(*settings.warnings, *menu_and_rules_warnings(menu, rules, settings)))
    engine = make_engine(settings)
    store = open_store(settings.database_url, create_schema=migrate,
                       sqlite_synchronous=settings.sqlite_synchronous)
    # Checked, not reported: whoever starts the app says it where it helps (lifeline/startup.py).
    problem = None if migrate else store.schema_problem()
    metrics = Metrics()
    twilio = build_twilio(settings, store)  # None unless TWILIO_AUTH_TOKEN is set
    telnyx, telnyx_provider = build_telnyx(settings)
    providers = ProviderCommands([telnyx_provider, *([twilio.provider] if twilio else [])])
    outbox = CommandSender(store, providers, settings.command_workers, metrics,
                           settings.telnyx.api_base_url if settings.telnyx else "",
                           hold_s=settings.command_hold_s,
                           tells_reachability=lambda ccid: telnyx is not None
                           and providers.owner(ccid) is telnyx_provider)
    longest = longest_send_s(settings.command_attempts, settings.command_timeout_s)
    sender = twilio.wrap(outbox, store, settings.command_workers, longest + 2.0) if twilio else outbox
    recordings = RecordingKeeper(store, sink_from_settings(settings),
                                 credentials=twilio.recording_credentials() if twilio else None)
    services = Services(
        engine=engine, scorer=understanding_from(settings), rules=rules,
        transfers=TransferExecutor(settings.agents, settings.transfer_timeout_s, rules.handoff),
        recordings=recordings)
    hub = FeedHub()
    units = UnitOfWork(store, menu, sender, on_published=hub.wake)
    outputs = Outputs.build(output_settings, store, hub, units, services, telnyx)
    calls = CallService(store, units, services, MACHINE)
    outbox.on_call_ended(calls.call_gone)  # a 90018 on any command closes its call
    monitor = Monitor(store, outbox, providers, units, services, MACHINE,
                      settings.sweep_interval_s, settings.transfer_timeout_s, settings.stale_call_s, calls,
                      longest_send_s=longest)
    app.extensions["lifeline"] = Lifeline(
        settings=settings, menu=menu, store=store, sender=sender,
        telnyx=telnyx_provider,
        calls=calls, monitor=monitor, engine=engine, metrics=metrics, services=services,
        schema_problem=problem, outputs=outputs)
    app.extensions["conversation"] = outputs
    engine.bind(lambda ccid, source, text, confidence, readings=(): calls.hear(
        ccid, engine.name, source, text, confidence, party=party_of_source(source), readings=readings),
        state=calls)
    engine.warm()

    sessions.configure_sessions(app, settings)
    app.register_blueprint(telnyx_webhooks)
    if isinstance(engine, LocalEngine):
        engine.on_transcribed = partial(_measure_transcription, metrics)
        streams = MediaStreams(engine, store)
        media.install(app, streams, calls.stream_lost, telnyx_provider.parse_media if telnyx else None)
        app.extensions["lifeline"].streams = streams
    else:
        app.register_blueprint(media.bp)  # answers 404: media streaming is the local engine's
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(conversation_api.bp)
    if twilio is not None:
        twilio.register(app)
    else:
        refuse_twilio_webhooks(app)
    metrics_module.install(app, metrics)
    app.register_blueprint(console_views.bp)
    _register_errors(app)
    if problem:
        app.before_request(SchemaGate(store, app.extensions["lifeline"]))

    register_commands(app)
    return app


def build_telnyx(settings: Settings) -> tuple[TelnyxCommands | None, Provider]:
    """Telnyx's command client and provider; without Telnyx no client, and a provider that refuses."""
    if settings.telnyx is None:  # a Twilio-only deployment
        return None, TelnyxNotConfigured()
    commands = TelnyxCommands(settings, settings.telnyx)
    verifier = WebhookVerifier(settings.telnyx.public_key, settings.webhook_tolerance_s)
    return commands, TelnyxProvider(verifier, commands)


def _measure_transcription(metrics: Metrics, job: Job) -> None:
    """The local engine decoded an utterance: its real-time factor goes to /metrics."""
    if job.started_at is None or job.finished_at is None or job.transcript is None:
        return
    audio_s = len(job.utterance.audio) / SAMPLE_RATE  # the cutter works at 8 kHz whatever the codec
    metrics.transcribed(job.finished_at - job.started_at, audio_s)


def register_commands(app: Flask) -> None:
    """Add every product command to `flask`; the command shell (startup.py) lists the same ones."""
    cli.register(app)
    db_cli.register(app)
    conversation_cli.register(app)


def _register_errors(app: Flask) -> None:
    @app.errorhandler(WebhookError)
    def _refused(exc: WebhookError) -> ResponseReturnValue:
        log.warning("webhook refused (%d): %s", exc.status, exc)
        return error_response(exc.status, str(exc), exc.code)

    @app.before_request
    def _refuse_unstorable_query() -> ResponseReturnValue | None:
        # No store keeps a NUL in text (PostgreSQL refuses it outright), and a query that is not
        # UTF-8 fails wherever it is read: a 400 here, not a 500 there. (An id in the path with a
        # NUL is simply no call: the store answers 404 for it.)
        query = unquote_to_bytes(request.query_string.replace(b"+", b" "))
        try:
            query.decode()
        except UnicodeDecodeError:
            return error_response(400, "the query string is not UTF-8")
        if b"\x00" in query:
            return error_response(400, "a query parameter holds a NUL character")
        return None

    @app.errorhandler(RequestError)
    def _cannot(exc: RequestError) -> ResponseReturnValue:
        return error_response(exc.status, str(exc), exc.code)

    @app.errorhandler(ProviderError)
    def _provider_refused(exc: ProviderError) -> ResponseReturnValue:
        # Retrying may work (unreachable, a 5xx): the provider's gateway failed us. Otherwise the
        # provider refused what was asked, and asking again the same way will not help.
        return error_response(502 if exc.retryable else 422, str(exc), "provider_error")

    @app.errorhandler(StoreError)
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _store_down(exc: Exception) -> ResponseReturnValue:
        # Connection-level failures of a read (down, unreachable, locked) are the same outage as a
        # StoreError from a write: 503, so a webhook is redelivered and a client tries again.
        log.error("store unavailable: %s", " ".join(str(exc).split())[:300])
        if request.path.startswith("/webhooks/"):
            # Nothing was acknowledged, so nothing is lost: the provider redelivers.
            return error_response(503, "call store unavailable; the event will be redelivered")
        return error_response(503, "the call store is unavailable; try again shortly")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        message, status = exc.description or exc.name, exc.code or 500
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            message = f"{request.path[:200]} takes {', '.join(exc.valid_methods)}, not {request.method}"
        elif isinstance(exc, WebsocketMismatch):
            if request.headers.get("Upgrade", "").lower() == "websocket":  # an upgrade to a plain route
                message = f"{request.path[:200]} is not a WebSocket: request it without Upgrade"
            else:  # a plain request to a media socket's path
                status = 426
                message = f"{request.path[:200]} is a media WebSocket: connect with Upgrade: websocket"
        response, status = error_response(status, message)
        if status == 426:
            response.headers["Upgrade"] = "websocket"
        # Werkzeug's own headers (a 405's Allow, a 416's Content-Range), in the one error shape's body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")
        return error_response(500, "internal error; see the server log")


__all__ = ["Lifeline", "create_app"]
