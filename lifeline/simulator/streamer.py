"""The emulator's side of a media stream: Telnyx's frames, sent to the app's stream_url."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from simple_websocket import Client, ConnectionClosed

from lifeline.insight.g711 import ALAW_TO_PCM, decode

from .audio import FRAME_BYTES, silence

log = logging.getLogger(__name__)


class MediaClient(Client):  # type: ignore[misc]  # simple-websocket has no types
    """simple-websocket's client, closing its socket when the connection or the upgrade fails.

    The library leaves its socket open when its handshake fails (a 403 for a used or expired
    media token is routine now) and when the port refuses the connection (the app is gone), and
    the socket is then only reclaimed, with a ResourceWarning, by the garbage collector.
    """

    def __init__(self, url: str, **options: object) -> None:
        try:
            super().__init__(url, **options)
        except BaseException as exc:
            sock = getattr(self, "sock", None)
            if sock is not None:
                sock.close()
            # A refused connect fails before the library keeps its socket on self: the socket is
            # then only a local of the library's frame, which the traceback holds.
            for frame, _ in traceback.walk_tb(exc.__traceback__):
                local = frame.f_locals.get("sock")
                if isinstance(local, socket.socket):
                    local.close()
            raise
SILENCE = silence(0.02)  # one frame


class MediaStreamer:
    """Connects like Telnyx does and sends 20 ms PCMU frames in real time: speech or silence."""

    def __init__(self, url: str, call_control_id: str, speed: float,
                 on_failed: Callable[[str], None], encoding: str = "PCMU",
                 sample_rate: int = 8000, both_tracks: bool = False) -> None:
        self.url = url
        # What the start frame announces; the payload is PCMU audio transcoded for PCMA, and
        # passed through as-is for codecs the emulator cannot encode (Lifeline must refuse those).
        self.encoding = encoding
        self.sample_rate = sample_rate
        self._g722: Any = None
        self.stream_id = f"emu-stream-{uuid.uuid4().hex[:12]}"  # a new id per stream, as Telnyx gives
        self._call_control_id = call_control_id
        self._interval = 0.02 / speed
        self._on_failed = on_failed
        self._queue: deque[tuple[bytes, threading.Event | None]] = deque()
        # What the caller hears (the agent, once bridged): sent only with `both_tracks`.
        self.both_tracks = both_tracks
        self._outbound: deque[tuple[bytes, threading.Event | None]] = deque()
        self._events: deque[dict[str, object]] = deque()  # dtmf, mark and error frames to interleave
        self._stop = threading.Event()
        self._drop = threading.Event()
        self._sequence = itertools.count(1)
        self.sent_frames = 0
        self._thread = threading.Thread(target=self._run, name="emulator-stream", daemon=True)

    def start(self) -> None:
        """Connect and start streaming in a thread of its own."""
        self._thread.start()

    def play(self, pcmu: bytes, track: str = "inbound") -> threading.Event:
        """Queue speech on a track; the event is set when its last frame has been sent."""
        done = threading.Event()
        frames = [pcmu[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                  for i in range(0, len(pcmu), FRAME_BYTES)]
        queue = self._outbound if track == "outbound" else self._queue
        for index, frame in enumerate(frames):
            queue.append((frame, done if index == len(frames) - 1 else None))
        if not frames:
            done.set()
        return done

    def dtmf(self, digit: str) -> None:
        """A key press, as Telnyx reports it on the stream too (besides the webhook)."""
        self._events.append({"event": "dtmf", "stream_id": self.stream_id,
                             "occurred_at": _iso_now(), "dtmf": {"digit": digit}})

    def mark(self, name: str) -> None:
        """A `mark` frame (Telnyx echoes the app's marks when their audio has played)."""
        self._events.append({"event": "mark", "stream_id": self.stream_id, "mark": {"name": name}})

    def error(self, code: int, title: str, detail: str) -> None:
        """An `error` frame (Telnyx's stream error codes, e.g. 100003 malformed_frame)."""
        self._events.append({"event": "error", "stream_id": self.stream_id,
                             "payload": {"code": code, "title": title, "detail": detail}})

    def stop(self) -> None:
        """Send `stop` and close."""
        self._stop.set()

    def drop(self) -> None:
        """Close the socket without `stop`, as a network failure would."""
        self._drop.set()
        self._stop.set()

    def _run(self) -> None:
        if self._stop.is_set():
            return  # stopped before it connected (the emulator is shutting down)
        try:
            ws = MediaClient.connect(self.url)
        except Exception as exc:  # noqa: BLE001 - refused upgrade, closed port: Telnyx reports streaming.failed
            log.info("media stream to %s failed: %s", self.url.split("?")[0], exc)
            self._on_failed("connection_failed")
            return
        try:
            self._send(ws, {"event": "connected", "version": "1.0.0"})
            self._send(ws, {"event": "start", "stream_id": self.stream_id, "start": {
                "call_control_id": self._call_control_id, "client_state": None,
                "media_format": {"encoding": self.encoding, "sample_rate": self.sample_rate,
                                 "channels": 1}}})
            due = time.monotonic()
            for chunk in itertools.count(1):
                if self._stop.is_set():
                    break
                while self._events:
                    self._send(ws, self._events.popleft())
                frame, done = self._queue.popleft() if self._queue else (SILENCE, None)
                self._send(ws, {"event": "media", "stream_id": self.stream_id, "media": {
                    "track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                    "payload": base64.b64encode(self._encode(frame)).decode()}})
                self.sent_frames += 1
                if done is not None:
                    done.set()
                if self.both_tracks:
                    frame, done = self._outbound.popleft() if self._outbound else (SILENCE, None)
                    self._send(ws, {"event": "media", "stream_id": self.stream_id, "media": {
                        "track": "outbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                        "payload": base64.b64encode(self._encode(frame)).decode()}})
                    if done is not None:
                        done.set()
                due += self._interval
                time.sleep(max(0.0, due - time.monotonic()))
            if not self._drop.is_set():
                self._send(ws, {"event": "stop", "stream_id": self.stream_id,
                                "stop": {"call_control_id": self._call_control_id}})
        except (ConnectionClosed, OSError):
            # A server that closes its end mid-send surfaces as ConnectionClosed or, when the
            # socket is already gone, as a bare OSError (EBADF): both are a lost connection.
            if not self._stop.is_set():
                self._on_failed("connection_lost")
        finally:
            for _, done in [*self._queue, *self._outbound]:
                if done is not None:
                    done.set()
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - already closed by the other side
                pass

    def _send(self, ws: Client, frame: dict[str, object]) -> None:
        frame.setdefault("sequence_number", str(next(self._sequence)))
        ws.send(json.dumps(frame))

    def _encode(self, pcmu: bytes) -> bytes:
        """A PCMU frame in the stream's codec, as Telnyx would transcode it."""
        if self.encoding == "PCMA":
            return encode_alaw(decode(pcmu, "PCMU"))
        if self.encoding == "L16":
            samples = decode(pcmu, "PCMU")
            if self.sample_rate == 16000:
                samples = np.repeat(samples, 2)  # 8 kHz speech carried at 16 kHz
            return samples.astype(">i2").tobytes()
        if self.encoding == "G722":
            if self._g722 is None:
                from G722 import G722
                self._g722 = G722(8000, 64000)  # 8 kHz input, wideband-compatible bitstream
            encoded: bytes = self._g722.encode(decode(pcmu, "PCMU"))
            return encoded
        return pcmu  # PCMU, and codecs the emulator cannot encode (OPUS, AMR-WB): sent as is


_ALAW_ORDER = np.argsort(ALAW_TO_PCM)
_ALAW_SORTED = ALAW_TO_PCM[_ALAW_ORDER].astype(np.int32)


def encode_alaw(samples: np.ndarray) -> bytes:
    """16-bit PCM to PCMA: each sample to the A-law code whose value is nearest (the emulator's
    stand-in for Telnyx transcoding a stream to PCMA)."""
    values = samples.astype(np.int32)
    right = np.clip(np.searchsorted(_ALAW_SORTED, values), 1, len(_ALAW_SORTED) - 1)
    left = right - 1
    nearer = np.where(values - _ALAW_SORTED[left] <= _ALAW_SORTED[right] - values, left, right)
    return _ALAW_ORDER[nearer].astype(np.uint8).tobytes()


def _iso_now() -> str:
    from datetime import UTC, datetime
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
