"""`flask evaluate --against`: which calls a change moved between two runs, and which way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lifeline.simulator.compare import ReportError, compare, load_calls, summary_line


def verdict(name: str, needed: bool | None, rule: str | None) -> dict[str, Any]:
    """One call as `flask evaluate --json` writes it (the fields the comparison reads)."""
    return {"scenario": f"calls/{name}.yaml", "expect_transfer": needed, "transferred": rule is not None,
            "rule": rule}


def test_each_moved_call_is_named_with_the_way_it_moved_and_the_errors_are_counted_on_both_runs() -> None:
    before = [verdict("found", True, None), verdict("lost", True, "caller_intent"),
              verdict("put-through", False, None), verdict("spared", False, "one_angry_message"),
              verdict("other-rule", True, "one_angry_message"), verdict("same", True, "caller_intent"),
              verdict("unlabelled", None, None), verdict("gone", True, None)]
    now = [verdict("found", True, "caller_intent"), verdict("lost", True, None),
           verdict("put-through", False, "annoyed_twice"), verdict("spared", False, None),
           verdict("other-rule", True, "caller_intent"), verdict("same", True, "caller_intent"),
           verdict("unlabelled", None, "caller_intent"), verdict("new", False, None)]
    result = compare(before, now)
    moves = {Path(c["scenario"]).stem: c["change"] for c in result["changed"]}
    assert moves == {"found": "now found", "lost": "now missed", "put-through": "calm, now put through",
                     "spared": "calm, now spared", "other-rule": "same verdict, another rule"}
    assert (result["compared"], result["labelled"], result["only_before"], result["only_now"]) == (7, 6, 1, 1)
    # before: "found" missed and "spared" put through; now: "lost" missed and "put-through" put through
    assert result["before"] == {"calls": 6, "missed": 1, "false_transfers": 1, "errors": 2}
    assert result["now"] == {"calls": 6, "missed": 1, "false_transfers": 1, "errors": 2}
    line = summary_line("before.json", result)
    assert line.startswith("against before.json (7 in both, 6 labelled; 1 only in the earlier run; "
                           "1 only in this run): missed 1 -> 1")
    assert "1 now found, 1 now missed, 1 calm, now put through, 1 calm, now spared, 1 by another rule" in line
    assert "calls/" not in line  # the summary names no call: a checking split can be read by it alone


def test_relative_and_absolute_paths_of_one_scenario_are_the_same_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = [verdict("a", True, None)]
    now = [{**verdict("a", True, "caller_intent"), "scenario": str(tmp_path / "calls" / "a.yaml")}]
    result = compare(before, now)
    assert result["compared"] == 1 and result["moved"]["now found"] == 1


def test_a_label_edited_between_the_runs_is_counted_as_relabelled_not_as_a_moved_verdict() -> None:
    before = [verdict("a", True, None)]  # labelled as needing a person, and missed
    now = [verdict("a", False, None)]  # relabelled calm since; still not put through
    result = compare(before, now)
    assert result["changed"] == [] and result["relabelled"] == 1
    assert result["before"] == result["now"] == {"calls": 1, "missed": 0, "false_transfers": 0, "errors": 0}
    assert "1 relabelled since" in summary_line("b.json", result)


def test_runs_with_no_call_in_common_or_a_call_twice_are_refused_with_the_fix() -> None:
    with pytest.raises(ReportError, match="give the same PATHS"):
        compare([verdict("a", True, None)], [verdict("b", True, None)])
    with pytest.raises(ReportError, match="twice: give each scenario once"):
        compare([verdict("a", True, None), verdict("a", True, None)], [verdict("a", True, None)])


def test_the_same_run_twice_moves_nothing() -> None:
    run = [verdict("a", True, "caller_intent"), verdict("b", False, None)]
    result = compare(run, run)
    assert result["changed"] == [] and result["before"] == result["now"]


@pytest.mark.parametrize(("content", "says"), [
    (None, "does not exist"), ("not json {", "is not a JSON report"),
    (json.dumps({"utterances": {}}), "has no call verdicts"),
    (json.dumps({"calls": {"verdicts": [{"name": "no scenario"}]}}), "call verdict 1 lacks"),
    (json.dumps({"calls": {"verdicts": [{"scenario": "a.yaml", "expect_transfer": True}]}}),
     "call verdict 1 lacks"),
    (json.dumps({"calls": {"verdicts": [{"scenario": "a.yaml", "transferred": False}]}}),
     "call verdict 1 lacks")])
def test_an_earlier_report_that_cannot_be_compared_is_refused_with_the_fix(
        tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "before.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError, match=says) as caught:
        load_calls(path)
    assert "--json" in str(caught.value)


def _scenario(path: Path, line: str, transfer: bool) -> None:
    path.write_text(f"name: {path.stem}\nexpect: {{transfer: {str(transfer).lower()}}}\n"
                    f"turns:\n  - wait_for: gather\n  - say: \"{line}\"\n")


def test_evaluate_against_an_earlier_report_prints_the_moves_and_keeps_them_in_the_json(
        app: Flask, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    _scenario(calls / "asks.yaml", "I want to speak to a real person right now", True)
    _scenario(calls / "calm.yaml", "What time do you open on Saturday", False)
    runner = app.test_cli_runner()
    first = tmp_path / "first.json"
    assert runner.invoke(args=["evaluate", str(calls), "--json", str(first)]).exit_code == 0
    # the earlier run as if it had missed the caller who asked for a person
    report = json.loads(first.read_text())
    for v in report["calls"]["verdicts"]:
        if v["name"] == "asks":
            v.update(transferred=False, rule=None)
    first.write_text(json.dumps(report))
    out = tmp_path / "second.json"
    result = runner.invoke(args=["evaluate", str(calls), "--against", str(first), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert (f"against {first} (2 in both, 2 labelled): missed 1 -> 0, false transfers 0 -> 0, errors 1 -> 0"
            in result.output)
    assert "    moved: asks.yaml: now found (no transfer -> caller_intent)" in result.output
    against = json.loads(out.read_text())["calls"]["against"]
    assert against["file"] == str(first) and against["moved"]["now found"] == 1


def test_evaluate_refuses_a_missing_earlier_report_before_running_anything(
        app: Flask, tmp_path: Path) -> None:
    scenario = tmp_path / "calm.yaml"
    _scenario(scenario, "What time do you open on Saturday", False)
    out = tmp_path / "out.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--against",
                                                str(tmp_path / "none.json"),
                                                "--json", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output and "--json" in result.output
    assert not out.exists()


def test_evaluate_against_needs_calls_to_compare_and_says_so_before_running(
        app: Flask, tmp_path: Path) -> None:
    lines = tmp_path / "utterances.yaml"
    lines.write_text("- {text: \"I want a person\", intents: [wants_person], frustration: calm}\n")
    before = tmp_path / "before.json"
    before.write_text(json.dumps({"calls": {"verdicts": []}}))
    out = tmp_path / "out.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(lines), "--against", str(before), "--json",
                                                str(out)])
    assert result.exit_code == 2 and "hold no call scenarios" in result.output
    assert not out.exists()


def test_an_earlier_report_of_other_calls_leaves_this_runs_report_whole_and_says_why_not_compared(
        app: Flask, tmp_path: Path) -> None:
    scenario = tmp_path / "calm.yaml"
    _scenario(scenario, "What time do you open on Saturday", False)
    before = tmp_path / "before.json"
    before.write_text(json.dumps({"calls": {"verdicts": [verdict("elsewhere", True, None)]}}))
    out = tmp_path / "out.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--against", str(before),
                                                "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "not compared: no call of this run is in the earlier report" in result.output
    report = json.loads(out.read_text())
    assert report["calls"]["summary"]["calls"] == 1 and "error" in report["calls"]["against"]


def test_a_scenario_reached_through_two_paths_is_measured_once(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "split" / "a"
    folder.mkdir(parents=True)
    _scenario(folder / "asks.yaml", "I want to speak to a real person right now", True)
    out = tmp_path / "out.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(tmp_path / "split"), str(folder), "--json",
                                                str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["calls"]["summary"]["calls"] == 1


def test_a_folder_given_as_the_earlier_report_is_refused_as_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot be read"):
        load_calls(tmp_path)
