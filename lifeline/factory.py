"""The app factory: reads settings, builds every collaborator once, and wires them together."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from lifeline.calls.monitor import Monitor
from lifeline.calls.service import CallService
from lifeline.calls.services import Services
from lifeline.calls.transitions import MACHINE
from lifeline.calls.unit import UnitOfWork
from lifeline.console import views as console_views
from lifeline.conversation import api as conversation_api
from lifeline.conversation import cli as conversation_cli
from lifeline.conversation.hub import FeedHub
from lifeline.conversation.outputs import Outputs
from lifeline.insight import make_engine, media
from lifeline.insight.asr_queue import Job
from lifeline.insight.base import ListeningEngine
from lifeline.insight.endpoint import SAMPLE_RATE
from lifeline.insight.local import LocalEngine
from lifeline.insight.media import MediaStreams
from lifeline.insight.tracks import party_of_source
from lifeline.insight.understand import understanding_from
from lifeline.ivr import api, openapi, sessions
from lifeline.ivr import metrics as metrics_module
from lifeline.ivr.config import Settings
from lifeline.ivr.errors import ConfigError
from lifeline.ivr.menu import Menu, load_menu
from lifeline.ivr.metrics import Metrics
from lifeline.ivr.outbox import CommandSender, Sender
from lifeline.ivr.recording_sinks import sink_from_settings
from lifeline.ivr.recordings import RecordingKeeper
from lifeline.ivr.retention import Retention
from lifeline.ivr.sanitize import FiniteJSONProvider
from lifeline.ivr.security import WebhookVerifier
from lifeline.ivr.store import OutputStore, open_store
from lifeline.ivr.telnyx_api import TelnyxCommands, longest_send_s
from lifeline.providers import Provider, ProviderCommands
from lifeline.providers.telnyx import TelnyxNotConfigured, TelnyxProvider
from lifeline.providers.telnyx import bp as telnyx_webhooks
from lifeline.providers.twilio.wiring import build_twilio
from lifeline.providers.twilio.wiring import refuse_webhooks as refuse_twilio_webhooks
from lifeline.providers.voices import settle_menu_voice
from lifeline.transfer.executor import TransferExecutor
from lifeline.transfer.rules import load_rules, menu_and_rules_warnings

from . import cli, db_cli, preflight, retention_cli
from .environment import load_all_settings, load_env_file
from .http_errors import register_errors
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

    def load_models(self) -> None:
        """Load what a caller's first line needs (the understanding model, the engine's recogniser)
        before serving: not when the app is built, since commands that serve nothing build it too."""
        self.services.scorer.load()
        self.engine.warm()

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
    menu, voice_problems, voice_warnings = settle_menu_voice(settings, load_menu(settings.ivr_path))
    if voice_problems:
        raise ConfigError(voice_problems)
    rules = load_rules(settings.rules_path)
    settings = replace(settings,
                       warnings=(*settings.warnings, *voice_warnings, *menu_and_rules_warnings(
                           menu, rules, settings.rules_path, settings.ivr_path)))
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
                                 credentials=twilio.recording_credentials() if twilio else None,
                                 provider_apis=[settings.telnyx.api_base_url if settings.telnyx else "",
                                                twilio.provider.settings.api_base_url if twilio else ""])
    services = Services(
        engine=engine, scorer=understanding_from(settings), rules=rules,
        transfers=TransferExecutor(settings.agents, settings.transfer_timeout_s, rules.handoff),
        recordings=recordings)
    hub = FeedHub(on_streams=metrics.feed_streams_changed)
    units = UnitOfWork(store, menu, sender, on_published=hub.wake)
    outputs = Outputs.build(output_settings, store, hub, units, services, telnyx)
    calls = CallService(store, units, services, MACHINE)
    outbox.on_call_ended(calls.call_ended)  # a 90018 on any command closes its call
    retention = Retention(store, recordings.sink, settings.retention_days,
                          receivers=output_settings.event_webhooks, metrics=metrics)
    monitor = Monitor(store, outbox, providers, units, services, MACHINE,
                      settings.sweep_interval_s, settings.transfer_timeout_s, settings.stale_call_s, calls,
                      longest_send_s=longest, retention=retention)
    app.extensions["lifeline"] = Lifeline(
        settings=settings, menu=menu, store=store, sender=sender,
        telnyx=telnyx_provider,
        calls=calls, monitor=monitor, engine=engine, metrics=metrics, services=services,
        schema_problem=problem, outputs=outputs)
    app.extensions["conversation"] = outputs
    engine.bind(lambda ccid, source, text, confidence, readings=(): calls.hear(
        ccid, engine.name, source, text, confidence, party=party_of_source(source), readings=readings),
        state=calls)

    sessions.configure_sessions(app, settings)
    if settings.trusted_proxies:
        # Only the client's address is read from the proxies' X-Forwarded-For (the throttle of wrong
        # tokens counts by it); scheme, host and path stay as the request came.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0, x_prefix=0)
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
    register_errors(app)
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
    app.cli.add_command(preflight.check_command)
    db_cli.register(app)
    retention_cli.register(app)
    conversation_cli.register(app)


__all__ = ["Lifeline", "create_app"]
