"""Choose the rules' thresholds from held-out training lines: `python -m training.calibrate`.

Thresholds picked by eye on the lines a model was trained on are too low for callers it has never
heard (on those lines it is sure of everything). So: the hand-written training lines are cut into
K folds; for each fold the models are trained on the other folds plus every generated line, and
the held-out fold is scored. Over these out-of-fold scores, each threshold is the lowest on a grid
whose precision reaches its target (the highest recall that keeps precision):

- `caller_intent.min_confidence`: a line carries an intent (micro over the four intents);
- `one_angry_message.angry_at_least`: P(angry) on lines labelled angry;
- `annoyed_twice.min_probability`: P(annoyed or angry) on lines labelled annoyed or angry.

It prints the table and the values to put in rules.yaml; it never writes rules.yaml (a user's
rules are theirs). Dev and test are not read. Deterministic: fold i holds lines i, i+K, i+2K...
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lifeline.insight.corpus import Utterance, load_split
from lifeline.insight.embedding import SentenceEmbedder
from lifeline.insight.labels import INTENTS
from lifeline.insight.understand import Analysis, Understanding
from training.train import DEFAULT_CORPUS, HEARD, train

GRID = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 ... 0.95
GENERATED = "utterances-generated"


def curve(scores: Sequence[tuple[float, bool]]) -> list[tuple[float, float, float]]:
    """(threshold, precision, recall) at every grid point."""
    positives = sum(1 for _, truth in scores if truth)
    points = []
    for threshold in GRID:
        predicted = [truth for score, truth in scores if score >= threshold]
        tp = sum(predicted)
        points.append((threshold, tp / len(predicted) if predicted else 1.0,
                       tp / positives if positives else 0.0))
    return points


@dataclass(frozen=True)
class Choice:
    """One threshold: the value and the out-of-fold precision/recall at it."""

    name: str
    threshold: float
    precision: float
    recall: float
    target: float


def out_of_fold(lines: Sequence[Utterance], folds: int,
                embedder: SentenceEmbedder | None = None) -> list[tuple[Utterance, Analysis]]:
    """Every hand-written line scored by models that did not see it (generated lines always train).

    A line as the recogniser heard it (corpus/make_heard.py, note "heard: <original>") goes into
    its original's fold, so no model is scored on a line whose other form it was trained on.
    """
    embedder = embedder or SentenceEmbedder()
    generated = [u for u in lines if GENERATED in Path(u.source).name]
    heard = [u for u in lines if HEARD in Path(u.source).name]
    written = [u for u in lines if GENERATED not in Path(u.source).name and HEARD not in Path(u.source).name]
    fold_of = {u.text: i % folds for i, u in enumerate(written)}
    heard_fold = [fold_of.get(u.note.removeprefix("heard: "), -1) for u in heard]
    scored: list[tuple[Utterance, Analysis]] = []
    for fold in range(folds):
        held = written[fold::folds]
        rest = [u for i, u in enumerate(written) if i % folds != fold]
        rest += [u for u, f in zip(heard, heard_fold, strict=True) if f != fold]
        understanding = Understanding(models=train(rest + generated, embedder), embedder=embedder)
        scored.extend((u, understanding.analyse(u.text)) for u in held)
    return scored


def choose(name: str, scores: Sequence[tuple[float, bool]], target: float) -> Choice:
    """The lowest grid threshold whose precision reaches `target` (else the one with the best precision)."""
    best: Choice | None = None
    for threshold, precision, recall in curve(scores):
        choice = Choice(name, threshold, precision, recall, target)
        if precision >= target:
            return choice
        if best is None or precision > best.precision:
            best = choice
    assert best is not None
    return best


def _pairs(scored: Sequence[tuple[Utterance, Analysis]],
           score: Callable[[Analysis], float],
           truth: Callable[[Utterance], bool]) -> list[tuple[float, bool]]:
    return [(score(a), truth(u)) for u, a in scored]


def calibrate(scored: Sequence[tuple[Utterance, Analysis]], intent_precision: float,
              angry_precision: float, annoyed_precision: float) -> list[Choice]:
    """The three thresholds over out-of-fold scores."""
    intent_pairs = [(a.intents.get(i, 0.0), i in u.intents) for u, a in scored for i in INTENTS]
    return [
        choose("caller_intent.min_confidence", intent_pairs, intent_precision),
        choose("one_angry_message.angry_at_least",
               _pairs(scored, lambda a: a.frustration.get("angry", 0.0), lambda u: u.frustration == "angry"),
               angry_precision),
        choose("annoyed_twice.min_probability",
               _pairs(scored, lambda a: a.frustration.get("annoyed", 0.0) + a.frustration.get("angry", 0.0),
                      lambda u: u.frustration != "calm"),
               annoyed_precision),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the chosen thresholds."""
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path, default=[DEFAULT_CORPUS])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--intent-precision", type=float, default=0.97)
    parser.add_argument("--angry-precision", type=float, default=0.90)
    parser.add_argument("--annoyed-precision", type=float, default=0.85)
    args = parser.parse_args(argv)
    scored = out_of_fold(load_split(args.corpus), args.folds)
    print(f"out-of-fold lines: {len(scored)} ({args.folds} folds; generated lines always in training)")
    for choice in calibrate(scored, args.intent_precision, args.angry_precision, args.annoyed_precision):
        print(f"  {choice.name:36s} {choice.threshold:.2f}   precision {choice.precision:.3f} "
              f"(target {choice.target:.2f})  recall {choice.recall:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
