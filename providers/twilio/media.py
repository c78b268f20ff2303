"""The WebSocket Twilio Media Streams sends a call's audio to (local engine).

The per-call token travels in the path (Twilio does not pass query strings on to the stream)
and is checked before the handshake: no valid token, no frame read. The `start` message must
name the call the token was issued for.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g
from flask.typing import ResponseReturnValue
from simple_websocket import ConnectionClosed

from insight.frames import MalformedFrame
from insight.local import LocalEngine
from insight.media import IDLE_TIMEOUT_S, MEDIA_HANDLERS, MediaSession, on_other, sock
from ivr.errors import error_response

from .frames import parse_twilio_frame
from .webhooks import report_stream_lost

log = logging.getLogger(__name__)
bp = Blueprint("twilio_media", __name__)


@bp.before_request
def check_token() -> ResponseReturnValue | None:
    """Refuse the upgrade unless the path carries this call's valid token."""
    from flask import request

    engine = current_app.extensions["lifeline"].engine
    if not isinstance(engine, LocalEngine):
        return error_response(404, "media streaming is only used with LIFELINE_ENGINE=local")
    token = (request.view_args or {}).get("token", "")
    call_sid = engine.tokens.verify(str(token), engine.token_max_age_s)
    if call_sid is None:
        log.warning("Twilio media stream refused: missing, forged or expired token")
        return error_response(403, "media stream token is missing, forged or expired")
    g.media_call = call_sid
    return None


@sock.route("/media/twilio/<token>", bp=bp)  # type: ignore[untyped-decorator]  # flask-sock has no types
def twilio_media_stream(ws, token: str) -> None:  # type: ignore[no-untyped-def]
    """Receive Media Streams messages until `stop` or the socket closes."""
    lifeline = current_app.extensions["lifeline"]
    session = MediaSession(engine=lifeline.engine, call_control_id=g.media_call)
    stream_sid = ""
    try:
        while not session.stopped:
            raw = ws.receive(timeout=IDLE_TIMEOUT_S)
            if raw is None:
                break  # a minute without a message: Twilio sends 50 a second while the call is up
            try:
                frame = parse_twilio_frame(raw)
            except MalformedFrame as exc:
                session.malformed += 1
                if session.malformed == 1:
                    log.warning("bad Media Streams message on %s: %s", session.call_control_id, exc)
                continue
            if frame.event == "start":
                if frame.call_control_id != session.call_control_id:
                    log.warning("stream for %s claims call %s; closed", session.call_control_id,
                                frame.call_control_id)
                    session.stopped = True
                    break
                stream_sid = frame.stream_id or ""
            MEDIA_HANDLERS.get(frame.event, on_other)(session, frame)
    except ConnectionClosed:
        pass
    finally:
        if session.listener is not None:
            session.listener.close()
        if not session.stopped:
            report_stream_lost(lifeline, session.call_control_id, stream_sid or "socket",
                               "media socket closed without stop")
