"""The WebSocket Twilio Media Streams sends a call's audio to (local engine).

The per-call token travels in the path (Twilio does not pass query strings on to the stream)
and is checked before the handshake, as for Telnyx (lifeline/insight/media.py: valid, unused, its call
live); the `start` message must name the call the token was issued for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, request
from flask.typing import ResponseReturnValue

from lifeline.insight.media import (
    FrameParser,
    MediaSession,
    MediaStreams,
    Opener,
    admit_request,
    serve_blocking,
    sock,
)

from .frames import parse_twilio_frame
from .webhooks import Host, report_stream_lost

log = logging.getLogger(__name__)
bp = Blueprint("twilio_media", __name__)
PREFIX = "/media/twilio/"


def twilio_opener(streams: MediaStreams, lifeline: Host, parse: FrameParser = parse_twilio_frame) -> Opener:
    """Twilio streams to /media/twilio/<token>."""
    def open_twilio(path: str, args: Mapping[str, str]) -> MediaSession | None:
        token = path[len(PREFIX):] if path.startswith(PREFIX) else ""
        if not token or "/" in token:
            return None
        ticket = streams.admit(token)
        sid = ticket.call_control_id
        return MediaSession(streams.engine, sid, parse,
                            lambda stream_sid, why: report_stream_lost(lifeline, sid, stream_sid, why),
                            expires_at=ticket.expires_at)
    return open_twilio


def install(app: Flask, lifeline: Host, parse: FrameParser = parse_twilio_frame) -> None:
    """Serve Twilio's media socket when the local engine listens; `parse` is the provider's parse_media."""
    streams = app.extensions.get("media_streams")
    if isinstance(streams, MediaStreams):
        streams.openers.append(twilio_opener(streams, lifeline, parse))
    app.register_blueprint(bp)


@bp.before_request
def check_token() -> ResponseReturnValue | None:
    """Refuse the upgrade unless the path carries a valid, unused token of a live call."""
    return admit_request(request.path)


@sock.route("/media/twilio/<token>", bp=bp)  # type: ignore[untyped-decorator]  # flask-sock has no types
def twilio_media_stream(ws: Any, token: str) -> None:
    """Receive Media Streams messages until `stop` or the socket closes."""
    serve_blocking(ws)
