"""Two `flask evaluate` runs of the same calls, side by side: which verdicts a change moved.

A contact centre editing its rules.yaml, or a developer trying a model, runs `flask evaluate`
once before the change (`--json BEFORE.json`) and once after (`--against BEFORE.json`). The
aggregate figures say whether errors went up or down; this says which calls moved and which way:
a caller now found or now missed, a calm caller now put through or now spared. Calls are matched
by their scenario file (resolved, so relative and absolute PATHS meet); calls in only one of the
two runs are counted, not compared. Both runs are judged by this run's labels, so a label edited
in between does not pass for a change of verdict; such calls are counted as relabelled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# How a call's verdict moved.
FOUND, LOST, PUT_THROUGH, SPARED, OTHER_RULE = ("now found", "now missed", "calm, now put through",
                                                "calm, now spared", "same verdict, another rule")
MOVES = (FOUND, LOST, PUT_THROUGH, SPARED, OTHER_RULE)
FIX = "write it with `flask evaluate PATHS --json FILE` on the same calls"


class ReportError(ValueError):
    """The earlier report cannot be compared with; the message names the fix."""


def load_calls(path: Path) -> list[dict[str, Any]]:
    """The call verdicts of a `flask evaluate --json` report, each checked for what is compared."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"{path} does not exist: {FIX}") from None
    except OSError as exc:
        raise ReportError(f"{path} cannot be read ({exc.strerror or exc}): give the report's file") from None
    try:
        report = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not a JSON report ({exc}): {FIX}") from None
    calls = report.get("calls") if isinstance(report, dict) else None
    verdicts = calls.get("verdicts") if isinstance(calls, dict) else None
    if not isinstance(verdicts, list):
        raise ReportError(f"{path} has no call verdicts: {FIX}")
    for number, v in enumerate(verdicts, start=1):
        if not (isinstance(v, dict) and isinstance(v.get("scenario"), str)
                and isinstance(v.get("transferred"), bool)
                and v.get("expect_transfer", "") in (True, False, None)
                and (v.get("rule") is None or isinstance(v.get("rule"), str))):
            raise ReportError(f"{path}: call verdict {number} lacks `scenario`, `transferred`, "
                              f"`expect_transfer` or `rule` as `flask evaluate --json` writes them: {FIX}")
    return verdicts


def _by_file(verdicts: Sequence[Mapping[str, Any]], which: str) -> dict[Path, Mapping[str, Any]]:
    out: dict[Path, Mapping[str, Any]] = {}
    for v in verdicts:
        key = Path(v["scenario"]).resolve()
        if key in out:
            raise ReportError(f"{which} holds {v['scenario']} twice: give each scenario once")
        out[key] = v
    return out


def _errors(pairs: Sequence[tuple[bool, bool]]) -> dict[str, int]:
    """Missed and false from (needed, transferred) pairs."""
    missed = sum(1 for needed, put in pairs if needed and not put)
    false = sum(1 for needed, put in pairs if not needed and put)
    return {"calls": len(pairs), "missed": missed, "false_transfers": false, "errors": missed + false}


def _movement(needed: bool, before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    was, is_ = bool(before["transferred"]), bool(now["transferred"])
    if was != is_:
        return (FOUND if is_ else LOST) if needed else (PUT_THROUGH if is_ else SPARED)
    if is_ and before.get("rule") != now.get("rule"):
        return OTHER_RULE
    return None


def compare(before: Sequence[Mapping[str, Any]], now: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Both runs' errors on the labelled calls both hold, and every call whose verdict or rule moved."""
    earlier = _by_file(before, "the earlier report")
    later = _by_file(now, "this run")
    both = [key for key in later if key in earlier]
    if not both and earlier and later:
        raise ReportError("no call of this run is in the earlier report: give the same PATHS as that run")
    labelled = [key for key in both if later[key].get("expect_transfer") is not None]
    changed = []
    for key in labelled:
        needed = bool(later[key]["expect_transfer"])
        move = _movement(needed, earlier[key], later[key])
        if move is not None:
            changed.append({"scenario": later[key]["scenario"], "change": move, "expect_transfer": needed,
                            "rule_before": earlier[key].get("rule"), "rule_now": later[key].get("rule")})
    return {"compared": len(both), "labelled": len(labelled),
            "relabelled": sum(1 for key in both if earlier[key].get("expect_transfer")
                              != later[key].get("expect_transfer")),
            "only_before": len(earlier.keys() - later.keys()), "only_now": len(later.keys() - earlier.keys()),
            # both runs judged by this run's labels, so only verdicts move the figures
            "before": _errors([(bool(later[k]["expect_transfer"]), bool(earlier[k]["transferred"]))
                               for k in labelled]),
            "now": _errors([(bool(later[k]["expect_transfer"]), bool(later[k]["transferred"]))
                            for k in labelled]),
            "moved": {kind: sum(1 for c in changed if c["change"] == kind) for kind in MOVES},
            "changed": changed}


def summary_line(file: str, result: Mapping[str, Any]) -> str:
    """One line of aggregates (no call named), so a checking split can be read this way alone."""
    b, n, moved = result["before"], result["now"], result["moved"]
    notes = ((result["only_before"], "only in the earlier run"), (result["only_now"], "only in this run"),
             (result["relabelled"], "relabelled since"))
    extra = "".join(f"; {count} {what}" for count, what in notes if count)
    return (f"against {file} ({result['compared']} in both, {result['labelled']} labelled{extra}): missed "
            f"{b['missed']} -> {n['missed']}, false transfers {b['false_transfers']} -> "
            f"{n['false_transfers']}, errors {b['errors']} -> {n['errors']}; {moved[FOUND]} {FOUND}, "
            f"{moved[LOST]} {LOST}, {moved[PUT_THROUGH]} {PUT_THROUGH}, {moved[SPARED]} {SPARED}, "
            f"{moved[OTHER_RULE]} by another rule")
