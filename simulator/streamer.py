"""The emulator's side of a media stream: Telnyx's frames, sent to the app's stream_url."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from simple_websocket import Client, ConnectionClosed

from .audio import FRAME_BYTES

log = logging.getLogger(__name__)
SILENCE = b"\xff" * FRAME_BYTES


class MediaStreamer:
    """Connects like Telnyx does and sends 20 ms PCMU frames in real time: speech or silence."""

    def __init__(self, url: str, call_control_id: str, speed: float,
                 on_failed: Callable[[str], None], both_tracks: bool = False) -> None:
        self.url = url
        self.stream_id = f"emu-stream-{uuid.uuid4().hex[:12]}"  # a new id per stream, as Telnyx gives
        self._call_control_id = call_control_id
        self._interval = 0.02 / speed
        self._on_failed = on_failed
        self._queue: deque[tuple[bytes, threading.Event | None]] = deque()
        # What the caller hears (the agent, once bridged): sent only with `both_tracks`.
        self.both_tracks = both_tracks
        self._outbound: deque[tuple[bytes, threading.Event | None]] = deque()
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

    def stop(self) -> None:
        """Send `stop` and close."""
        self._stop.set()

    def drop(self) -> None:
        """Close the socket without `stop`, as a network failure would."""
        self._drop.set()
        self._stop.set()

    def _run(self) -> None:
        try:
            ws = Client.connect(self.url)
        except Exception as exc:  # refused upgrade, closed port: Telnyx reports streaming.failed
            log.info("media stream to %s failed: %s", self.url.split("?")[0], exc)
            self._on_failed("connection_failed")
            return
        try:
            self._send(ws, {"event": "connected", "version": "1.0.0"})
            self._send(ws, {"event": "start", "stream_id": self.stream_id, "start": {
                "call_control_id": self._call_control_id, "client_state": None,
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}})
            due = time.monotonic()
            for chunk in itertools.count(1):
                if self._stop.is_set():
                    break
                frame, done = self._queue.popleft() if self._queue else (SILENCE, None)
                self._send(ws, {"event": "media", "stream_id": self.stream_id, "media": {
                    "track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                    "payload": base64.b64encode(frame).decode()}})
                self.sent_frames += 1
                if done is not None:
                    done.set()
                if self.both_tracks:
                    frame, done = self._outbound.popleft() if self._outbound else (SILENCE, None)
                    self._send(ws, {"event": "media", "stream_id": self.stream_id, "media": {
                        "track": "outbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                        "payload": base64.b64encode(frame).decode()}})
                    if done is not None:
                        done.set()
                due += self._interval
                time.sleep(max(0.0, due - time.monotonic()))
            if not self._drop.is_set():
                self._send(ws, {"event": "stop", "stream_id": self.stream_id,
                                "stop": {"call_control_id": self._call_control_id}})
        except ConnectionClosed:
            if not self._stop.is_set():
                self._on_failed("connection_lost")
        finally:
            for _, done in [*self._queue, *self._outbound]:
                if done is not None:
                    done.set()
            try:
                ws.close()
            except Exception:  # already closed by the other side
                pass

    def _send(self, ws: Client, frame: dict[str, object]) -> None:
        frame.setdefault("sequence_number", str(next(self._sequence)))
        ws.send(json.dumps(frame))
