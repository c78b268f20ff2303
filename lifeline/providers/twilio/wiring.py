"""Twilio's part of the composition root: built only when TWILIO_AUTH_TOKEN is set."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, request

from lifeline.ivr.config import Settings
from lifeline.ivr.errors import NotConfigured
from lifeline.ivr.outbox import CommandSender
from lifeline.ivr.store import CallStore

from .provider import TwilioProvider
from .rest import TwilioCommands
from .sender import TwilioAwareSender
from .settings import twilio_settings
from .twiml import TwimlRenderer

# What a deployment without Twilio answers on Twilio's webhooks (as Telnyx's says for Telnyx).
NOT_CONFIGURED = ("Twilio is not configured on this deployment: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                  "(Twilio Console, Account > API keys & tokens) to answer Twilio calls")


def refuse_webhooks(app: Flask) -> None:
    """Answer Twilio's webhooks 404 `not_configured`, naming the settings, when Twilio is off."""

    # A hook, not a route: an unconfigured provider's paths are neither served nor described.
    def refuse() -> None:
        if request.path == "/webhooks/twilio" or request.path.startswith("/webhooks/twilio/"):
            raise NotConfigured(NOT_CONFIGURED)

    app.before_request(refuse)


@dataclass
class Twilio:
    """The Twilio provider and the sender that turns commands into TwiML or REST updates."""

    provider: TwilioProvider
    sender: TwilioAwareSender | None = None

    def wrap(self, inner: CommandSender, store: CallStore, workers: int,
             longest_send_s: float = 0.0) -> TwilioAwareSender:
        """The sender the unit of work uses: Twilio's commands taken out, the rest passed on."""
        self.sender = TwilioAwareSender(inner, store, self.provider, workers, longest_send_s)
        return self.sender

    def recording_credentials(self) -> dict[str, tuple[str, str]]:
        """The API host with the account's credentials: media URLs may require HTTP auth there."""
        config = self.provider.settings
        return {urlsplit(config.api_base_url).netloc: (config.account_sid, config.auth_token)}

    def register(self, app: Flask) -> None:
        """Add the Twilio webhooks and media endpoint."""
        from . import media, webhooks

        app.extensions["lifeline_twilio"] = self
        app.register_blueprint(webhooks.bp)
        media.install(app, app.extensions["lifeline"], self.provider.parse_media)


def build_twilio(settings: Settings, store: CallStore) -> Twilio | None:
    """Twilio's provider from the settings, or None when Twilio is not configured."""
    config = twilio_settings(settings)
    if config is None:
        return None
    renderer = TwimlRenderer(config)
    commands = TwilioCommands(config, renderer, settings.command_timeout_s, settings.command_attempts,
                              connections=settings.command_workers)
    return Twilio(TwilioProvider(config, commands, renderer, store))
