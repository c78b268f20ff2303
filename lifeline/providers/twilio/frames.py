"""Twilio Media Streams messages (connected, start, media, dtmf, stop, mark) as our typed frames."""

from __future__ import annotations

from typing import Any

from lifeline.insight.frames import (
    MalformedFrame,
    MediaFrame,
    frame_document,
    media_payload,
    number_field,
    text_field,
)

# Twilio names the codec by MIME type; the local engine decodes by G.711 name.
ENCODINGS = {"audio/x-mulaw": "PCMU", "audio/x-alaw": "PCMA"}


def parse_twilio_frame(raw: str | bytes) -> MediaFrame:
    """Parse one Media Streams WebSocket message; MalformedFrame says what is wrong."""
    event, document = frame_document(raw, "message")
    common: dict[str, Any] = {"event": event, "stream_id": text_field(document.get("streamSid")),
                              "sequence": number_field(document.get("sequenceNumber"))}
    if event == "media":
        media, payload = media_payload(document, "message")
        return MediaFrame(**common, chunk=number_field(media.get("chunk")),
                          track=text_field(media.get("track")),
                          payload=payload)
    if event == "start":
        start = document.get("start")
        if not isinstance(start, dict):
            raise MalformedFrame("start message without `start`")
        raw_format = start.get("mediaFormat")
        media_format = raw_format if isinstance(raw_format, dict) else {}
        encoding = text_field(media_format.get("encoding")) or "audio/x-mulaw"
        return MediaFrame(**{**common,
                             "stream_id": common["stream_id"] or text_field(start.get("streamSid"))},
                          call_control_id=text_field(start.get("callSid")),
                          encoding=ENCODINGS.get(encoding.lower(), encoding),
                          sample_rate=number_field(media_format.get("sampleRate")))
    if event == "dtmf":
        raw_dtmf = document.get("dtmf")
        dtmf = raw_dtmf if isinstance(raw_dtmf, dict) else {}
        return MediaFrame(**common, digit=text_field(dtmf.get("digit")))
    return MediaFrame(**common)
