"""The offline engine: Telnyx media stream -> G.711 decode -> endpointing -> Whisper -> messages.

The WebSocket receive loop only decodes and endpoints (microseconds per 20 ms frame); each
finished utterance is transcribed on a worker thread, in order per call, and handed to the
message sink (the IVR's rules) from there.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ivr.serial import KeyedSerialExecutor

from .base import EngineState, ListeningEngine
from .endpoint import Utterance, UtteranceCutter
from .frames import ReorderBuffer
from .codecs import codec_for
from .whisper import Transcriber

if TYPE_CHECKING:
    from ivr.config import Settings

log = logging.getLogger(__name__)
TOKEN_MAX_AGE_S = 120
STREAM_CODEC = "PCMU"
MessageSink = Callable[[str, str, str, float], None]


class MediaTokens:
    """Per-call, signed, short-lived tokens for the media stream URL."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="lifeline-media-stream")

    def issue(self, call_control_id: str) -> str:
        """A token naming this call."""
        return self._serializer.dumps(call_control_id)

    def verify(self, token: str, max_age_s: int = TOKEN_MAX_AGE_S) -> str | None:
        """The call a token names, or None when it is forged, garbled or expired."""
        try:
            value = self._serializer.loads(token, max_age=max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        return value if isinstance(value, str) else None


class CallListener:
    """The per-call state of one media stream: small, and touched only by its receive loop."""

    def __init__(self, engine: LocalEngine, call_control_id: str, stream_id: str, encoding: str,
                 sample_rate: int = 8000) -> None:
        self.call_control_id = call_control_id
        self.stream_id = stream_id
        self.encoding = encoding
        self._engine = engine
        codec = codec_for(encoding, sample_rate)
        if codec is None:
            raise ValueError(f"unsupported media encoding {encoding!r} at {sample_rate} Hz")
        self._decode = codec.decoder()
        self._reorder = ReorderBuffer(silence=codec.silence)
        self._cutter = UtteranceCutter()
        self._count = 0
        self.frames = 0

    def audio(self, chunk: int | None, payload: bytes) -> None:
        """One media frame of the caller's track."""
        self.frames += 1
        for ready in self._reorder.push(chunk, payload):
            for utterance in self._cutter.feed(self._decode(ready)):
                self._hand_off(utterance)

    def close(self) -> None:
        """The stream ended: flush a last utterance that had no silence after it."""
        last = self._cutter.close()
        if last is not None:
            self._hand_off(last)

    def _hand_off(self, utterance: Utterance) -> None:
        self._count += 1
        source_id = f"local:{self.stream_id}:{self._count}"
        # Audio arrives in real time, so the speech ended as long ago as the stream has run since.
        ended_at = time.monotonic() - max(0.0, self._cutter.fed_s - utterance.end_s)
        self._engine.transcribe_later(self.call_control_id, source_id, utterance, ended_at)


class LocalEngine(ListeningEngine):
    """Listens through a Telnyx media stream and transcribes offline."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._public_url = settings.public_url
        secret = settings.secret_key or hmac.new(settings.telnyx_api_key.encode(), b"lifeline-media",
                                                 hashlib.sha256).hexdigest()
        self.tokens = MediaTokens(secret)
        self.token_max_age_s = TOKEN_MAX_AGE_S
        self.transcriber = Transcriber(settings.whisper_model, threads=settings.whisper_threads)
        self._workers = KeyedSerialExecutor(settings.transcription_workers, "lifeline-asr")
        self._sink: MessageSink | None = None
        # (call, recognition seconds, audio seconds, seconds since the speech ended): for benchmarks
        self.on_transcribed: Callable[[str, float, float, float], None] | None = None

    def bind(self, sink: MessageSink, state: EngineState | None = None) -> None:
        """Where finished messages go (the IVR's rules); per-call state stays in the listener."""
        self._sink = sink

    def warm(self) -> None:
        """Load the model before the first call needs it."""
        self.transcriber.load()

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        # Without stream_codec Telnyx streams the call's own codec (G722, OPUS, L16, ...); ask for
        # PCMU, which Telnyx transcodes to where it can, and which we decode.
        return {"stream_url": self.stream_url(call_control_id), "stream_track": "inbound_track",
                "stream_codec": STREAM_CODEC}

    def restart_options(self, call_control_id: str) -> dict[str, Any] | None:
        return self.answer_options(call_control_id)

    def stream_url(self, call_control_id: str) -> str:
        """Where Telnyx should stream this call's audio."""
        base = (self._public_url or "").replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/media/telnyx?token={self.tokens.issue(call_control_id)}"

    def open(self, call_control_id: str, stream_id: str, encoding: str,
             sample_rate: int = 8000) -> CallListener:
        """A new stream for a call."""
        return CallListener(self, call_control_id, stream_id, encoding, sample_rate)

    def transcribe_later(self, call_control_id: str, source_id: str, utterance: Utterance,
                         ended_at: float) -> None:
        """Queue an utterance for transcription, in order per call, off the receive loop."""
        self._workers.submit(call_control_id,
                             lambda: self._transcribe(call_control_id, source_id, utterance, ended_at))

    def _transcribe(self, call_control_id: str, source_id: str, utterance: Utterance,
                    ended_at: float) -> None:
        started = time.monotonic()
        transcript = self.transcriber.transcribe(utterance.audio)
        finished = time.monotonic()
        if self.on_transcribed is not None:
            self.on_transcribed(call_control_id, finished - started, utterance.end_s - utterance.start_s,
                                finished - ended_at)
        log.info("heard on %s (%.2f s of audio in %.2f s): %r", call_control_id,
                 utterance.end_s - utterance.start_s, finished - started, transcript.text)
        if transcript.text and self._sink is not None:
            self._sink(call_control_id, source_id, transcript.text, transcript.confidence)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued utterance is transcribed (tests, benchmarks)."""
        return self._workers.wait_idle(timeout)
