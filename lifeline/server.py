"""What each gunicorn worker runs: an asyncio front, so that no socket and no slow client holds a thread.

gunicorn's `asgi` worker reads every connection on one event loop per worker. `Front` is the
ASGI application it serves:

- HTTP: the request line and headers must arrive within LIFELINE_HEADER_TIMEOUT_S (else the
  connection is closed, with 408 if any of them came; `_Protocol`). The request body is read on
  the loop, and must arrive within LIFELINE_BODY_TIMEOUT_S (else 408 and the connection is
  closed); a body past the size limit is refused (413) without being read. Only a complete
  request reaches Flask, on a thread: webhooks (`/webhooks/`) on a pool of their own, everything
  else (API, dashboard, live feed) on another, so neither slow clients nor a crowd of feed
  listeners can delay an acknowledgement.
- WebSocket: the media sockets (lifeline/insight/media.py) are served on the loop itself; an open socket
  costs a coroutine, not a thread. gunicorn closes a socket whose frame announces more than
  `websocket_max_message_size` bytes (gunicorn.conf.py) before reading the frame.

Why not a separate media server or gevent: docs/architecture.md ("Serving").
"""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl

from flask import Flask
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi
from gunicorn.workers.gasgi import ASGIWorker

from lifeline.insight.media import MediaSession, MediaStreams, StreamRefused
from lifeline.ivr.errors import error_body
from lifeline.ivr.sanitize import whole_number
from lifeline.ivr.scope import call_scope

from . import handover

log = logging.getLogger(__name__)
# Connection counts, limits and socket errors, never anything a caller said: its numbers (a limit of
# 1024 files) are not masked in the log as caller digits are (lifeline/ivr/logs.py, UNMASKED_DIGITS).
connections_log = logging.getLogger("lifeline.connections")
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WEBHOOK_PREFIX = "/webhooks/"
# The live feed (Server-Sent Events) holds a thread for as long as a client reads it, so it has a
# pool of its own: open console tabs and feed readers never take the threads that answer the
# health check and the API. Such a thread mostly waits for the next event, so there are many.
FEED_PATH = "/api/events"
FEED_STREAMS = 64
# A streaming response's client that takes no chunk for this long has stopped reading (the live
# feed sends a keep-alive every 15 s, so a reading client is never near it).
STALLED_CLIENT_S = 60.0
# File descriptors a worker keeps for what is not a client connection, out of its open-files limit:
# database connections (up to 30 in SQLAlchemy's pool), outbound clients (Telnyx, Twilio, event
# webhooks, SMTP, S3), model, metric and log files, and a file a request may open (a recording
# served) on each of the front's threads. About 20 are open when idle.
FD_HEADROOM = 256
# accept() errors that mean the process is out of descriptors or memory (those asyncio retries).
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def connection_cap(worker_connections: int, open_files: int | None) -> int:
    """How many connections a worker serves at once: gunicorn's `worker_connections` (which its own
    asyncio worker does not enforce), lowered to leave FD_HEADROOM of the open-files limit free
    (though at least half of the limit goes to connections)."""
    if open_files is None:
        return worker_connections
    return max(1, min(worker_connections, max(open_files - FD_HEADROOM, open_files // 2)))


def _open_files_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


class Front:
    """The ASGI app of a gunicorn worker: buffers requests on the loop, runs Flask on threads."""

    def __init__(self, app: Flask, threads: int) -> None:
        self.app = app
        settings = app.extensions["lifeline"].settings
        self.body_timeout_s: float = settings.body_timeout_s
        self.max_body: int = int(app.config.get("MAX_CONTENT_LENGTH") or 256 * 1024)
        self._webhooks = ThreadPoolExecutor(threads, thread_name_prefix="lifeline-webhook")
        self._others = ThreadPoolExecutor(threads, thread_name_prefix="lifeline-http")
        self._feeds = ThreadPoolExecutor(FEED_STREAMS, thread_name_prefix="lifeline-feed")
        self._media = ThreadPoolExecutor(2, thread_name_prefix="lifeline-media")  # admit, finish: the store
        self._responding: set[threading.Event] = set()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection scope."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    # ----- HTTP ------------------------------------------------------------------------------

    async def _http(self, scope: Message, receive: Receive, send: Send) -> None:
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        gone = threading.Event()  # the client left: a streaming response (the live feed) stops
        webhook = scope["path"].startswith(WEBHOOK_PREFIX)
        # A webhook's answer is one short body: nothing to stop if its sender leaves, so no task
        # watches for that (one task less per webhook on the loop, which every request shares).
        watcher = None if webhook else asyncio.ensure_future(_await_disconnect(receive, gone))
        pool = self._webhooks if webhook else self._feeds if scope["path"] == FEED_PATH else self._others
        self._responding.add(gone)
        try:
            whole = await asyncio.get_running_loop().run_in_executor(
                pool, self._respond, _environ(scope, body), asyncio.get_running_loop(), send, gone)
            if whole:
                await _send_all(send, whole)
        finally:
            self._responding.discard(gone)
            if watcher is not None:
                watcher.cancel()

    async def _read_body(self, scope: Message, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a refusal was sent (or the client left)."""
        declared = _header(scope, b"content-length")
        size = whole_number(declared) if declared is not None else None
        if size is not None and size > self.max_body:
            await _refuse(send, 413, f"request body larger than {self.max_body} bytes")
            return None
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        await _refuse(send, 413, f"request body larger than {self.max_body} bytes")
                        return None
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            log.warning("request body of %s %s did not arrive within %.1f s; connection closed",
                        scope["method"], scope["path"], self.body_timeout_s)
            await _refuse(send, 408, f"request body did not arrive within {self.body_timeout_s:g} s "
                                     "(LIFELINE_BODY_TIMEOUT_S)")
            return None

    def _respond(self, environ: dict[str, Any], loop: asyncio.AbstractEventLoop, send: Send,
                 gone: threading.Event) -> list[Message]:
        """Run Flask on this thread and hand its response to the loop.

        A response that is one body of its declared length (a webhook's answer, an API's JSON)
        is returned for the loop to send once this thread is done: one hand-over fewer per
        request than sending it from here and waiting. Anything else is sent from here as it
        comes (the live feed streams), and an empty list is returned."""
        head: list[Message] = []

        def push(*messages: Message) -> None:
            sending = asyncio.run_coroutine_threadsafe(_send_all(send, messages), loop)
            try:
                sending.result(timeout=STALLED_CLIENT_S)
            except FutureTimeout:
                # A client that stopped reading (its socket buffers full) would hold this thread
                # for good: it is let go like one that left.
                sending.cancel()
                gone.set()
                log.warning("%s %s: the client took nothing for %.0f s; its stream is ended",
                            environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), STALLED_CLIENT_S)

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            head[:] = [{"type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]}]
            return _no_write

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            declared = next((int(v) for k, v in head[0]["headers"] if k == b"content-length"), None) \
                if head else None
            started = False
            for chunk in result:
                if gone.is_set():
                    return []
                if not chunk:
                    continue
                if not started and declared == len(chunk):  # the common case: one message
                    return [*head, {"type": "http.response.body", "body": chunk, "more_body": False}]
                body = {"type": "http.response.body", "body": chunk, "more_body": True}
                if started:
                    push(body)
                else:
                    push(*head, body)
                    started = True
            if not gone.is_set():
                push(*([] if started else head), {"type": "http.response.body", "body": b"",
                                                  "more_body": False})
            return []
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    # ----- media WebSockets ------------------------------------------------------------------

    async def _websocket(self, scope: Message, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        streams = self.app.extensions.get("media_streams")
        await receive()  # websocket.connect
        if not isinstance(streams, MediaStreams):
            await send({"type": "websocket.close", "code": 1008})  # 403: no media without the local engine
            return
        args = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            session = await loop.run_in_executor(self._media, streams.open, scope["path"], args)
        except StreamRefused as refused:
            log.warning("media stream refused: %s", refused.reason)
            session = None
        if session is None:
            await send({"type": "websocket.close", "code": 1008})  # refused before the handshake: 403
            return
        await send({"type": "websocket.accept"})
        closing: list[bool] = []

        async def close() -> None:
            if not closing:
                closing.append(True)
                await send({"type": "websocket.close", "code": 1000, "reason": (session.ended or "")[:100]})

        def close_soon() -> None:  # from the watch thread
            loop.call_soon_threadsafe(lambda: loop.create_task(close()))

        streams.watch(session, close_soon)
        with call_scope(session.call_control_id):
            try:
                await _pump(session, receive, close)
            finally:
                streams.forget(session)
                await loop.run_in_executor(self._media, session.finish)

    # ----- lifespan --------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for gone in list(self._responding):
                    gone.set()  # live-feed responses end at their next event
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _pump(session: MediaSession, receive: Receive, close: Callable[[], Awaitable[None]]) -> None:
    """Feed the session every frame until the socket closes or the stream is over."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if not session.hearing:
            await close()  # the grace after the call's end is over: what still comes is not heard
            continue
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes")
        if raw is not None and not session.feed(raw):
            await close()
            return


async def _await_disconnect(receive: Receive, gone: threading.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def _send_all(send: Send, messages: Iterable[Message]) -> None:
    for message in messages:
        await send(message)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = error_body(status, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _no_write(data: bytes) -> None:
    raise NotImplementedError("Lifeline's views return their bodies; WSGI write() is not supported")


def _header(scope: Message, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


def _environ(scope: Message, body: bytes) -> dict[str, Any]:
    """The WSGI environ of a buffered ASGI request (PEP 3333: strings are latin-1 decoded bytes)."""
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1] or 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(scope["client"][0]), str(scope["client"][1])
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in ("content-length", "transfer-encoding"):
            continue  # the body is whole: CONTENT_LENGTH above says how long
        key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class _Protocol(ASGIProtocol):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's HTTP protocol with Lifeline's guards: its own refusals (a request line or headers
    too long, a request it cannot parse) answer in the one JSON error shape, as every other error
    does; a request line and headers that do not arrive in time close the connection; and a worker
    holds at most `Worker.connection_cap` connections.

    gunicorn's protocol has no public extension points: what this class overrides or reads of it
    (`_send_error_response`, `_safe_write`, `_close_transport`, `_on_headers_complete`,
    `_arm_keepalive_timer`, `_request_ready`, `_closed`, and the worker's `nr_conns`) is private;
    tests/test_gunicorn_private.py fails, naming it, when a gunicorn upgrade moves any of it."""

    worker: Worker
    _head_timer: asyncio.TimerHandle | None = None  # the header deadline, while a request head is awaited
    _head_begun = False  # some of the awaited request head has arrived
    _refused = False  # turned away at the connection cap: gunicorn never served it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection, its first request head due within the header deadline; at the
        worker's connection cap, first close the one that has waited longest for a request, or
        else turn this one away (503)."""
        worker = self.worker
        if worker.nr_conns >= worker.connection_cap and not worker.make_room():
            # Every connection is busy with a request or a media stream. Refusing costs one write;
            # accepting more would run the worker out of file descriptors, and then nothing is served.
            self._refused = True
            refused = cast(asyncio.Transport, transport)
            refused.write(_error_response(503, f"this server is at its limit of {worker.connection_cap} "
                                               "connections; try again shortly", [("Retry-After", "1")]))
            refused.close()
            worker.refusals.note(worker.connection_cap)
            return
        super().connection_made(transport)
        # gunicorn sets `_request_ready` on an HTTP/1 connection only: HTTP/2 and uWSGI connections
        # frame their requests otherwise and get no deadline here.
        if self._request_ready is not None:
            self._await_head()
            self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        """Parse the bytes (gunicorn); a request head they begin without ending is now due."""
        super().data_received(data)
        if self._awaiting_head():
            self._head_begun = True
            # On a kept-alive connection the deadline starts with the next request's first byte:
            # idling before it is bounded by gunicorn's keepalive timeout, which is left as it is.
            if self._head_timer is None:
                self._arm_head_deadline()

    def _on_headers_complete(self) -> Any:
        # gunicorn's parser calls this once the request line and headers are whole.
        self._end_head_wait()
        return super()._on_headers_complete()

    def _arm_keepalive_timer(self) -> None:
        # gunicorn calls this when a kept-alive connection falls idle, waiting for its next request.
        super()._arm_keepalive_timer()
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: its deadline with it."""
        if self._refused:
            return  # gunicorn never counted it
        self._end_head_wait()
        super().connection_lost(exc)

    def close_waiting(self, message: str) -> None:
        """Close this connection, which waits for a request head: with 408 if some of it came."""
        begun = self._head_begun
        self._end_head_wait()
        if begun and not self._closed:
            self._send_error_response(408, message)
        self._close_transport()
        self._request_ready.set()  # wakes gunicorn's connection loop to end, as its keepalive timeout does

    def _awaiting_head(self) -> bool:
        # gunicorn sets `_request_ready` once a request's head is parsed and clears it when the
        # connection waits for the next one.
        ready = self._request_ready
        return ready is not None and not ready.is_set() and not self._closed

    def _await_head(self) -> None:
        waiting = self.worker.awaiting_heads
        waiting.pop(self, None)
        waiting[self] = None  # last: the one that has waited least

    def _arm_head_deadline(self) -> None:
        self._head_timer = self.worker.loop.call_later(self.worker.header_timeout_s, self._head_overdue)

    def _end_head_wait(self) -> None:
        self.worker.awaiting_heads.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_begun = False

    def _head_overdue(self) -> None:
        self._head_timer = None
        if not self._awaiting_head():
            return
        timeout = self.worker.header_timeout_s
        self.worker.overdue_heads.note(timeout)
        self.close_waiting(f"request line and headers did not arrive within {timeout:g} s "
                           "(LIFELINE_HEADER_TIMEOUT_S)")

    def _send_error_response(self, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()
                             ) -> None:
        self._safe_write(_error_response(status, message, extra_headers))


def _error_response(status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A whole HTTP/1.1 response in the one JSON error shape, closing its connection."""
    body = error_body(status, message)
    extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # not a status HTTPStatus names
        reason = "Error"
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n")
    return head.encode("latin-1") + body


class _Throttled:
    """A warning about what may come by the thousand (a flood of slow clients, a worker out of file
    descriptors): logged at once, then at most once per `every` seconds, saying how many such events
    it stands for. A line per event would flood the log, and writing it would slow the worker more."""

    def __init__(self, message: str, every: float = 5.0) -> None:
        self.message = message  # a %-format for note()'s arguments
        self.every = every
        self._count = 0
        self._quiet_until = 0.0  # time.monotonic()

    def note(self, *args: object) -> None:
        """Count one event; log the line if none was logged in the last `every` seconds."""
        self._count += 1
        now = time.monotonic()
        if now >= self._quiet_until:
            connections_log.warning(self.message + " (%d since the last such line)", *args, self._count)
            self._count = 0
            self._quiet_until = now + self.every


class Worker(ASGIWorker):  # type: ignore[misc]  # gunicorn has no types
    """gunicorn's asyncio worker serving the Flask app through `Front` (`threads` per pool)."""

    asgi: Any  # the Flask app once ASGIWorker.load_wsgi (untyped) has run, then the Front before it
    alive: bool  # gunicorn's: False once the worker is to stop
    loop: asyncio.AbstractEventLoop  # gunicorn's: the worker's event loop
    nr_conns: int  # gunicorn's: its protocol counts the connections open (private)
    header_timeout_s: float  # a request line and headers must arrive within this (LIFELINE_HEADER_TIMEOUT_S)
    open_files: int | None  # the process's open-files limit (soft RLIMIT_NOFILE); None: unlimited
    connection_cap: int  # connections served at once, at most (connection_cap())
    # Connections waiting for a request head (the first, or the next on a kept-alive connection),
    # the one that has waited longest first: at the cap, it makes room for a newcomer.
    awaiting_heads: dict[_Protocol, None]
    lifeline_generation = 0  # which reload started it (post_worker_init sets it)
    _handing_over = False

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        """`threads` is used here (the front's pools): no warning about it."""

    def init_process(self) -> None:
        """Serve connections with `_Protocol`, at most `connection_cap` at once (gunicorn's worker
        builds each connection's protocol from the name its module holds, a private name; this
        worker process is the only one that reads it)."""
        gasgi.ASGIProtocol = _Protocol
        self.limit_connections()
        super().init_process()

    def limit_connections(self) -> None:
        """Work out the connection cap and start counting what is refused or closed."""
        self.open_files = _open_files_limit()
        self.connection_cap = connection_cap(self.cfg.worker_connections, self.open_files)
        self.awaiting_heads = {}
        self.overdue_heads = _Throttled("connection closed: its request line and headers did not arrive "
                                        "within %g s (LIFELINE_HEADER_TIMEOUT_S)")
        self.made_room = _Throttled("connection closed while waiting for a request, to make room for a new "
                                    "one: this worker is at its limit of %d connections")
        self.refusals = _Throttled("connection refused (503): this worker is at its limit of %d connections, "
                                   "none of them waiting for a request")
        self.accept_failures = _Throttled("could not accept a connection: %s (open-files limit %s, at most "
                                          "%d connections; raise `ulimit -n` or lower worker_connections)")

    def run(self) -> None:
        """Serve until told to stop, with the loop's failures to accept logged once per 5 s at most."""
        self.loop.set_exception_handler(self._loop_exception)
        connections_log.info("serving at most %d connections at once (worker_connections %d, open-files "
                             "limit %s)", self.connection_cap, self.cfg.worker_connections,
                             self.open_files or "none")
        super().run()

    def make_room(self) -> bool:
        """Close the connection that has waited longest for a request head, if any, so that a new
        one takes its place: a slow or idle client gives way to one that is ready to be served."""
        oldest = next(iter(self.awaiting_heads), None)
        if oldest is None:
            return False
        self.made_room.note(self.connection_cap)
        oldest.close_waiting(f"request line and headers not whole when this server reached its limit of "
                             f"{self.connection_cap} connections; this connection had waited longest")
        return True

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        # asyncio's accept loop reports an accept() that failed for want of descriptors or memory
        # (with the listening socket in the context), with a traceback, on every retry: thousands a
        # second once a worker runs out (security review: 40,000 in 20 s). It retries by itself.
        if isinstance(error, OSError) and error.errno in _OUT_OF_RESOURCES and "socket" in context:
            self.accept_failures.note(error.strerror, self.open_files or "none", self.connection_cap)
            return
        loop.default_exception_handler(context)

    def load_wsgi(self) -> None:
        """Load the Flask app (`app:app`) and put the front before it."""
        super().load_wsgi()
        app: Flask = self.asgi  # set by ASGIWorker.load_wsgi
        self.header_timeout_s = app.extensions["lifeline"].settings.header_timeout_s
        self.wsgi = app  # post_worker_init reaches the app's services through worker.wsgi
        self.asgi = Front(app, self.cfg.threads)

    def handle_exit_signal(self) -> None:
        """SIGTERM: stop gracefully, unless a reload's new workers are still starting: then serve
        on until they are ready (lifeline/handover.py), so that no webhook finds nobody serving."""
        if self._handing_over or not handover.successors_pending(self.lifeline_generation):
            super().handle_exit_signal()
            return
        self._handing_over = True
        self.log.info("reload: serving until the new workers are ready")
        self.loop.create_task(self._stop_once_successors_serve())

    async def _stop_once_successors_serve(self) -> None:
        # Bounded below gunicorn's graceful timeout, which the master's reload waits for us.
        deadline = self.loop.time() + max(1.0, self.cfg.graceful_timeout - 2.0)
        while self.alive and handover.successors_pending(self.lifeline_generation):
            if self.loop.time() >= deadline:
                self.log.warning("reload: the new workers are not ready after %.0f s; stopping anyway",
                                 self.cfg.graceful_timeout - 2.0)
                break
            await asyncio.sleep(0.2)
        self.alive = False


__all__ = ["Front", "Worker", "connection_cap"]
