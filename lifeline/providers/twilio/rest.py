"""Twilio's REST API through the official SDK: call updates, streams and transcriptions.

Twilio's call update has no idempotency key, so a retry is only made when the request surely
did not act (no connection, 429, 503); a timeout after sending is reported as sent rather than
risking a second `<Dial>`. Error 21220 (the call is not in progress) is the normal race with a
caller who hung up. A stream or transcription is started with a name and stopped by it
(lifeline/providers/twilio/listening.py); stopping one Twilio does not know (20404: it ended with its
socket or its call) is done, not an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import requests
import urllib3
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from lifeline.ivr.backoff import command_backoff_s
from lifeline.ivr.store import Command, CommandStatus
from lifeline.ivr.telnyx_api import SendOutcome

from .listening import STOPS, start_name, stream_track, transcription_track
from .settings import TwilioSettings
from .twiml import TWIML_COMMANDS, TwimlRenderer

log = logging.getLogger(__name__)
CALL_NOT_IN_PROGRESS = 21220
NOT_FOUND = 20404
# The most inline TwiML a call update may carry (error 32018 above it); a document Twilio fetches
# from a URL may be up to 64 kB (error 11750), and every document of ours is far below that.
INLINE_TWIML_CHARS = 4000
_NOT_APPLIED_STATUS = {429, 503}  # Twilio refused before acting: safe to send again


def _never_reached(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the request surely never reached Twilio (no connection was made), so a retry is safe."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps what happened
    return isinstance(cause, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


class TwilioCommands:
    """Sends a call's commands to Twilio; one logical command, however many HTTP attempts."""

    def __init__(self, settings: TwilioSettings, renderer: TwimlRenderer, timeout_s: float,
                 attempts: int, sleep: Callable[[float], None] = time.sleep, connections: int = 16) -> None:
        # The SDK logs every request body at INFO; TwiML holds the caller's transfer reason.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        http = TwilioHttpClient(timeout=timeout_s)
        if http.session is not None:
            # One kept connection per sending thread: the SDK's pool (CPUs + 4, or requests' 10)
            # is smaller than LIFELINE_COMMAND_WORKERS, and urllib3 then warns and reconnects.
            for scheme in ("https://", "http://"):
                http.session.mount(scheme, HTTPAdapter(pool_maxsize=connections))
        self._client = Client(settings.account_sid, settings.auth_token, http_client=http)
        self._client.api.base_url = settings.api_base_url
        self._renderer = renderer
        self._language = settings.transcription_language
        self._attempts = attempts
        self._sleep = sleep

    def send(self, command: Command, stop_name: str | None = None) -> SendOutcome:
        """Send one command (the outbox's resend path); `stop_name` as for send_batch."""
        return self.send_batch([command], stop_name)

    def send_batch(self, commands: Sequence[Command], stop_name: str | None = None) -> SendOutcome:
        """Send the commands one unit of work queued for one call, as one request.

        A stop (alone in its batch) stops the stream or transcription named `stop_name`
        (listening.name_to_stop); None means Lifeline started none on the call, so it is done.
        """
        first = commands[0]
        sid = first.call_control_id
        call = self._client.calls(sid)
        twiml = [c for c in commands if c.name in TWIML_COMMANDS]
        if twiml and [c.name for c in twiml] == ["hangup"]:
            def action() -> object:
                return call.update(status="completed")
        elif twiml:
            document = str(self._renderer.render(twiml))
            if len(document) > INLINE_TWIML_CHARS:
                # Long prompts (a menu may say 3,000 characters, and a unit may queue a lead-in with
                # it): Twilio fetches the same document from us, rendered from the outbox rows.
                url = self._renderer.url("twiml", commands=",".join(c.command_id for c in twiml))

                def action() -> object:
                    return call.update(url=url, method="POST")
            else:
                def action() -> object:
                    return call.update(twiml=document)
        elif first.name == "streaming_start":
            url = self._renderer.media_url(str(first.params.get("stream_url", "")))
            name, track = start_name(first), stream_track(first.params)

            def action() -> object:
                return call.streams.create(url=url, name=name, track=track,
                                           status_callback=self._renderer.url("stream"),
                                           status_callback_method="POST")
        elif first.name == "transcription_start":
            name, track = start_name(first), transcription_track(first.params)

            def action() -> object:
                return call.transcriptions.create(
                    name=name, status_callback_url=self._renderer.url("transcription"),
                    status_callback_method="POST", track=track, partial_results=False,
                    language_code=self._language)
        elif first.name in STOPS:
            return self._stop(first, stop_name)
        else:
            return SendOutcome(CommandStatus.REJECTED, 0, f"{first.name} has no Twilio form")
        return self._attempt(action, sid, "+".join(c.name for c in commands))

    def _stop(self, command: Command, name: str | None) -> SendOutcome:
        """Stop the named stream or transcription; one Twilio does not know is stopped already."""
        sid = command.call_control_id
        if name is None:
            log.info("%s on %s: Lifeline started nothing to stop", command.name, sid)
            return SendOutcome(CommandStatus.SENT, 0, "nothing to stop: Lifeline started none on this call")
        call = self._client.calls(sid)
        target = call.streams(name) if STOPS[command.name] == "stream" else call.transcriptions(name)
        return self._attempt(lambda: target.update(status="stopped"), sid, f"{command.name} {name}",
                             stop=True)

    def _attempt(self, action: Callable[[], object], sid: str, what: str,
                 stop: bool = False) -> SendOutcome:
        """Act, retrying only what surely did not reach Twilio, or, for a `stop` (harmless twice),
        whatever Twilio did not answer."""
        error = ""
        for attempt in range(1, self._attempts + 1):
            try:
                action()
                return SendOutcome(CommandStatus.SENT, attempt)
            except TwilioRestException as exc:
                if exc.code == NOT_FOUND and stop:
                    # What a stop names is gone (it ended with its socket, or with the call): the
                    # stop is done. As CALL_ENDED it would close a call that may well go on.
                    # A warning all the same: a stream started by a release before names were
                    # given (a call answered before an upgrade) is not found either, and runs on.
                    log.warning("%s on %s: Twilio has nothing running under that name; taken as "
                                "already stopped (a call answered before an upgrade to named streams "
                                "keeps its stream until it ends)", what, sid)
                    return SendOutcome(CommandStatus.SENT, attempt, "not found: already stopped")
                if exc.code in (CALL_NOT_IN_PROGRESS, NOT_FOUND):
                    log.debug("%s on %s: call no longer in progress", what, sid)
                    return SendOutcome(CommandStatus.CALL_ENDED, attempt)
                error = f"HTTP {exc.status} {exc.code or ''} {exc.msg}".strip()
                if exc.status not in _NOT_APPLIED_STATUS and not (stop and exc.status >= 500):
                    log.error("Twilio refused %s on %s: %s", what, sid, error)
                    return SendOutcome(CommandStatus.REJECTED if exc.status < 500
                                       else CommandStatus.SENT, attempt, error)
            except requests.exceptions.ConnectionError as exc:
                if not _never_reached(exc) and not stop:
                    # The connection dropped after the request went out: Twilio may have acted on
                    # it, and a second update could dial twice. As a timeout: not repeated.
                    log.warning("%s on %s: the connection dropped before Twilio answered; not repeated",
                                what, sid)
                    return SendOutcome(CommandStatus.SENT, attempt, "connection dropped; not repeated")
                error = f"no connection to Twilio: {exc.__class__.__name__}"
            except requests.exceptions.Timeout:
                if not stop:
                    # Sent, but no answer: Twilio may have acted; a second update could dial twice.
                    log.warning("%s on %s: Twilio did not answer in time; not repeated", what, sid)
                    return SendOutcome(CommandStatus.SENT, attempt, "timeout; not repeated")
                error = "Twilio did not answer in time"
            log.warning("%s on %s failed (attempt %d/%d): %s", what, sid, attempt, self._attempts,
                        error)
            if attempt < self._attempts:
                self._sleep(command_backoff_s(attempt))
        return SendOutcome(CommandStatus.PENDING, self._attempts, error)

    def is_alive(self, sid: str) -> bool | None:
        """Whether Twilio still has the call in progress (or ringing); None when it could not say."""
        try:
            status = self._client.calls(sid).fetch().status
        except TwilioRestException as exc:
            return False if exc.status == 404 else None
        except requests.exceptions.RequestException as exc:
            log.warning("status of %s unknown: %s", sid, exc.__class__.__name__)
            return None
        return str(status) in ("queued", "ringing", "in-progress")

    def close(self) -> None:
        """Close the HTTP session."""
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()
