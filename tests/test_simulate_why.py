"""What `flask simulate` says of each call: the app's own outcome, and why it was or was not put through."""

from __future__ import annotations

from flask import Flask

from lifeline.simulator.report import explain

from .conftest import ROOT

CALLS = ROOT / "examples" / "calls"


def test_a_decided_call_is_explained_by_its_first_decisions_rule_and_reason() -> None:
    decisions = [{"rule": "caller_intent", "reason": "caller asked for a person (wants_person 1.00)"},
                 {"rule": "annoyed_twice", "reason": "later"}]
    assert explain(decisions, [], transferred=True) == (
        "decided by caller_intent: caller asked for a person (wants_person 1.00)")


def test_a_missed_call_names_its_strongest_reading_and_the_line_it_was_read_on() -> None:
    messages = [{"text": "It has been down all week", "analysis": {
                     "intents": {"wants_person": 0.1}, "frustration": {"calm": 0.9, "annoyed": 0.6}}},
                {"text": "This is the third time I have called about this router, honestly",
                 "analysis": {"intents": {"wants_person": 0.2},
                              "frustration": {"calm": 0.002, "annoyed": 0.998}}}]
    assert explain([], messages, transferred=False) == (
        'no rule fired; strongest signal annoyed 1.00 on "This is the third time I have called about this…"')


def test_calm_certainty_is_no_signal_and_weak_readings_are_not_quoted() -> None:
    messages = [{"text": "Thanks", "analysis": {"intents": {"wants_person": 0.01},
                                                "frustration": {"calm": 0.99, "angry": 0.2}}}]
    assert explain([], messages, transferred=False) == (
        "no rule fired; nothing strong read (highest angry 0.20)")


def test_a_call_with_nothing_heard_or_a_menu_transfer_says_so() -> None:
    assert explain([], [{"text": "old row", "analysis": None}], transferred=False) == (
        "no rule fired; the app heard nothing from the caller to read")
    assert explain([], [], transferred=True) == (
        "put through by the menu (a key the caller pressed), not by a rule")


def test_simulate_prints_the_apps_outcome_and_why_for_each_call(app: Flask) -> None:
    names = ["02-asks-for-human.yaml", "08-agent-no-answer.yaml"]
    result = app.test_cli_runner().invoke(args=["simulate", "--speed", "10", "--quiet",
                                                *(str(CALLS / n) for n in names)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name, outcome in (("02-asks-for-human.yaml", "outcome=transferred"),
                          ("08-agent-no-answer.yaml", "outcome=no_agent")):
        at = next(i for i, line in enumerate(lines) if name in line)
        assert lines[at + 1].strip().startswith(f"PASS  {outcome}, transfers="), lines[at:at + 3]
        assert lines[at + 2].strip() == ("why: decided by caller_intent: caller asked for a person "
                                         "(wants_person 1.00)")
