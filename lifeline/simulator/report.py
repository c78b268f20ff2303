"""The simulation report: a readable timeline on the terminal and the JSON of DESIGN.md §6."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .caller import CallResult


def call_json(result: CallResult) -> dict[str, Any]:
    """One call as the --json report describes it."""
    return {
        "scenario": str(result.scenario.path),
        "name": result.scenario.name,
        "passed": result.passed,
        "outcome": result.outcome,
        "app_outcome": result.app_outcome,
        "why": result.why,
        "problems": list(result.problems),
        "transfer_commands": result.transfer_commands,
        "escalation_latency_ms": result.leg.log.escalation_latency_ms if result.transfer_commands else None,
        "timeline": _timeline(result),
    }


def _timeline(result: CallResult) -> list[dict[str, Any]]:
    return sorted([*result.leg.log.timeline, *result.heard], key=lambda e: e["t_ms"])


def report_json(results: Sequence[CallResult], engine: str) -> dict[str, Any]:
    """The whole --json document."""
    passed = sum(1 for r in results if r.passed)
    summary: dict[str, Any] = {"calls": len(results), "passed": passed, "failed": len(results) - passed}
    scores = quality(results)
    if scores:
        summary["quality"] = scores
    return {"engine": engine, "calls": [call_json(r) for r in results], "summary": summary}


def quality(results: Sequence[CallResult]) -> dict[str, Any] | None:
    """Escalation as a classifier over scenarios that say whether they expect a transfer.

    Promptness counts the caller's `say` turns that had begun when the transfer was commanded
    (1 = during or right after the first thing they said); on_time is the share of detected
    escalations that came by the scenario's `latest_say` (+ grace), where it gives one.
    """
    judged = [r for r in results if r.scenario.expect.transfer is not None]
    if not judged:
        return None
    tp = [r for r in judged if r.scenario.expect.transfer and r.transfer_commands]
    fn = [r for r in judged if r.scenario.expect.transfer and not r.transfer_commands]
    fp = [r for r in judged if not r.scenario.expect.transfer and r.transfer_commands]
    tn = len(judged) - len(tp) - len(fn) - len(fp)
    says_heard = sorted(sum(1 for s in r.says if s.start_ms <= r.transfer_commands[0]["t_ms"])
                        for r in tp if r.says)
    timed = [r for r in tp if r.scenario.expect.latest_say is not None]
    late = [r for r in timed if r.late]
    return {
        "true_positive": len(tp), "false_negative": len(fn), "false_positive": len(fp),
        "true_negative": tn,
        "precision": round(len(tp) / (len(tp) + len(fp)), 3) if tp or fp else None,
        "recall": round(len(tp) / (len(tp) + len(fn)), 3) if tp or fn else None,
        "median_says_before_transfer": says_heard[len(says_heard) // 2] if says_heard else None,
        "on_time": round(1 - len(late) / len(timed), 3) if timed else None,
        "missed": [r.scenario.name for r in fn],
        "false_alarms": [r.scenario.name for r in fp],
    }


def print_call(result: CallResult, echo: Callable[[str], None], timeline: bool = True) -> None:
    """Print one call: its timeline, then its verdict."""
    echo(f"\n== {result.scenario.name}  ({result.scenario.path})")
    if timeline:
        for entry in _timeline(result):
            echo(f"  {entry['t_ms']:>9.1f} ms  {_describe(entry)}")
    latency = result.leg.log.escalation_latency_ms
    verdict = "PASS" if result.passed else "FAIL"
    extra = ""
    if latency is not None and result.transfer_commands:
        silence_s = result.leg.log.trigger_trailing_silence_s
        # Audio: measured from the recording's last frame (DESIGN.md), which trailing silence puts
        # after the words, so an app that decides in that silence shows a negative figure: the
        # time from the end of the words is shown beside it.
        extra = f", escalation {latency:.1f} ms"
        if silence_s:
            extra += f" ({latency + silence_s * 1000:.1f} ms after the words ended)"
    # The app's own word for how the call ended (no_agent, voicemail) when it was read: what the
    # API, the console and the history filter say; else what the caller's side saw.
    outcome = result.app_outcome or result.outcome
    echo(f"  {verdict}  outcome={outcome}, transfers={len(result.transfer_commands)}{extra}")
    if result.why:
        echo(f"        why: {result.why}")
    for problem in result.problems:
        echo(f"        - {problem}")


def explain(decisions: Sequence[Mapping[str, Any]], messages: Sequence[Mapping[str, Any]],
            transferred: bool) -> str:
    """Why a call was or was not put through, in one short line: the deciding rule and its reason,
    or, for a call no rule decided, the strongest intent or frustration read from the caller."""
    if decisions:
        return f"decided by {decisions[0]['rule']}: {decisions[0]['reason']}"
    if transferred:
        return "put through by the menu (a key the caller pressed), not by a rule"
    readings = [(p, name, str(m.get("text") or "")) for m in messages
                for name, p in _readings(m.get("analysis"))]
    if not readings:
        return "no rule fired; the app heard nothing from the caller to read"
    p, name, text = max(readings, key=lambda r: r[0])
    if p < _STRONG:
        return f"no rule fired; nothing strong read (highest {name} {p:.2f})"
    shown = text if len(text) <= _QUOTED else text[:_QUOTED - 1] + "…"
    return f"no rule fired; strongest signal {name} {p:.2f} on \"{shown}\""


_QUOTED = 48  # characters of the caller's line quoted beside its strongest signal
_STRONG = 0.5  # below this no reading is likelier than not, so no line is worth quoting


def _readings(analysis: object) -> list[tuple[str, float]]:
    """A message's intent and frustration probabilities (calm is no signal), as (name, p)."""
    if not isinstance(analysis, Mapping):
        return []
    found: list[tuple[str, float]] = []
    for key in ("intents", "frustration"):
        values = analysis.get(key)
        if isinstance(values, Mapping):
            found += [(str(k), float(v)) for k, v in values.items() if k != "calm"]
    return found


def _describe(entry: dict[str, Any]) -> str:
    kind = entry["kind"]
    if kind == "webhook":
        return f"-> app     {entry['type']:<24} {entry['status']} in {entry['ack_ms']:.1f} ms"
    if kind == "command":
        tail = " (duplicate command_id, ignored)" if entry.get("duplicate") else ""
        return f"<- app     {entry['type']:<24} {entry['status']}{tail}"
    if kind == "api":  # a `listening` turn: the scripted supervisor's request to the app's API
        return f"api       listening {entry['state']:<14} {entry['status']}"
    if kind == "heard":
        return (f"app heard {entry.get('party', 'caller')} ({entry['engine']}) \"{entry['text']}\" "
                f"score {entry['score']:+.2f} {entry['label']}")
    if kind == "agent" and entry["type"] == "whisper":  # Twilio: the reason whispered as the agent answers
        return f"agent     hears: \"{entry['text']}\""
    if kind == "agent":
        return f"agent     says: \"{entry['text']}\" (until {entry['end_ms']:.0f} ms)"
    if entry["type"] == "say":
        return f"caller    says #{entry['index']}: \"{entry['text']}\" (until {entry['end_ms']:.0f} ms)"
    if entry["type"] == "press":
        return f"caller    presses {entry['digits']}"
    return f"caller    {entry['type']}"
