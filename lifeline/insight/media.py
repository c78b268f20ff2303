"""Media WebSockets (local engine only): who may open one, what a stream does, when it is closed.

A socket opens only with a valid token: signed, issued for its call at most TOKEN_MAX_AGE_S ago,
never used before (a claim in the store, so across workers and instances too), and its call
still live. Each open stream is watched: it is closed when its token's life
(LIFELINE_MEDIA_STREAM_LIFE_S) ends, or after IDLE_TIMEOUT_S without a frame, and when its call
ends once the frames sent before the hangup have been heard (CALL_END_GRACE_S at most). A frame larger
than MAX_FRAME_BYTES closes the socket before it is read in full.

How a socket is served is up to the server: the Flask route below (flask-sock; `flask run`, the
simulator) or lifeline/server.py (gunicorn's asyncio worker, where a socket holds no thread).
Both drive one `MediaSession` with the raw frames they receive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, g, request
from flask.typing import ResponseReturnValue
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from lifeline.ivr.errors import LifelineError, error_response
from lifeline.ivr.scope import call_scope
from lifeline.ivr.store import CallStore

from .codecs import codec_for
from .frames import MAX_FRAME_CHARS, MalformedFrame, MediaFrame, parse_frame
from .local import CallListener, LocalEngine, Ticket
from .tracks import AGENT_STREAM_SUFFIX

log = logging.getLogger(__name__)
bp = Blueprint("media", __name__)
sock = Sock()
IDLE_TIMEOUT_S = 60.0
CHECK_EVERY_S = 1.0  # how often open streams are checked against their call and their token
# The hangup webhook and the media socket are separate connections: when a loaded server learns
# that the call ended, frames the caller sent before hanging up can still be unread. They are the
# caller's last words, so the stream is read on until the provider's `stop`, until it has been
# quiet for DRAINED_AFTER_S, or for at most this long (a stream that never stops still closes).
CALL_END_GRACE_S = 5.0
DRAINED_AFTER_S = CHECK_EVERY_S
MAX_FRAME_BYTES = MAX_FRAME_CHARS  # a larger WebSocket message closes the socket (1009) unread
FrameParser = Callable[[str | bytes], MediaFrame]
LostReport = Callable[[str, str], None]  # (stream id, why): the call flow restarts or gives up


class StreamRefused(LifelineError):
    """A media socket that must not open; `reason` is logged and shown to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MediaSession:
    """One media socket's state; `feed` takes each frame as it arrives."""

    engine: LocalEngine
    call_control_id: str
    parse: FrameParser = parse_frame
    lost: LostReport | None = None
    expires_at: float = float("inf")
    listener: CallListener | None = None
    agent: CallListener | None = None  # the outbound track (the agent once bridged), from its first frame
    stopped: bool = False
    malformed: int = 0
    stream_id: str = ""
    ended: str | None = None  # why Lifeline closed the socket (call over, token life over, idle)
    ended_quietly: bool = False  # the call is over: nothing to restart
    last_frame_at: float = field(default_factory=time.monotonic)
    close_at: float = float("inf")  # once ended: frames are still heard until then (or until quiet)
    ended_at: float = float("inf")

    def feed(self, raw: str | bytes) -> bool:
        """Handle one frame; False once the stream is over (stop, or a frame for another call)."""
        self.last_frame_at = time.monotonic()
        try:
            frame = self.parse(raw)
        except MalformedFrame as exc:
            self.malformed += 1
            if self.malformed == 1:
                log.warning("bad media frame on %s: %s", self.call_control_id, exc)
            return True
        if frame.event == "start":
            if frame.call_control_id and frame.call_control_id != self.call_control_id:
                log.warning("stream for %s claims call %s; closed", self.call_control_id,
                            frame.call_control_id)
                self.stopped = True
                return False
            self.stream_id = frame.stream_id or ""
        MEDIA_HANDLERS.get(frame.event, on_other)(self, frame)
        return not self.stopped

    def end(self, why: str, quietly: bool = False, grace_s: float = 0.0) -> None:
        """Lifeline closes this socket: at once, or after reading on for up to `grace_s`."""
        if self.ended is None:
            now = time.monotonic()
            self.ended_at, self.close_at = now, now + grace_s  # before `ended`: readers check it first
            self.ended, self.ended_quietly = why, quietly

    @property
    def hearing(self) -> bool:
        """False once Lifeline ended the stream and its grace is over: later frames go unheard."""
        return self.ended is None or time.monotonic() < self.close_at

    @property
    def closing(self) -> bool:
        """True once Lifeline ended the stream and its grace is over or nothing more came in it."""
        if self.ended is None:
            return False
        now = time.monotonic()
        # Quiet is counted from the end too: a reader that was behind when the call ended has
        # not been quiet, only late, and its unread frames are what the grace is for.
        return now >= self.close_at or now - max(self.last_frame_at, self.ended_at) >= DRAINED_AFTER_S

    def finish(self) -> None:
        """The socket is closed: flush the listeners; a stream that just vanished is reported lost."""
        if self.listener is not None:
            self.listener.close()
        if self.agent is not None:
            self.agent.close()
        if self.stopped or self.ended_quietly or self.lost is None:
            return
        self.lost(self.stream_id or "socket", self.ended or "media socket closed without stop")


def on_start(session: MediaSession, frame: MediaFrame) -> None:
    """The stream starts: its codec decides how audio is decoded."""
    if codec_for(frame.encoding, frame.sample_rate) is None:
        why = (f"stream codec {frame.encoding} at {frame.sample_rate} Hz cannot be decoded "
               "(Lifeline decodes PCMU, PCMA, G722 and L16)")
        log.error("stream of %s: %s", session.call_control_id, why)
        # Stop reading and say why: the call's listening restarts once (asking for PCMU again),
        # then is marked lost with this reason.
        session.stopped = True
        if session.lost is not None:
            session.lost(frame.stream_id or "socket", why)
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
    """The provider ended the stream on purpose (call over or streaming_stop)."""
    session.stopped = True


def on_other(session: MediaSession, frame: MediaFrame) -> None:
    """connected, dtmf (the IVR gets digits by webhook), mark, and events Telnyx may add later."""
    return None


MEDIA_HANDLERS: dict[str, Callable[[MediaSession, MediaFrame], None]] = {
    "start": on_start, "media": on_media, "stop": on_stop,
}

# Path and query of a media socket -> its session; None when the path is not this opener's.
Opener = Callable[[str, Mapping[str, str]], "MediaSession | None"]


class MediaStreams:
    """Admits media sockets and watches the open ones (one per process, in app.extensions)."""

    def __init__(self, engine: LocalEngine, store: CallStore, check_every_s: float = CHECK_EVERY_S,
                 idle_s: float = IDLE_TIMEOUT_S, call_end_grace_s: float = CALL_END_GRACE_S) -> None:
        self.engine = engine
        self._store = store
        self._check_every_s = check_every_s
        self._idle_s = idle_s
        self.call_end_grace_s = call_end_grace_s
        self._open: dict[int, tuple[MediaSession, Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.openers: list[Opener] = []

    def admit(self, token: str) -> Ticket:
        """What a token grants, once; StreamRefused says why not."""
        ticket = self.engine.tokens.ticket(token, self.engine.token_max_age_s)
        if ticket is None:
            raise StreamRefused("media stream token is missing, forged or expired")
        call = self._store.get_call(ticket.call_control_id)
        if call is None or not call.is_active:
            raise StreamRefused(f"call {ticket.call_control_id} is not live")
        if not self._store.claim(ticket.call_control_id, f"media-stream:{ticket.nonce}"):
            raise StreamRefused("media stream token was already used")
        return ticket

    def open(self, path: str, args: Mapping[str, str]) -> MediaSession | None:
        """The session for a socket at this path (StreamRefused when it may not open), or None."""
        for opener in self.openers:
            session = opener(path, args)
            if session is not None:
                return session
        return None

    def watch(self, session: MediaSession, close: Callable[[], None]) -> None:
        """Check this stream until `forget`; `close` is called (from another thread) to end it."""
        with self._lock:
            self._open[id(session)] = (session, close)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lifeline-media-watch", daemon=True)
                self._thread.start()

    def forget(self, session: MediaSession) -> None:
        """The socket is closed."""
        with self._lock:
            self._open.pop(id(session), None)

    def count(self) -> int:
        """Streams open in this process."""
        with self._lock:
            return len(self._open)

    def close(self) -> None:
        """Stop watching and end the streams still open (the app is closing; the engine is next)."""
        self._stop.set()
        with self._lock:
            still_open = list(self._open.values())
        for session, end in still_open:
            # Quietly: the call is not losing its listener to a fault, so no restart is asked for.
            session.end("Lifeline is closing", quietly=True)
            try:
                end()
            except Exception:  # a socket that is already gone: nothing left to end
                log.debug("a media stream could not be ended at close", exc_info=True)

    def check(self) -> None:
        """End the streams whose call ended, whose token's life ended, or that went idle."""
        with self._lock:
            watched = list(self._open.values())
        if not watched:
            return
        now, clock = time.time(), time.monotonic()
        try:
            ended = self._store.ended_among({s.call_control_id for s, _ in watched})
        except Exception as exc:  # noqa: BLE001 - a database outage must not close live streams
            log.warning("could not check open media streams: %s", exc)
            ended = set()
        for session, close in watched:
            if session.call_control_id in ended:
                session.end("call ended", quietly=True, grace_s=self.call_end_grace_s)
            elif now >= session.expires_at:
                session.end("media stream token's life ended")
            elif clock - session.last_frame_at >= self._idle_s:
                session.end(f"no media frame for {self._idle_s:.0f} s")
            if session.closing:
                log.info("closing media stream of %s: %s", session.call_control_id, session.ended)
                close()

    def _run(self) -> None:
        while not self._stop.wait(self._check_every_s):
            self.check()


def telnyx_opener(streams: MediaStreams, report_lost: Callable[[str, str], None],
                  parse: FrameParser = parse_frame) -> Opener:
    """Telnyx streams to /media/telnyx?token=…; `parse` reads its frames (the provider's parse_media)."""
    def open_telnyx(path: str, args: Mapping[str, str]) -> MediaSession | None:
        if path != "/media/telnyx":
            return None
        ticket = streams.admit(args.get("token", ""))
        ccid = ticket.call_control_id
        return MediaSession(streams.engine, ccid, parse, lambda _stream, why: report_lost(ccid, why),
                            expires_at=ticket.expires_at)
    return open_telnyx


def install(app: Flask, streams: MediaStreams, report_lost: Callable[[str, str], None],
            parse: FrameParser | None = parse_frame) -> None:
    """Serve media sockets from this app (flask-sock) and from lifeline/server.py: Telnyx's with
    `parse` (the provider's parse_media), none of Telnyx's when it is None (Telnyx not configured)."""
    app.extensions["media_streams"] = streams
    if parse is not None:
        streams.openers.append(telnyx_opener(streams, report_lost, parse))
    # simple-websocket closes the socket (1009) once a message passes this size, unread beyond it.
    app.config.setdefault("SOCK_SERVER_OPTIONS", {})["max_message_size"] = MAX_FRAME_BYTES
    app.register_blueprint(bp)


def admit_request(path: str) -> ResponseReturnValue | None:
    """before_request of a media route: refuse the upgrade (403) unless a session may open."""
    streams = current_app.extensions.get("media_streams")
    if not isinstance(streams, MediaStreams):
        return error_response(404, "media streaming is only used with LIFELINE_ENGINE=local")
    args = {**request.args, **{k: str(v) for k, v in (request.view_args or {}).items()}}
    try:
        session = streams.open(path, args)
    except StreamRefused as refused:
        log.warning("media stream refused: %s", refused.reason)
        return error_response(403, refused.reason)
    if session is None:
        return error_response(404, "no media stream here")
    g.media_session = session
    return None


@bp.before_request
def check_token() -> ResponseReturnValue | None:
    """Refuse the upgrade unless the URL carries a valid, unused token of a live call."""
    return admit_request(request.path)


def serve_blocking(ws: Any) -> None:
    """Run the session in g on a flask-sock socket until the stream ends or Lifeline ends it."""
    session: MediaSession = g.media_session
    streams: MediaStreams = current_app.extensions["media_streams"]
    streams.watch(session, lambda: None)  # the loop below sees session.closing within CHECK_EVERY_S
    with call_scope(session.call_control_id):
        try:
            while not session.closing:
                raw = ws.receive(timeout=CHECK_EVERY_S)
                if raw is not None and not session.feed(raw):
                    break
        except ConnectionClosed:
            pass
        finally:
            streams.forget(session)
            if session.ended is not None:
                try:
                    ws.close(reason=1000, message=session.ended[:100])
                except ConnectionClosed:
                    pass
            session.finish()


@sock.route("/media/telnyx", bp=bp)  # type: ignore[untyped-decorator]  # flask-sock has no types
def media_stream(ws: Any) -> None:
    """Receive frames until `stop` or the socket closes; never blocks on speech recognition."""
    serve_blocking(ws)
