"""`flask simulate`: scenarios in, a timeline and the DESIGN.md §6 JSON out, non-zero on failure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask

from lifeline.simulator.lifecycle import RING_S
from lifeline.simulator.report import call_json, print_call
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import ScenarioError, load_scenario

from .conftest import AGENTS, ROOT

CALLS = ROOT / "examples" / "calls"
CONVERSATION = ROOT / "examples" / "conversation"


def run(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["simulate", "--speed", "10", *args])


def test_example_scenarios_pass_and_the_json_report_keeps_the_contract(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    names = ["01-calm-balance.yaml", "02-asks-for-human.yaml", "03-operator-key.yaml",
             "09-hangup-mid-menu.yaml"]
    result = run(app, *(str(CALLS / n) for n in names), "--concurrency", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "4 passed, 0 failed" in result.output
    report = json.loads(out.read_text())
    assert report["engine"] == "telnyx"
    assert {k: report["summary"][k] for k in ("calls", "passed", "failed")} == {"calls": 4, "passed": 4,
                                                                             "failed": 0}
    calls = {Path(c["scenario"]).name: c for c in report["calls"]}
    assert [Path(c["scenario"]).name for c in report["calls"]] == names
    human = calls["02-asks-for-human.yaml"]
    assert (human["passed"], human["outcome"]) == (True, "transferred")
    [transfer] = human["transfer_commands"]
    assert transfer["to"] == "+15550001111"
    assert transfer["client_state"]["rule"] == "caller_intent"
    assert isinstance(human["escalation_latency_ms"], float) and human["escalation_latency_ms"] > 0
    kinds = {(e["kind"], e["type"]) for e in human["timeline"]}
    assert {("webhook", "call.initiated"), ("command", "answer"), ("caller", "say"),
            ("webhook", "call.transcription"), ("command", "transfer"), ("webhook", "call.bridged")} <= kinds
    say = next(e for e in human["timeline"] if e["type"] == "say")
    assert say["index"] == 1 and say["end_ms"] > say["t_ms"]
    assert calls["01-calm-balance.yaml"]["escalation_latency_ms"] is None
    assert calls["01-calm-balance.yaml"]["outcome"] == "completed"
    times = [e["t_ms"] for e in human["timeline"]]
    assert times == sorted(times)


def test_simulate_takes_a_folder_of_scenarios_in_name_order(app: Flask, tmp_path: Path) -> None:
    for name in ("03-operator-key.yaml", "01-calm-balance.yaml"):
        (tmp_path / name).write_text((CALLS / name).read_text())
    (tmp_path / "notes.txt").write_text("not a scenario")
    out = tmp_path / "report.json"
    result = run(app, str(tmp_path), "--quiet", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert [Path(c["scenario"]).name for c in json.loads(out.read_text())["calls"]] == [
        "01-calm-balance.yaml", "03-operator-key.yaml"]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run(app, str(empty))
    assert refused.exit_code == 2 and "no scenarios (*.yaml) in" in refused.output


def test_unmet_expectation_fails_the_run_and_says_why(app: Flask, tmp_path: Path) -> None:
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text("name: calm caller wrongly expected to be transferred\n"
                        "expect: {transfer: true}\n"
                        "turns:\n  - wait_for: gather\n  - say: \"What are your opening hours\"\n")
    result = run(app, str(scenario))
    assert result.exit_code == 1
    assert "expected a transfer; none was commanded" in result.output
    assert "0 passed, 1 failed" in result.output
    closing = result.output.rsplit("0 passed, 1 failed", 1)[1]  # the failure is named again at the end
    assert f"FAIL calm caller wrongly expected to be transferred ({scenario})" in closing


def test_transfer_too_early_is_reported(app: Flask, tmp_path: Path) -> None:
    scenario = tmp_path / "early.yaml"
    scenario.write_text("name: operator pressed before the complaint\n"
                        "expect: {transfer: true, earliest_say: 1}\n"
                        "turns:\n  - wait_for: gather\n  - press: \"0\"\n  - pause: 5\n"
                        "  - say: \"this is awful\"\n")
    # 5 s of scenario time is 0.5 s at --speed 10: room for the transfer on a busy machine.
    result = run(app, str(scenario))
    assert result.exit_code == 1
    assert "came before say #1 began" in result.output


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nturns: []\n", "`turns` must be a non-empty list"),
    ("name: x\nturns:\n  - shout: hi\n", "turn 1 must have exactly one of"),
    ("name: x\nturns:\n  - press: \"5a\"\n", "turn 1: `press` takes keys"),
    ("name: x\nturns:\n  - pause: -1\n", "turn 1: `pause` takes seconds"),
    ("name: x\nagent: maybe\nturns:\n  - pause: 1\n", "`agent: maybe` must be one of"),
    ("name: x\nexpect: {transfer: yes please}\nturns:\n  - pause: 1\n", "expect.transfer"),
    ("name: x\nexpect: {transfer: true, intent: [a, b]}\nturns:\n  - pause: 1\n", "expect.intent"),
    ("name: x\nexpect: {latest_say: 2}\nturns:\n  - say: hi\n", "expect.latest_say: 2 but the script has 1"),
    ("name: x\nturns:\n  - wait_for: agent\n", "`wait_for` only knows `gather`"),
    ("turns: [1, 2\n", "not valid YAML"),
    ("name: x\nturns:\n  - listening: stopped\n", "turn 1: `listening` takes paused or resumed: write"),
    ("name: x\nturns:\n  - listening: off\n",
     "turn 1: `listening` takes paused or resumed (YAML reads on/off/yes/no as true/false)"),
    ("name: x\nturns:\n  - listening: resumed\n",
     "turn 1: `listening: resumed` but listening is not paused; pause it first with `listening: paused`"),
    ("name: x\nturns:\n  - listening: paused\n  - say: hi\n  - listening: paused\n",
     "turn 3: `listening: paused` but turn 1 paused listening already; resume it first"),
    ("name: x\nturns:\n  - listening: paused\n    audio: a.wav\n", "(and `audio` only with `say`"),
])
def test_bad_scenario_is_refused_naming_the_file_and_turn(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_bad_scenario_stops_simulate_before_any_call(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nturns:\n  - shout: hi\n")
    result = run(app, str(path))
    assert result.exit_code == 2
    assert "turn 1 must have exactly one of" in result.output


def test_all_shipped_scenarios_are_valid() -> None:
    scenarios = [load_scenario(p) for p in sorted(CALLS.glob("*.yaml"))]
    assert len(scenarios) >= 12
    assert all(s.turns for s in scenarios)


def test_every_corpus_call_loads_with_its_label() -> None:
    paths = sorted((CALLS.parent.parent / "corpus").glob("*/calls/*.yaml"))
    scenarios = [load_scenario(p) for p in paths]
    assert len(scenarios) >= 150
    assert all(s.expect.transfer is not None for s in scenarios)


def test_say_audio_path_is_relative_to_the_scenario(tmp_path: Path) -> None:
    path = tmp_path / "calls" / "a.yaml"
    path.parent.mkdir()
    path.write_text("name: x\nturns:\n  - say: hello\n    audio: audio/hello.wav\n")
    assert load_scenario(path).turns[0].audio == tmp_path / "calls" / "audio" / "hello.wav"


def test_client_state_in_the_report_is_decoded_json(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    run(app, str(CALLS / "03-operator-key.yaml"), "--json", str(out))
    [transfer] = json.loads(out.read_text())["calls"][0]["transfer_commands"]
    assert transfer["client_state"] == {"reason": "caller pressed 0 for the operator", "rule": "dtmf_0",
                                        "attempt": 1}


def test_quality_summary_counts_hits_misses_and_false_alarms(app: Flask, tmp_path: Path) -> None:
    scenarios = {
        "hit.yaml": ("expect: {transfer: true}", "say: \"get me an agent\""),
        "miss.yaml": ("expect: {transfer: true}", "say: \"what are your opening hours\""),
        "alarm.yaml": ("expect: {transfer: false}", "press: \"0\""),
        "calm.yaml": ("expect: {transfer: false}", "say: \"thanks, that is all\""),
    }
    for name, (expect, turn) in scenarios.items():
        (tmp_path / name).write_text(f"name: {name}\n{expect}\nturns:\n  - wait_for: gather\n  - {turn}\n"
                                     "  - pause: 4.0\n")
    out = tmp_path / "q.json"
    result = run(app, *(str(tmp_path / n) for n in scenarios), "--json", str(out))
    assert result.exit_code == 1
    scores = json.loads(out.read_text())["summary"]["quality"]
    assert (scores["true_positive"], scores["false_negative"], scores["false_positive"],
            scores["true_negative"]) == (1, 1, 1, 1)
    assert (scores["precision"], scores["recall"]) == (0.5, 0.5)
    assert scores["missed"] == ["miss.yaml"] and scores["false_alarms"] == ["alarm.yaml"]
    assert "Escalation: precision 0.5, recall 0.5" in result.output


def test_a_run_with_no_caller_who_needs_a_person_prints_n_a_for_recall_not_none(
        app: Flask, tmp_path: Path) -> None:
    (tmp_path / "calm.yaml").write_text("name: calm\nexpect: {transfer: false}\nturns:\n"
                                        "  - wait_for: gather\n  - say: \"thanks, that is all\"\n"
                                        "  - pause: 2.0\n")
    result = run(app, str(tmp_path / "calm.yaml"))
    assert result.exit_code == 0, result.output
    assert "Escalation: precision n/a, recall n/a (TP 0, FP 0, FN 0, TN 1)" in result.output
    assert "None" not in result.output


def test_a_simulation_never_sends_to_real_outputs_named_only_in_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's .env for production is in the environment when they run `make demo`.
    monkeypatch.setenv("LIFELINE_EVENT_WEBHOOKS", "https://receiver.example.com/lifeline")
    monkeypatch.setenv("LIFELINE_EVENT_SECRET", "a-production-secret-of-some-length")
    monkeypatch.setenv("LIFELINE_SMTP_URL", "smtp://mail.example.com:587")
    monkeypatch.setenv("LIFELINE_SUMMARY_TO", "team@example.com")
    monkeypatch.setenv("LIFELINE_RECORDINGS_BUCKET", "s3://production-recordings/calls")
    with Simulation({"LIFELINE_AGENTS": AGENTS}, speed=20) as sim:
        assert sim.app is not None
        outputs = sim.app.extensions["lifeline"].outputs.settings
        assert (outputs.event_webhooks, outputs.smtp, outputs.summary_to) == ((), None, ())
        assert sim.app.extensions["lifeline"].settings.recordings_bucket is None
    explicit = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_EVENT_WEBHOOKS": "http://127.0.0.1:9/hook",
                "LIFELINE_EVENT_SECRET": "a-test-secret-of-some-length"}
    with Simulation(explicit, speed=20) as sim:  # what the caller passes is kept
        assert sim.app is not None
        assert sim.app.extensions["lifeline"].outputs.settings.event_webhooks == ("http://127.0.0.1:9/hook",)


def test_the_timeline_prints_an_agents_words_after_the_dial_and_bridge_they_waited_for(
        live: Simulation, tmp_path: Path) -> None:
    scenario = tmp_path / "agent-after-key.yaml"
    # The agent's turn comes straight after the key: it waits for the transfer's dial and bridge.
    scenario.write_text('name: operator key, then the agent speaks\nexpect: {transfer: true}\n'
                        'turns:\n  - wait_for: gather\n  - press: "0"\n'
                        '  - agent_says: "Hello, you are through to the cards team"\n  - hangup: true\n')
    [result] = live.run([load_scenario(scenario)])
    assert result.passed, result.problems
    lines: list[str] = []
    print_call(result, lines.append)
    said = next(i for i, line in enumerate(lines) if 'agent     says: "Hello' in line)
    dialled_at = next(i for i, line in enumerate(lines) if line.split()[2:5] == ["<-", "app", "transfer"])
    assert dialled_at < said, "\n".join(lines)
    # Not before the agent's phone has rung and been answered. (The call.bridged webhook is when the
    # app is told, and may follow the agent's first words on a busy machine, as on a real line.)
    agent = next(e for e in call_json(result)["timeline"] if e["kind"] == "agent")
    transfer = result.transfer_commands[0]["t_ms"]
    assert agent["t_ms"] >= transfer + RING_S * 1000 / live.emulator.speed and agent["end_ms"] > agent["t_ms"]


def test_simulate_prints_once_where_the_app_is_and_the_token_it_made_for_the_run(app: Flask) -> None:
    result = run(app, str(CONVERSATION / "paused-card-number.yaml"))
    # The call passing means its `listening` turns reached the API with the token printed.
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("Lifeline under simulation: ")]
    match = re.fullmatch(r"Lifeline under simulation: (http://127\.0\.0\.1:\d+)/dashboard  \(sign in with "
                         r"the API token (\S{20,}); API (\S+) with 'Authorization: Bearer <token>'; up while "
                         r"the calls run\)", line)
    assert match is not None, line
    assert match.group(3) == f"{match.group(1)}/api"
    assert result.output.count(match.group(2)) == 1


def test_simulate_names_a_token_the_user_set_and_never_prints_it(app: Flask, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "the-users-own-production-token-42"
    monkeypatch.setenv("LIFELINE_API_TOKEN", secret)
    scenario = tmp_path / "short.yaml"
    scenario.write_text("name: short\nturns:\n  - wait_for: gather\n  - listening: paused\n"
                        "  - hangup: true\n")
    result = run(app, str(scenario))
    assert result.exit_code == 0, result.output  # the pause went through with the user's token
    assert "(sign in with your LIFELINE_API_TOKEN; API http://127.0.0.1:" in result.output
    assert secret not in result.output


def test_the_app_takes_calls_end_to_end_on_the_memory_store() -> None:
    from lifeline.ivr.store.memory import MemoryStore

    names = ["02-asks-for-human.yaml", "03-operator-key.yaml", "09-hangup-mid-menu.yaml"]
    with Simulation({"LIFELINE_AGENTS": AGENTS}, speed=20, database_url="memory://") as sim:
        assert sim.app is not None
        results = sim.run([load_scenario(CALLS / n) for n in names])
        lifeline = sim.app.extensions["lifeline"]
        store = lifeline.store
        assert isinstance(store, MemoryStore)
        assert [(r.passed, r.outcome) for r in results] == [
            (True, "transferred"), (True, "transferred"), (True, "completed")], [r.problems for r in results]
        human = results[0].leg.call_control_id
        assert [d["rule"] for d in store.decisions(human)] == ["caller_intent"]
        assert [e.kind for e in store.feed_for_call(human, ("transfer",))]  # the live feed is kept too
