"""What one caller line means: sentiment score, intents with confidences, frustration class.

One `Understanding` is built per app (it holds the embedding model and the weights) and shared by
every request; `analyse` is pure and thread-safe. The same object scores messages in the app and
in `flask evaluate`, so what is measured is what runs.

The probabilities come from one of two models (LIFELINE_UNDERSTANDING): the fine-tuned sentence
encoder of lifeline/insight/tuned.py (default), or logistic models over a line's WordLlama embedding, the
pattern layer's signals per intent (asserted / refused), the VADER + call-centre score and lexical
n-grams (`linear`). Either way the pattern layer then has the last word, because it encodes
structure a bag of word vectors cannot see: an asserted construction lifts the intent to at
least PATTERN_FLOOR (for the threats, leave_or_cancel and legal_or_complaint, only when the
model gives them at least THREAT_GATE); a refused one ("I don't need an agent") caps it at
REFUSED_CAP; and a visit request with no construction either way ("could you send someone
round") caps wants_person at REFUSED_CAP too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lifeline.ivr.config import Settings

from .base import Reading
from .classifier import LinearModels, Matrix, load_models
from .embedding import SentenceEmbedder
from .labels import FRUSTRATION_LEVELS, INTENTS
from .lexical import DIM as LEXICAL_DIM
from .lexical import lexical_features
from .patterns import PatternHits, find_intents
from .sentiment import Sentiment, SentimentScorer, label
from .tuned import TunedModel

DEFAULT_WEIGHTS = Path(__file__).with_name("models") / "understanding.json"
PATTERN_FLOOR = 0.9
# A threat's words ("cancel", "switch", "complaint", "solicitor") are often only mentioned: a calm
# caller's reported speech, a complaints address, the solicitor handling an estate. So for the two
# threat intents the floor needs the model, which reads the whole line, to give the intent at
# least THREAT_GATE. Requests for a person and complaints about the bot are lifted regardless:
# their constructions are requests, and gating them lost callers whom only the patterns caught.
# Chosen with the tuned model on the 842 training calls (round 9, BENCHMARKS.md); the linear
# model rarely gives a threat under 0.05, and its calls did not move.
THREAT_GATE = 0.05
GATED_INTENTS = frozenset({"leave_or_cancel", "legal_or_complaint"})
# The pattern layer's refusals (a negation, a condition or reported speech before a construction)
# cap the intent at REFUSED_CAP. Its cues are words, and polite or plain lines trip them: "I'd be
# grateful *if* you could put me through to someone", "it is easier *if* I speak with some
# person". The tuned model, trained on negations, reported speech and conditions, reads the whole
# line, so for it a refusal caps the intent only when the model gives under REFUSAL_GATE (the
# floor: a model as sure as a pattern outranks a pattern). The linear model takes the refusal as
# one of its inputs, and keeps the cap: gating it there put 3 more callers through and 6 more calm ones
# (round 10, BENCHMARKS.md).
REFUSED_CAP = 0.15
REFUSAL_GATE = PATTERN_FLOOR
_EMBEDDING_SCALE = 4.0  # unit vectors spread over 256 dimensions; scaled to the other features' range


@dataclass(frozen=True)
class Analysis:
    """Everything Lifeline reads from one caller line."""

    score: float
    label: str
    sarcastic: bool = False
    intents: dict[str, float] = field(default_factory=dict)
    frustration: dict[str, float] = field(default_factory=dict)
    matched: dict[str, str] = field(default_factory=dict)

    @property
    def frustration_level(self) -> str:
        """The most probable frustration class ('' when the line was not classified)."""
        return max(self.frustration, key=lambda k: self.frustration[k]) if self.frustration else ""

    def as_record(self) -> dict[str, object]:
        """The JSON-safe form stored with the message and shown in decisions."""
        return {"intents": {k: round(v, 4) for k, v in self.intents.items()},
                "frustration": {k: round(v, 4) for k, v in self.frustration.items()},
                "matched": dict(self.matched)}


# The intent models read the first INTENT_FEATURES (embedding, pattern flags, sentiment); the
# frustration model reads those and the lexical block after them (lifeline/insight/lexical.py).
INTENT_FEATURES = SentenceEmbedder.dim + 2 * len(INTENTS) + 3
FEATURE_COUNT = INTENT_FEATURES + LEXICAL_DIM
# Where the pattern layer's "asserted" flags sit in the feature vector.
_ASSERTED = slice(SentenceEmbedder.dim, SentenceEmbedder.dim + len(INTENTS))


def intent_view(x: Matrix) -> Matrix:
    """The features the intent models read: no lexical block, and no asserted-construction flags.

    The lexical block is the frustration model's: tried on the intents it adds nothing the
    embedding and the pattern layer do not already carry, and it would multiply their weights.

    Trained with those flags, the models learned "no construction, no intent", because on the
    training lines (which the patterns were written beside) the flags are nearly always right; on
    new wording the flag is silent and the model followed it. Without them the models must learn
    the intent from the sentence itself; an asserted construction still lifts the result to
    PATTERN_FLOOR afterwards (a threat only when the model gives it THREAT_GATE).
    """
    view = np.array(x[..., :INTENT_FEATURES], dtype=np.float64, copy=True)
    view[..., _ASSERTED] = 0.0
    return view


def features(embedding: Matrix, hits: PatternHits, sentiment: Sentiment, text: str) -> Matrix:
    """The feature vector of one line (the layout the weights were trained on)."""
    asserted = [1.0 if hits.signals[i] > 0 else 0.0 for i in INTENTS]
    refused = [1.0 if hits.signals[i] < 0 else 0.0 for i in INTENTS]
    tail = [sentiment.score, min(sentiment.score, 0.0) ** 2, 1.0 if sentiment.sarcastic else 0.0]
    return np.concatenate([embedding.astype(np.float64) * _EMBEDDING_SCALE,
                           np.asarray(asserted + refused + tail, dtype=np.float64),
                           lexical_features(text)])


class Understanding:
    """Scores caller lines; build once per process and share (it is read-only).

    Two models, chosen by LIFELINE_UNDERSTANDING: `tuned` (the default) reads intents and
    frustration from the fine-tuned sentence encoder (lifeline/insight/tuned.py); `linear` from the
    logistic models over WordLlama vectors and hand-made features (the previous default, much
    lighter: no encoder to build, 0.5 ms a line). Both keep the pattern layer and the sentiment score.
    """

    def __init__(self, weights: Path = DEFAULT_WEIGHTS, embedder: SentenceEmbedder | None = None,
                 scorer: SentimentScorer | None = None, models: LinearModels | None = None,
                 tuned: TunedModel | None = None, second_hearing_intents: bool = False) -> None:
        self.scorer = scorer or SentimentScorer()
        # Whether an intent read only from a second hearing's best reading counts. Off by default:
        # the second hearing's readings then only weigh into the mood (BENCHMARKS.md, round 22).
        self.second_hearing_intents = second_hearing_intents
        self.tuned = tuned
        self.embedder: SentenceEmbedder | None = None
        self.models: LinearModels | None = None
        if tuned is None:
            self.embedder = embedder or SentenceEmbedder()
            # `models` (already in memory) is for calibration, which scores with freshly trained folds.
            self.models = models or load_models(weights, FEATURE_COUNT, INTENT_FEATURES)

    @property
    def name(self) -> str:
        """Which model scores the lines: tuned or linear."""
        return "linear" if self.tuned is None else "tuned"

    def load(self) -> None:
        """Get the slow part ready now (the tuned model's encoder), not on the first caller's line."""
        if self.tuned is not None:
            self.tuned.load()

    def warm_cache(self) -> None:
        """Build what can be built once for all processes (the tuned encoder's graph) into the cache."""
        if self.tuned is not None:
            self.tuned.warm_cache()

    def learned(self, text: str, hits: PatternHits,
                sentiment: Sentiment) -> tuple[dict[str, float], dict[str, float]]:
        """The model's intent and frustration probabilities, before the pattern layer's word."""
        if self.tuned is not None:
            return self.tuned.probabilities(text)
        assert self.embedder is not None and self.models is not None
        x = features(self.embedder.embed([text])[0], hits, sentiment, text)
        return self.models.intent_probabilities(intent_view(x)), self.models.frustration_probabilities(x)

    def analyse(self, text: str, score: float | None = None, readings: Sequence[Reading] = ()) -> Analysis:
        """Everything about one line; `score` overrides the sentiment when the engine gave one.

        `readings` (a recogniser's, best first: `text`) make the frustration, and the score unless
        the engine gave one, a confidence-weighted mean over every reading, a second hearing's
        included. The intents are read from `text`; with `second_hearing_intents`, also from the
        best reading of a second hearing if there is one, and an intent counts at the higher of
        the two.
        """
        sentiment = self.scorer.score(text)
        if score is not None:
            sentiment = Sentiment(score, label(score), sentiment.sarcastic)
        hits = find_intents(text)
        learned, frustration = self.learned(text, hits, sentiment)
        read = {text: _Read(hits, learned, frustration, sentiment.score)}  # each text is read once
        if len(readings) > 1:
            frustration, mean_score = self._weighed(frustration, sentiment.score, readings, read)
            if score is None:
                sentiment = Sentiment(mean_score, label(mean_score), sentiment.sarcastic)
        intents, matched = self._intents(hits, learned)
        second = _second_hearing(readings) if self.second_hearing_intents else []
        for other in second:
            more, more_matched = self._intents(*self._read(other, read)[:2])
            for intent, p in more.items():
                if p > intents[intent]:
                    intents[intent] = p
                    matched.pop(intent, None)
                    if intent in more_matched:
                        matched[intent] = more_matched[intent]
        return Analysis(score=sentiment.score, label=sentiment.label, sarcastic=sentiment.sarcastic,
                        intents=intents, frustration=frustration, matched=matched)

    def _intents(self, hits: PatternHits,
                 learned: dict[str, float]) -> tuple[dict[str, float], dict[str, str]]:
        """The model's intents with the pattern layer's word on them, and the words behind each lift."""
        intents = {}
        matched = {}  # the words behind a lift; a construction the gate held back explains nothing
        for intent in INTENTS:
            p = learned.get(intent, 0.0)
            if hits.signals[intent] > 0 and (intent not in GATED_INTENTS or p >= THREAT_GATE):
                p = max(p, PATTERN_FLOOR)
                if intent in hits.matched:
                    matched[intent] = hits.matched[intent]
            elif hits.signals[intent] < 0 and (self.tuned is None or p < REFUSAL_GATE):
                p = min(p, REFUSED_CAP)
            elif intent == "wants_person" and hits.visit and hits.signals[intent] == 0.0:
                # Someone wanted at the door and no construction either way: the model reads "send
                # someone round" as asking for a person (0.9 and more), and the visit outranks it.
                # A refused construction keeps the refusal's own rule (REFUSAL_GATE) above.
                p = min(p, REFUSED_CAP)
            intents[intent] = p
        return intents, matched

    def _read(self, text: str, read: dict[str, _Read]) -> _Read:
        """One line read by the pattern layer and the model (once per text: `read` keeps them)."""
        if text not in read:
            hits = find_intents(text)
            sentiment = self.scorer.score(text)
            learned, frustration = self.learned(text, hits, sentiment)
            read[text] = _Read(hits, learned, frustration, sentiment.score)
        return read[text]

    def _weighed(self, frustration: dict[str, float], score: float, readings: Sequence[Reading],
                 read: dict[str, _Read]) -> tuple[dict[str, float], float]:
        """Frustration and score as a confidence-weighted mean over the readings.

        A garbled best reading ("How is God? Let's do that.", angry at 0.997) no longer decides the
        mood alone when another reading is nearer what was said ("That was good..."). Intents are
        not weighed: a lost intent word is mostly lost from every reading, so a mean only dilutes
        the reading that kept it, and that lost callers (BENCHMARKS.md, rounds 12 and 14).
        """
        readings = [r for r in readings if r.text.strip() and r.confidence > 0.0]
        total = sum(r.confidence for r in readings)
        if total <= 0.0:
            return frustration, score
        mean, mean_score = dict.fromkeys(frustration, 0.0), 0.0
        for reading in readings:
            seen = self._read(reading.text, read)
            weight = reading.confidence / total
            mean_score += weight * seen.score
            for level in mean:
                mean[level] += weight * seen.frustration.get(level, 0.0)
        return mean, mean_score


class _Read(NamedTuple):
    """What the pattern layer and the model made of one text."""

    hits: PatternHits
    learned: dict[str, float]
    frustration: dict[str, float]
    score: float


def _second_hearing(readings: Sequence[Reading]) -> list[str]:
    """The best reading of a second hearing (its first reading), if the recogniser heard twice."""
    return [r.text for r in readings if r.hearing == 1 and r.text.strip()][:1]


def understanding_from(settings: Settings) -> Understanding:
    """The Understanding LIFELINE_UNDERSTANDING names (the tuned encoder is built on first use)."""
    intents = settings.second_hearing_intents
    if settings.understanding == "linear":
        return Understanding(second_hearing_intents=intents)
    return Understanding(tuned=TunedModel(cache_dir=settings.model_cache_dir), second_hearing_intents=intents)


__all__ = ["Analysis", "FRUSTRATION_LEVELS", "INTENTS", "Understanding", "understanding_from"]
