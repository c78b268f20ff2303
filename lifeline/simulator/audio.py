"""Scenario audio: any WAV (8 kHz mu-law, or PCM at any rate) as the PCMU a phone leg carries."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from lifeline.insight.g711 import decode, encode_ulaw

FRAME_BYTES = 160  # 20 ms of PCMU at 8 kHz
SPEECH_FLOOR = 64  # |sample| above this is sound: -54 dBFS of a 16-bit full scale


def silence(seconds: float) -> bytes:
    """PCMU silence (0xFF is mu-law zero), in whole 20 ms frames."""
    return b"\xff" * FRAME_BYTES * round(seconds * 50)


def true_speech_end(samples: np.ndarray) -> float | None:
    """Seconds from the start to just after the last sample above -54 dBFS (None if silent)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SPEECH_FLOOR)
    return None if len(loud) == 0 else (int(loud[-1]) + 1) / 8000


def trailing_silence_s(pcmu: bytes) -> float:
    """Seconds after the true end of speech: how much later than the words the last frame comes
    (espeak and phone lines leave near-silence after them)."""
    samples = decode(pcmu, "PCMU")
    return (len(samples) / 8000) - (true_speech_end(samples) or 0.0)


@lru_cache(maxsize=256)
def load_pcmu(path: Path) -> bytes:
    """Decode, downmix and resample a recording to 8 kHz, then encode it as PCMU."""
    import av  # ships with faster-whisper; only the local engine's simulations need it

    resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, dtype=np.int16)
    return encode_ulaw(samples)
