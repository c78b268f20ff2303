"""Train the intent and frustration models from labelled lines: `python -m training.train`.

Reads every utterances*.yaml of the training split (default corpus/train), computes the same
features the app computes, fits the linear models deterministically and writes the weights and
their SHA-256 (default lifeline/insight/models/understanding.json). Run it again on the same corpus and the
same weights come out (tests/test_understand.py retrains and compares them with the committed ones).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from lifeline.insight.classifier import LinearModels, fit_binaries, fit_softmax, save_models
from lifeline.insight.corpus import Utterance, load_split
from lifeline.insight.embedding import SentenceEmbedder
from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS
from lifeline.insight.patterns import find_intents
from lifeline.insight.sentiment import SentimentScorer
from lifeline.insight.understand import DEFAULT_WEIGHTS, FEATURE_COUNT, INTENT_FEATURES, features, intent_view

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "train"
HEARD = "utterances-heard"  # corpus/make_heard.py: lines as the local engine heard them
L2 = 1e-2
FRUSTRATION_L2 = 1e-2
STEPS = 1500
RATE = 0.5


def asr_variant(text: str) -> str:
    """The line as a phone recogniser tends to write it: lower case, no punctuation or apostrophes."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower().replace("'", ""))).strip()


def with_asr_variants(lines: Sequence[Utterance]) -> list[Utterance]:
    """Each line plus its recogniser-style variant (same labels), so the models see both forms."""
    out: list[Utterance] = []
    for line in lines:
        out.append(line)
        variant = asr_variant(line.text)
        if variant and variant != line.text:
            out.append(replace(line, text=variant))
    return out


def train(lines: Sequence[Utterance], embedder: SentenceEmbedder | None = None) -> LinearModels:
    """Fit the models on labelled lines (and their recogniser-style variants)."""
    if not lines:
        raise ValueError("no labelled lines to train on")
    corpus_lines = len(lines)
    lines = with_asr_variants(lines)
    embedder = embedder or SentenceEmbedder()
    scorer = SentimentScorer()
    texts = [u.text for u in lines]
    embeddings = embedder.embed(texts)
    x = np.vstack([features(e, find_intents(t), scorer.score(t), t)
                   for e, t in zip(embeddings, texts, strict=True)])
    ys = np.asarray([[1 if intent in u.intents else 0 for intent in INTENTS] for u in lines], dtype=np.int64)
    weights = fit_binaries(intent_view(x), ys, L2, STEPS, RATE)
    intents = {intent: weights[:, k].copy() for k, intent in enumerate(INTENTS)}
    # Lines as the recogniser heard them teach the intents, not the mood: the words that carry
    # anger are the ones Whisper loses first, and on dev the frustration model got worse with them.
    moody = np.asarray([HEARD not in Path(u.source).name for u in lines])
    levels = np.asarray([FRUSTRATION_LEVELS.index(u.frustration) for u in lines], dtype=np.int64)
    frustration = fit_softmax(x[moody], levels[moody], len(FRUSTRATION_LEVELS), FRUSTRATION_L2,
                              STEPS, RATE)
    meta = {"lines": corpus_lines, "with_variants": len(lines), "l2": L2, "frustration_l2": FRUSTRATION_L2,
            "steps": STEPS, "rate": RATE,
            "positives": {i: sum(1 for u in lines if i in u.intents) for i in INTENTS},
            "levels": {lvl: sum(1 for u in lines if u.frustration == lvl) for lvl in FRUSTRATION_LEVELS}}
    return LinearModels(intents=intents, frustration=frustration, features=FEATURE_COUNT,
                        intent_features=INTENT_FEATURES, meta=meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train and write the weights."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path, default=[DEFAULT_CORPUS],
                        help="split directories or utterances files (default corpus/train)")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights file to write")
    args = parser.parse_args(argv)
    lines = load_split(args.corpus)
    models = train(lines)
    digest = save_models(models, args.out)
    print(f"trained on {len(lines)} lines; wrote {args.out} (sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
