"""`flask evaluate` on a small labelled corpus: the figures, the deciding rule, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from simulator.evaluate import wilson_interval
from transfer.rules import load_rules

from .conftest import ROOT

DATA = ROOT / "tests" / "data" / "evaluate"


def test_evaluate_reports_utterance_and_call_figures_with_the_deciding_rule(app: Flask,
                                                                            tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(DATA), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    lines = report["utterances"]
    # the intent threshold is the rules' own (examples/rules.yaml, caller_intent.min_confidence)
    rules = load_rules(ROOT / "examples" / "rules.yaml").rules
    assert lines["lines"] == 4 and lines["threshold"] == min(
        getattr(r, "min_confidence") for r in rules if hasattr(r, "min_confidence"))
    assert lines["intents"]["wants_person"]["tp"] == 1 and lines["intents"]["wants_person"]["fp"] == 0
    assert sum(sum(row.values()) for row in lines["frustration"]["confusion"].values()) == 4
    assert lines["cpu_ms_per_line"]["p95"] is not None
    calls = {Path(v["scenario"]).name: v for v in report["calls"]["verdicts"]}
    asked = calls["asks-for-staff.yaml"]
    assert asked["transferred"] and asked["rule"] == "caller_intent"
    assert asked["says_before_transfer"] == 2 and not asked["late"] and not asked["early"]
    assert "wants_person" in asked["reason"]
    assert asked["heard"][0]["confidence"] is None and asked["heard"][0]["text"]  # text: no recogniser
    assert not calls["declines-agent.yaml"]["transferred"]
    summary = report["calls"]["summary"]
    assert (summary["true_positive"], summary["false_transfers"], summary["recall"]) == (1, 0, 1.0)
    assert "false transfers 0" in result.output and "by caller_intent" in result.output
    assert summary["recall_ci"] == [0.207, 1.0] and summary["precision_ci"] == [0.207, 1.0]  # 1 of 1
    assert "recall 0.207-1.000" in result.output


@pytest.mark.parametrize(("hits", "trials", "interval"), [
    (23, 28, (0.644, 0.921)), (0, 10, (0.0, 0.278)), (50, 50, (0.929, 1.0)), (0, 0, None)])
def test_call_figures_come_with_the_95_percent_wilson_interval_of_each_proportion(
        hits: int, trials: int, interval: tuple[float, float] | None) -> None:
    assert wilson_interval(hits, trials) == interval


def test_evaluate_of_several_inputs_gives_each_its_own_call_figures(app: Flask, tmp_path: Path) -> None:
    scenarios = sorted(DATA.rglob("*.yaml"))
    calls = [p for p in scenarios if not p.name.startswith("utterances")]
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    asked = next(p for p in calls if p.name == "asks-for-staff.yaml")
    (first / asked.name).write_text(asked.read_text())
    for other in calls:
        if other != asked:
            (second / other.name).write_text(other.read_text())
    out = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(first), str(second), "--json", str(out)])
    assert result.exit_code == 0, result.output
    by_input = json.loads(out.read_text())["calls"]["by_input"]
    assert by_input[str(first)]["calls"] == 1 and by_input[str(first)]["true_positive"] == 1
    assert by_input[str(second)]["calls"] == len(calls) - 1
    assert by_input[str(second)]["true_positive"] == 0
    assert f"{first}: calls 1, precision  1.000, recall  1.000" in result.output


def test_evaluate_refuses_a_malformed_labelled_file_by_name(app: Flask, tmp_path: Path) -> None:
    bad = tmp_path / "utterances.yaml"
    bad.write_text("- {text: hello, intents: [wants_pony], frustration: calm}\n")
    result = app.test_cli_runner().invoke(args=["evaluate", str(bad)])
    assert result.exit_code == 2
    assert "utterances.yaml: entry 1" in result.output and "wants_person" in result.output


def test_evaluate_from_audio_reports_what_was_heard_and_how_sure_the_recogniser_was(
        app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    scenario = ROOT / "examples" / "calls" / "02-asks-for-human.yaml"
    result = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--engine", "local",
                                                "--json", str(out)])
    assert result.exit_code == 0, result.output
    [verdict] = json.loads(out.read_text())["calls"]["verdicts"]
    assert verdict["heard"], "the recording was heard as nothing"
    assert "heard 1/1 calls" in result.stderr  # audio runs take minutes: they say how far they are
    assert all(0.0 < h["confidence"] <= 1.0 for h in verdict["heard"])
    assert all(h["readings"][0] == [h["text"], pytest.approx(h["confidence"], abs=0.001), 0]
               for h in verdict["heard"])  # the recogniser's readings, best first, weighed the mood
    assert all({r[2] for r in h["readings"]} == {0} for h in verdict["heard"])  # one hearing by default
    assert "person" in " ".join(h["text"] for h in verdict["heard"]).lower()


def test_evaluate_hears_a_calls_recordings_on_one_stream_each_say_keeping_its_own_words(app: Flask) -> None:
    # A live call has one media stream, and the endpointer's state lives through all its says;
    # evaluate hears a call the same way, yet still gives each say only the words it held.
    from simulator.evaluate import LocalHearing

    hearing = LocalHearing(app.extensions["lifeline"].settings)
    engine: Any = hearing._engine  # the local engine: it opens streams
    opened: list[str] = []
    real_open = engine.open

    def counting_open(call_control_id: str, *args: object, **kwargs: object) -> object:
        opened.append(call_control_id)
        return real_open(call_control_id, *args, **kwargs)

    engine.open = counting_open
    audio = ROOT / "examples" / "calls" / "audio"
    try:
        with hearing.call() as hear:
            balance = " ".join(line.text for line in hear(audio / "01-calm-balance-1.wav")).lower()
            person = " ".join(line.text for line in hear(audio / "02-asks-for-human-1.wav")).lower()
    finally:
        engine.close()
    assert len(opened) == 1, "one call should be one stream"
    assert "account" in balance and "person" not in balance
    assert "person" in person and "account" not in person


def test_replay_weighs_each_heard_lines_mood_over_its_readings_and_numbers_the_says(app: Flask) -> None:
    from insight.base import Reading
    from simulator.evaluate import HeardLine, replay
    from simulator.scenario import load_scenario

    scenario = load_scenario(ROOT / "examples" / "calls" / "01-calm-balance.yaml")
    services = app.extensions["lifeline"].services
    garbled = "I am absolutely furious with you useless lot"
    meant = "I am absolutely thrilled with you lot, thanks"

    def hear_as(readings: tuple[Reading, ...]) -> Any:
        return lambda _wav: [HeardLine(garbled, 0.4, readings)]

    first_only = replay(scenario, services.scorer, services.rules, hear_as(()))
    weighed = replay(scenario, services.scorer, services.rules,
                     hear_as((Reading(garbled, 0.4), Reading(meant, 0.9), Reading(meant + "!", 0.9))))
    assert first_only.rule == "one_angry_message"  # the garbled reading alone sounds angry
    assert weighed.rule is None  # weighed with two calmer readings, nobody is put through
    assert [h["say"] for h in weighed.heard] == list(range(1, len(weighed.heard) + 1))
    assert weighed.heard[0]["readings"][1] == [meant, 0.9, 0]
