"""Endpointing: cut a caller's 8 kHz PCM into utterances with Silero VAD.

A turn starts at the first 32 ms window whose speech probability reaches `threshold` (with
`preroll_s` of audio before it, so the first syllable is whole). Once the probability has stayed
below `release` for `pause_s`, the cutter offers a *tentative* utterance: the audio so
far, which a listener may start transcribing at once. If the silence lasts `end_s`, the turn is
over and the same utterance comes back as *final*; if the caller speaks again first, the turn
goes on and the tentative one is void. The final utterance of an uninterrupted pause carries
exactly the tentative one's audio, so a transcript begun on the tentative one is the answer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from .g711 import Pcm
from .vad import WINDOW_8K, WINDOW_S, SileroModel, VadStream

SAMPLE_RATE = 8000
MAX_UTTERANCE_S = 20.0  # a caller who never pauses is cut here so their words still get heard


@dataclass(frozen=True)
class Utterance:
    """One stretch of caller speech: its samples, where its speech sits in the stream (seconds),
    and whether the turn is over (`final`) or only paused (a tentative cut)."""

    audio: Pcm
    start_s: float
    end_s: float
    final: bool = True

    def same_audio(self, other: Utterance) -> bool:
        """True when both cover the same stretch of the stream (a confirmed tentative cut)."""
        return (self.start_s, self.end_s, len(self.audio)) == (other.start_s, other.end_s, len(other.audio))


@dataclass(frozen=True)
class EndpointConfig:
    """The cutter's knobs; the defaults come from the sweep in BENCHMARKS.md."""

    # Silero scores espeak's phone-band "yeah", "zero", "correct" at 0.2-0.45 only, so the usual
    # 0.5 lost 8 of 92 labelled utterances; 0.2 loses 1 (a 0.3 s "four") and splits none at 0.4 s.
    threshold: float = 0.2
    release: float = 0.1  # below this a window is silence (hysteresis under `threshold`)
    pause_s: float = 0.1
    end_s: float = 0.5
    preroll_s: float = 0.4  # Silero is slow to score a soft onset ("I already..."): 0.2 s clipped it
    min_speech_s: float = 0.09  # shorter blips (a click, a breath) are not speech

    def windows(self, seconds: float) -> int:
        """How many 32 ms windows cover `seconds` (at least one)."""
        return max(1, round(seconds / WINDOW_S))


class UtteranceCutter:
    """Feed PCM of any chunk size; get tentative and final utterances back."""

    def __init__(self, model: SileroModel | None = None, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self._vad = VadStream(model or SileroModel())  # engines pass their one shared model
        self._pending = np.zeros(0, dtype=np.int16)
        self._preroll: deque[Pcm] = deque(maxlen=self.config.windows(self.config.preroll_s))
        self._turn: list[Pcm] = []  # windows of the current turn, preroll included
        self._voiced_windows = 0  # windows of the turn at or above the threshold
        self._last_voiced = 0  # index in _turn just past the last voiced window
        self._quiet = 0  # consecutive windows below the release threshold
        self._start_s = 0.0
        self._tentative: Utterance | None = None
        self._windows_fed = 0
        self.probabilities: list[float] = []  # kept only when `record` is set (tuning, tests)
        self.record = False

    @property
    def fed_s(self) -> float:
        """Seconds of audio fed so far (the stream's clock, up to the last whole window)."""
        return self._windows_fed * WINDOW_S

    def feed(self, samples: Pcm) -> list[Utterance]:
        """Add samples; returns the utterances (tentative or final) cut within them."""
        self._pending = np.concatenate([self._pending, samples])
        cut: list[Utterance] = []
        while len(self._pending) >= WINDOW_8K:
            window, self._pending = self._pending[:WINDOW_8K], self._pending[WINDOW_8K:]
            probability = self._vad.window(window)
            self._windows_fed += 1
            if self.record:
                self.probabilities.append(probability)
            found = self._step(window, probability)
            if found is not None:
                cut.append(found)
        return cut

    def close(self) -> Utterance | None:
        """End of stream: whatever the caller was still saying, as a final utterance."""
        if not self._turn:
            return None
        return self._finish(self._last_voiced or len(self._turn))

    def _step(self, window: Pcm, probability: float) -> Utterance | None:
        config = self.config
        if not self._turn:
            if probability < config.threshold:
                self._preroll.append(window)
                return None
            self._turn = [*self._preroll, window]
            self._preroll.clear()
            self._start_s = self.fed_s - len(self._turn) * WINDOW_S
            self._voiced_windows, self._last_voiced, self._quiet = 1, len(self._turn), 0
            return None
        self._turn.append(window)
        if probability >= config.release:
            if probability >= config.threshold:
                self._voiced_windows += 1
            self._last_voiced = len(self._turn)
            self._quiet = 0
            self._tentative = None  # the caller went on: a cut offered in the pause is void
            if len(self._turn) * WINDOW_S >= MAX_UTTERANCE_S:
                return self._finish(len(self._turn))
            return None
        self._quiet += 1
        if self._voiced_windows * WINDOW_S < config.min_speech_s:
            if self._quiet >= config.windows(config.end_s):
                self._reset()  # a blip, not a turn
            return None
        if self._quiet == config.windows(config.end_s):
            return self._finish(len(self._turn))
        if self._quiet == config.windows(config.pause_s):
            self._tentative = self._utterance(len(self._turn), final=False)
            return self._tentative
        return None

    def _finish(self, windows: int) -> Utterance | None:
        tentative = self._tentative
        if tentative is not None:
            done = replace(tentative, final=True)
        elif self._voiced_windows * WINDOW_S >= self.config.min_speech_s:
            done = self._utterance(min(windows, len(self._turn)), final=True)
        else:
            done = None
        self._reset()
        return done

    def _utterance(self, windows: int, final: bool) -> Utterance:
        # The audio runs to `windows` (speech plus the pause heard so far); the speech itself ends
        # with the last voiced window.
        audio = np.concatenate(self._turn[:windows])
        end_s = self._start_s + self._last_voiced * WINDOW_S
        return Utterance(audio, round(self._start_s, 3), round(end_s, 3), final)

    def _reset(self) -> None:
        self._turn, self._tentative = [], None
        self._voiced_windows = self._last_voiced = self._quiet = 0
