"""Two `flask evaluate` runs of the same calls, side by side: which verdicts a change moved.

A contact centre editing its rules.yaml, or a developer trying a model, runs `flask evaluate`
once before the change (`--json BEFORE.json`) and once after (`--against BEFORE.json`). The
aggregate figures say whether errors went up or down; this says which calls moved and which way:
a caller now found or now missed, a calm caller now put through or now spared. Calls are matched
by their scenario path; calls in only one of the two runs are counted, not compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# How a call's verdict moved, by what it needed and whether it was put through before -> now.
FOUND, LOST, PUT_THROUGH, SPARED, OTHER_RULE = "now found", "now missed", "calm, now put through", \
    "calm, now spared", "same verdict, another rule"


class ReportError(ValueError):
    """The earlier report cannot be compared with; the message names the fix."""


def load_calls(path: Path) -> list[dict[str, Any]]:
    """The call verdicts of a `flask evaluate --json` report."""
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path} does not exist: write it first with `flask evaluate ... --json {path}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not a JSON report ({exc}): write it with `flask evaluate ... --json`") from None
    calls = report.get("calls") if isinstance(report, dict) else None
    verdicts = calls.get("verdicts") if isinstance(calls, dict) else None
    if not isinstance(verdicts, list) or not all(isinstance(v, dict) and isinstance(v.get("scenario"), str)
                                                  for v in verdicts):
        raise ReportError(f"{path} has no call verdicts: compare against a `flask evaluate --json` report "
                          "of call scenarios")
    return verdicts


def _errors(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    judged = [v for v in verdicts if v.get("expect_transfer") is not None]
    missed = sum(1 for v in judged if v["expect_transfer"] and not v.get("transferred"))
    false = sum(1 for v in judged if not v["expect_transfer"] and v.get("transferred"))
    return {"calls": len(judged), "missed": missed, "false_transfers": false, "errors": missed + false}


def _movement(before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    needed, was, is_ = now.get("expect_transfer"), bool(before.get("transferred")), bool(now.get("transferred"))
    if needed is None:
        return None  # an unlabelled call: neither verdict is right or wrong (evaluate leaves it out too)
    if was != is_:
        return (FOUND if is_ else LOST) if needed else (PUT_THROUGH if is_ else SPARED)
    if is_ and before.get("rule") != now.get("rule"):
        return OTHER_RULE
    return None


def compare(before: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The two runs' errors on the calls both hold, and every call whose verdict or rule moved."""
    earlier = {v["scenario"]: v for v in before}
    later = {v["scenario"]: v for v in now}
    both = [s for s in later if s in earlier]
    changed = []
    for scenario in both:
        move = _movement(earlier[scenario], later[scenario])
        if move is not None:
            changed.append({"scenario": scenario, "change": move,
                            "expect_transfer": later[scenario].get("expect_transfer"),
                            "rule_before": earlier[scenario].get("rule"), "rule_now": later[scenario].get("rule")})
    counts = {kind: sum(1 for c in changed if c["change"] == kind)
              for kind in (FOUND, LOST, PUT_THROUGH, SPARED, OTHER_RULE)}
    return {"compared": len(both), "only_before": len(earlier.keys() - later.keys()),
            "only_now": len(later.keys() - earlier.keys()),
            "before": _errors([earlier[s] for s in both]), "now": _errors([later[s] for s in both]),
            "moved": counts, "changed": changed}


def summary_line(file: str, result: Mapping[str, Any]) -> str:
    """One line of aggregates (no call named), so a checking split can be read this way alone."""
    b, n, moved = result["before"], result["now"], result["moved"]
    extra = "".join(f"; {count} only in {which}" for which, count in
                    (("the earlier run", result["only_before"]), ("this run", result["only_now"])) if count)
    return (f"against {file} ({result['compared']} calls in both{extra}): missed {b['missed']} -> {n['missed']}, "
            f"false transfers {b['false_transfers']} -> {n['false_transfers']}, errors {b['errors']} -> "
            f"{n['errors']}; {moved[FOUND]} {FOUND}, {moved[LOST]} {LOST}, {moved[PUT_THROUGH]} "
            f"{PUT_THROUGH}, {moved[SPARED]} {SPARED}, {moved[OTHER_RULE]} by another rule")
