"""The simulation report: a readable timeline on the terminal and the JSON of DESIGN.md §6."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .caller import CallResult


def call_json(result: CallResult) -> dict[str, Any]:
    """One call as the --json report describes it."""
    return {
        "scenario": str(result.scenario.path),
        "name": result.scenario.name,
        "passed": result.passed,
        "outcome": result.outcome,
        "problems": list(result.problems),
        "transfer_commands": result.transfer_commands,
        "escalation_latency_ms": result.leg.log.escalation_latency_ms if result.transfer_commands else None,
        "timeline": sorted(result.leg.log.timeline, key=lambda e: e["t_ms"]),
    }


def report_json(results: Sequence[CallResult], engine: str) -> dict[str, Any]:
    """The whole --json document."""
    passed = sum(1 for r in results if r.passed)
    return {"engine": engine, "calls": [call_json(r) for r in results],
            "summary": {"calls": len(results), "passed": passed, "failed": len(results) - passed}}


def print_call(result: CallResult, echo: Callable[[str], None], timeline: bool = True) -> None:
    """Print one call: its timeline, then its verdict."""
    echo(f"\n== {result.scenario.name}  ({result.scenario.path})")
    if timeline:
        for entry in sorted(result.leg.log.timeline, key=lambda e: e["t_ms"]):
            echo(f"  {entry['t_ms']:>9.1f} ms  {_describe(entry)}")
    latency = result.leg.log.escalation_latency_ms
    verdict = "PASS" if result.passed else "FAIL"
    extra = f", escalation {latency:.1f} ms" if latency is not None and result.transfer_commands else ""
    echo(f"  {verdict}  outcome={result.outcome}, transfers={len(result.transfer_commands)}{extra}")
    for problem in result.problems:
        echo(f"        - {problem}")


def _describe(entry: dict[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "webhook":
        return f"-> app     {entry['type']:<24} {entry['status']} in {entry['ack_ms']:.1f} ms"
    if kind == "command":
        tail = " (duplicate command_id, ignored)" if entry.get("duplicate") else ""
        return f"<- app     {entry['type']:<24} {entry['status']}{tail}"
    if entry["type"] == "say":
        return f"caller    says #{entry['index']}: \"{entry['text']}\" (until {entry['end_ms']:.0f} ms)"
    if entry["type"] == "press":
        return f"caller    presses {entry['digits']}"
    return f"caller    {entry['type']}"
