"""The emulator's side of a Twilio Media Stream: Twilio's messages, paced in real time.

A stream carries the track(s) it was started with: `inbound_track` (the caller), `outbound_track`
(what the caller hears: the agent once bridged) or `both_tracks`, each media message naming its
track (`inbound` / `outbound`) as Twilio's do.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable

from simple_websocket import Client, ConnectionClosed

from ..streamer import SILENCE, MediaClient, MediaStreamer

log = logging.getLogger(__name__)


# The media messages' track names for each track a stream can be started with.
TRACKS = {"inbound_track": ("inbound",), "outbound_track": ("outbound",),
          "both_tracks": ("inbound", "outbound")}


class TwilioStreamer(MediaStreamer):
    """Connects like Twilio does and sends `connected`, `start`, 20 ms `media` messages, `stop`."""

    def __init__(self, url: str, call_sid: str, account_sid: str, speed: float,
                 on_failed: Callable[[str], None], parameters: dict[str, str] | None = None,
                 name: str | None = None, track: str = "inbound_track") -> None:
        super().__init__(url, call_sid, speed, on_failed, both_tracks=track == "both_tracks")
        self.stream_id = "MZ" + uuid.uuid4().hex  # every stream, a restart too, has its own SID
        self.name = name  # the name it was started with, if any: it can be stopped by it
        self.track = track
        self.tracks = TRACKS[track]
        self._account_sid = account_sid
        self._parameters = parameters or {}

    @property
    def sid(self) -> str:
        """The Stream's SID (MZ...), as the REST API and the messages name it."""
        return self.stream_id

    @property
    def stopped(self) -> bool:
        """Whether the stream was stopped or dropped (it sends nothing more)."""
        return self._stop.is_set()

    def carries(self, track: str) -> bool:
        """Whether this stream sends the `inbound` (caller) or `outbound` (agent) track."""
        return track in self.tracks

    def _run(self) -> None:
        if self._stop.is_set():
            return  # stopped before it connected (the emulator is shutting down), as Telnyx's streamer
        try:
            ws = MediaClient.connect(self.url)
        except Exception as exc:  # noqa: BLE001 - refused upgrade or closed port: Twilio reports stream-error
            log.info("media stream to %s failed: %s", self.url.rsplit("/", 1)[0], exc)
            self._on_failed("connection_failed")
            return
        call_sid = self._call_control_id
        try:
            ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            self._send(ws, {"event": "start", "streamSid": self.stream_id, "start": {
                "accountSid": self._account_sid, "streamSid": self.stream_id, "callSid": call_sid,
                "tracks": list(self.tracks), "customParameters": self._parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
            due = time.monotonic()
            for chunk in itertools.count(1):
                if self._stop.is_set():
                    break
                for track in self.tracks:
                    self._send_media(ws, track, chunk)
                due += self._interval
                time.sleep(max(0.0, due - time.monotonic()))
            if not self._drop.is_set():
                self._send(ws, {"event": "stop", "streamSid": self.stream_id,
                                "stop": {"accountSid": self._account_sid, "callSid": call_sid}})
        except ConnectionClosed:
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

    def _send_media(self, ws: Client, track: str, chunk: int) -> None:
        """One 20 ms frame of a track: its queued speech, else silence."""
        queue = self._outbound if track == "outbound" else self._queue
        frame, done = queue.popleft() if queue else (SILENCE, None)
        self._send(ws, {"event": "media", "streamSid": self.stream_id, "media": {
            "track": track, "chunk": str(chunk), "timestamp": str(chunk * 20),
            "payload": base64.b64encode(frame).decode()}})
        if track == self.tracks[0]:
            self.sent_frames += 1  # counted once per 20 ms, whatever the tracks
        if done is not None:
            done.set()

    def _send(self, ws: Client, frame: dict[str, object]) -> None:
        frame.setdefault("sequenceNumber", str(next(self._sequence)))
        ws.send(json.dumps(frame))
