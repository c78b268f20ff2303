"""Small linear models over sentence features, in numpy: trained by training/train.py, loaded here.

Intents are independent yes/no questions (a line can ask for a person *and* threaten to leave),
so each gets its own logistic regression; frustration is one softmax over calm/annoyed/angry.
Training is full-batch gradient descent from zeros with a fixed number of steps: no randomness,
so the same corpus gives the same weights (the reproducibility test relies on it).

Weights live in a JSON file whose SHA-256 is kept beside it (`<file>.sha256`); a file that does
not match is refused at start-up, so a hand-edited or half-written model never scores a call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lifeline.ivr.errors import ConfigError

from .labels import FRUSTRATION_LEVELS

FORMAT = "lifeline-understanding/2"
Matrix = npt.NDArray[np.float64]


def sigmoid(z: Matrix) -> Matrix:
    """The logistic function, element-wise (clipped so that no exp overflows)."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0))), dtype=np.float64)


def softmax(z: Matrix) -> Matrix:
    """Softmax over the last axis (one row of logits, or one per line)."""
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True), dtype=np.float64)


def _balanced_weights(y: npt.NDArray[np.int64], classes: int) -> Matrix:
    """Per-sample weights so that every class counts as much in total (rare intents matter)."""
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    per_class = np.where(counts > 0, len(y) / (classes * np.maximum(counts, 1.0)), 0.0)
    return np.asarray(per_class[y], dtype=np.float64)


class TrainingMatrix:
    """A training matrix with its bias column, its mostly-zero columns kept as (row, column, value).

    The hashed word and character features (lifeline/insight/lexical.py) are about 98 % zeros: multiplied
    as a dense matrix they were most of a training run's time (the frustration model alone took
    minutes). The products below give the dense ones' results, summed in another order, so
    weights agree to rounding (far inside the reproducibility test's 1e-6).
    """

    # Below this share of non-zero entries a column is kept sparse. It decides speed only (any cut
    # gives the same weights to rounding): the hashed features average 2 % non-zero and the
    # embedding columns near 100 %, and a sparse product pays off only well under about a tenth.
    SPARSE_BELOW = 0.05

    def __init__(self, x: Matrix) -> None:
        self.rows_count, features = x.shape
        sparse = (x != 0).mean(axis=0) < self.SPARSE_BELOW
        self.dense_at = np.append(np.flatnonzero(~sparse), features)  # the bias is the last weight
        self.dense = np.hstack([x[:, ~sparse], np.ones((self.rows_count, 1))])
        self.sparse_at = np.flatnonzero(sparse)
        part = x[:, sparse]
        self.rows, self.cols = np.nonzero(part)
        self.values = part[self.rows, self.cols]
        self.size = features + 1

    def dot(self, w: Matrix) -> Matrix:
        """x @ w (with the bias) for weights of shape (features + 1, k)."""
        out: Matrix = self.dense @ w[self.dense_at]
        sparse_w = w[self.sparse_at]
        for k in range(w.shape[1]):
            out[:, k] += np.bincount(self.rows, self.values * sparse_w[self.cols, k], self.rows_count)
        return out

    def tdot(self, e: Matrix) -> Matrix:
        """x.T @ e (with the bias) for per-line errors of shape (lines, k)."""
        out = np.empty((self.size, e.shape[1]))
        out[self.dense_at] = self.dense.T @ e
        for k in range(e.shape[1]):
            products = self.values * e[self.rows, k]
            out[self.sparse_at, k] = np.bincount(self.cols, products, len(self.sparse_at))
        return out


def _descend(x: Matrix, target: Matrix, sample: Matrix, link: Callable[[Matrix], Matrix], l2: float,
             steps: int, rate: float) -> Matrix:
    """Full-batch gradient descent from zeros on a weighted log loss: weights (features + 1, k).

    `link` turns each line's scores into predictions (sigmoid per column, or softmax across them);
    each column's gradient is divided by its own total sample weight, so columns fitted side by
    side get the weights each would get alone. The bias (last row) is not regularised.
    """
    xb = TrainingMatrix(x)
    w = np.zeros((xb.size, target.shape[1]))
    total = sample.sum(axis=0)
    for _ in range(steps):
        error = (link(xb.dot(w)) - target) * sample
        gradient = xb.tdot(error) / total
        gradient[:-1] += l2 * w[:-1]
        w -= rate * gradient
    return w


def fit_binaries(x: Matrix, ys: npt.NDArray[np.int64], l2: float, steps: int, rate: float) -> Matrix:
    """One logistic regression per column of `ys` (0/1), fitted side by side: weights (features + 1, k).

    Every step reads the training matrix once for all the intents instead of once each.
    """
    sample = np.column_stack([_balanced_weights(ys[:, k], 2) for k in range(ys.shape[1])])
    return _descend(x, ys.astype(np.float64), sample, sigmoid, l2, steps, rate)


def fit_softmax(x: Matrix, y: npt.NDArray[np.int64], classes: int, l2: float, steps: int,
                rate: float) -> Matrix:
    """Multinomial logistic regression weights, shape (features + 1, classes)."""
    sample = _balanced_weights(y, classes)[:, None]
    return _descend(x, np.eye(classes)[y], sample, softmax, l2, steps, rate)


@dataclass(frozen=True)
class LinearModels:
    """Weights of the intent and frustration models over one feature layout."""

    intents: dict[str, Matrix]  # intent -> (intent_features + 1,)
    frustration: Matrix  # (features + 1, len(FRUSTRATION_LEVELS))
    features: int
    intent_features: int  # the intents read the first this many features (see intent_view)
    meta: dict[str, Any]

    def intent_probabilities(self, x: Matrix) -> dict[str, float]:
        """P(intent) for one feature vector."""
        xb = np.append(x, 1.0)
        return {name: float(sigmoid(np.asarray(xb @ w))) for name, w in self.intents.items()}

    def frustration_probabilities(self, x: Matrix) -> dict[str, float]:
        """P(calm), P(annoyed), P(angry) for one feature vector."""
        xb = np.append(x, 1.0)[None, :]
        p = softmax(xb @ self.frustration)[0]
        return {level: float(p[i]) for i, level in enumerate(FRUSTRATION_LEVELS)}

    def to_json(self) -> str:
        """Stable text form: the same weights always give the same bytes."""
        document = {
            "format": FORMAT, "features": self.features, "intent_features": self.intent_features,
            "meta": self.meta,
            "frustration_levels": list(FRUSTRATION_LEVELS),
            "intents": {name: [float(v) for v in w] for name, w in self.intents.items()},
            "frustration": [[float(v) for v in row] for row in self.frustration],
        }
        return json.dumps(document, indent=0, sort_keys=True) + "\n"


def checksum_path(path: Path) -> Path:
    """Where the SHA-256 of a weights file is kept."""
    return path.with_name(path.name + ".sha256")


def save_models(models: LinearModels, path: Path) -> str:
    """Write the weights and their SHA-256; returns the checksum."""
    text = models.to_json().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    digest = hashlib.sha256(text).hexdigest()
    checksum_path(path).write_text(f"{digest}  {path.name}\n")
    return digest


def load_models(path: Path, expected_features: int, expected_intent_features: int) -> LinearModels:
    """Read weights after checking their SHA-256; ConfigError says what is wrong and how to fix it."""
    fix = "retrain with `python -m training.train` or restore the file from git"
    if not path.is_file():
        raise ConfigError(f"model weights {path} are missing; {fix}")
    raw = path.read_bytes()
    sums = checksum_path(path)
    if not sums.is_file():
        raise ConfigError(f"model weights {path} have no checksum file {sums.name}; {fix}")
    expected = sums.read_text().split()[0] if sums.read_text().split() else ""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise ConfigError(f"model weights {path} have SHA-256 {actual}, but {sums.name} says "
                          f"{expected}; {fix}")
    try:
        document = json.loads(raw)
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT!r}")
        features = int(document["features"])
        intent_features = int(document["intent_features"])
        intents = {name: np.asarray(w, dtype=np.float64) for name, w in document["intents"].items()}
        frustration = np.asarray(document["frustration"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model weights {path} are unreadable ({exc}); {fix}") from exc
    if features != expected_features or intent_features != expected_intent_features \
            or frustration.shape != (features + 1, len(FRUSTRATION_LEVELS)) \
            or any(w.shape != (intent_features + 1,) for w in intents.values()):
        raise ConfigError(f"model weights {path} were trained on {features} features but this version "
                          f"computes {expected_features}; {fix}")
    return LinearModels(intents=intents, frustration=frustration, features=features,
                        intent_features=intent_features, meta=dict(document.get("meta", {})))
