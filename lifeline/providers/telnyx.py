"""Telnyx behind the provider interface, and its webhook endpoint (which goes through it)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from lifeline.insight.frames import MalformedFrame, MediaFrame, parse_frame
from lifeline.ivr.errors import NotConfigured
from lifeline.ivr.events import CallEvent, parse_event
from lifeline.ivr.security import WebhookVerifier
from lifeline.ivr.store import Command
from lifeline.ivr.telnyx_api import SendOutcome, TelnyxCommands

from .base import Provider, WebhookRequest, rejected


class TelnyxProvider(Provider):
    """Ed25519-signed JSON webhooks in, Call Control commands out, JSON media frames."""

    name = "telnyx"

    def __init__(self, verifier: WebhookVerifier, commands: TelnyxCommands) -> None:
        self._verifier = verifier
        self._commands = commands

    def owns(self, call_control_id: str) -> bool:
        """Telnyx is the default owner: any id another provider does not claim."""
        return True

    def verify(self, request: WebhookRequest) -> None:
        """Check the Ed25519 signature and timestamp."""
        self._verifier.verify(request.headers, request.body)

    def parse(self, request: WebhookRequest) -> list[CallEvent]:
        """One Call Control event per webhook."""
        return [parse_event(request.body)]

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """One Call Control command, retried with its command_id while it is still wanted."""
        return self._commands.send(command, wanted)

    def parse_media(self, raw: str | bytes) -> MediaFrame:
        """A Telnyx media-stream frame."""
        return parse_frame(raw)

    def is_alive(self, call_control_id: str) -> bool | None:
        """Telnyx's call status."""
        return self._commands.is_alive(call_control_id)

    def close(self) -> None:
        """Close the Telnyx HTTP pool."""
        self._commands.close()


# What a deployment without Telnyx answers on Telnyx's webhook, and why its Telnyx commands fail.
NOT_CONFIGURED = ("Telnyx is not configured on this deployment: set TELNYX_API_KEY and TELNYX_PUBLIC_KEY "
                  "(Telnyx portal, Keys & Credentials) to answer Telnyx calls")


class TelnyxNotConfigured(Provider):
    """Telnyx's place in a Twilio-only deployment: refuses its webhooks, sends nothing, knows no leg.

    It stays the default owner, so a call no configured provider claims (one left in the store
    from a Telnyx deployment) gets a plain refusal instead of reaching Twilio's API.
    """

    name = "telnyx"

    def owns(self, call_control_id: str) -> bool:
        """The default owner, as TelnyxProvider is."""
        return True

    def verify(self, request: WebhookRequest) -> None:
        """Refuse every request (404, naming the settings that turn Telnyx on): nothing is recorded."""
        raise NotConfigured(NOT_CONFIGURED)

    def parse(self, request: WebhookRequest) -> list[CallEvent]:
        """Nothing to parse: verify has refused the request."""
        raise NotConfigured(NOT_CONFIGURED)

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """Rejected at once (not retried): there is no Telnyx to send it to."""
        return rejected(command, "Telnyx is not configured (TELNYX_API_KEY, TELNYX_PUBLIC_KEY)")

    def parse_media(self, raw: str | bytes) -> MediaFrame:
        """No Telnyx media socket is served without Telnyx."""
        raise MalformedFrame("Telnyx is not configured")

    def is_alive(self, call_control_id: str) -> bool | None:
        """Cannot say: the sweep leaves the call alone rather than close it on no evidence."""
        return None


bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/telnyx")
def telnyx_webhook() -> ResponseReturnValue:
    """Receive one Call Control event: verify, parse, record and dispatch, acknowledge.

    403 unsigned or stale, 400 malformed, 404 when Telnyx is not configured (nothing recorded in
    any of these), 200 otherwise.
    """
    lifeline = current_app.extensions["lifeline"]
    provider: Provider = lifeline.telnyx
    incoming = WebhookRequest(url=request.url, headers=dict(request.headers.items()),
                              body=request.get_data(cache=False))
    provider.verify(incoming)
    [event] = provider.parse(incoming)  # Telnyx sends one event per webhook
    result = lifeline.calls.handle(event)
    return jsonify(result=result, event_id=event.id), 200
