"""The frustration model's lexical features (insight/lexical.py) and what they are for: mood-only lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from lifeline.insight.base import Reading
from lifeline.insight.lexical import DIM, cues, lexical_features, normalise, word_tokens
from lifeline.insight.understand import Understanding

RULES = Path(__file__).resolve().parent.parent / "examples" / "rules.yaml"


def _threshold(rule: str, key: str) -> float:
    """A calibrated threshold as committed in the example rules (from `python -m training.calibrate`)."""
    document = yaml.safe_load(RULES.read_text())
    return float(next(r[key] for r in document["rules"] if r["name"] == rule))


@pytest.fixture(scope="module")
def understanding() -> Understanding:
    return Understanding()


def test_the_written_and_the_recognised_form_of_a_line_give_the_same_features() -> None:
    written = lexical_features("I'm NOT happy, you've lost my parcel!")
    heard = lexical_features("im not happy youve lost my parcel")
    assert normalise("I'm NOT happy, you've lost my parcel!") == "im not happy youve lost my parcel"
    word_and_char = slice(0, DIM - len(cues("", "")))
    np.testing.assert_array_equal(written[word_and_char], heard[word_and_char])
    assert written.shape == (DIM,)


def test_features_are_the_same_in_every_process() -> None:
    # CRC-32 buckets, not Python's salted hash: the committed weights depend on it
    first = lexical_features("this is beyond a joke")
    assert np.array_equal(first, lexical_features("this is beyond a joke"))
    assert np.count_nonzero(first) > 10


def test_words_after_a_negator_are_marked_as_negated() -> None:
    tokens = word_tokens("i am not happy with this at all".split())
    assert "NOT_happy" in tokens and "NOT_with" in tokens and "NOT_this" in tokens
    assert "NOT_at" not in tokens  # the scope is three words
    assert "NOT_am" not in tokens


def test_cues_see_shouting_blame_and_praise_in_a_complaint() -> None:
    text = "Oh BRILLIANT, you people have lost it AGAIN!"
    exclaim, shouted, blame, _intensifier, sarcasm, _superlative = cues(text, normalise(text))
    assert exclaim > 0 and shouted > 0 and blame > 0 and sarcasm == 1.0
    calm = "Thanks, that's lovely"
    assert cues(calm, normalise(calm))[4] == 0.0  # praise alone is not sarcasm


def test_an_empty_line_has_no_lexical_evidence() -> None:
    assert not np.any(lexical_features(""))


@pytest.mark.parametrize("text", [
    "I am absolutely fuming about how my account has been handled",
    "you lot are the most useless shower I've ever had the misfortune to deal with",
    "this is an utter disgrace and I'm furious",
])
def test_one_strongly_angry_line_reads_as_angry(understanding: Understanding, text: str) -> None:
    assert understanding.analyse(text).frustration_level == "angry"


@pytest.mark.parametrize("text", [
    "my husband passed away on Tuesday and I need to take his name off the bill",
    "someone stole my purse this morning, can you stop my card",
    "thank you so much, that's absolutely brilliant",
    "I'm not angry at all, I'd just like to understand the charge",
    "what happens if my payment is late",
])
def test_calm_lines_with_strong_words_stay_below_the_one_line_threshold(understanding: Understanding,
                                                                          text: str) -> None:
    analysis = understanding.analyse(text)
    assert analysis.frustration["angry"] < _threshold("one_angry_message", "angry_at_least")


def test_heard_lines_mood_is_weighed_over_the_recognisers_readings_and_intents_come_from_the_first(
        understanding: Understanding) -> None:
    first = "I want to speak to a person, this is a disgrace"
    other = "I want to speak to a person, thanks so much"
    alone, calm = understanding.analyse(first), understanding.analyse(other)
    weighed = understanding.analyse(first, readings=[Reading(first, 0.2), Reading(other, 0.4),
                                                     Reading(other + ".", 0.0)])
    for level, p in weighed.frustration.items():
        assert p == pytest.approx(alone.frustration[level] / 3 + 2 * calm.frustration[level] / 3)
    assert alone.frustration["calm"] < weighed.frustration["calm"] < calm.frustration["calm"]
    assert weighed.score == pytest.approx(alone.score / 3 + 2 * calm.score / 3)
    assert weighed.intents == alone.intents
    assert understanding.analyse(first, readings=[Reading(first, 0.7)]) == alone  # one reading: as written


def test_readings_that_carry_no_weight_leave_the_line_as_written_and_an_engines_score_stands(
        understanding: Understanding) -> None:
    first, other = "this is a disgrace", "thanks so much"
    alone = understanding.analyse(first)
    unweighed = [Reading(first, 0.0), Reading(other, 0.0), Reading("  ", 0.9)]
    assert understanding.analyse(first, readings=unweighed) == alone
    scored = understanding.analyse(first, score=0.5, readings=[Reading(first, 0.5), Reading(other, 0.5)])
    assert scored.score == 0.5  # the engine's own score is kept; the frustration is still weighed
    assert scored.frustration["calm"] > alone.frustration["calm"]


def test_an_intent_lost_in_the_first_hearing_counts_from_the_second_hearings_best_reading_when_switched_on(
        understanding: Understanding) -> None:
    garbled, kept = "Perfect, please.", "Person, please, put me through to someone."
    assert understanding.analyse(garbled).intents["wants_person"] < 0.5
    heard = [Reading(garbled, 0.5), Reading(garbled + "!", 0.4), Reading(kept, 0.45, hearing=1)]
    both = Understanding(scorer=understanding.scorer, embedder=understanding.embedder,
                         models=understanding.models, second_hearing_intents=True)
    analysis = both.analyse(garbled, readings=heard)
    assert analysis.intents["wants_person"] >= understanding.analyse(kept).intents["wants_person"] >= 0.9
    assert "wants_person" in analysis.matched  # the reason names the words the second hearing kept


def test_by_default_the_second_hearing_weighs_into_the_mood_and_adds_no_intent(
        understanding: Understanding) -> None:
    garbled, kept = "Perfect, please.", "Person, please, put me through to someone."
    alone, other = understanding.analyse(garbled), understanding.analyse(kept)
    assert alone.intents["wants_person"] < 0.5 <= 0.9 <= other.intents["wants_person"]
    heard = [Reading(garbled, 0.5), Reading(kept, 0.3, hearing=1)]
    analysis = understanding.analyse(garbled, readings=heard)
    assert analysis.intents == alone.intents
    for level, p in analysis.frustration.items():  # the mood: both hearings, weighed by confidence
        assert p == pytest.approx((0.5 * alone.frustration[level] + 0.3 * other.frustration[level]) / 0.8)


def test_a_lesser_reading_of_the_first_hearing_gives_no_intent(understanding: Understanding) -> None:
    garbled, kept = "Perfect, please.", "Person, please, put me through to someone."
    heard = [Reading(garbled, 0.5), Reading(kept, 0.45), Reading(garbled, 0.4, hearing=1)]
    assert understanding.analyse(garbled, readings=heard).intents == understanding.analyse(garbled).intents


def test_the_mood_is_weighed_over_both_hearings_readings(understanding: Understanding) -> None:
    angry, calm = "this is a disgrace", "thanks so much"
    one, two = understanding.analyse(angry), understanding.analyse(calm)
    both = understanding.analyse(angry, readings=[Reading(angry, 0.3), Reading(calm, 0.3, hearing=1)])
    assert both.frustration["calm"] == pytest.approx((one.frustration["calm"] + two.frustration["calm"]) / 2)
