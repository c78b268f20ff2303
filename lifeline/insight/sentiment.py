"""Sentiment of one caller utterance: VADER plus a call-centre layer, scored in [-1, 1].

VADER alone misreads phone complaints: "please" and "help" count as positive, "nobody is helping
me" as neutral, banking topics ("lost card", "charge") as anger, and sarcasm ("oh great, another
robot") as delight. The layer below fixes those in three general ways rather than per sentence:

1. word re-weighting: topic words of banking and support become neutral, courtesy words weak;
2. frustration phrases: multi-word complaints add valence as if they were lexicon entries;
3. sarcasm: a cue ("oh great", "just fantastic") inside a complaint turns praise into blame.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

NEGATIVE_BELOW = -0.05
POSITIVE_ABOVE = 0.05
_VADER_ALPHA = 15.0  # VADER's normalisation constant: compound = s / sqrt(s^2 + alpha)

# Valences on VADER's -4..+4 scale.
WORD_WEIGHTS: dict[str, float] = {
    # The subject of the call, not the caller's mood.
    "lost": -0.2, "stolen": -0.3, "block": 0.0, "blocked": -0.2, "charge": 0.0, "charged": -0.3,
    "fee": -0.2, "fees": -0.2, "debt": -0.3, "fraud": -0.5, "dispute": -0.2, "overdraft": -0.2,
    "late": -0.3, "cancel": -0.2, "problem": -0.6, "issue": -0.2, "wrong": -0.8,
    # Courtesy and discourse markers, not praise.
    "please": 0.3, "honestly": 0.0, "help": 0.4, "helps": 0.4, "helping": 0.4, "like": 0.3,
    "okay": 0.3, "ok": 0.3,
    # Complaint words VADER lacks or underweights.
    "unbelievable": -1.8, "unacceptable": -2.4, "garbage": -2.2, "useless": -2.2, "robot": -0.6,
    "frustrating": -2.0, "frustrated": -2.0, "joke": -0.8, "pathetic": -2.4, "incompetent": -2.4,
    "ridiculous": -2.2, "nonsense": -1.8, "rubbish": -2.0,
}

FRUSTRATION_PHRASES: tuple[tuple[str, float], ...] = (
    (r"\b(nobody|no one|no-one)\b.{0,15}\b(help|helps|helping|listen|listens|listening|cares|answer)", -2.6),
    (r"\b(wait|waiting|waited|on hold|holding)\b.{0,20}\b(an hour|hours|forever|ages|all day|"
     r"\d+ minutes|(ten|fifteen|twenty|thirty|forty|forty five|sixty) minutes)", -2.2),
    (r"\b(still|again)\b.{0,12}\b(not|isn't|hasn't|haven't|wasn't|doesn't|didn't)\b.{0,12}"
     r"\b(fixed|working|resolved|sorted|done|arrived|refunded)", -2.2),
    (r"\b(still|again)\b.{0,6}\b(broken|wrong|waiting|charged|nothing)", -1.8),
    (r"\balready (explained|told|called|asked|sent|tried)\b", -1.6),
    (r"\b(sick|tired) (of|and tired)\b", -2.6),
    (r"\bfed up\b", -2.6),
    (r"\b(never|doesn't|does not|don't|won't|can't) (work|works|working|help|fix)\b", -1.6),
    (r"\b(waste|wasting|wasted) (of )?(my )?time\b", -2.6),
    (r"\bstuck (in|on|with)\b", -1.6),
    (r"\b(another|stupid|useless|this) (robot|machine|menu|recording)\b", -1.2),
    (r"\b(are you (kidding|serious|joking))\b", -2.0),
    (r"\b(second|third|fourth|fifth|\d+(st|nd|rd|th)) time\b", -1.2),
    (r"\b(how many times|over and over)\b", -1.8),
    (r"\b(someone|somebody|anyone|a person) who (can|will) (actually )?(help|fix|listen)", -1.8),
    (r"\b(cancel|close) (my|the) (account|card|service)\b", -0.8),
    (r"\bfor (god's|heaven's|pete's) sake\b", -2.0),
    (r"\bwhat (the hell|a joke)\b", -2.2),
)

_SARCASM_CUE = re.compile(
    r"\b(oh|yeah|yay|wow|just|oh so|how)\W{0,2}\s*(great|wonderful|fantastic|perfect|brilliant|lovely|"
    r"terrific|marvell?ous|awesome|nice|helpful)\b"
    r"|\b(great|wonderful|fantastic|perfect|brilliant|lovely|terrific)\W{0,2}\s*(another|more)\b",
    re.IGNORECASE)
_COMPLAINT_CONTEXT = re.compile(
    r"\b(stuck|waiting|waited|hold|robot|machine|menu|minutes|hours|again|still|nobody|another|"
    r"never|nothing|broken|useless)\b", re.IGNORECASE)
_PHRASES = tuple((re.compile(p, re.IGNORECASE), v) for p, v in FRUSTRATION_PHRASES)


@dataclass(frozen=True)
class Sentiment:
    """A score in [-1, 1] (negative is unhappy) and its label."""

    score: float
    label: str
    sarcastic: bool = False


class SentimentScorer:
    """Scores caller utterances; build once per process and share (it is read-only)."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update(WORD_WEIGHTS)

    def score(self, text: str) -> Sentiment:
        """Score one utterance."""
        compound = self._vader.polarity_scores(text)["compound"]
        extra = sum(valence for pattern, valence in _PHRASES if pattern.search(text))
        if extra:
            compound = _add_valence(compound, extra)
        sarcastic = bool(_SARCASM_CUE.search(text) and _COMPLAINT_CONTEXT.search(text))
        if sarcastic and compound > 0:
            compound = -compound
        compound = round(max(-1.0, min(1.0, compound)), 4)
        return Sentiment(compound, label(compound), sarcastic)


def label(score: float) -> str:
    """negative | neutral | positive, by VADER's conventional bands."""
    if score <= NEGATIVE_BELOW:
        return "negative"
    if score >= POSITIVE_ABOVE:
        return "positive"
    return "neutral"


def _add_valence(compound: float, valence: float) -> float:
    """Combine extra valence with VADER's compound as if it were one more lexicon hit."""
    c = max(-0.9999, min(0.9999, compound))
    raw = c * math.sqrt(_VADER_ALPHA) / math.sqrt(1 - c * c)
    raw += valence
    return raw / math.sqrt(raw * raw + _VADER_ALPHA)
