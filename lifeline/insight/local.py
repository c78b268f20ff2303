"""The offline engine: Telnyx media stream -> G.711 decode -> Silero VAD -> Whisper -> messages.

The WebSocket receive loop only decodes and runs the VAD (well under a millisecond per 32 ms
window). When the caller pauses, the utterance so far is queued for transcription at once
(speculatively); when the pause turns out to end the turn, that transcript is used, so the
decoding overlaps the silence we wait through. If the caller speaks again first, the speculative
job is dropped (or its result ignored) and the longer utterance is transcribed when it ends.
Transcripts reach the message sink (the IVR's rules) in the order the caller spoke.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from lifeline.ivr.serial import KeyedSerialExecutor

from .asr_queue import Job, TranscriptionQueue
from .base import EngineState, ListeningEngine, MessageSink
from .codecs import codec_for
from .endpoint import EndpointConfig, Utterance, UtteranceCutter
from .frames import ReorderBuffer
from .vad import SileroModel
from .whisper import Transcriber, Transcript

if TYPE_CHECKING:
    from lifeline.ivr.config import Settings

log = logging.getLogger(__name__)
TOKEN_MAX_AGE_S = 120  # a token opens a socket only this soon after it is issued
# a stream closes this long after its token was issued (Telnyx's default call limit)
STREAM_LIFE_S = 4 * 3600.0
STREAM_CODEC = "PCMU"


@dataclass(frozen=True)
class Ticket:
    """What a valid media token grants: one stream of one call, until `expires_at` (epoch s)."""

    call_control_id: str
    nonce: str
    expires_at: float


class MediaTokens:
    """Per-call, signed tokens for the media stream URL: each names its call and a fresh nonce.

    A token opens a socket only within `TOKEN_MAX_AGE_S` of being issued (Telnyx connects at
    once); the stream it opened lives until `life_s` after issue (the call's longest life).
    """

    def __init__(self, secret: str, life_s: float = STREAM_LIFE_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="lifeline-media-stream")
        self.life_s = life_s

    def issue(self, call_control_id: str) -> str:
        """A new token naming this call (never the same twice)."""
        return self._serializer.dumps([call_control_id, secrets.token_urlsafe(12)])

    def ticket(self, token: str, max_age_s: int = TOKEN_MAX_AGE_S) -> Ticket | None:
        """What a token grants, or None when it is forged, garbled or too old to open a socket."""
        try:
            value, issued = self._serializer.loads(token, max_age=max_age_s, return_timestamp=True)
        except (BadSignature, SignatureExpired):
            return None
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            return None
        return Ticket(value[0], value[1], issued.timestamp() + self.life_s)

    def verify(self, token: str, max_age_s: int = TOKEN_MAX_AGE_S) -> str | None:
        """The call a token names, or None when it is forged, garbled or expired."""
        ticket = self.ticket(token, max_age_s)
        return ticket.call_control_id if ticket else None


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
        self._decode = codec.decoder()  # always 8 kHz linear PCM, whatever the codec
        self._reorder = ReorderBuffer(silence=codec.silence)
        self._cutter = UtteranceCutter(engine.vad, engine.endpointing)
        self._speculation: Job | None = None
        self._count = 0

    def audio(self, chunk: int | None, payload: bytes) -> None:
        """One media frame of the caller's track."""
        for ready in self._reorder.push(chunk, payload):
            for utterance in self._cutter.feed(self._decode(ready)):
                self._hand_off(utterance)

    def close(self) -> None:
        """The stream ended: flush a last utterance that had no silence after it."""
        last = self._cutter.close()
        if last is not None:
            self._hand_off(last)
        elif self._speculation is not None:
            self._engine.discard(self._speculation)
            self._speculation = None

    def _hand_off(self, utterance: Utterance) -> None:
        # Audio arrives in real time, so the speech ended as long ago as the stream has run since.
        ended_at = time.monotonic() - max(0.0, self._cutter.fed_s - utterance.end_s)
        speculation, self._speculation = self._speculation, None
        if not utterance.final:
            if speculation is not None:
                self._engine.discard(speculation)
            self._speculation = self._engine.speculate(self.call_control_id, utterance, ended_at)
        elif speculation is not None and speculation.utterance.same_audio(utterance):
            self._engine.confirm(speculation, self._next_source_id())
        else:
            if speculation is not None:
                self._engine.discard(speculation)
            self._engine.transcribe_later(self.call_control_id, self._next_source_id(), utterance,
                                          ended_at)

    def _next_source_id(self) -> str:
        self._count += 1
        return f"local:{self.stream_id}:{self._count}"


class _CallOrder:
    """Final jobs of one call in the order the caller spoke, until each is handed on."""

    def __init__(self) -> None:
        self.pending: deque[tuple[Job, str]] = deque()


class LocalEngine(ListeningEngine):
    """Listens through a Telnyx media stream and transcribes offline."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._public_url = settings.public_url
        secret = settings.secret_key or hmac.new(settings.provider_secret.encode(), b"lifeline-media",
                                                 hashlib.sha256).hexdigest()
        self.tokens = MediaTokens(secret, settings.media_stream_life_s)
        self._media_url = settings.media_url
        self.token_max_age_s = TOKEN_MAX_AGE_S
        workers = settings.transcription_workers
        self.transcriber = Transcriber(settings.whisper_model, threads=settings.whisper_threads,
                                       workers=workers, second_hearing=settings.second_hearing,
                                       mirror_db=settings.whisper_mirror_db,
                                       hotwords=settings.whisper_hotwords)
        self.vad = SileroModel()
        self.endpointing = EndpointConfig(end_s=settings.end_of_turn_s)
        self.speculative = True
        self._queue = TranscriptionQueue(self._decode, workers, settings.transcription_max_wait_s,
                                         self._decoded)
        self._deliveries = KeyedSerialExecutor(workers, "lifeline-asr-out")  # in order per call
        self._orders: dict[str, _CallOrder] = {}
        self._lock = threading.Lock()
        self._sink: MessageSink | None = None
        # Every job that ran (the app's /metrics and the benchmarks), and each job when its
        # utterance is known to be final (the benchmarks).
        self.on_transcribed: Callable[[Job], None] | None = None
        self.on_final: Callable[[Job], None] | None = None

    def bind(self, sink: MessageSink, state: EngineState | None = None) -> None:
        """Where finished messages go (the IVR's rules); per-call state stays in the listener."""
        self._sink = sink

    def warm(self) -> None:
        """Load the models before the first call needs them."""
        self.transcriber.load()
        self.vad.session()

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        # Without stream_codec Telnyx streams the call's own codec (G722, OPUS, L16, ...); ask for
        # PCMU, which Telnyx transcodes to where it can, and which we decode.
        return {"stream_url": self.stream_url(call_control_id), "stream_track": "inbound_track",
                "stream_codec": STREAM_CODEC}

    def restart_options(self, call_control_id: str) -> dict[str, Any] | None:
        return self.answer_options(call_control_id)

    def stream_url(self, call_control_id: str) -> str:
        """Where Telnyx should stream this call's audio."""
        base = self._media_url or (self._public_url or "").replace("https://", "wss://", 1).replace(
            "http://", "ws://", 1)
        return f"{base}/media/telnyx?token={self.tokens.issue(call_control_id)}"

    def open(self, call_control_id: str, stream_id: str, encoding: str,
             sample_rate: int = 8000) -> CallListener:
        """A new stream for a call."""
        return CallListener(self, call_control_id, stream_id, encoding, sample_rate)

    def speculate(self, call_control_id: str, utterance: Utterance, ended_at: float) -> Job | None:
        """Start transcribing a tentative utterance now; None when speculation is off."""
        if not self.speculative:
            return None
        return self._queue.submit(Job(call_control_id, utterance, ended_at, speculative=True))

    def discard(self, job: Job) -> None:
        """The caller spoke again: a speculative transcript is void (dropped if not yet begun)."""
        self._queue.cancel(job)

    def confirm(self, job: Job, source_id: str) -> None:
        """A speculative job's utterance turned out final: its transcript is the message."""
        with self._lock:
            self._orders.setdefault(job.call_id, _CallOrder()).pending.append((job, source_id))
        if self.on_final is not None:
            self.on_final(job)
        self._hand_on(job.call_id)

    def transcribe_later(self, call_control_id: str, source_id: str, utterance: Utterance,
                         ended_at: float) -> None:
        """Queue a final utterance for transcription, off the receive loop."""
        job = Job(call_control_id, utterance, ended_at, speculative=False)
        with self._lock:
            self._orders.setdefault(call_control_id, _CallOrder()).pending.append((job, source_id))
        if self.on_final is not None:
            self.on_final(job)
        self._queue.submit(job)

    def _decode(self, utterance: Utterance, fast: bool) -> Transcript:
        return self.transcriber.transcribe(utterance.audio, fast=fast)

    def _decoded(self, job: Job) -> None:
        if self.on_transcribed is not None:
            self.on_transcribed(job)
        if not job.cancelled:
            self._hand_on(job.call_id)

    def _hand_on(self, call_control_id: str) -> None:
        """Pass on, in the caller's order, every final transcript now ready."""
        ready: list[tuple[Job, str]] = []
        with self._lock:
            order = self._orders.get(call_control_id)
            while order is not None and order.pending and order.pending[0][0].done.is_set():
                ready.append(order.pending.popleft())
            if order is not None and not order.pending:
                del self._orders[call_control_id]
        for job, source_id in ready:
            self._deliveries.submit(call_control_id, functools.partial(self._deliver, job, source_id))

    def _deliver(self, job: Job, source_id: str) -> None:
        transcript = job.transcript
        audio_s = job.utterance.end_s - job.utterance.start_s
        log.info("heard on %s (%.2f s of speech, waited %.2f s, %s): %r", job.call_id, audio_s,
                 job.wait_s or 0.0, "begun in the pause" if job.speculative else "after the turn",
                 transcript.text if transcript else None)
        if transcript is not None and transcript.text and self._sink is not None:
            self._sink(job.call_id, source_id, transcript.text, transcript.confidence, transcript.readings)

    def close(self) -> None:
        """Finish queued transcriptions and stop the workers."""
        self._queue.close()
        self._deliveries.shutdown(wait=True)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued utterance is transcribed (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        return (self._queue.wait_idle(timeout)
                and self._deliveries.wait_idle(max(0.0, deadline - time.monotonic())))
