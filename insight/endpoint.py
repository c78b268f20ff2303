"""Endpointing: cut a stream of 8 kHz PCM into utterances with pocketsphinx's VAD endpointer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pocketsphinx import Endpointer

from .g711 import Pcm

SAMPLE_RATE = 8000
MAX_UTTERANCE_S = 20.0  # a caller who never pauses is cut here so their words still get heard


@dataclass(frozen=True)
class Utterance:
    """One stretch of caller speech: its samples and where it sits in the stream (seconds)."""

    audio: Pcm
    start_s: float
    end_s: float


class UtteranceCutter:
    """Feeds PCM of any chunk size to the endpointer in the frames it wants; yields utterances."""

    def __init__(self, window_s: float = 0.3) -> None:
        self._endpointer = Endpointer(window=window_s, sample_rate=SAMPLE_RATE, frame_length=0.02)
        self._frame_samples = self._endpointer.frame_bytes // 2
        self._pending = np.zeros(0, dtype=np.int16)
        self._speech: list[Pcm] = []
        self._start_s = 0.0
        self._fed_s = 0.0

    @property
    def fed_s(self) -> float:
        """Seconds of audio fed so far (the stream's clock)."""
        return self._fed_s

    @property
    def in_speech(self) -> bool:
        """True while the caller is talking."""
        return bool(self._endpointer.in_speech)

    def feed(self, samples: Pcm) -> list[Utterance]:
        """Add samples; returns the utterances that ended within them."""
        self._pending = np.concatenate([self._pending, samples])
        done: list[Utterance] = []
        while len(self._pending) >= self._frame_samples:
            frame, self._pending = (self._pending[:self._frame_samples],
                                    self._pending[self._frame_samples:])
            self._fed_s += self._frame_samples / SAMPLE_RATE
            was_speaking = self._endpointer.in_speech
            speech = self._endpointer.process(frame.tobytes())
            if speech is None:
                continue
            if not was_speaking:
                self._speech, self._start_s = [], self._endpointer.speech_start
            self._speech.append(np.frombuffer(speech, dtype=np.int16))
            if not self._endpointer.in_speech or self._fed_s - self._start_s > MAX_UTTERANCE_S:
                done.append(self._cut())
        return done

    def close(self) -> Utterance | None:
        """End of stream: whatever the caller was still saying."""
        if not self._endpointer.in_speech:
            return None
        tail = self._endpointer.end_stream(np.zeros(self._frame_samples, dtype=np.int16).tobytes())
        if tail:
            self._speech.append(np.frombuffer(tail, dtype=np.int16))
        return self._cut() if self._speech else None

    def _cut(self) -> Utterance:
        audio = np.concatenate(self._speech)
        self._speech = []
        return Utterance(audio, self._start_s, self._start_s + len(audio) / SAMPLE_RATE)
