"""Voice activity: Silero VAD (the ONNX file faster-whisper ships) run with onnxruntime.

One inference session per process, shared by every call (onnxruntime sessions are thread-safe);
each stream keeps its own recurrent state, its last 64 samples of context and an upsampler, and
gets one speech probability per 32 ms window (512 samples at 16 kHz).
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .g711 import Pcm
from .whisper import UPSAMPLE_KERNEL

WINDOW_16K = 512
CONTEXT_16K = 64
WINDOW_8K = WINDOW_16K // 2  # what the caller's 8 kHz stream contributes to one window
WINDOW_S = WINDOW_16K / 16000


def silero_path() -> Path:
    """The Silero VAD model inside the installed faster-whisper."""
    from faster_whisper.utils import get_assets_path

    return Path(get_assets_path()) / "silero_vad_v6.onnx"


class SileroModel:
    """The shared inference session, created on first use.

    The media sockets' receive loops run it on daemon threads, which Python freezes wherever they
    are at exit; onnxruntime torn down under a frozen run aborts the process. So at exit the model
    stops taking new windows and waits (briefly) for the runs in flight.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._session: Any = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = 0
        self._closed = False

    def session(self) -> Any:
        """The onnxruntime session (loaded once)."""
        with self._lock:
            if self._session is None:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                # One thread: a 32 ms window takes well under a millisecond, and calls run side by side.
                options.inter_op_num_threads = 1
                options.intra_op_num_threads = 1
                options.log_severity_level = 4
                self._session = onnxruntime.InferenceSession(
                    str(self._path or silero_path()), providers=["CPUExecutionProvider"],
                    sess_options=options)
                atexit.register(self.close)
            return self._session

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray] | None:
        """One inference, or None once the model is closed."""
        session = self.session()
        with self._lock:
            if self._closed:
                return None
            self._running += 1
        try:
            return list(session.run(None, feeds))
        finally:
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def close(self, timeout_s: float = 2.0) -> None:
        """Take no more windows; wait for those being scored."""
        with self._lock:
            self._closed = True
            self._idle.wait_for(lambda: self._running == 0, timeout_s)


class _Upsampler:
    """8 kHz -> 16 kHz across chunk boundaries (the FIR keeps its history)."""

    def __init__(self) -> None:
        self._history = np.zeros(len(UPSAMPLE_KERNEL) - 1, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        stuffed = np.zeros(2 * len(samples), dtype=np.float32)
        stuffed[::2] = samples
        buffer = np.concatenate([self._history, stuffed])
        self._history = buffer[len(buffer) - len(self._history):]
        return np.convolve(buffer, UPSAMPLE_KERNEL, mode="valid").astype(np.float32)


class VadStream:
    """Speech probabilities of one caller's 8 kHz stream, one per 32 ms window."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_16K, dtype=np.float32)
        self._upsample = _Upsampler()

    def window(self, samples_8k: Pcm) -> float:
        """Probability that this window (exactly WINDOW_8K samples) holds speech."""
        audio = self._upsample(samples_8k.astype(np.float32) / 32768.0)
        framed = np.concatenate([self._context, audio])[np.newaxis, :]
        self._context = audio[-CONTEXT_16K:]
        outputs = self._model.run({"input": framed, "h": self._h, "c": self._c})
        if outputs is None:  # shutting down: hear nothing more
            return 0.0
        probability, self._h, self._c = outputs
        return float(probability.reshape(-1)[0])
