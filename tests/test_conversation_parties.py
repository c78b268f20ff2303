"""Both parties after the bridge: the agent's words are heard, labelled and scored, never escalated."""

from __future__ import annotations

from pathlib import Path

from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario

from .conftest import AGENTS, ROOT, wait_until

SCENARIO = ROOT / "examples" / "conversation" / "agent-after-transfer.yaml"


def test_after_the_bridge_both_parties_are_transcribed_labelled_and_scored(live: Simulation) -> None:
    [result] = live.run([load_scenario(SCENARIO)])
    assert result.passed, result.problems
    ccid = result.leg.call_control_id
    lifeline = live.app.extensions["lifeline"]  # type: ignore[union-attr]
    messages = [e.data for e in lifeline.outputs.store.feed_for_call(ccid, ("message",))]
    assert [(m["party"], m["text"]) for m in messages] == [
        ("caller", "I need to speak to a real person about my stolen card"),
        ("agent", "Hello, this is Dana from cards. I'm sorry about your card."),
        ("caller", "Thank you, someone took my wallet this morning"),
        ("agent", "I'll send you a new card today and call you back tomorrow to confirm.")]
    assert all(isinstance(m["score"], float) and m["label"] for m in messages)
    # What the rules read comes with the caller's lines only: no rule reads the agent.
    assert [m["analysis"] is not None for m in messages] == [True, False, True, False]
    # The rules only ever see the caller: the agent's words are not among the caller's messages.
    assert [m["text"] for m in lifeline.store.messages(ccid)] == [
        "I need to speak to a real person about my stolen card",
        "Thank you, someone took my wallet this morning"]
    assert len(lifeline.store.decisions(ccid)) == 1
    starts = [c for c in live.emulator.commands_for(ccid, "transcription_start") if c["status"] == 200]
    assert [c["body"]["transcription_tracks"] for c in starts] == ["both"]
    # The outputs worker writes the summary after the call ends, at most 4 times a second.
    assert wait_until(lambda: lifeline.outputs.summaries.get(ccid) is not None, 10)
    summary = lifeline.outputs.summaries.get(ccid)
    assert set(summary["summary"]["sentiment"]) == {"caller", "agent"}
    promise = "I'll send you a new card today and call you back tomorrow to confirm."
    assert {"party": "agent", "text": promise} in summary["summary"]["action_items"]


def test_agent_words_never_trigger_an_escalation(live: Simulation, tmp_path: Path) -> None:
    scenario = tmp_path / "angry-agent.yaml"
    scenario.write_text(
        'name: a calm caller, transferred from the menu; the agent is furious\n'
        'expect: {transfer: true}\n'
        'turns:\n  - wait_for: gather\n  - press: "0"\n'
        '  - agent_says: "This is terrible, I hate this awful useless system, I want a supervisor now"\n'
        '  - agent_says: "Nobody is helping me, this is the worst, get me a human"\n'
        '  - hangup: true\n')
    [result] = live.run([load_scenario(scenario)])
    assert result.passed, result.problems
    ccid = result.leg.call_control_id
    lifeline = live.app.extensions["lifeline"]  # type: ignore[union-attr]
    agent = [e.data for e in lifeline.outputs.store.feed_for_call(ccid, ("message",))]
    assert [m["party"] for m in agent] == ["agent", "agent"] and all(m["score"] < 0 for m in agent)
    assert [d["rule"] for d in lifeline.store.decisions(ccid)] == ["dtmf_0"]  # the key, not the agent
    assert len(result.transfer_commands) == 1


def test_flask_simulate_shows_the_agents_words_in_the_timeline(app) -> None:  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["simulate", str(SCENARIO), "--speed", "20"])
    assert result.exit_code == 0, result.output
    assert 'agent     says: "Hello, this is Dana from cards.' in result.output
    heard_agent = 'app heard agent (telnyx) "Hello, this is Dana from cards. I\'m sorry about your card."'
    assert heard_agent in result.output
    heard_caller = 'app heard caller (telnyx) "I need to speak to a real person about my stolen card"'
    assert heard_caller in result.output


def test_the_local_engine_hears_the_agent_on_the_outbound_track_after_the_bridge() -> None:
    with Simulation({"LIFELINE_AGENTS": "+15550001111,+15550002222"}, engine="local", speed=1) as sim:
        [result] = sim.run([load_scenario(SCENARIO)])
        assert result.passed, result.problems
        ccid = result.leg.call_control_id
        lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
        lifeline.engine.wait_idle(20)
        messages = [e.data for e in lifeline.outputs.store.feed_for_call(ccid, ("message",))]
        by_party = {p: " ".join(m["text"].lower() for m in messages if m["party"] == p)
                    for p in ("caller", "agent")}
        assert "real person" in by_party["caller"] and "wallet" in by_party["caller"]
        # tiny.en hears the agent's name as "Dana" or "vayna" depending on the machine's load; the
        # words that matter here are the agent's, and that they are the agent's.
        assert "new card" in by_party["agent"] and "new card" not in by_party["caller"]
        assert all(m["engine"] == "local" for m in messages)
        restarts = [c for c in sim.emulator.commands_for(ccid, "streaming_start") if c["status"] == 200]
        assert [c["body"]["stream_track"] for c in restarts] == ["both_tracks"]
        assert "new card" not in " ".join(m["text"].lower() for m in lifeline.store.messages(ccid))


def test_an_engine_that_does_not_name_the_track_hears_only_the_caller_after_the_bridge() -> None:
    # Only Telnyx's own engine says which track a transcript came from: with any other, the
    # agent's words would arrive unnamed and be filed as the caller's.
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_TRANSCRIPTION_ENGINE": "Google"}, speed=20) as live:
        [result] = live.run([load_scenario(SCENARIO)])
        assert result.passed, result.problems
        ccid = result.leg.call_control_id
        lifeline = live.app.extensions["lifeline"]  # type: ignore[union-attr]
        feed = lifeline.outputs.store.feed_for_call(ccid, ("message",))
        said = [(e.data["party"], e.data["text"]) for e in feed]
        assert said == [("caller", "I need to speak to a real person about my stolen card"),
                        ("caller", "Thank you, someone took my wallet this morning")]
        assert live.emulator.commands_for(ccid, "transcription_start") == []
        assert live.emulator.refused == [] and live.emulator.webhook_problems == []
