"""The caller-intent layer, the frustration classifier and the rules that read them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lifeline.insight.classifier import TrainingMatrix, checksum_path, fit_binaries, fit_softmax, load_models
from lifeline.insight.corpus import load_split
from lifeline.insight.embedding import PINNED_FILES, verify_files
from lifeline.insight.patterns import find_intents, normalise
from lifeline.insight.tuned import TunedModel
from lifeline.insight.understand import (
    DEFAULT_WEIGHTS,
    FEATURE_COUNT,
    INTENT_FEATURES,
    REFUSED_CAP,
    Understanding,
)
from lifeline.ivr.errors import ConfigError
from lifeline.ivr.store import Message
from lifeline.transfer.rules import RuleSet, load_rules
from training.train import DEFAULT_CORPUS, train

from .conftest import ROOT


@pytest.fixture(scope="module", params=["tuned", "linear"])
def understanding(request: pytest.FixtureRequest) -> Understanding:
    """Both models LIFELINE_UNDERSTANDING offers must pass the behaviour tests below."""
    return Understanding(tuned=TunedModel()) if request.param == "tuned" else Understanding()


# Phrasings written for these tests (not in the corpus): ordinary, regional and ASR-like.
ASSERTED = {
    "wants_person": ["Would you mind connecting me with a staff member",
                     "pass me on to anybody who works there",
                     "i want to talk to an actual human",
                     "Supervisor, please",
                     "can somebody from customer care ring me"],
    "leave_or_cancel": ["I'll be shutting the joint account and going elsewhere",
                        "that's it, we're moving to a different provider",
                        "I am finished with your company",
                        "if the refund isn't here by Monday we are moving to another supplier"],
    "legal_or_complaint": ["my solicitor will be writing to you",
                           "I'm lodging a written complaint today",
                           "this is going straight to the ombudsman"],
    "bot_complaint": ["this daft machine never understands me",
                      "I've gone round in circles three times",
                      "none of those options are any use"],
}
REFUSED = {
    "wants_person": ["No, please don't put me through to anyone", "I don't need a person for this",
                     "my daughter said I should ask for a supervisor"],
    "leave_or_cancel": ["my partner wanted to close the account but we're staying",
                        "I'm not switching banks, I just want it fixed",
                        "how would I close the account if I ever needed to",
                        "what happens to my rewards if I switch to a different provider"],
    "legal_or_complaint": ["my complaint last year was resolved nicely",
                           "I'm not going to complain about it"],
    "bot_complaint": ["sorry, could you read the options again", "press two, is that right"],
}


@pytest.mark.parametrize("intent,text", [(i, t) for i, texts in ASSERTED.items() for t in texts])
def test_each_intent_is_recognised_in_new_phrasing(understanding: Understanding, intent: str,
                                                   text: str) -> None:
    assert understanding.analyse(text).intents[intent] >= 0.7


# Lines the lighter linear model gets wrong (still below its 0.85 rule threshold): its word
# n-grams took "press two" from the many menu complaints of the fourth round's writers ("I've
# pressed two like five times now"). Strict, so a model that gets them right fails here and the
# entry must go.
LINEAR_KNOWN_WRONG = {("bot_complaint", "press two, is that right")}


@pytest.mark.parametrize("intent,text", [(i, t) for i, texts in REFUSED.items() for t in texts])
def test_negated_reported_and_hypothetical_lines_do_not_carry_the_intent(
        request: pytest.FixtureRequest, understanding: Understanding, intent: str, text: str) -> None:
    if understanding.name == "linear" and (intent, text) in LINEAR_KNOWN_WRONG:
        request.applymarker(pytest.mark.xfail(strict=True, reason="linear model: see LINEAR_KNOWN_WRONG"))
    assert understanding.analyse(text).intents[intent] < 0.5


def test_pattern_layer_marks_a_refusal_as_evidence_against() -> None:
    assert find_intents("I don't need an agent").signals["wants_person"] == -1.0
    assert find_intents("I need an agent").signals["wants_person"] == 1.0
    assert find_intents("why can't I just talk to a person").signals["wants_person"] == 1.0
    assert find_intents("dont transfer me").signals["wants_person"] == -1.0  # ASR drops apostrophes


@pytest.mark.parametrize("text", ["can you not just connect me with someone",
                                  "Could I not speak to a manager?",
                                  "is there no way of talking to a real person",
                                  "is it not possible to speak to a person",
                                  "can ye no put me through tae a person"])
def test_a_negative_question_asks_for_a_person_rather_than_refusing_one(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == 1.0


@pytest.mark.parametrize("text", [
    "can i not just do it online i dont need a person",  # one clause: no punctuation from the recogniser
    "is there no way to do this without talking to an agent",
    "is there no need to talk to anyone",
    "how do i not get put through to an agent",
])
def test_a_negative_question_forgives_only_its_own_negation(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == -1.0


@pytest.mark.parametrize("intent,text", [
    ("wants_person", "can you not transfer me, I only want my balance"),
    ("wants_person", "I dinnae need tae speak tae anybody, thanks"),
    ("wants_person", "i've nae need tae speak tae a person"),
    ("wants_person", "i winnae need an agent"),
    ("leave_or_cancel", "my husband was all for leaving ye, but we are staying"),
])
def test_a_stop_request_a_scots_refusal_and_a_relative_s_wish_are_refusals(intent: str, text: str) -> None:
    assert find_intents(text).signals[intent] == -1.0


@pytest.mark.parametrize("intent,text", [
    ("bot_complaint", "my sister keeps telling me we would pay less elsewhere"),
    ("leave_or_cancel", "her father keeps on at us to move to a different supplier"),
    ("bot_complaint", "our neighbour keeps saying the same thing about your prices"),
])
def test_a_relatives_or_neighbours_nagging_is_reported_speech(intent: str, text: str) -> None:
    assert find_intents(text).signals[intent] == -1.0


@pytest.mark.parametrize("intent,text", [
    ("legal_or_complaint", "my uncle always said he would take you lot to court"),
    ("leave_or_cancel", "we did think about switching to another supplier over the winter"),
    ("legal_or_complaint", "I considered the ombudsman at one point"),
])
def test_a_report_with_an_adverb_and_a_course_weighed_in_the_past_are_refusals(
        intent: str, text: str) -> None:
    assert find_intents(text).signals[intent] == -1.0


def test_a_decision_reached_after_thinking_it_over_is_still_a_threat() -> None:
    assert find_intents(
        "I've thought about it and I'm going to the ombudsman").signals["legal_or_complaint"] == 1.0


def test_a_dropped_g_reads_as_the_full_word() -> None:
    assert normalise("I'm goin' to cancel, nothin' works") == "i am going to cancel, nothing works"
    assert find_intents("he keeps sayin' I should leave you").signals["leave_or_cancel"] == -1.0


@pytest.mark.parametrize("text", ["this machine keeps telling me the same thing",
                                  "it keeps sending me back to the main menu"])
def test_the_system_repeating_itself_is_still_a_bot_complaint(text: str) -> None:
    assert find_intents(text).signals["bot_complaint"] == 1.0


@pytest.mark.parametrize("text", ["we just need somebody to come round and measure the window",
                                  "I want someone out to the flat this week",
                                  "is there anyone who could pop over and look at the gate",
                                  "I need someone to come and clear the drain",
                                  "I need someone to come fix the boiler"])
def test_someone_wanted_at_the_door_is_a_visit_not_a_request_for_a_person(text: str) -> None:
    hits = find_intents(text)
    assert hits.signals["wants_person"] == 0.0 and hits.visit


# Written for these tests: a tradesperson or anyone wanted at the caller's door, in several words.
VISITS = ["could you send somebody round to look at the radiator on Friday",
          "can you get an engineer out to the flat tomorrow",
          "we'd need someone to come and measure the landing before you quote",
          "is there any chance of a fitter popping round this week",
          "could some one come out and have a look at the meter",
          "can you send someone around to look at it"]


@pytest.mark.parametrize("text", VISITS)
def test_a_visit_request_is_not_read_as_a_request_for_a_person(
        understanding: Understanding, text: str) -> None:
    # The pattern layer has the last word here: the tuned model alone reads several of these as
    # asking for a person (0.9 and more), because "someone" plus a request is what it learnt.
    assert find_intents(text).visit
    assert understanding.analyse(text).intents["wants_person"] <= REFUSED_CAP


# Lines that mention coming over, round or out but want a person on the line (several were
# capped by a first, broader version of the visit rule).
ON_THE_LINE = ["can someone come to the phone please",
               "can someone come over the phone",
               "is there someone over in billing I can talk to",
               "can someone come over and talk to me properly",
               "I need somebody to come to my rescue here",
               "I need someone to get to the bottom of this",
               "can somebody come and help me with this stupid menu",
               "is there anyone out there who can help me",
               "is there anybody around who can help me"]


@pytest.mark.parametrize("text", ON_THE_LINE)
def test_a_person_wanted_on_the_line_is_not_taken_for_a_visit(text: str) -> None:
    assert not find_intents(text).visit


def test_a_visit_is_not_read_in_a_reported_promise() -> None:
    assert not find_intents("you said you would send an engineer out and nobody came").visit


@pytest.mark.parametrize("text", ["I'd rather speak to someone, could you send someone round after",
                                  "put me through to someone who can send an engineer out"])
def test_an_asserted_request_outranks_a_visit_in_the_same_line(
        understanding: Understanding, text: str) -> None:
    assert understanding.analyse(text).intents["wants_person"] >= 0.85


def test_a_refused_request_beside_a_visit_keeps_the_refusal_rule() -> None:
    # "if" is a refusal cue here, and the tuned model, sure of the request, outranks it
    # (REFUSAL_GATE); the visit in the same line must not cap it behind the gate's back.
    text = "would you mind if I spoke to someone who can send an engineer out"
    hits = find_intents(text)
    assert hits.visit and hits.signals["wants_person"] == -1.0
    assert Understanding(tuned=TunedModel()).analyse(text).intents["wants_person"] >= 0.85


@pytest.mark.parametrize("text", ["If you could put me through, that would be great.",
                                  "if you can just transfer me to billing, thanks",
                                  "it would be lovely if somebody could connect me with the lettings team",
                                  "I was wondering if someone could maybe connect me with accounts",
                                  "hi, if you could um put me through to a manager"])
def test_a_polite_if_you_could_is_a_request_not_a_condition(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == 1.0


@pytest.mark.parametrize("text", ["if I need an agent later, what do I press",
                                  "what happens if you transfer me and nobody answers",
                                  "if you can not put me through, just say so",
                                  "what would happen if you could put me through",
                                  "even if you could put me through to someone I wouldn't bother",
                                  "I don't care if you can put me through or not",
                                  "I asked if you could transfer me and you didn't",
                                  "as if you could put me through to a real person"])
def test_a_condition_on_a_request_still_refuses_it(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == -1.0


@pytest.mark.parametrize("text", ["could I be connected with whoever looks after the wedding bookings",
                                  "I'd like to speak to the gentleman who fitted our door",
                                  "any chance of a quick word with the lady in charge",
                                  "can I have a brief word with somebody in lettings"])
def test_a_person_named_by_what_they_do_is_a_person_asked_for(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == 1.0


@pytest.mark.parametrize("text", ["it is leaking just like the man who fitted it said it would",
                                  "you sound like a man who knows nothing",
                                  "I need the gentleman who came on Tuesday to sign the form",
                                  "I had a word with the lady in charge last week"])
def test_a_person_named_by_what_they_do_but_only_mentioned_is_not_asked_for(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == 0.0


@pytest.mark.parametrize("text", ["I need someone over the phone who knows the account",
                                  "I need somebody to get in touch with me about the bill",
                                  "I need someone who can actually help me"])
def test_a_person_wanted_on_the_line_is_still_a_request(text: str) -> None:
    assert find_intents(text).signals["wants_person"] == 1.0


@pytest.mark.parametrize("text,signal", [
    ("the bike was taken from the rack, we have reported to the police already", 0.0),
    ("if the money isn't back by Friday I will report you to the police", 1.0),
    ("I'm going to leave you a review online, a really lovely one", 0.0),
    ("I'll be writing a review and it won't be a kind one", 1.0),
    ("oh great, I'll be telling everyone online about this", 1.0),
])
def test_a_crime_report_and_a_review_in_praise_are_no_threat(text: str, signal: float) -> None:
    assert find_intents(text).signals["legal_or_complaint"] == signal


@pytest.mark.parametrize("text,intent", [("I'll leave you my number for a call back", "leave_or_cancel"),
                                         ("please can you make sure it's off your system", "bot_complaint")])
def test_leaving_something_with_the_firm_and_naming_its_records_say_nothing(text: str, intent: str) -> None:
    assert find_intents(text).signals[intent] == 0.0


def test_your_system_with_a_complaint_after_it_is_still_a_bot_complaint() -> None:
    assert find_intents("your system just keeps hanging up on me").signals["bot_complaint"] == 1.0


def test_staff_being_ready_to_help_is_not_reported_speech() -> None:
    hits = find_intents("someone was ready to help me last week now i want a manager")
    assert hits.signals["wants_person"] == 1.0


def test_frustration_probabilities_are_a_distribution_and_order_calm_below_angry(
        understanding: Understanding) -> None:
    calm = understanding.analyse("Thanks, I'd just like to check my balance please")
    angry = understanding.analyse("This is an absolute disgrace, I'm furious with you people")
    assert abs(sum(calm.frustration.values()) - 1.0) < 1e-9
    assert calm.frustration_level == "calm"
    assert angry.frustration["angry"] > calm.frustration["angry"] + 0.3


def message(text: str = "line", score: float = 0.0, intents: dict[str, float] | None = None,
            frustration: dict[str, float] | None = None, index: int = 0,
            confidence: float | None = None) -> Message:
    return Message(f"m{index}", text, score, float(index), intents=intents or {},
                   frustration=frustration or {"calm": 1.0, "annoyed": 0.0, "angry": 0.0},
                   confidence=confidence)


def ruleset(tmp_path: Path, spec: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules:\n  - {spec}\n")
    return load_rules(path)


def test_intent_rule_fires_at_its_confidence_and_records_the_probabilities(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: intents, type: intent, intents: [wants_person, bot_complaint], "
                              "min_confidence: 0.7}")
    assert rules.on_message([message(intents={"wants_person": 0.69})]) is None
    assert rules.on_message([message(intents={"leave_or_cancel": 0.99})]) is None  # not listed
    decision = rules.on_message([message(intents={"wants_person": 0.2, "bot_complaint": 0.8})])
    assert decision is not None and "bot_complaint 0.80" in decision.reason
    assert decision.evidence[0]["intents"]["bot_complaint"] == 0.8
    assert decision.evidence[0]["frustration"]["calm"] == 1.0


def test_an_intent_rule_with_a_count_needs_that_many_carrying_lines_in_its_window(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: again, type: intent, intents: [wants_person, leave_or_cancel], "
                              "min_confidence: 0.6, count: 2, window: 3}")
    asks, leaves = message(intents={"wants_person": 0.65}), message(intents={"leave_or_cancel": 0.7})
    calm, unlisted = message(intents={"wants_person": 0.59}), message(intents={"legal_or_complaint": 0.9})
    assert rules.on_message([asks]) is None  # once is not enough
    assert rules.on_message([unlisted, calm, asks]) is None  # the others fall short or are not listed
    assert rules.on_message([asks, calm, unlisted]) is None  # the newest carries no listed intent
    assert rules.on_message([leaves, asks, calm]) is None  # the newest must carry one itself
    assert rules.on_message([asks, calm, calm, leaves]) is None  # the first has left the window
    decision = rules.on_message([asks, calm, leaves])  # two lines, not the same intent
    assert decision is not None and decision.reason.endswith("(leave_or_cancel 0.70; 2 of the last 3)")
    assert [e["intents"] for e in decision.evidence] == [{"wants_person": 0.65}, {"leave_or_cancel": 0.7}]


def test_an_intent_rule_with_a_count_looks_back_three_lines_unless_told(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: again, type: intent, intents: [wants_person], min_confidence: 0.6, "
                              "count: 2}")
    asks, calm = message(intents={"wants_person": 0.65}), message()
    assert rules.on_message([asks, calm, asks]) is not None
    assert rules.on_message([asks, calm, calm, asks]) is None
    many = ruleset(tmp_path, "{name: many, type: intent, intents: [wants_person], min_confidence: 0.6, "
                             "count: 4}")
    assert many.on_message([asks, asks, asks, asks]) is not None  # a window of 4: as many as the count


def test_an_intent_rule_without_a_count_judges_the_newest_line_alone(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: once, type: intent, intents: [wants_person], min_confidence: 0.6}")
    decision = rules.on_message([message(intents={"wants_person": 0.9}),
                                 message(intents={"wants_person": 0.6})])
    assert decision is not None and decision.reason.endswith("(wants_person 0.60)")
    assert len(decision.evidence) == 1


def test_one_strongly_negative_message_is_enough(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: one, type: strong_negative, angry_at_least: 0.7, score_below: -0.8}")
    assert rules.on_message([message(frustration={"calm": 0.1, "annoyed": 0.2, "angry": 0.7})]).rule == "one"
    assert rules.on_message([message(score=-0.85)]) is not None
    assert rules.on_message([message(score=-0.5, frustration={"calm": 0.3, "annoyed": 0.4,
                                                               "angry": 0.3})]) is None


def test_a_decision_records_how_sure_the_recogniser_was_of_each_line(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: one, type: strong_negative, angry_at_least: 0.7}")
    angry = {"calm": 0.0, "annoyed": 0.1, "angry": 0.9}
    decision = rules.on_message([message(frustration=angry, confidence=0.31)])
    assert decision is not None and decision.evidence[0]["confidence"] == 0.31
    assert rules.on_message([message(frustration=angry)]).evidence[0]["confidence"] is None


def test_frustrated_rule_counts_annoyed_lines_in_its_window(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: twice, type: frustrated, count: 2, window: 3, min_probability: 0.7}")
    annoyed = {"calm": 0.2, "annoyed": 0.6, "angry": 0.2}
    calm = {"calm": 0.9, "annoyed": 0.1, "angry": 0.0}
    assert rules.on_message([message(frustration=annoyed)]) is None
    two = [message(frustration=annoyed, index=0), message(frustration=calm, index=1),
           message(frustration=annoyed, index=2)]
    assert rules.on_message(two) is not None
    assert rules.on_message([*two[:2], message(frustration=calm, index=2)]) is None


def test_the_rules_are_given_as_many_messages_as_their_widest_window(tmp_path: Path) -> None:
    assert ruleset(tmp_path, "{name: one, type: strong_negative, angry_at_least: 0.7}").history == 10
    wide = ruleset(tmp_path, "{name: wide, type: frustrated, count: 2, window: 15}")
    assert wide.history == 15
    annoyed = message(frustration={"calm": 0.2, "annoyed": 0.8, "angry": 0.0})
    lines = [annoyed, *[message() for _ in range(13)], annoyed]
    assert wide.on_message(lines[-wide.history:]) is not None  # the first is 14 lines back, inside 15


def test_example_rules_have_the_one_sentence_rule_on(tmp_path: Path) -> None:
    names = [r.name for r in load_rules(ROOT / "examples" / "rules.yaml").rules]
    assert "one_angry_message" in names and "caller_intent" in names


@pytest.mark.parametrize("spec,words", [
    ("{name: bad, type: intent, intents: [wants_a_pony]}", "rules[0] (bad).intents"),
    ("{name: bad, type: intent, intents: []}", "must be a non-empty list"),
    ("{name: bad, type: intent, intents: [wants_person], min_confidence: 2}", "min_confidence"),
    ("{name: bad, type: intent, intents: [wants_person], count: 3, window: 2}",
     "window must be at least count"),
    ("{name: bad, type: intent, intents: [wants_person], count: 1.5}", "count must be a whole number"),
    ("{name: bad, type: intent, intents: [wants_person], window: 5}", "window needs a count above 1"),
    ("{name: bad, type: strong_negative, angry_at_least: null}", "set angry_at_least"),
    ("{name: bad, type: frustrated, at_least: calm}", "at_least must be annoyed or angry"),
    ("{name: bad, type: frustrated, count: 3, window: 2}", "window must be at least count"),
])
def test_bad_understanding_rules_stop_start_up_naming_the_rule(tmp_path: Path, spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match="bad") as raised:
        ruleset(tmp_path, spec)
    assert words in str(raised.value)


def test_phrase_rule_ignores_a_negated_phrase(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "{name: human, type: phrase, phrases: [agent]}")
    assert rules.on_message([message("I don't need an agent")]) is None
    assert rules.on_message([message("agent please")]) is not None


def test_training_script_reproduces_the_committed_weights() -> None:
    committed = load_models(DEFAULT_WEIGHTS, FEATURE_COUNT, INTENT_FEATURES)
    retrained = train(load_split([DEFAULT_CORPUS]))
    assert set(retrained.intents) == set(committed.intents)
    for name, weights in committed.intents.items():
        np.testing.assert_allclose(retrained.intents[name], weights, atol=1e-6, rtol=0)
    np.testing.assert_allclose(retrained.frustration, committed.frustration, atol=1e-6, rtol=0)
    assert retrained.meta["lines"] == committed.meta["lines"]


def test_the_split_training_matrix_multiplies_as_the_dense_one_does() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 12))
    x[:, 4:] *= rng.random((300, 8)) < 0.02  # mostly-zero columns, as the hashed word features are
    design = TrainingMatrix(x)
    assert len(design.sparse_at) == 8
    dense = np.hstack([x, np.ones((300, 1))])
    w, e = rng.normal(size=(13, 3)), rng.normal(size=(300, 3))
    np.testing.assert_allclose(design.dot(w), dense @ w, atol=1e-12, rtol=0)
    np.testing.assert_allclose(design.tdot(e), dense.T @ e, atol=1e-12, rtol=0)


def _dense_descent(x: np.ndarray, target: np.ndarray, sample: np.ndarray,
                   link: Callable[[np.ndarray], np.ndarray], l2: float, steps: int,
                   rate: float) -> np.ndarray:
    """The plain dense descent the trainer must equal: each column over its own total weight; bias last."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros((xb.shape[1], target.shape[1]))
    for _ in range(steps):
        gradient = xb.T @ ((link(xb @ w) - target) * sample) / sample.sum(axis=0)
        gradient[:-1] += l2 * w[:-1]
        w -= rate * gradient
    return w


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _balanced(y: np.ndarray, classes: int) -> np.ndarray:
    """Each line weighed lines / (classes x lines of its class): every class counts as much in total."""
    return len(y) / (classes * np.bincount(y, minlength=classes)[y])


def _training_matrix(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(200, 9))
    x[:, 5:8] *= rng.random((200, 3)) < 0.03  # sparse columns, taken by the bincount path
    x[:, 8] = 0.0  # a feature no training line has
    assert len(TrainingMatrix(x).sparse_at) == 4
    return x


def test_intents_fitted_side_by_side_equal_a_plain_dense_descent_on_each() -> None:
    rng = np.random.default_rng(8)
    x = _training_matrix(rng)
    ys = np.zeros((200, 3), dtype=np.int64)
    ys[:, :2] = x[:, :2] + rng.normal(scale=0.5, size=(200, 2)) > 0
    ys[:, 1] &= rng.random(200) < 0.3  # an unbalanced intent, so the class weights matter
    # the third intent has no example: its weights sum to half the lines, so each column's fit
    # must be divided by its own total
    together = fit_binaries(x, ys, 1e-2, 200, 0.5)
    for k in range(3):
        alone = _dense_descent(x, ys[:, k:k + 1].astype(float), _balanced(ys[:, k], 2)[:, None], _sigmoid,
                               1e-2, 200, 0.5)
        np.testing.assert_allclose(together[:, k], alone[:, 0], atol=1e-12, rtol=0)
    assert not np.allclose(together[:, 0], together[:, 1])


def test_the_mood_softmax_equals_a_plain_dense_descent() -> None:
    rng = np.random.default_rng(9)
    x = _training_matrix(rng)
    y = np.digitize(x[:, 0] + rng.normal(scale=0.5, size=200), [-0.5, 0.8])  # three unequal classes
    expected = _dense_descent(x, np.eye(3)[y], _balanced(y, 3)[:, None], _softmax, 1e-2, 200, 0.5)
    np.testing.assert_allclose(fit_softmax(x, y, 3, 1e-2, 200, 0.5), expected, atol=1e-12, rtol=0)


def test_weights_that_do_not_match_their_checksum_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "understanding.json"
    shutil.copy(DEFAULT_WEIGHTS, copy)
    shutil.copy(checksum_path(DEFAULT_WEIGHTS), checksum_path(copy))
    assert load_models(copy, FEATURE_COUNT, INTENT_FEATURES).features == FEATURE_COUNT
    document = json.loads(copy.read_text())
    document["intents"]["wants_person"][0] += 1.0
    copy.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="SHA-256"):
        load_models(copy, FEATURE_COUNT, INTENT_FEATURES)
    checksum_path(copy).unlink()
    with pytest.raises(ConfigError, match="no checksum file"):
        load_models(copy, FEATURE_COUNT, INTENT_FEATURES)


def test_embedding_files_that_differ_from_the_pinned_wheel_are_refused(tmp_path: Path) -> None:
    for relative in PINNED_FILES:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"not the model")
    with pytest.raises(ConfigError, match="not the pinned one"):
        verify_files(tmp_path, PINNED_FILES)
    with pytest.raises(ConfigError, match="missing"):
        verify_files(tmp_path / "empty", PINNED_FILES)


def test_models_load_with_the_network_blocked(tmp_path: Path) -> None:
    script = ("import socket\n"
              "def refuse(*a, **k): raise OSError('network is blocked in this test')\n"
              "socket.socket.connect = refuse\n"
              "socket.create_connection = refuse\n"
              "from lifeline.insight.understand import Understanding\n"
              "print(Understanding().analyse('put me through to someone').intents['wants_person'])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) >= 0.9
    assert not (tmp_path / ".cache").exists()  # nothing was fetched into a cache


def test_the_voice_detector_loads_without_onnxruntime_telemetry(tmp_path: Path) -> None:
    script = ("from lifeline.insight.vad import SileroModel\n"
              "SileroModel().session()\n"
              "import os; print(os.environ['ORT_DISABLE_TELEMETRY'])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    # onnxruntime's telemetry writes a device id and an event database here when it is on
    assert not (tmp_path / ".cache" / "Microsoft").exists()
