"""Lifeline: a Telnyx IVR that hears frustration and puts the caller through to a person, once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dotenv import load_dotenv
from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .config import Settings, load_settings
from .errors import StoreError, WebhookError, error_response
from .menu import Menu, load_menu
from .outbox import CommandSender
from .sanitize import FiniteJSONProvider
from .security import WebhookVerifier
from .service import CallService
from .store import SqlStore
from .telnyx_api import TelnyxCommands

if TYPE_CHECKING:
    from insight.base import ListeningEngine
    from transfer.monitor import Monitor

log = logging.getLogger(__name__)


@dataclass
class Lifeline:
    """Everything one app instance holds; lives in app.extensions["lifeline"]."""

    settings: Settings
    menu: Menu
    store: SqlStore
    sender: CommandSender
    verifier: WebhookVerifier
    calls: CallService
    monitor: Monitor
    engine: ListeningEngine

    def close(self) -> None:
        """Stop the monitor, finish queued commands and release connections."""
        self.monitor.stop()
        self.sender.close()
        self.store.close()


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the Flask app; config overrides the environment (same variable names).

    The monitor's schedule is not started here: gunicorn.conf.py starts it in each worker, and
    `flask monitor` runs it on its own, so CLI commands and tests build apps without one.
    """
    from insight import make_engine
    from insight.sentiment import SentimentScorer
    from transfer.executor import TransferExecutor
    from transfer.monitor import Monitor
    from transfer.rules import load_rules

    from .handlers import Services

    if config is None:
        load_dotenv(Path.cwd() / ".env", override=False)
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"))
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    app.json = FiniteJSONProvider(app)
    settings = load_settings(config, Path(app.instance_path))
    menu = load_menu(settings.ivr_path)
    rules = load_rules(settings.rules_path)
    engine = make_engine(settings)
    store = SqlStore(settings.database_url)
    telnyx = TelnyxCommands(settings)
    sender = CommandSender(store, telnyx, settings.command_workers)
    services = Services(
        engine=engine, scorer=SentimentScorer(), rules=rules,
        transfers=TransferExecutor(settings.agents, settings.transfer_timeout_s, rules.handoff))
    calls = CallService(store, menu, sender, services)
    sender.on_call_ended(calls.call_gone)
    monitor = Monitor(store, sender, telnyx, menu, services, settings.sweep_interval_s,
                      settings.transfer_timeout_s, settings.stale_call_s, calls)
    app.extensions["lifeline"] = Lifeline(
        settings=settings, menu=menu, store=store, sender=sender,
        verifier=WebhookVerifier(settings.telnyx_public_key, settings.webhook_tolerance_s),
        calls=calls, monitor=monitor, engine=engine)
    engine.bind(lambda ccid, source, text, confidence: calls.hear(ccid, engine.name, source, text,
                                                                   confidence), state=calls)
    engine.warm()

    from . import api, console, media, webhooks
    console.configure_sessions(app, settings)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(console.bp)
    _register_errors(app)

    from simulator.cli import register as register_simulator
    from transfer.cli import register as register_monitor
    register_simulator(app)
    register_monitor(app)
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(WebhookError)
    def _refused(exc: WebhookError) -> ResponseReturnValue:
        log.warning("webhook refused (%d): %s", exc.status, exc)
        return error_response(exc.status, str(exc), exc.code)

    @app.errorhandler(StoreError)
    def _store_down(exc: StoreError) -> ResponseReturnValue:
        # 503 makes Telnyx redeliver later; nothing was acknowledged, so nothing is lost.
        log.error("store unavailable: %s", exc)
        return error_response(503, "call store unavailable; the event will be redelivered")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unexpected error")
        return error_response(500, "internal error; see the server log")


__all__ = ["Lifeline", "create_app"]
