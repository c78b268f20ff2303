"""Twilio behind the provider interface: signed form webhooks in, TwiML and REST out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from twilio.request_validator import (
    HMAC_SHA1,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from lifeline.insight.frames import MediaFrame
from lifeline.ivr.errors import MalformedEvent, SignatureError
from lifeline.ivr.events import CallEvent
from lifeline.ivr.sanitize import whole_number
from lifeline.ivr.store import CallStore, Command
from lifeline.ivr.telnyx_api import SendOutcome

from ..base import Provider, WebhookRequest
from . import events
from .frames import parse_twilio_frame
from .listening import stop_name
from .rest import TwilioCommands
from .settings import TwilioSettings
from .twiml import TwimlRenderer

SIGNATURE_HEADER = "X-Twilio-Signature"
# (event key, form, query, the configured API base URL) -> the request's events
Parser = Callable[[str, Mapping[str, str], Mapping[str, list[str]], str], list[CallEvent]]


def _leg(query: Mapping[str, list[str]]) -> tuple[str, int]:
    caller = (query.get("caller") or [""])[0]
    attempt = (query.get("attempt") or [""])[0]
    number = whole_number(attempt)
    if not events.CALL_SID.match(caller) or number is None or not 1 <= number <= 50:
        raise MalformedEvent("callback URL must carry caller=<Call SID>&attempt=<n>")
    return caller, number


PARSERS: dict[str, Parser] = {
    "voice": lambda key, form, q, api: events.voice(key, form),
    "status": lambda key, form, q, api: events.status(key, form),
    "gather": lambda key, form, q, api: events.gather(key, form),
    "spoken": lambda key, form, q, api: events.spoken(key, form),
    "dial": lambda key, form, q, api: events.dial(key, form, *_leg(q)),
    "agent": lambda key, form, q, api: events.agent(key, form, *_leg(q)),
    "whispered": lambda key, form, q, api: events.whispered(key, form, *_leg(q)),
    "recording": lambda key, form, q, api: events.recording(key, form, api),
}


class TwilioProvider(Provider):
    """A Twilio number: its webhooks verified with the SDK's RequestValidator."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings, commands: TwilioCommands, renderer: TwimlRenderer,
                 store: CallStore) -> None:
        self.settings = settings
        self.commands = commands
        self.renderer = renderer
        self._store = store  # a resent stop finds the name of what it stops in the call's outbox
        self._validator = RequestValidator(settings.auth_token)

    def owns(self, call_control_id: str) -> bool:
        """Twilio Call SIDs: CA followed by 32 hex digits."""
        return bool(events.CALL_SID.match(call_control_id))

    def verify(self, request: WebhookRequest) -> None:
        """Check X-Twilio-Signature over the public URL and the form (HMAC-SHA1, the Auth Token)."""
        signature = next((v for k, v in request.headers.items() if k.lower() == SIGNATURE_HEADER.lower()), "")
        if not signature:
            raise SignatureError("missing X-Twilio-Signature header")
        algorithm = get_signature_algorithm(next(
            (v for k, v in request.headers.items() if k.lower() == SIGNATURE_SETTINGS_HEADER.lower()), ""))
        if algorithm != HMAC_SHA1:
            # Twilio's Webhooks shared keys sign with another secret and algorithm: name that, not
            # the Auth Token, or the operator checks the wrong setting.
            raise SignatureError(f"signed with a Twilio Webhooks shared key ({algorithm[:40]!r}), which "
                                 "Lifeline cannot check yet: have the account sign with its Auth Token")
        if not self._validator.validate(request.url, request.form, signature):
            raise SignatureError("X-Twilio-Signature does not match: check TWILIO_AUTH_TOKEN, and that "
                                 "LIFELINE_PUBLIC_URL is the URL Twilio requests (behind a proxy, "
                                 "the public one)")

    def parse(self, request: WebhookRequest) -> list[CallEvent]:
        """The request's events; the endpoint (last path segment) says what it is."""
        parts = urlsplit(request.url)
        kind = parts.path.rstrip("/").rpartition("/")[2]
        parser = PARSERS.get(kind)
        if parser is None:
            raise MalformedEvent(f"/webhooks/twilio/{kind} carries no call events")
        key = events.event_key(request.url, request.form)
        return parser(key, request.form, parse_qs(parts.query), self.settings.api_base_url)

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """One command through the REST API (the outbox's resend path; never retried after a
        timeout, so `wanted` is not needed)."""
        return self.send_batch([command])

    def send_batch(self, commands: Sequence[Command]) -> SendOutcome:
        """The commands one unit of work queued for one call, as one REST request. A stop's name
        is read from the call's outbox now, when it is sent: the start it stops was queued, and
        tried, before it on the call's lane."""
        return self.commands.send_batch(commands, stop_name(self._store, commands[0]))

    def parse_media(self, raw: str | bytes) -> MediaFrame:
        """A Media Streams message."""
        return parse_twilio_frame(raw)

    def is_alive(self, call_control_id: str) -> bool | None:
        """Whether Twilio still has the call."""
        return self.commands.is_alive(call_control_id)

    def close(self) -> None:
        """Close the REST session."""
        self.commands.close()
