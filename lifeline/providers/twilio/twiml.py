"""Lifeline's queued commands expressed as TwiML, built with the SDK's VoiceResponse.

The call flow queues the same commands for every provider (answer, gather_using_speak, speak,
transfer, hangup, record_start). Twilio takes them as one TwiML document: in the response to
the webhook being handled, or through a REST update when they arise elsewhere (speech heard on
the media socket, the monitor). A document must always end in something that keeps the call in
our hands, because Twilio hangs up when TwiML runs out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from twilio.twiml.voice_response import VoiceResponse

from lifeline.ivr.events import decode_client_state
from lifeline.ivr.store import Command

from .listening import start_name, started_by, stream_track, transcription_track
from .settings import TwilioSettings
from .voices import twilio_voice

# Commands that are TwiML verbs: on a Twilio call they leave as one document per unit of work.
TWIML_COMMANDS = frozenset({"answer", "gather_using_speak", "speak", "transfer", "hangup",
                            "record_start"})
# Verbs after which Twilio comes back to us (or ends the call) instead of running out of TwiML.
_HOLDING_VERBS = ("Gather", "Dial", "Record", "Hangup", "Redirect")
HOLD_S = 5
# A message ends after this many seconds of silence. Twilio's default, 5, cuts off a caller who
# pauses to think or to find a number; a caller done and waiting hears the goodbye 10 s later.
RECORD_SILENCE_S = 10
# Only `#` ends a message early. Twilio's default is any key, so a caller keying in a number while
# they speak would end it; `#` is the key callers know as "done" (the prompt need not mention it).
RECORD_FINISH_KEY = "#"
REASON_CHARS = 120


def stream_token(stream_url: str) -> str:
    """The per-call token the listening engine put in its media URL."""
    values = parse_qs(urlsplit(stream_url).query).get("token") or [""]
    return values[0]


class TwimlRenderer:
    """Turns a unit of work's commands for one call into a TwiML document."""

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings

    def url(self, path: str, **query: object) -> str:
        """A public callback URL of ours (what Twilio requests and signs)."""
        suffix = f"?{urlencode({k: v for k, v in query.items() if v is not None})}" if query else ""
        return self._settings.url(f"/webhooks/twilio/{path}{suffix}")

    def media_url(self, stream_url: str) -> str:
        """Where Twilio streams audio: the token travels in the path (Twilio drops query strings)."""
        return f"{self._settings.media_url}/media/twilio/{stream_token(stream_url)}"

    def render(self, commands: Sequence[Command]) -> VoiceResponse:
        """One document for the commands, in order, ending in a verb that keeps the call."""
        response = VoiceResponse()
        for command in commands:
            _VERBS[command.name](self, response, command)
        last = _last_verb(response)
        if last == "Say":
            # Named after the speak: a call's `spoken` requests differ in nothing else, and Twilio's
            # requests are told apart by what they sign (lifeline/providers/twilio/events.event_key).
            said = [c for c in commands if c.name == "speak"][-1]
            response.redirect(self.url("spoken", step=said.command_id), method="POST")
        elif last not in _HOLDING_VERBS:
            self.hold(response)
        return response

    def hold(self, response: VoiceResponse | None = None) -> VoiceResponse:
        """Silence, then ask us again what the call should do (a REST update may come first)."""
        response = response if response is not None else VoiceResponse()
        response.pause(length=HOLD_S)
        response.redirect(self.url("resume"), method="POST")
        return response

    # ----- one function per command -----------------------------------------------------------

    def _answer(self, response: VoiceResponse, command: Command) -> None:
        # Named after the answer, so a later stop can name it (lifeline/providers/twilio/listening.py).
        params = command.params
        kind = started_by(command)
        if kind == "stream":
            start = response.start()
            start.stream(name=start_name(command), url=self.media_url(params["stream_url"]),
                         track=stream_track(params), status_callback=self.url("stream"),
                         status_callback_method="POST")
        elif kind == "transcription":
            config = params.get("transcription_config") or {}
            start = response.start()
            start.transcription(name=start_name(command), status_callback_url=self.url("transcription"),
                                status_callback_method="POST", track=transcription_track(config),
                                partial_results=False, language_code=self._settings.transcription_language)

    def _gather(self, response: VoiceResponse, command: Command) -> None:
        params = command.params
        # `#` ends a Gather by default and is left out of Digits: when the menu has `#` as a key
        # (Telnyx's terminating_digit ""), no key may finish it.
        finish = {"finish_on_key": ""} if params.get("terminating_digit") == "" else {}
        gather = response.gather(
            input="dtmf", num_digits=int(params.get("maximum_digits") or 1),
            timeout=max(1, math.ceil(int(params.get("timeout_millis") or 8000) / 1000)),
            action=self.url("gather", step=command.command_id), method="POST",
            action_on_empty_result=True, **finish)
        gather.say(params["payload"], voice=twilio_voice(params.get("voice")),
                   language=params.get("language"))

    def _speak(self, response: VoiceResponse, command: Command) -> None:
        params = command.params
        response.say(params["payload"], voice=twilio_voice(params.get("voice")),
                     language=params.get("language"))

    def _transfer(self, response: VoiceResponse, command: Command) -> None:
        params = command.params
        state = decode_client_state(params.get("client_state")) or {}
        target = decode_client_state(params.get("target_leg_client_state")) or {}
        caller, attempt = command.call_control_id, int(target.get("attempt") or state.get("attempt") or 1)
        reason = str(state.get("reason") or "")[:REASON_CHARS]
        rule = str(state.get("rule") or "")
        dial = response.dial(action=self.url("dial", caller=caller, attempt=attempt), method="POST",
                             timeout=int(params.get("timeout_secs") or 30),
                             caller_id=params.get("from_"))
        to = str(params["to"])
        callbacks: dict[str, Any] = {
            "status_callback": self.url("agent", caller=caller, attempt=attempt),
            "status_callback_event": "initiated ringing answered completed",
            "status_callback_method": "POST",
            # The agent hears why before being connected, read from the store: the reason is what a
            # caller said, so it stays out of URLs (Twilio's call logs, proxies' access logs).
            "url": self.url("whisper", caller=caller, attempt=attempt),
            "method": "POST",
        }
        if to.startswith(("sip:", "sips:")):
            headers = urlencode({"X-Lifeline-Reason": reason, "X-Lifeline-Rule": rule},
                                quote_via=quote)
            dial.sip(f"{to}{'&' if '?' in to else '?'}{headers}", **callbacks)
        else:
            dial.number(to, **callbacks)

    def _hangup(self, response: VoiceResponse, command: Command) -> None:
        response.hangup()

    def _record(self, response: VoiceResponse, command: Command) -> None:
        params = command.params
        response.record(max_length=int(params.get("max_length") or 120),
                        play_beep=bool(params.get("play_beep", True)),
                        timeout=RECORD_SILENCE_S, finish_on_key=RECORD_FINISH_KEY,
                        action=self.url("recorded"), method="POST",
                        recording_status_callback=self.url("recording"),
                        recording_status_callback_method="POST",
                        recording_status_callback_event="completed")
        # An empty recording (the caller said nothing) requests no action: Twilio goes on with the
        # next verb, and with none it would hang up without a word. This one leads to the goodbye.
        response.redirect(self.url("recorded"), method="POST")


_VERBS = {"answer": TwimlRenderer._answer, "gather_using_speak": TwimlRenderer._gather,
          "speak": TwimlRenderer._speak, "transfer": TwimlRenderer._transfer,
          "hangup": TwimlRenderer._hangup, "record_start": TwimlRenderer._record}


def _last_verb(response: VoiceResponse) -> str | None:
    verbs = [v for v in response.verbs if v.name != "Start"]
    return verbs[-1].name if verbs else None

