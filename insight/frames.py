"""Telnyx media-stream frames: parsed into typed frames, and put back in order."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from ivr.events import as_object

MAX_FRAME_CHARS = 64 * 1024


class MalformedFrame(ValueError):
    """A frame that is not Telnyx media-stream JSON; the stream goes on without it."""


@dataclass(frozen=True)
class MediaFrame:
    """One frame from Telnyx: `event` says which of the optional parts are present."""

    event: str
    stream_id: str | None = None
    sequence: int | None = None
    chunk: int | None = None
    track: str | None = None
    payload: bytes = b""
    call_control_id: str | None = None
    encoding: str | None = None
    sample_rate: int | None = None
    digit: str | None = None


def parse_frame(raw: str | bytes) -> MediaFrame:
    """Parse one WebSocket text frame; MalformedFrame says what is wrong."""
    if len(raw) > MAX_FRAME_CHARS:
        raise MalformedFrame("frame larger than 64 KiB")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedFrame("frame is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("event"), str):
        raise MalformedFrame("frame has no `event`")
    event = document["event"]
    common = {"event": event, "stream_id": _text(document.get("stream_id")),
              "sequence": _number(document.get("sequence_number"))}
    if event == "media":
        media = document.get("media")
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            raise MalformedFrame("media frame without media.payload")
        try:
            payload = base64.b64decode(media["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise MalformedFrame("media.payload is not base64") from None
        return MediaFrame(**common, chunk=_number(media.get("chunk")),
                          track=_text(media.get("track")), payload=payload)
    if event == "start":
        start = as_object(document.get("start"))
        media_format = as_object(start.get("media_format"))
        return MediaFrame(**common, call_control_id=_text(start.get("call_control_id")),
                          encoding=(_text(media_format.get("encoding")) or "PCMU").upper(),
                          sample_rate=_number(media_format.get("sample_rate")) or 8000)
    if event == "stop":
        stop = as_object(document.get("stop"))
        return MediaFrame(**common, call_control_id=_text(stop.get("call_control_id")))
    if event == "dtmf":
        dtmf = as_object(document.get("dtmf"))
        return MediaFrame(**common, digit=_text(dtmf.get("digit")))
    return MediaFrame(**common)


class ReorderBuffer:
    """Releases media chunks in order, waiting a few frames for late ones, then filling gaps.

    Telnyx does not promise frame order. A gap that is still open when `depth` later frames have
    arrived is treated as lost and filled with silence, so the stream's timing stays right.
    """

    def __init__(self, depth: int = 5, silence: bytes = b"\xff" * 160, max_fill: int = 50) -> None:
        self._depth = depth
        self._silence = silence
        self._max_fill = max_fill
        self._waiting: dict[int, bytes] = {}
        self._next: int | None = None
        self.late = 0
        self.filled = 0

    def push(self, chunk: int | None, payload: bytes) -> list[bytes]:
        """Add a frame; returns the payloads now ready, in order."""
        if chunk is None:
            return [payload]
        if self._next is None:
            self._next = chunk
        if chunk < self._next:
            self.late += 1  # its place has been filled already
            return []
        self._waiting[chunk] = payload
        ready: list[bytes] = []
        while True:
            if self._next in self._waiting:
                ready.append(self._waiting.pop(self._next))
                self._next += 1
            elif len(self._waiting) > self._depth:
                gap = min(min(self._waiting) - self._next, self._max_fill)
                ready.extend([self._silence] * gap)
                self.filled += gap
                self._next = min(self._waiting)
            else:
                return ready


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # ASCII only: str.isdigit() also accepts "²" and the like, which int() refuses.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
