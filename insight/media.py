"""The media WebSocket Telnyx streams a call's audio to (local engine only).

The per-call token is checked before the WebSocket handshake: a request without a valid,
unexpired token gets 403 and no frame is ever read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, g, request
from flask.typing import ResponseReturnValue
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ivr.errors import error_response
from ivr.scope import call_scope

from .codecs import codec_for
from .frames import MalformedFrame, MediaFrame, parse_frame
from .local import CallListener, LocalEngine
from .tracks import AGENT_STREAM_SUFFIX

log = logging.getLogger(__name__)
bp = Blueprint("media", __name__)
sock = Sock()
IDLE_TIMEOUT_S = 60.0


@dataclass
class MediaSession:
    """One WebSocket connection's state."""

    engine: LocalEngine
    call_control_id: str
    listener: CallListener | None = None
    agent: CallListener | None = None  # the outbound track (the agent once bridged), from its first frame
    stopped: bool = False
    malformed: int = 0


def on_start(session: MediaSession, frame: MediaFrame) -> None:
    """The stream starts: its codec decides how audio is decoded."""
    if codec_for(frame.encoding, frame.sample_rate) is None:
        why = (f"stream codec {frame.encoding} at {frame.sample_rate} Hz cannot be decoded "
               "(Lifeline decodes PCMU, PCMA, G722 and L16)")
        log.error("stream of %s: %s", session.call_control_id, why)
        # Stop reading and say why: the call's listening restarts once (asking for PCMU again),
        # then is marked lost with this reason.
        session.stopped = True
        current_app.extensions["lifeline"].calls.stream_lost(session.call_control_id, why)
        return
    session.listener = session.engine.open(session.call_control_id, frame.stream_id or "stream",
                                           frame.encoding or "PCMU", int(frame.sample_rate or 8000))


def on_media(session: MediaSession, frame: MediaFrame) -> None:
    """Caller audio (inbound track) and, after a bridge, the agent's (outbound track)."""
    listener = session.listener
    if listener is None:
        return
    if frame.track in (None, "inbound"):
        listener.audio(frame.chunk, frame.payload)
    elif frame.track == "outbound":
        if session.agent is None:
            session.agent = session.engine.open(
                session.call_control_id, f"{listener.stream_id}{AGENT_STREAM_SUFFIX}", listener.encoding)
        session.agent.audio(frame.chunk, frame.payload)


def on_stop(session: MediaSession, frame: MediaFrame) -> None:
    """Telnyx ended the stream on purpose (call over or streaming_stop)."""
    session.stopped = True


def on_other(session: MediaSession, frame: MediaFrame) -> None:
    """connected, dtmf (the IVR gets digits by webhook), mark, and events Telnyx may add later."""
    return None


MEDIA_HANDLERS: dict[str, Callable[[MediaSession, MediaFrame], None]] = {
    "start": on_start, "media": on_media, "stop": on_stop,
}


@bp.before_request
def check_token() -> ResponseReturnValue | None:
    """Refuse the upgrade unless the URL carries this call's valid token."""
    engine = current_app.extensions["lifeline"].engine
    if not isinstance(engine, LocalEngine):
        return error_response(404, "media streaming is only used with LIFELINE_ENGINE=local")
    call_control_id = engine.tokens.verify(request.args.get("token", ""), engine.token_max_age_s)
    if call_control_id is None:
        log.warning("media stream refused: missing, forged or expired token")
        return error_response(403, "media stream token is missing, forged or expired")
    g.media_call = call_control_id
    return None


@sock.route("/media/telnyx", bp=bp)  # type: ignore[untyped-decorator]  # flask-sock has no types
def media_stream(ws: Any) -> None:
    """Receive frames until `stop` or the socket closes; never blocks on speech recognition."""
    lifeline = current_app.extensions["lifeline"]
    session = MediaSession(engine=lifeline.engine, call_control_id=g.media_call)
    with call_scope(session.call_control_id):
        _receive(ws, lifeline, session)


def _receive(ws, lifeline, session: MediaSession) -> None:  # type: ignore[no-untyped-def]
    try:
        while not session.stopped:
            raw = ws.receive(timeout=IDLE_TIMEOUT_S)
            if raw is None:
                break  # no frame for a minute: Telnyx sends 50 a second while a call is up
            try:
                frame = parse_frame(raw)
            except MalformedFrame as exc:
                session.malformed += 1
                if session.malformed == 1:
                    log.warning("bad media frame on %s: %s", session.call_control_id, exc)
                continue
            MEDIA_HANDLERS.get(frame.event, on_other)(session, frame)
    except ConnectionClosed:
        pass
    finally:
        if session.listener is not None:
            session.listener.close()
        if session.agent is not None:
            session.agent.close()
        if not session.stopped:
            lifeline.calls.stream_lost(session.call_control_id, "media socket closed without stop")
