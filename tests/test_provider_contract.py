"""One contract for every provider: the same callers, through Telnyx's webhooks or Twilio's, become
the same call events and end the same way (each emulator stands in for its provider)."""

from __future__ import annotations

from typing import Any

import pytest

from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario

from .conftest import AGENTS, ROOT

# Callers whose outcome does not hang on how long the handoff line takes to say: Twilio says it
# before its <Dial> rings the agent, Telnyx rings while it is said, so a caller who hangs up a
# moment after asking (02, 03 at this speed) has been put through on Telnyx and not yet on Twilio.
SCENARIOS = ("01-calm-balance.yaml", "07-angry-profanity.yaml", "08-agent-no-answer.yaml",
             "09-hangup-mid-menu.yaml")
# What moves a call on; the rest is provider-specific news (Telnyx's transcription webhooks and
# speak.started, which Twilio's TwiML has no counterpart for).
CALL_EVENTS = {"call.initiated", "call.answered", "call.dtmf.received", "call.gather.ended", "call.bridged",
               "call.hangup", "call.recording.saved"}


def _calls_through(provider: str) -> dict[str, dict[str, Any]]:
    """Each scenario's caller through this provider's emulator: what the app made of the call."""
    engine = "telnyx" if provider == "telnyx" else "twilio"  # each provider's own transcription
    scenarios = [load_scenario(ROOT / "examples" / "calls" / name) for name in SCENARIOS]
    seen = {}
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine=engine, speed=20, provider=provider) as sim:
        store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
        for name, result in zip(SCENARIOS, sim.run(scenarios), strict=True):
            ccid = result.leg.call_control_id
            call = store.get_call(ccid)
            seen[name] = {
                "passed": result.passed,
                "events": [e["event_type"] for e in store.events(ccid) if e["event_type"] in CALL_EVENTS],
                "outcome": call.outcome, "status": call.status,
                "rules": [d["rule"] for d in store.decisions(ccid)],
                "transfers": [(t.attempt, t.to_number, t.reason) for t in store.transfers(ccid)],
            }
    return seen


@pytest.fixture(scope="module")
def both() -> dict[str, dict[str, dict[str, Any]]]:
    return {provider: _calls_through(provider) for provider in ("telnyx", "twilio")}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_same_caller_through_either_provider_gives_the_same_events_decisions_and_outcome(
        both: dict[str, dict[str, dict[str, Any]]], scenario: str) -> None:
    telnyx, twilio = both["telnyx"][scenario], both["twilio"][scenario]
    assert telnyx["passed"] and twilio["passed"]
    assert telnyx["events"][:2] == ["call.initiated", "call.answered"]
    assert telnyx == twilio


def test_the_contract_covers_keys_transfers_and_a_caller_who_hangs_up(
        both: dict[str, dict[str, dict[str, Any]]]) -> None:
    calls = both["twilio"].values()
    assert any("call.dtmf.received" in c["events"] for c in calls)
    assert any(c["transfers"] for c in calls) and any(c["outcome"] == "transferred" for c in calls)
    assert {c["outcome"] for c in calls} >= {"completed", "transferred"}
