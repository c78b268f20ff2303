"""Each escalation rule type, and the checks on the rules file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from lifeline.ivr.errors import ConfigError
from lifeline.ivr.store import Message
from lifeline.transfer.rules import Decision, Rule, RuleSet, load_rules

from .conftest import ROOT


def history(*scores: float, texts: list[str] | None = None) -> list[Message]:
    texts = texts or [f"message {i}" for i in range(len(scores))]
    return [Message(f"m{i}", t, s, float(i)) for i, (s, t) in enumerate(zip(scores, texts, strict=True))]


def rules(tmp_path: Path, body: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    return load_rules(path)


def only(tmp_path: Path, spec: str) -> RuleSet:
    return rules(tmp_path, f"rules:\n  - {spec}\n")


def test_example_rules_load_with_the_keen_buyer_and_bare_noun_rules_off() -> None:
    ruleset = load_rules(ROOT / "examples" / "rules.yaml")
    names = [r.name for r in ruleset.rules]
    assert names[:2] == ["caller_intent", "dtmf_0"]
    assert "keen_buyer" not in names and "asks_for_human" not in names
    assert ruleset.handoff == "Let me connect you to someone who can help."


def test_a_rule_says_whether_the_sentiment_score_can_fire_it(tmp_path: Path) -> None:
    # Of the example rules only the time rule reads the score; the others read intents and frustration.
    example = load_rules(ROOT / "examples" / "rules.yaml")
    assert [r.name for r in example.rules if r.reads_score] == ["long_in_menu"]
    assert not only(tmp_path, "{name: a, type: strong_negative, angry_at_least: 0.7}").rules[0].reads_score
    assert only(tmp_path, "{name: a, type: strong_negative, score_below: -0.8}").rules[0].reads_score


def test_phrase_rule_matches_whole_words_and_plurals(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: human, type: phrase, phrases: [agent, real person]}")
    assert ruleset.on_message(history(0.3, texts=["can I get a REAL   person"])).rule == "human"
    assert ruleset.on_message(history(0.3, texts=["are any agents free"])) is not None
    assert ruleset.on_message(history(0.3, texts=["I'm curious about agentic AI"])) is None
    decision = ruleset.on_message(history(0.3, texts=["agent please"]))
    assert "'agent'" in decision.reason and decision.evidence[0]["text"] == "agent please"


def test_dtmf_rule_fires_on_its_keys_only(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: operator, type: dtmf, digits: '0*'}")
    assert ruleset.on_digit("0").rule == "operator"
    assert ruleset.on_digit("*") is not None
    assert ruleset.on_digit("5") is None


def test_rolling_mean_needs_minimum_evidence(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: mean, type: rolling_mean, window: 3, min_messages: 2, below: -0.3}")
    assert ruleset.on_message(history(-0.9)) is None
    assert ruleset.on_message(history(-0.5, -0.2)).rule == "mean"
    assert ruleset.on_message(history(-0.9, 0.6, 0.5, -0.2)) is None  # only the last three count
    assert len(ruleset.on_message(history(0.9, -0.6, -0.6, -0.6)).evidence) == 3


def test_consecutive_negative_needs_an_unbroken_run(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: streak, type: consecutive_negative, count: 2, below: -0.2}")
    assert ruleset.on_message(history(-0.5, 0.1, -0.5)) is None
    assert ruleset.on_message(history(0.1, -0.3, -0.5)).rule == "streak"
    assert ruleset.on_message(history(-0.19, -0.9)) is None


def test_sharp_drop_needs_both_the_fall_and_the_depth(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: drop, type: sharp_drop, by: 1.0, to_below: -0.5}")
    assert ruleset.on_message(history(0.6, -0.6)).rule == "drop"
    assert ruleset.on_message(history(0.2, -0.6)) is None
    assert ruleset.on_message(history(0.9, -0.3)) is None
    assert ruleset.on_message(history(-0.6)) is None


def test_positive_intent_needs_the_phrase_and_the_mood(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: keen, type: positive_intent, phrases: [sign up], above: 0.5}")
    assert ruleset.on_message(history(0.8, 0.0, texts=["I love it", "how do I sign up"])).rule == "keen"
    assert ruleset.on_message(history(0.1, 0.0, texts=["meh", "how do I sign up"])) is None
    assert ruleset.on_message(history(0.9, texts=["I love it"])) is None


def test_time_in_ivr_fires_only_when_long_and_unhappy(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: slow, type: time_in_ivr, after_s: 60, below: -0.1}")
    assert ruleset.on_tick(history(-0.4), 61).rule == "slow"
    assert ruleset.on_tick(history(-0.4), 59) is None
    assert ruleset.on_tick(history(0.3, 0.0), 600) is None
    assert ruleset.on_message(history(-0.9, -0.9)) is None


def test_the_sweep_reads_messages_only_once_a_time_rule_can_fire(tmp_path: Path) -> None:
    timed = only(tmp_path, "{name: slow, type: time_in_ivr, after_s: 60, below: -0.1}")
    assert not timed.may_tick(59.9)
    assert timed.may_tick(60)
    untimed = only(tmp_path, "{name: ask, type: phrase, phrases: [agent]}")
    assert not untimed.may_tick(86400)


def test_a_rule_type_that_judges_time_without_a_start_is_asked_on_every_tick(tmp_path: Path) -> None:
    class Always(Rule):
        type_name = "always"
        default_reason = "always"

        def on_tick(self, history: Sequence[Message], seconds_in_call: float) -> Decision | None:
            return Decision(self.name, self.reason)

    ruleset = RuleSet(rules=(Always("always", None, {}, "test"),), handoff=None)
    assert ruleset.may_tick(0.0)


def test_rules_are_tried_in_file_order(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, "rules:\n"
                              "  - {name: first, type: consecutive_negative, count: 1, below: 0}\n"
                              "  - {name: second, type: phrase, phrases: [agent]}\n")
    assert ruleset.on_message(history(-0.5, texts=["agent now"])).rule == "first"


def test_disabled_rule_never_fires(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: human, type: phrase, phrases: [agent], enabled: false}")
    assert ruleset.rules == ()
    assert ruleset.on_message(history(0.0, texts=["agent"])) is None


def test_custom_reason_is_used(tmp_path: Path) -> None:
    ruleset = only(tmp_path, "{name: op, type: dtmf, digits: '0', reason: wants the operator}")
    assert ruleset.on_digit("0").reason == "wants the operator"


@pytest.mark.parametrize(("body", "message"), [
    ("rules: nope\n", "must have a `rules:` list"),
    ("rulez: []\n", "must have a `rules:` list (is `rulez:` meant to be `rules:`?)"),
    ("rules: []\nextra: 1\n", "unknown keys ['extra']"),
    ("rules:\n  - {name: x, type: telepathy}\n", "type 'telepathy' is unknown"),
    ("rules:\n  - {name: x, reason: y}\n", "rules[0] (x) has no `type`: give it one of"),
    ("rules:\n  - {name: x, type: [intent]}\n", "type ['intent'] is unknown"),
    ("rules:\n  - {name: x, type: {intent: 1}}\n", "type {'intent': 1} is unknown"),
    ("rules:\n  - {name: Bad Name, type: dtmf}\n", "short snake_case name"),
    ("rules:\n  - {name: a, type: dtmf}\n  - {name: a, type: dtmf}\n", "the name is used twice"),
    ("rules:\n  - {name: a, type: rolling_mean, below: -3}\n", "(a).below must be a number from -1.0"),
    ("rules:\n  - {name: a, type: rolling_mean, window: 2.5}\n", "(a).window must be a whole number"),
    ("rules:\n  - {name: a, type: phrase, phrases: []}\n", "(a).phrases must be a non-empty list"),
    ("rules:\n  - {name: a, type: phrase, phrases: [x], treshold: 1}\n", "unknown settings 'treshold'"),
    ("rules:\n  - {name: a, type: strong_negative, angry_above: 0.7}\n",
     "unknown settings 'angry_above' (did you mean 'angry_at_least'?) for type strong_negative; its "
     "settings are angry_at_least, score_below"),
    ("rules:\n  - {name: a, type: intent, intents: [wants_person], min_confidence: 80}\n",
     "(a).min_confidence must be a number from 0.0 to 1.0 (a share: for 80 % write 0.8)"),
    ("rules:\n  - {name: a, type: dtmf, digits: 'x'}\n", "(a).digits must be keys"),
    ("rules:\n  - {name: a, type: dtmf, enabled: maybe}\n", "(a).enabled must be true or false"),
    ("handoff: ''\nrules: []\n", "`handoff` must be the line"),
    ("rules: [\n", "not valid YAML"),
])
def test_rule_file_mistakes_stop_startup_naming_the_rule(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules(tmp_path, body)
    assert message in str(caught.value)
    assert "LIFELINE_RULES=" in str(caught.value)


def test_every_rules_slip_is_reported_at_once_naming_the_unknown_value_and_its_likely_fix(
        tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n"
                    "  - {name: asks, type: intent, intents: [wants_person, wants_manager]}\n"
                    "  - {name: fine, type: dtmf, digits: '0'}\n"
                    "  - {name: angry, type: strong_negtive}\n"
                    "  - {name: words, type: phrase, phrases: [help], min_confidance: 0.5}\n")
    with pytest.raises(ConfigError) as raised:
        load_rules(path)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3, lines
    assert ("rules[0] (asks).intents: 'wants_manager' (did you mean 'wants_person'?) "
            "is not an intent") in lines[0]
    assert "rules[2] (angry).type 'strong_negtive' (did you mean 'strong_negative'?) is unknown" in lines[1]
    assert "rules[3] (words)" in lines[2] and "min_confidance" in lines[2]
