"""Twilio Media Streams messages (connected, start, media, dtmf, stop, mark) as our typed frames."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from insight.frames import MAX_FRAME_CHARS, MalformedFrame, MediaFrame

# Twilio names the codec by MIME type; the local engine decodes by G.711 name.
ENCODINGS = {"audio/x-mulaw": "PCMU", "audio/x-alaw": "PCMA"}


def parse_twilio_frame(raw: str | bytes) -> MediaFrame:
    """Parse one Media Streams WebSocket message; MalformedFrame says what is wrong."""
    if len(raw) > MAX_FRAME_CHARS:
        raise MalformedFrame("message larger than 64 KiB")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedFrame("message is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("event"), str):
        raise MalformedFrame("message has no `event`")
    event = document["event"]
    common: dict[str, Any] = {"event": event, "stream_id": _text(document.get("streamSid")),
                              "sequence": _number(document.get("sequenceNumber"))}
    if event == "media":
        media = document.get("media")
        if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
            raise MalformedFrame("media message without media.payload")
        try:
            payload = base64.b64decode(media["payload"], validate=True)
        except (binascii.Error, ValueError):
            raise MalformedFrame("media.payload is not base64") from None
        return MediaFrame(**common, chunk=_number(media.get("chunk")), track=_text(media.get("track")),
                          payload=payload)
    if event == "start":
        start = document.get("start")
        if not isinstance(start, dict):
            raise MalformedFrame("start message without `start`")
        raw_format = start.get("mediaFormat")
        media_format = raw_format if isinstance(raw_format, dict) else {}
        encoding = _text(media_format.get("encoding")) or "audio/x-mulaw"
        return MediaFrame(**{**common, "stream_id": common["stream_id"] or _text(start.get("streamSid"))},
                          call_control_id=_text(start.get("callSid")),
                          encoding=ENCODINGS.get(encoding.lower(), encoding),
                          sample_rate=_number(media_format.get("sampleRate")))
    if event == "dtmf":
        raw_dtmf = document.get("dtmf")
        dtmf = raw_dtmf if isinstance(raw_dtmf, dict) else {}
        return MediaFrame(**common, digit=_text(dtmf.get("digit")))
    return MediaFrame(**common)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None
