"""`flask evaluate` on a small labelled corpus: the figures, the deciding rule, and bad input."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lifeline.simulator.evaluate import callers_for_width, print_report, wilson_interval
from lifeline.transfer.rules import load_rules

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
        r.min_confidence for r in rules if hasattr(r, "min_confidence"))
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
    # one caller found says little: how many would pin recall down is said too
    assert "to narrow recall's interval to about +-0.05, label about 73 callers who need a person" \
        in result.output


def test_call_figures_name_the_rule_behind_each_false_transfer_and_the_need_of_each_missed_caller(
        app: Flask, tmp_path: Path) -> None:
    calls = {"calm-but-asks.yaml": ("false", None, "Could you put me through to one of your staff please"),
             "leaves-unheard.yaml": ("true", "leave_or_cancel", "Lovely, thank you, that is all"),
             "needs-unstated.yaml": ("true", None, "Thanks, bye now"),
             "asks-and-is-heard.yaml": ("true", "wants_person", "I want to speak to a real person right now"),
             "calm-and-left.yaml": ("false", None, "What time do you open on Saturday")}
    for name, (transfer, intent, line) in calls.items():
        reason = f", intent: {intent}" if intent else ""
        (tmp_path / name).write_text(f"name: {name}\nexpect: {{transfer: {transfer}{reason}}}\n"
                                     f"turns:\n  - wait_for: gather\n  - say: \"{line}\"\n")
    out = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(tmp_path), "--json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())["calls"]["summary"]
    assert (summary["true_positive"], summary["false_transfers"], summary["false_negative"]) == (1, 1, 2)
    assert summary["decided_by"] == {"caller_intent": 2}  # the caller put through is not a false transfer
    assert summary["false_by_rule"] == {"caller_intent": 1}
    assert summary["missed_by_reason"] == {"leave_or_cancel": 1, "unstated": 1}
    assert ("false transfers by rule {'caller_intent': 1}; missed by reason "
            "{'leave_or_cancel': 1, 'unstated': 1}") in result.output


def test_misses_lists_each_wrong_calls_lines_with_what_the_rules_read_and_leaves_right_calls_alone(
        app: Flask, tmp_path: Path) -> None:
    (tmp_path / "missed.yaml").write_text(
        "name: missed\nexpect: {transfer: true, intent: leave_or_cancel}\n"
        "turns:\n  - wait_for: gather\n  - say: \"Lovely, thank you, that is all\"\n")
    (tmp_path / "found.yaml").write_text(
        "name: found\nexpect: {transfer: true, intent: wants_person}\n"
        "turns:\n  - wait_for: gather\n  - say: \"I want to speak to a real person right now\"\n")
    out = tmp_path / "report.json"
    result = app.test_cli_runner().invoke(args=["evaluate", str(tmp_path), "--misses", "--json", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index(next(line for line in lines if "WRONG missed.yaml" in line))
    said = lines[at + 1]
    assert said.startswith("        say 1: 'Lovely, thank you, that is all': ") and "score " in said
    assert not any("real person right now'" in line for line in lines)  # a right call is not spelt out
    verdicts = {Path(v["scenario"]).name: v for v in json.loads(out.read_text())["calls"]["verdicts"]}
    [heard] = verdicts["found.yaml"]["heard"]
    assert heard["analysis"]["intents"]["wants_person"] >= 0.5  # the JSON keeps what was read, every call
    assert set(heard["analysis"]["frustration"]) and isinstance(heard["score"], float)
    without = app.test_cli_runner().invoke(args=["evaluate", str(tmp_path)])
    assert "say 1:" not in without.output


def test_a_labelled_call_with_a_reason_lifeline_does_not_know_is_refused_with_the_nearest(
        app: Flask, tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text("name: typo\nexpect: {transfer: true, intent: wants_human}\n"
                                        "turns:\n  - say: hello\n")
    result = app.test_cli_runner().invoke(args=["evaluate", str(tmp_path)])
    assert result.exit_code != 0
    assert "expect.intent 'wants_human' is not a reason Lifeline knows (did you mean wants_person?)" \
        in result.output
    assert "frustration" in result.output


def test_the_callers_a_recall_needs_for_a_narrow_interval_grow_as_it_nears_a_half() -> None:
    assert [callers_for_width(r) for r in (1.0, 0.95, 0.85, 0.5)] == [73, 73, 196, 385]
    assert callers_for_width(None) is None


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


def test_a_list_of_labelled_lines_is_read_as_utterances_whatever_its_file_is_called(
        app: Flask, tmp_path: Path) -> None:
    mine = tmp_path / "mylabels.yaml"
    mine.write_text("- {text: put me through to a person, intents: [wants_person], frustration: calm}\n"
                    "- {text: what are your opening hours, intents: [], frustration: calm}\n")
    result = app.test_cli_runner().invoke(args=["evaluate", str(mine)])
    assert result.exit_code == 0, result.output
    assert "Utterances: 2 " in result.output, result.output


def test_evaluate_on_a_folder_with_no_labelled_files_fails_naming_it(app: Flask, tmp_path: Path) -> None:
    empty = tmp_path / "corpus"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a labelled file")
    result = app.test_cli_runner().invoke(args=["evaluate", str(empty)])
    assert result.exit_code == 2
    assert f"no labelled files in {empty}" in result.output


def test_evaluate_from_audio_reports_what_was_heard_and_how_sure_the_recogniser_was(
        app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    scenario = ROOT / "examples" / "calls" / "02-asks-for-human.yaml"
    result = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--engine", "local",
                                                "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    [verdict] = report["calls"]["verdicts"]
    assert report["hearing"] == {"whisper_model": "tiny.en", "second_hearing": 0.9,
                                 "second_hearing_intents": False}
    assert "Recogniser: tiny.en; heard twice, the second at 0.9 (LIFELINE_SECOND_HEARING), weighed into " \
           "the mood only" in result.output  # two runs' reports say what heard them
    assert verdict["heard"], "the recording was heard as nothing"
    assert "heard 1/1 calls" in result.stderr  # audio runs take minutes: they say how far they are
    assert all(0.0 < h["confidence"] <= 1.0 for h in verdict["heard"])
    assert all(h["readings"][0] == [h["text"], pytest.approx(h["confidence"], abs=0.001), 0]
               for h in verdict["heard"])  # the recogniser's readings, best first, weighed the mood
    assert all({r[2] for r in h["readings"]} == {0, 1} for h in verdict["heard"])  # two hearings by default
    assert "person" in " ".join(h["text"] for h in verdict["heard"]).lower()


def test_evaluate_hears_a_calls_recordings_on_one_stream_each_say_keeping_its_own_words(app: Flask) -> None:
    # A live call has one media stream, and the endpointer's state lives through all its says;
    # evaluate hears a call the same way, yet still gives each say only the words it held.
    from lifeline.simulator.listening import LocalHearing

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
    from lifeline.insight.base import Reading
    from lifeline.simulator.evaluate import replay
    from lifeline.simulator.hearings import HeardLine
    from lifeline.simulator.scenario import load_scenario

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


# --- kept hearings (--hearings FILE) ---------------------------------------------------------------

class _CountingHearing:
    """A fake of LocalHearing: every say of a call is 'heard' as its file name; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.lead_s = 1.0  # the silence before the first say, as LocalHearing has it

    @contextmanager
    def call(self) -> Iterator[Any]:
        from lifeline.simulator.hearings import HeardLine

        self.calls += 1
        yield lambda wav: [HeardLine(f"heard {Path(wav).stem}", 0.5, ())]


def _kept_store(path: Path, **settings: object) -> Any:
    from lifeline.simulator.hearings import HearingStore

    return HearingStore(path, {"whisper_model": "tiny.en", **settings})


def test_evaluate_with_kept_hearings_hears_each_call_once_and_reads_it_back_on_the_next_run(
        app: Flask, tmp_path: Path) -> None:
    from lifeline.simulator.evaluate import evaluate

    services = app.extensions["lifeline"].services
    calls = [ROOT / "examples" / "calls" / name
             for name in ("01-calm-balance.yaml", "02-asks-for-human.yaml")]
    kept_file = tmp_path / "hearings.json"
    hearing = _CountingHearing()
    first = evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local",  # type: ignore[arg-type]
                     kept=_kept_store(kept_file))
    assert hearing.calls == 2 and first["hearings"]["heard"] == 2 and first["hearings"]["read_back"] == 0
    again = evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local",  # type: ignore[arg-type]
                     kept=_kept_store(kept_file))
    assert hearing.calls == 2, "a kept call was heard again"
    assert again["hearings"] == {"file": str(kept_file), "read_back": 2, "heard": 0}
    assert again["calls"]["verdicts"] == first["calls"]["verdicts"]
    unkept = evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local")  # type: ignore[arg-type]
    assert [v["rule"] for v in unkept["calls"]["verdicts"]] == [v["rule"] for v in first["calls"]["verdicts"]]
    # every say is kept, not only those up to a transfer, so other rules can be replayed on them
    heard = first["calls"]["verdicts"][0]["heard"]
    assert [h["text"] for h in heard] == ["heard 01-calm-balance-1", "heard 01-calm-balance-2"]


def test_a_changed_recording_or_hearing_setting_is_heard_afresh_not_read_back(tmp_path: Path) -> None:
    from lifeline.simulator.hearings import HeardLine

    recording = tmp_path / "say-1.wav"
    recording.write_bytes((ROOT / "examples" / "calls" / "audio" / "01-calm-balance-1.wav").read_bytes())
    store = _kept_store(tmp_path / "kept.json")
    key = store.key([recording], 1.0)
    store.put(key, [[HeardLine("my balance please", 0.8, ())]])
    store.save()
    reread = _kept_store(tmp_path / "kept.json")
    assert reread.get(key, 1) == [[HeardLine("my balance please", 0.8, ())]]
    assert reread.get(key, 2) is None  # the call now has another say: heard again
    assert _kept_store(tmp_path / "kept.json", whisper_mirror_db=None).key([recording], 1.0) != key
    assert _kept_store(tmp_path / "kept.json", whisper_model="base").key([recording], 1.0) != key
    assert reread.key([recording], 1.02) != key  # a frame more silence first: heard at another offset
    recording.write_bytes(recording.read_bytes() + b"\x7f" * 160)
    assert reread.key([recording], 1.0) != key


@pytest.mark.parametrize("content", ["my notes, not hearings", '{"calls": {"summary": {}}}'])
def test_a_hearings_file_that_is_not_one_is_refused_by_name_and_left_as_it_was(
        app: Flask, tmp_path: Path, content: str) -> None:
    # the second is the shape of a `--json` report: named by mistake, it must not be overwritten
    scenario = ROOT / "examples" / "calls" / "02-asks-for-human.yaml"
    notes = tmp_path / "notes.json"
    notes.write_text(content)
    result = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--engine", "local",
                                                "--hearings", str(notes)])
    assert result.exit_code == 2 and str(notes) in result.output and "name another file" in result.output
    assert notes.read_text() == content
    text = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--hearings",
                                              str(tmp_path / "h.json")])
    assert text.exit_code == 2 and "use it with --engine local" in text.output
    assert not (tmp_path / "h.json").exists()


def test_evaluate_from_audio_keeps_hearings_and_says_how_many_it_read_back(
        app: Flask, tmp_path: Path) -> None:
    scenario = ROOT / "examples" / "calls" / "02-asks-for-human.yaml"
    kept = tmp_path / "hearings.json"
    args = ["evaluate", str(scenario), "--engine", "local", "--hearings", str(kept), "--json"]
    first = app.test_cli_runner().invoke(args=[*args, str(tmp_path / "1.json")])
    assert first.exit_code == 0, first.output
    assert f"Hearings kept in {kept}: calls read back 0, heard and kept 1" in first.output
    again = app.test_cli_runner().invoke(args=[*args, str(tmp_path / "2.json")])
    assert again.exit_code == 0, again.output
    assert f"Hearings kept in {kept}: calls read back 1, heard and kept 0" in again.output
    verdicts = [json.loads((tmp_path / n).read_text())["calls"]["verdicts"] for n in ("1.json", "2.json")]
    assert verdicts[0] == verdicts[1] and verdicts[0][0]["rule"] == "caller_intent"


@pytest.mark.parametrize(("field", "value"), [("whisper_model", "base"), ("whisper_mirror_db", None),
                                              ("second_hearing", None), ("end_of_turn_s", 0.8)])
def test_each_setting_that_changes_what_is_heard_changes_a_calls_key(app: Flask, tmp_path: Path,
                                                                     field: str, value: object) -> None:
    from dataclasses import replace

    from lifeline.simulator.hearings import HearingStore, hearing_settings
    from lifeline.simulator.listening import LocalHearing

    settings = app.extensions["lifeline"].settings
    recording = ROOT / "examples" / "calls" / "audio" / "01-calm-balance-1.wav"

    def key(s: Any) -> str:
        store = HearingStore(tmp_path / "kept.json", hearing_settings(s, LocalHearing.TRAIL_S))
        return store.key([recording], LocalHearing.LEAD_S)

    assert key(settings) == key(settings)
    assert key(replace(settings, **{field: value})) != key(settings)


def test_kept_hearings_are_keyed_by_the_code_that_streams_a_call_not_by_the_report() -> None:
    from lifeline.simulator import hearings
    from lifeline.simulator.listening import LocalHearing

    # An edit to how evaluate scores or prints must not make every kept call be heard again.
    assert LocalHearing.__module__ in hearings._HEARING_MODULES
    assert "lifeline.simulator.evaluate" not in hearings._HEARING_MODULES
    for module in hearings._HEARING_MODULES:
        importlib.import_module(module)  # a renamed module fails here, not in a user's run


def test_a_kept_call_of_another_shape_is_heard_again_not_a_traceback(tmp_path: Path) -> None:
    from lifeline.simulator.hearings import FORMAT

    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"lifeline_hearings": FORMAT, "calls": {"k": [[["hello", "loud", [["x"]]]]]}}))
    store = _kept_store(kept)
    assert store.get("k", 1) is None and store.reused == 0


def test_a_hearings_file_of_an_older_layout_is_heard_afresh_and_rewritten(tmp_path: Path) -> None:
    from lifeline.simulator.hearings import FORMAT, HeardLine

    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"lifeline_hearings": FORMAT - 1, "calls": {"k": [[["hello", 0.5, []]]]}}))
    store = _kept_store(kept)
    assert store.get("k", 1) is None  # an older file's entries are dropped, not read back
    store.put("k2", [[HeardLine("hello", 0.5, ())]])
    store.save()
    assert json.loads(kept.read_text()) == {"lifeline_hearings": FORMAT,
                                            "calls": {"k2": [[["hello", 0.5, []]]]}}


def test_a_hearings_file_of_a_newer_layout_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    from lifeline.simulator.hearings import FORMAT, HearingsFileError

    kept = tmp_path / "kept.json"
    newer = json.dumps({"lifeline_hearings": FORMAT + 1, "calls": {"k": []}})
    kept.write_text(newer)
    with pytest.raises(HearingsFileError, match="newer Lifeline"):
        _kept_store(kept)
    assert kept.read_text() == newer


def test_a_lead_in_is_one_key_however_its_float_was_reached(tmp_path: Path) -> None:
    from lifeline.simulator.evaluate import FRAME_S

    recording = ROOT / "examples" / "calls" / "audio" / "01-calm-balance-1.wav"
    store = _kept_store(tmp_path / "kept.json")
    assert store.key([recording], 1.0 + 7 * FRAME_S) == store.key([recording], 1.14)
    assert store.key([recording], 1) == store.key([recording], 1.0)
    assert store.key([recording], 1.0) != store.key([recording], 1.0 + FRAME_S)


class _ShiftingHearing:
    """A fake of LocalHearing whose caller asks for a person only when heard at the first lead-in."""

    def __init__(self) -> None:
        self.lead_s = 1.0
        self.leads: list[float] = []

    @contextmanager
    def call(self) -> Iterator[Any]:
        from lifeline.simulator.hearings import HeardLine

        self.leads.append(self.lead_s)
        words = "I want to speak to a real person" if self.lead_s == 1.0 else "thanks, that is all"
        yield lambda wav: [HeardLine(words, 0.9, ())]


def test_offsets_hear_every_call_again_a_frame_later_each_time_and_report_the_spread(
        app: Flask, tmp_path: Path) -> None:
    from lifeline.simulator.evaluate import evaluate

    services = app.extensions["lifeline"].services
    calls = [ROOT / "examples" / "calls" / name
             for name in ("01-calm-balance.yaml", "02-asks-for-human.yaml")]
    hearing = _ShiftingHearing()
    kept_file = tmp_path / "hearings.json"
    progress: list[tuple[int, int]] = []
    report = evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local",  # type: ignore[arg-type]
                      progress=lambda done, total: progress.append((done, total)),
                      kept=_kept_store(kept_file), offsets=3)
    assert hearing.leads == pytest.approx([1.0, 1.0, 1.02, 1.02, 1.04, 1.04])  # two calls at each lead-in
    assert progress == [(n, 6) for n in range(1, 7)]  # one count over every pass, not one per pass
    assert hearing.lead_s == 1.0  # put back for whatever comes next
    offsets = report["calls"]["offsets"]
    assert [run["lead_in_ms"] for run in offsets["runs"]] == [0, 20, 40]
    first = report["calls"]["summary"]
    assert offsets["runs"][0] == {"lead_in_ms": 0, **{k: first[k] for k in (
        "precision", "recall", "false_negative", "false_transfers")}}
    assert (first["recall"], first["false_transfers"]) == (1.0, 1)  # both put through at the first lead-in
    assert offsets["runs"][1]["recall"] == 0.0 and offsets["runs"][1]["false_transfers"] == 0
    assert offsets["spread"]["recall"] == [0.0, 1.0] and offsets["spread"]["false_transfers"] == [0, 1]
    # both calls turn on the offset: the calm one is right at the two later, the asker at the first only
    assert [(Path(c["scenario"]).name, c["put_through_at_ms"], c["right_offsets"], c["offsets"])
            for c in offsets["unsteady"]] == [("01-calm-balance.yaml", [0], 2, 3),
                                              ("02-asks-for-human.yaml", [0], 1, 3)]
    printed: list[str] = []
    print_report(report, printed.append)
    assert any(line.endswith("unsteady calls 2") for line in printed)
    line = "    turns on the offset: 02-asks-for-human.yaml: put through at +0 ms of 3 offsets; right at 1"
    assert line in printed
    assert report["hearings"]["heard"] == 6  # each offset is kept apart: a second run hears nothing
    evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local",  # type: ignore[arg-type]
             kept=_kept_store(kept_file), offsets=3)
    assert len(hearing.leads) == 6


def test_a_call_heard_the_same_at_every_offset_is_not_unsteady(app: Flask) -> None:
    from lifeline.simulator.evaluate import evaluate

    services = app.extensions["lifeline"].services
    calls = [ROOT / "examples" / "calls" / name
             for name in ("01-calm-balance.yaml", "02-asks-for-human.yaml")]
    hearing = _CountingHearing()
    report = evaluate(calls, services.scorer, services.rules, 0.85, hearing, "local",  # type: ignore[arg-type]
                      offsets=2)
    assert report["calls"]["offsets"]["unsteady"] == []
    assert report["calls"]["offsets"]["spread"]["false_transfers"] == [0, 0]


def test_an_unlabelled_call_that_turns_on_the_offset_is_named_without_a_right_count(
        app: Flask, tmp_path: Path) -> None:
    from lifeline.simulator.evaluate import evaluate

    services = app.extensions["lifeline"].services
    recording = ROOT / "examples" / "calls" / "audio" / "02-asks-for-human-1.wav"
    unlabelled = tmp_path / "unlabelled.yaml"
    unlabelled.write_text(f"name: a call nobody labelled\nturns:\n  - say: hello\n    audio: {recording}\n")
    hearing = _ShiftingHearing()
    report = evaluate([unlabelled], services.scorer, services.rules, 0.85, hearing,  # type: ignore[arg-type]
                      "local", offsets=2)
    [call] = report["calls"]["offsets"]["unsteady"]
    assert (call["put_through_at_ms"], call["right_offsets"], call["offsets"]) == ([0], None, 2)
    printed: list[str] = []
    print_report(report, printed.append)
    assert "    turns on the offset: unlabelled.yaml: put through at +0 ms of 2 offsets" in printed


def test_offsets_are_for_audio_and_printed_as_a_range(app: Flask, tmp_path: Path) -> None:
    scenario = ROOT / "examples" / "calls" / "02-asks-for-human.yaml"
    text = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--offsets", "2"])
    assert text.exit_code == 2 and "use it with --engine local" in text.output
    out = tmp_path / "report.json"
    heard = app.test_cli_runner().invoke(args=["evaluate", str(scenario), "--engine", "local",
                                               "--offsets", "2", "--json", str(out)])
    assert heard.exit_code == 0, heard.output
    assert "heard at 2 window offsets (lead-in +0 to +20 ms): precision" in heard.output
    assert len(json.loads(out.read_text())["calls"]["offsets"]["runs"]) == 2
