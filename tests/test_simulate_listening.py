"""`listening: paused|resumed` scenario turns: a scripted supervisor pauses and resumes listening
through the app's API, and the run checks that the paused stretch is not heard and the rest is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lifeline.simulator.caller import CallResult, ListeningStep, Say, judge_listening, play
from lifeline.simulator.faults import Fault
from lifeline.simulator.legs import CallLog, Leg
from lifeline.simulator.report import call_json, print_call
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario

from .conftest import AGENTS, ROOT

EXAMPLE = ROOT / "examples" / "conversation" / "paused-card-number.yaml"
BEFORE = "Hi, I would like to pay my bill by card"
PAUSED = "The number is 4111 1111 1111 1111, this is useless, let me talk to a real person"
AFTER = "Okay, that is all I needed, thank you very much"


def heard_and_listening(sim: Simulation, ccid: str) -> tuple[list[str], list[str]]:
    """The caller's lines the app published, and its listening states, in feed order."""
    store = sim.app.extensions["lifeline"].outputs.store  # type: ignore[union-attr]
    events = store.feed_for_call(ccid, ("message", "listening"))
    return ([e.data["text"] for e in events if e.kind == "message" and e.data["party"] == "caller"],
            [e.data["state"] for e in events if e.kind == "listening"])


def test_a_line_said_while_paused_is_not_heard_nor_escalated_and_a_line_after_the_resume_is(
        live: Simulation) -> None:
    [result] = live.run([load_scenario(EXAMPLE)])
    assert result.passed, result.problems
    ccid = result.leg.call_control_id
    assert heard_and_listening(live, ccid) == ([BEFORE, AFTER], ["paused", "resumed"])
    assert live.app.extensions["lifeline"].store.decisions(ccid) == []  # type: ignore[union-attr]
    assert result.transfer_commands == []
    # The turns went through the product's path: the API, then the provider told to stop and start.
    api = [(e["state"], e["status"]) for e in call_json(result)["timeline"] if e["kind"] == "api"]
    assert api == [("paused", 200), ("resumed", 200)]
    names = [c["name"] for c in live.emulator.commands_for(ccid) if c["name"].startswith("transcription")]
    assert names == ["transcription_stop", "transcription_start"]
    lines: list[str] = []
    print_call(result, lines.append)
    assert any(line.endswith("api       listening paused         200") for line in lines), lines


def test_the_pause_and_resume_turns_drive_the_twilio_emulator_too() -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="twilio", speed=20, provider="twilio") as sim:
        [result] = sim.run([load_scenario(EXAMPLE)])
        assert result.passed, result.problems
        heard = heard_and_listening(sim, result.leg.call_control_id)
        assert heard == ([BEFORE, AFTER], ["paused", "resumed"])
        assert result.transfer_commands == []


def test_a_resume_the_provider_never_acts_on_fails_the_call_naming_the_turn(tmp_path: Path) -> None:
    scenario = tmp_path / "resume-lost.yaml"
    scenario.write_text("name: resume lost\nturns:\n  - wait_for: gather\n  - listening: paused\n"
                        "  - listening: resumed\n  - say: hello\n")
    # At speed 2 the menu's re-prompts keep the call up for longer than the 5 real seconds waited.
    with Simulation({"LIFELINE_AGENTS": AGENTS}, speed=2) as sim:
        # Telnyx answers the restart with 200 and does nothing: the app cannot know; the scenario can.
        sim.emulator.inject(Fault("transcription_start", times=5, drop=True))
        [result] = sim.run([load_scenario(scenario)])
    assert result.problems == ["turn 3: the provider was not sending or transcribing it again 5 s after "
                               "the app accepted the resume"]
    assert result.says == []  # the rest of the script depended on the resume


def test_a_listening_turn_without_the_apps_api_says_how_to_run_it(live: Simulation, tmp_path: Path) -> None:
    scenario = tmp_path / "no-api.yaml"
    scenario.write_text("name: no api\nturns:\n  - wait_for: gather\n  - listening: paused\n"
                        "  - say: hello\n")
    result = play(live.emulator, load_scenario(scenario))
    assert result.problems == ["turn 2: `listening` turns need the app's API (run the scenario with "
                               "`flask simulate`, or pass Simulation.api to play)"]
    assert result.says == []  # the rest of the script depended on the pause


def judged(tmp_path: Path, says: list[Say], heard: list[dict[str, Any]], resumed_at: float) -> CallResult:
    """A played call as the runner has it once the app's heard lines are attached (no app needed)."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nturns:\n  - listening: paused\n  - say: a\n  - listening: resumed\n"
                        "  - say: b\n")
    leg = Leg(call_control_id="v3:x", call_leg_id="l", from_="+15551230001", to="+15550100000",
              direction="incoming", state="answered", role="caller", log=CallLog("s"))
    steps = [ListeningStep(1, True, 10.0, True), ListeningStep(3, False, resumed_at, True)]
    result = CallResult(scenario=load_scenario(scenario), leg=leg, speed=1.0, says=says, heard=heard,
                        listening=steps)
    judge_listening(result)
    return result


def line(t_ms: float, text: str, party: str = "caller") -> dict[str, Any]:
    return {"t_ms": t_ms, "kind": "heard", "party": party, "text": text}


@pytest.mark.parametrize("heard_as", [
    "The number is #### #### #### ####, this is useless. Let me talk to a real person.",
    "the number is #### #### #### #### this is useless let me talk to a real person",
])
def test_a_paused_line_the_app_heard_anyway_fails_the_call(tmp_path: Path, heard_as: str) -> None:
    says = [Say(1, PAUSED, 20.0, 900.0, paused=True), Say(2, AFTER, 1100.0, 1900.0)]
    result = judged(tmp_path, says, [line(950.0, heard_as), line(1950.0, AFTER)], resumed_at=1000.0)
    assert result.problems == [f"say #1 came while listening was paused, but the app heard it: {PAUSED!r}"]


@pytest.mark.parametrize("heard", [
    ["The number is #### #### #### ####, this is useless.", "Let me talk to a real person."],  # split
    ["The number is #### #### #### ####, this is useless, let me talk to the real person"],  # a word off
])
def test_a_paused_line_heard_in_two_parts_or_with_a_word_misheard_still_fails_the_call(
        tmp_path: Path, heard: list[str]) -> None:
    says = [Say(1, PAUSED, 20.0, 900.0, paused=True), Say(2, AFTER, 1100.0, 1900.0)]
    lines = [line(950.0 + n, text) for n, text in enumerate(heard)] + [line(1950.0, AFTER)]
    result = judged(tmp_path, says, lines, resumed_at=1000.0)
    assert result.problems == [f"say #1 came while listening was paused, but the app heard it: {PAUSED!r}"]


def test_a_word_said_paused_and_said_again_after_the_resume_is_not_a_leak(tmp_path: Path) -> None:
    says = [Say(1, "Yes.", 20.0, 300.0, paused=True),
            Say(2, "Yes, I need help with my bill.", 1100.0, 1900.0)]
    result = judged(tmp_path, says, [line(1950.0, "Yes, I need help with my bill.")], resumed_at=1000.0)
    assert result.problems == []


def test_a_late_line_from_before_the_pause_does_not_count_as_hearing_after_the_resume(tmp_path: Path) -> None:
    says = [Say(0, AFTER, 0.0, 5.0), Say(1, PAUSED, 20.0, 900.0, paused=True),
            Say(2, "Could you also check my address please", 1100.0, 1900.0)]
    # Heard after the resume, but it is the line said before the pause, transcribed late.
    result = judged(tmp_path, says, [line(1950.0, AFTER)], resumed_at=1000.0)
    assert result.problems == ["turn 3: listening was resumed, but the app heard nothing the caller said "
                               "after it (say #2 on)"]


def test_hearing_nothing_after_a_resume_fails_the_call(tmp_path: Path) -> None:
    says = [Say(1, PAUSED, 20.0, 900.0, paused=True), Say(2, AFTER, 1100.0, 1900.0)]
    # Only the agent was heard after the resume: the caller was not.
    result = judged(tmp_path, says, [line(1950.0, AFTER, party="agent")], resumed_at=1000.0)
    assert result.problems == ["turn 3: listening was resumed, but the app heard nothing the caller said "
                               "after it (say #2 on)"]


def test_a_paused_stretch_not_heard_and_a_resumed_one_heard_passes(tmp_path: Path) -> None:
    says = [Say(1, PAUSED, 20.0, 900.0, paused=True), Say(2, AFTER, 1100.0, 1900.0)]
    result = judged(tmp_path, says, [line(1950.0, AFTER)], resumed_at=1000.0)
    assert result.problems == []
