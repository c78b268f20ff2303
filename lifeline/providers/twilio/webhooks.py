"""Twilio's webhooks: verify, turn into events, run the shared call flow, answer with TwiML.

Every endpoint is a POST, form-encoded, signed by Twilio over the public URL. Those Twilio
waits on for instructions (voice, gather, spoken, dial, resume, recorded, whisper, whispered,
twiml) answer with TwiML; the informational ones (status, agent, recording, transcription, stream)
answer 204.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from twilio.twiml.voice_response import VoiceResponse

from lifeline.insight.base import ListeningEngine
from lifeline.insight.tracks import party_of
from lifeline.ivr.context import command_id_for
from lifeline.ivr.errors import StoreError, error_response
from lifeline.ivr.events import CallEvent
from lifeline.ivr.menu import Menu
from lifeline.ivr.store import CallStatus, CallStore, Command

from ..base import WebhookRequest
from . import events
from .sender import capturing
from .voices import twilio_voice

if TYPE_CHECKING:
    from .wiring import Twilio

log = logging.getLogger(__name__)
bp = Blueprint("twilio_webhooks", __name__)
MAX_COMMANDS = 20  # one unit of work queues a handful of TwiML commands for a call
class CallFlow(Protocol):
    """What Twilio's callbacks ask of the call flow (lifeline.calls.service.CallService)."""

    def handle(self, event: CallEvent) -> str:
        """Process an event once; "handled", "duplicate" or "ignored"."""

    def handle_all(self, events: Sequence[CallEvent]) -> list[str]:
        """Process one request's events in one unit of work."""

    def bridge_asked(self, events: Sequence[CallEvent]) -> bool:
        """Process a whisper's end in one unit of work; whether that unit left its attempt connected."""

    def hear(self, call_control_id: str, engine: str, source_id: str, text: str,
             confidence: float | None, *, party: str = "caller") -> None:
        """A party's line (the caller's, or the agent's after a bridge), once per source id."""

    def stream_lost(self, call_control_id: str, why: str, once: str | None = None) -> None:
        """The call's media stream ended while the call was up; with `once`, the first report only."""

    def message_recorded(self, call_control_id: str) -> None:
        """The caller's message is recorded and the caller may still be on: thank, then hang up."""


class Host(Protocol):
    """The parts of the app (lifeline.factory.Lifeline) Twilio's callbacks use; read-only."""

    @property
    def calls(self) -> CallFlow:
        """The call flow."""

    @property
    def store(self) -> CallStore:
        """The call store."""

    @property
    def engine(self) -> ListeningEngine:
        """How the caller is heard."""

    @property
    def menu(self) -> Menu:
        """The IVR."""


Handler = Callable[["Twilio", Host, WebhookRequest, str], ResponseReturnValue]


def _twiml(document: object) -> Response:
    return Response(str(document), mimetype="text/xml")


def _public_request(twilio: Twilio) -> WebhookRequest:
    """The request as Twilio sent it: the signature covers the public URL, not ours behind a proxy."""
    # A query that is not UTF-8 was refused before any route ran (lifeline/http_errors.py).
    query = request.query_string.decode()
    url = twilio.provider.settings.url(request.path + (f"?{query}" if query else ""))
    return WebhookRequest(url=url, headers=dict(request.headers.items()), body=b"", form=request.form)


@bp.post("/webhooks/twilio/<kind>")
def twilio_webhook(kind: str) -> ResponseReturnValue:
    """One Twilio callback; 403 unsigned or forged (nothing touched), 400 malformed."""
    twilio: Twilio | None = current_app.extensions.get("lifeline_twilio")
    handler = HANDLERS.get(kind)
    if twilio is None or handler is None:
        return error_response(404, f"no Twilio endpoint {kind!r}")
    incoming = _public_request(twilio)
    twilio.provider.verify(incoming)
    return handler(twilio, current_app.extensions["lifeline"], incoming, kind)


def _instructions(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """Run the request's events; the TwiML they queued for this call is the answer."""
    sid = events.call_sid(incoming.form)
    found = twilio.provider.parse(incoming) if kind != "resume" else []
    with capturing(sid) as capture:
        lifeline.calls.handle_all(found)
        if kind == "voice" and _hung_up_already(lifeline, sid):
            # The caller's hangup overtook the voice webhook (Twilio posts the status callback
            # while it waits for our TwiML): it was recorded with no call to close, so close it now.
            lifeline.calls.handle(CallEvent(
                id=f"tw-{sid}:hangup-before-answer", type="call.hangup", occurred_at=None,
                call_control_id=sid, hangup_cause="normal_clearing"))
            found = []
    # The captured commands were recorded sent by their own unit of work: what Twilio will not run
    # (a duplicate's, the answer's after a hangup) is settled all the same.
    commands = capture.commands if found else []
    if not commands:
        # A duplicate, a step that queued nothing, or a race with a REST update: say what the
        # call's state calls for, which never repeats a side effect such as a <Dial>.
        commands = ([_answer(lifeline, sid)] if kind == "voice" else []) + _state(lifeline, sid,
                                                                                  kind == "voice")
    return _twiml(twilio.provider.renderer.render(commands))


def _recorded(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """The caller's message is recorded (by silence, `#` or its longest; a caller who hung up gets
    this too, and Twilio ignores the answer): the goodbye, then the hangup once it has been said,
    as the call flow thanks a Telnyx caller."""
    sid = events.call_sid(incoming.form)
    with capturing(sid) as capture:
        lifeline.calls.message_recorded(sid)
    # Nothing queued: the thanks was queued already (a retry of this request, or the monitor's
    # sweep was first), or the call is no longer in voicemail; the call's state says what holds it.
    commands = capture.commands or _state(lifeline, sid)
    return _twiml(twilio.provider.renderer.render(commands))


def _commands(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """The document of a call update too long to send inline (lifeline/providers/twilio/rest.py): the call's
    commands the signed URL names, in its order, rendered as the update would have carried them."""
    sid = events.call_sid(incoming.form)
    wanted = request.args.get("commands", "").split(",")[:MAX_COMMANDS]
    queued = {e.command.command_id: e.command for e in lifeline.store.outbox(sid)}  # this call's only
    commands = [queued[c] for c in wanted if c in queued]
    return _twiml(twilio.provider.renderer.render(commands or _state(lifeline, sid)))


def _whisper(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """What the agent hears once they answer, before being connected: why the caller is coming
    through; then a request of ours, which only an agent still on the line makes (`_whispered`)."""
    caller = request.args.get("caller", "")
    attempt = request.args.get("attempt", "")
    reason = ""
    for transfer in lifeline.store.transfers(caller) if events.CALL_SID.match(caller) else []:
        if str(transfer.attempt) == attempt:
            reason = transfer.reason
    response = VoiceResponse()
    menu = lifeline.menu  # the agent hears the voice and language the caller heard
    response.say(menu.whisper_for(reason), voice=twilio_voice(menu.voice), language=menu.language)
    done = twilio.provider.renderer.url("whispered", caller=caller, attempt=attempt)
    response.redirect(done, method="POST")
    return _twiml(response)


def _whispered(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """The agent heard the whisper: the bridge is recorded, and the empty document that ends the
    whisper lets Twilio connect them; an agent nobody waits for any more is let go instead. The
    answer is what the unit of work decided, as it committed, not a read made after it."""
    found = twilio.provider.parse(incoming)
    try:
        with capturing(None):
            connected = lifeline.calls.bridge_asked(found)
    except StoreError as exc:
        # Nothing was recorded (or the commit's fate is unknown): connecting the two now would
        # join an agent no record holds, and the Dial's end would then read as an agent who never
        # took the call. Let them go: Twilio then ends the Dial with DialBridged=false, which
        # moves the caller on whether or not the bridge was stored (lifeline/providers/twilio/events.dial).
        log.error("agent of %s let go: the bridge could not be recorded (%s)",
                  request.args.get("caller", "")[:40], " ".join(str(exc).split())[:200])
        connected = False
    response = VoiceResponse()
    if not connected:
        response.hangup()
    return _twiml(response)


def _informational(twilio: Twilio, lifeline: Host, incoming: WebhookRequest,
                   kind: str) -> ResponseReturnValue:
    """Status, agent-leg and recording callbacks: run their events; Twilio wants no TwiML."""
    with capturing(None):
        lifeline.calls.handle_all(twilio.provider.parse(incoming))
    return "", 204


def _transcription(twilio: Twilio, lifeline: Host, incoming: WebhookRequest,
                   kind: str) -> ResponseReturnValue:
    """Twilio real-time transcription: each final utterance is a message of the caller (the
    inbound track) or, after a bridge, of the agent (outbound); an error means the call is no
    longer heard, which the call flow must know (rules that need words stop)."""
    form = incoming.form
    if form.get("TranscriptionEvent") == "transcription-error":
        sid = events.call_sid(form)
        report_stream_lost(lifeline, sid, form.get("TranscriptionSid") or "transcription",
                           form.get("TranscriptionError") or form.get("ErrorMessage")
                           or "transcription-error")
        return "", 204
    heard = events.transcription(form)
    if heard is not None:
        sid, result, track = heard
        if result.is_final and track in (None, "inbound_track", "outbound_track") and result.text.strip():
            # The transcription's own ids make the message id: a redelivery is stored once.
            source_id = (f"twilio:{incoming.form.get('TranscriptionSid', '')}:"
                         f"{incoming.form.get('SequenceId', '')}")
            lifeline.calls.hear(sid, lifeline.engine.name, source_id, result.text, result.confidence,
                                party=party_of((track or "inbound_track").removesuffix("_track")))
    return "", 204


def _stream(twilio: Twilio, lifeline: Host, incoming: WebhookRequest, kind: str) -> ResponseReturnValue:
    """A media stream's status: a failed stream is restarted once, then listening is lost."""
    sid = events.call_sid(incoming.form)
    if incoming.form.get("StreamEvent") == "stream-error":
        report_stream_lost(lifeline, sid, incoming.form.get("StreamSid") or "",
                           incoming.form.get("StreamError") or "stream-error")
    return "", 204


def _hung_up_already(lifeline: Host, sid: str) -> bool:
    return any(e["event_type"] == "call.hangup" and not e["id"].endswith(":hangup-before-answer")
               for e in lifeline.store.events(sid))


def report_stream_lost(lifeline: Host, sid: str, stream_sid: str, why: str) -> None:
    """Tell the call flow once per stream, whether the socket or the status callback noticed."""
    lifeline.calls.stream_lost(sid, why[:200], once=f"stream-lost:{stream_sid[:60]}")


def _command(sid: str, name: str, **params: object) -> Command:
    return Command(command_id_for(sid, f"twiml:{name}"), sid, name, dict(params))


def _answer(lifeline: Host, sid: str) -> Command:
    """The call's answer as queued, if it was: what it starts keeps the name a stop will look for."""
    queued = next((e.command for e in lifeline.store.outbox(sid) if e.command.name == "answer"), None)
    return queued or _command(sid, "answer", **lifeline.engine.answer_options(sid))


def _state(lifeline: Host, sid: str, greet: bool = False) -> list[Command]:
    """What holds the call in its current state without repeating anything it did."""
    call = lifeline.store.get_call(sid)
    menu = lifeline.menu
    if call is None or call.status in (CallStatus.ENDED, CallStatus.TRANSFERRED):
        # Twilio asks about a transferred call only once its <Dial> is over: the agent hung up.
        return [_command(sid, "hangup")]
    if call.status == CallStatus.MENU and call.menu is not None and menu.has(call.menu):
        lead_in = menu.greeting if greet and call.menu == menu.start else None
        # An id of its own each time: its action URL names it (`step=`), and two such menus answered
        # with the same key must stay two requests (Twilio's are told apart by what they sign).
        gather_id = command_id_for(sid, f"twiml:gather_using_speak:{uuid.uuid4()}")
        return [Command(gather_id, sid, "gather_using_speak", menu.gather(call.menu, lead_in=lead_in))]
    if call.status == CallStatus.ENDING:
        return [_command(sid, "speak", **menu.speak(menu.goodbye)), _command(sid, "hangup")]
    return []  # answering, transferring, voicemail: hold until Twilio or we move on


HANDLERS: dict[str, Handler] = {
    **{kind: _instructions for kind in ("voice", "gather", "spoken", "dial", "resume")},
    "recorded": _recorded, "whisper": _whisper, "whispered": _whispered, "twiml": _commands,
    **{kind: _informational for kind in ("status", "agent", "recording")},
    "transcription": _transcription, "stream": _stream,
}
