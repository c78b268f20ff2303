"""Sentiment of caller utterances on a labelled list, most of it phrasing the scenarios do not use."""

from __future__ import annotations

import pytest

from lifeline.insight.sentiment import SentimentScorer, label

FRUSTRATED = [
    "I have been waiting for an hour and nobody is helping me",
    "This is ridiculous, I already explained this twice",
    "My card was charged twice and nobody is helping me",
    "Stop wasting my time",
    "This is the worst service I have ever had",
    "I'm fed up with this bank",
    "Why does this never work",
    "This is the third time I'm calling about the same thing",
    "Are you kidding me, it's still not fixed",
    "I'm sick and tired of your useless menu",
    "Oh great, another machine, just what I needed",
    "Wow, fantastic, I've been on hold for forty minutes",
    "This is unacceptable",
    "Honestly this is a joke",
    "How many times do I have to repeat myself",
    "I've been stuck in this menu forever",
    "Nobody ever calls me back",
    "This damn thing keeps hanging up on me",
]
CALM = [
    "I'd like to check my balance please",
    "My card was lost so I need a new one",
    "I think there's a charge I don't recognise",
    "No problem, take your time",
    "It's not bad at all",
    "Great, thanks for your help",
    "Yes that's correct",
    "Can you tell me when my payment is due",
    "I want to change my address",
    "That's fine, thank you",
    "Oh great, that worked, thank you",
    "I need to report a stolen card",
    "Could you help me set up a new payee",
    "Perfect, have a nice day",
    "The wait was a little long but it's okay",
    "I'm not upset, I just have a question",
]


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    return SentimentScorer()


def test_frustrated_and_calm_utterances_are_told_apart(scorer: SentimentScorer) -> None:
    wrong_frustrated = [t for t in FRUSTRATED if scorer.score(t).score > -0.2]
    wrong_calm = [t for t in CALM if scorer.score(t).score < -0.05]
    accuracy = 1 - (len(wrong_frustrated) + len(wrong_calm)) / (len(FRUSTRATED) + len(CALM))
    assert accuracy >= 0.9, f"missed frustration: {wrong_frustrated}; false alarms: {wrong_calm}"


def test_call_centre_layer_beats_plain_vader_on_the_list(scorer: SentimentScorer) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    vader = SentimentIntensityAnalyzer()

    def correct(score_of) -> int:  # type: ignore[no-untyped-def]
        return (sum(score_of(t) <= -0.2 for t in FRUSTRATED) + sum(score_of(t) >= -0.05 for t in CALM))

    ours = correct(lambda t: scorer.score(t).score)
    plain = correct(lambda t: vader.polarity_scores(t)["compound"])
    assert ours > plain


def test_sarcasm_needs_a_cue_and_a_complaint(scorer: SentimentScorer) -> None:
    assert scorer.score("Oh wonderful, another robot").sarcastic
    assert scorer.score("Oh wonderful, another robot").score < 0
    assert not scorer.score("Oh wonderful, that's sorted then").sarcastic
    assert scorer.score("Oh wonderful, that's sorted then").score > 0


def test_scores_stay_in_range_and_carry_labels(scorer: SentimentScorer) -> None:
    for text in FRUSTRATED + CALM + ["", "!!!", "nobody nobody nobody waiting waiting hours hours"]:
        result = scorer.score(text)
        assert -1.0 <= result.score <= 1.0
        assert result.label == label(result.score)


@pytest.mark.parametrize(("score", "expected"), [(-0.5, "negative"), (-0.05, "negative"), (0.0, "neutral"),
                                                 (0.05, "positive"), (0.9, "positive")])
def test_label_bands(score: float, expected: str) -> None:
    assert label(score) == expected
