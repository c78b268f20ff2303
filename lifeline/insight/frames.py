"""Media-stream frames: Telnyx's parsed into typed frames (Twilio's share the envelope checks),
and put back in order."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from lifeline.ivr.errors import LifelineError
from lifeline.ivr.events import as_object
from lifeline.ivr.sanitize import whole_number

MAX_FRAME_CHARS = 64 * 1024


class MalformedFrame(LifelineError, ValueError):
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


def frame_document(raw: str | bytes, noun: str = "frame") -> tuple[str, dict[str, object]]:
    """A media-stream message's `event` and its JSON object; MalformedFrame says what is wrong.

    Telnyx's and Twilio's streams share this envelope: a JSON object of at most 64 KiB with a
    string `event`. `noun` names the message in the error ("frame", "message").
    """
    if len(raw) > MAX_FRAME_CHARS:
        raise MalformedFrame(f"{noun} larger than 64 KiB")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedFrame(f"{noun} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("event"), str):
        raise MalformedFrame(f"{noun} has no `event`")
    return document["event"], document


def media_payload(document: dict[str, object], noun: str = "frame") -> tuple[dict[str, object], bytes]:
    """A media message's `media` object and its decoded base64 `payload`."""
    media = document.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise MalformedFrame(f"media {noun} without media.payload")
    try:
        return media, base64.b64decode(media["payload"], validate=True)
    except (binascii.Error, ValueError):
        raise MalformedFrame("media.payload is not base64") from None


def parse_frame(raw: str | bytes) -> MediaFrame:
    """Parse one WebSocket text frame; MalformedFrame says what is wrong."""
    event, document = frame_document(raw)
    common: dict[str, Any] = {"event": event, "stream_id": text_field(document.get("stream_id")),
                              "sequence": number_field(document.get("sequence_number"))}
    if event == "media":
        media, payload = media_payload(document)
        return MediaFrame(**common, chunk=number_field(media.get("chunk")),
                          track=text_field(media.get("track")), payload=payload)
    if event == "start":
        start = as_object(document.get("start"))
        media_format = as_object(start.get("media_format"))
        return MediaFrame(**common, call_control_id=text_field(start.get("call_control_id")),
                          encoding=(text_field(media_format.get("encoding")) or "PCMU").upper(),
                          sample_rate=number_field(media_format.get("sample_rate")) or 8000)
    if event == "stop":
        stop = as_object(document.get("stop"))
        return MediaFrame(**common, call_control_id=text_field(stop.get("call_control_id")))
    if event == "dtmf":
        dtmf = as_object(document.get("dtmf"))
        return MediaFrame(**common, digit=text_field(dtmf.get("digit")))
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


def text_field(value: object) -> str | None:
    """A message field that should be a string, or None when it is anything else."""
    return value if isinstance(value, str) else None


def number_field(value: object) -> int | None:
    """A message field that should be a whole number (given as one or as digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return whole_number(value) if isinstance(value, str) else None
