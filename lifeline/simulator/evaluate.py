"""`flask evaluate`: measure Lifeline's understanding on labelled lines and calls.

Utterance files (`utterances*.yaml`) are scored line by line: intents (precision, recall, F1 at
the confidence the rules use) and frustration (a confusion table). Call scenarios are replayed in
process through the app's own scorer and rules (no HTTP, no emulator): each `say` becomes a
message, each `press` a key, in script order, and the first rule that fires is the transfer.
With `--engine local` each say's recording is heard through the local engine's listening path
(endpointer + Whisper) first, so the figures include what the recogniser gets wrong; with
`--hearings FILE` what was heard is kept and read back by later runs (lifeline/simulator/hearings.py).

Time-based rules (`time_in_ivr`) need a clock and are not replayed; `flask simulate` covers them.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from lifeline.insight.corpus import CorpusError, Utterance, load_utterances
from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS
from lifeline.insight.understand import Understanding
from lifeline.ivr.store.records import Message
from lifeline.ivr.yamlfile import read_yaml
from lifeline.transfer.rules import RuleSet

from .bench import percentile
from .compare import ReportError, compare, load_calls, summary_line
from .hearings import CallHearing, HeardLine, HearingsFileError, HearingStore, hearing_settings
from .listening import Hear, LocalHearing, every_say
from .scenario import Scenario, ScenarioError, load_scenario, require_audio

# --- inputs ------------------------------------------------------------------------------------

def collect(paths: Iterable[Path]) -> tuple[list[Utterance], list[Scenario]]:
    """Utterance files and scenarios from files and directories (searched recursively)."""
    lines: list[Utterance] = []
    calls: list[Scenario] = []
    seen: set[Path] = set()
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*.yaml") if p.is_file())
        for file in files:
            # A file reached through two PATHS (a split and one of its folders) counts once.
            key = file.resolve()
            if key in seen:
                continue
            seen.add(key)
            if file.name.startswith("utterances") or _is_a_list(file):
                lines.extend(load_utterances(file))
            else:
                calls.append(load_scenario(file))
    return lines, calls


def _is_a_list(file: Path) -> bool:
    """Whether a YAML file holds a list: labelled utterances, whatever the file is called (a
    scenario is a mapping; a file that is neither is left to the scenario reader's message)."""
    try:
        return isinstance(read_yaml(file, str(file), CorpusError), list)
    except CorpusError:
        return False


# --- utterances --------------------------------------------------------------------------------

def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall else None)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": _r(precision), "recall": _r(recall), "f1": _r(f1)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def callers_for_width(share: float | None, half_width: float = 0.05, z: float = 1.96) -> int | None:
    """About how many trials a proportion near `share` needs for a 95 % interval of +-half_width
    (the normal approximation; a share of 0 or 1 is taken as 0.95, as the interval is not)."""
    if share is None:
        return None
    p = min(max(share, 0.05), 0.95)
    return math.ceil(z * z * p * (1 - p) / (half_width * half_width))


def wilson_interval(hits: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of a proportion (None with no trials).

    A corpus of calls is a sample: 23 of 28 callers found reads as recall 0.821, and any 0.64 to
    0.92 is as consistent with it. The Wilson interval stays inside 0-1 and is sound at the small
    counts a contact centre's own labelled calls come in.
    """
    if trials <= 0:
        return None
    share = hits / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def evaluate_utterances(lines: Sequence[Utterance], understanding: Understanding,
                        threshold: float) -> dict[str, Any]:
    """Per-intent and overall (micro) P/R/F1, frustration accuracy and confusion table."""
    counts = {i: [0, 0, 0] for i in INTENTS}
    confusion = {t: dict.fromkeys(FRUSTRATION_LEVELS, 0) for t in FRUSTRATION_LEVELS}
    misses: list[dict[str, Any]] = []
    cpu_ms: list[float] = []
    for line in lines:
        started = time.thread_time_ns()  # CPU of this thread: what one core spends on the line
        analysis = understanding.analyse(line.text)
        cpu_ms.append((time.thread_time_ns() - started) / 1e6)
        predicted = {i for i in INTENTS if analysis.intents.get(i, 0.0) >= threshold}
        for intent in INTENTS:
            truth, guess = intent in line.intents, intent in predicted
            counts[intent][0] += truth and guess
            counts[intent][1] += guess and not truth
            counts[intent][2] += truth and not guess
        level = analysis.frustration_level
        confusion[line.frustration][level] += 1
        if predicted != set(line.intents) or level != line.frustration:
            misses.append({"text": line.text, "intents": sorted(line.intents), "predicted": sorted(predicted),
                           "frustration": line.frustration, "predicted_frustration": level})
    total = [sum(c[k] for c in counts.values()) for k in range(3)]
    right = sum(confusion[t][t] for t in FRUSTRATION_LEVELS)
    return {
        "lines": len(lines), "threshold": threshold,
        "intents": {i: _prf(*counts[i]) for i in INTENTS},
        "overall": _prf(*total),
        "frustration": {"accuracy": _r(right / len(lines)) if lines else None,
                        "confusion": confusion},
        "cpu_ms_per_line": {"p50": percentile(cpu_ms, 0.5), "p95": percentile(cpu_ms, 0.95),
                            "max": percentile(cpu_ms, 1.0)},
        "misses": misses,
    }


# --- calls ---------------------------------------------------------------------------------------

@dataclass
class CallVerdict:
    """What the rules did with one scenario."""

    scenario: Scenario
    heard: list[dict[str, Any]] = field(default_factory=list)  # {say, text, confidence[, readings]} each
    transfer_at_say: int | None = None  # 1-based say during/after which the transfer was decided
    says_started: int = 0  # says begun when it was decided (the say itself counts)
    rule: str | None = None
    reason: str | None = None

    @property
    def transferred(self) -> bool:
        """A rule fired."""
        return self.rule is not None

    @property
    def late(self) -> bool:
        """Decided after the say by which the label says the caller needed a person."""
        latest = self.scenario.expect.latest_say
        return bool(self.transferred and latest is not None and self.says_started > latest)

    @property
    def early(self) -> bool:
        """Decided before the say the label allows the earliest transfer at."""
        earliest = self.scenario.expect.earliest_say
        return bool(self.transferred and earliest is not None and self.says_started < earliest)

    def as_json(self) -> dict[str, Any]:
        """The call in the --json report."""
        expect = self.scenario.expect
        return {"scenario": str(self.scenario.path), "name": self.scenario.name,
                "expect_transfer": expect.transfer, "expect_intent": expect.intent,
                "transferred": self.transferred, "rule": self.rule, "reason": self.reason,
                "says_before_transfer": self.says_started if self.transferred else None,
                "late": self.late, "early": self.early, "heard": self.heard}


def replay(scenario: Scenario, understanding: Understanding, rules: RuleSet,
           hear: Hear | None = None) -> CallVerdict:
    """Run one caller's script through the scorer and rules, stopping at the first decision."""
    verdict = CallVerdict(scenario)
    history: list[Message] = []
    says = 0
    for turn in scenario.turns:
        decision = None
        if turn.kind == "press":
            for digit in str(turn.value):
                decision = decision or rules.on_digit(digit)
        elif turn.kind == "say":
            says += 1
            heard = (hear(turn.audio) if hear is not None and turn.audio is not None
                     else [HeardLine(str(turn.value), None)])
            for line in heard:
                readings = {"readings": [list(r) for r in line.readings]} if line.readings else {}
                analysis = understanding.analyse(line.text, readings=line.readings)
                # What the rules read from the line, so a wrong verdict can be explained from the report.
                verdict.heard.append({"say": says, "text": line.text, "confidence": line.confidence,
                                      **readings, "score": round(analysis.score, 4),
                                      "analysis": analysis.as_record()})
                history.append(Message(f"say-{says}-{len(history)}", line.text, analysis.score,
                                       float(len(history)), intents=analysis.intents,
                                       frustration=analysis.frustration, confidence=line.confidence))
                decision = decision or rules.on_message(history[-rules.history:])
        if decision is not None:
            verdict.transfer_at_say = verdict.says_started = says
            verdict.rule, verdict.reason = decision.rule, decision.reason
            return verdict
    return verdict


def call_summary(verdicts: Sequence[CallVerdict]) -> dict[str, Any]:
    """Call figures: precision/recall, promptness, the deciding rules, and what lay behind each error."""
    judged = [v for v in verdicts if v.scenario.expect.transfer is not None]
    tp = [v for v in judged if v.scenario.expect.transfer and v.transferred]
    fn = [v for v in judged if v.scenario.expect.transfer and not v.transferred]
    fp = [v for v in judged if not v.scenario.expect.transfer and v.transferred]
    says = [v.says_started for v in tp]
    by_rule = Counter(v.rule or "" for v in judged if v.transferred)
    # Which rule put each calm caller through, and what each missed caller needed: enough to see
    # which rule to look at without reading any call (a checking split is read in aggregate only).
    false_by_rule = Counter(v.rule or "" for v in fp)
    missed_by_reason = Counter(v.scenario.expect.intent or "unstated" for v in fn)
    return {
        "calls": len(judged), "true_positive": len(tp), "false_negative": len(fn),
        "false_transfers": len(fp), "true_negative": len(judged) - len(tp) - len(fn) - len(fp),
        **{k: v for k, v in _prf(len(tp), len(fp), len(fn)).items() if k in ("precision", "recall", "f1")},
        "precision_ci": wilson_interval(len(tp), len(tp) + len(fp)),
        "recall_ci": wilson_interval(len(tp), len(tp) + len(fn)),
        "median_says_before_transfer": statistics.median(says) if says else None,
        "late": sum(1 for v in tp if v.late), "early": sum(1 for v in tp if v.early),
        "decided_by": dict(sorted(by_rule.items())),
        "false_by_rule": dict(sorted(false_by_rule.items())),
        "missed_by_reason": dict(sorted(missed_by_reason.items())),
    }


# --- hearing at several offsets ------------------------------------------------------------------

FRAME_S = 0.02  # one media frame: the step between the lead-ins of `--offsets`
MAX_OFFSETS = 8  # 20 ms frames against 32 ms windows: after eight frames the offsets repeat
SPREAD_FIGURES = ("precision", "recall", "false_negative", "false_transfers")  # given per offset


# --- report --------------------------------------------------------------------------------------

Progress = Callable[[int, int], None]  # (calls heard so far, calls in all)


def evaluate(paths: Sequence[Path], understanding: Understanding, rules: RuleSet, threshold: float,
             hearing: LocalHearing | None = None, engine: str = "text",
             progress: Progress | None = None, kept: HearingStore | None = None,
             offsets: int = 1,
             inputs: tuple[list[Utterance], list[Scenario]] | None = None) -> dict[str, Any]:
    """The whole report for the given files; `kept` reads and keeps what `hearing` heard.

    With `offsets` above 1 the calls are heard `offsets` times in all, each time with the caller's
    first say one more 20 ms frame later than the time before, and the spread of the figures is
    reported beside the first hearing's. `inputs` is `collect(paths)` when the caller already has it.
    """
    lines, calls = inputs if inputs is not None else collect(paths)
    if hearing is not None:
        for scenario in calls:
            require_audio(scenario)
    report: dict[str, Any] = {"engine": engine, "understanding": understanding.name,
                              "inputs": [str(p) for p in paths]}
    if lines:
        report["utterances"] = evaluate_utterances(lines, understanding, threshold)
    if calls:
        passes = offsets if hearing is not None else 1
        verdicts = _call_verdicts(calls, understanding, rules, hearing, _in_pass(progress, 0, passes), kept)
        report["calls"] = {"summary": call_summary(verdicts), "verdicts": [v.as_json() for v in verdicts]}
        if hearing is not None and offsets > 1:
            report["calls"]["offsets"] = _at_offsets(calls, understanding, rules, hearing, progress, kept,
                                                     offsets, verdicts)
        if kept is not None:
            report["hearings"] = {"file": str(kept.path), "read_back": kept.reused, "heard": kept.heard}
        if len(paths) > 1:
            # Several folders measured at once (a dev and a test split, say) are still told apart.
            groups = {str(p): [v for v in verdicts if _within(v.scenario.path, p)] for p in paths}
            report["calls"]["by_input"] = {name: call_summary(vs) for name, vs in groups.items() if vs}
    return report


def _call_verdicts(calls: Sequence[Scenario], understanding: Understanding, rules: RuleSet,
                   hearing: LocalHearing | None, progress: Progress | None,
                   kept: HearingStore | None) -> list[CallVerdict]:
    """Each call replayed through the rules: from its words, or as `hearing` hears its recordings."""
    verdicts: list[CallVerdict] = []
    try:
        for scenario in calls:
            if hearing is None:
                verdicts.append(replay(scenario, understanding, rules))
                continue
            if kept is not None:
                verdicts.append(replay(scenario, understanding, rules, _read_back(scenario, hearing, kept)))
            else:
                with hearing.call() as hear:
                    verdicts.append(replay(scenario, understanding, rules, hear))
            if progress is not None:
                progress(len(verdicts), len(calls))
    finally:
        if kept is not None:
            kept.save()  # an interrupted run keeps every call it heard
    return verdicts


def _at_offsets(calls: Sequence[Scenario], understanding: Understanding, rules: RuleSet,
                hearing: LocalHearing, progress: Progress | None, kept: HearingStore | None,
                offsets: int, first: Sequence[CallVerdict]) -> dict[str, Any]:
    """The call figures with the calls heard at `offsets` lead-ins, one 20 ms frame apart.

    The endpointer cuts on 32 ms windows wherever the stream's clock puts them, and Whisper hears
    the same words a little differently with a few ms more or less around them (BENCHMARKS.md,
    round 19): how much a verdict is luck shows as the spread over the offsets heard, and which
    calls it is luck for as the calls put through at some offsets and not at others (`unsteady`).
    """
    lead_s = hearing.lead_s
    passes = [list(first)]
    try:
        for step in range(1, offsets):
            hearing.lead_s = lead_s + step * FRAME_S  # each offset is kept under its own key
            passes.append(_call_verdicts(calls, understanding, rules, hearing,
                                         _in_pass(progress, step, offsets), kept))
    finally:
        hearing.lead_s = lead_s
    runs = [{"lead_in_ms": _lead_in_ms(step), **_figures(call_summary(verdicts))}
            for step, verdicts in enumerate(passes)]
    spread = {}
    for name in SPREAD_FIGURES:
        values = [run[name] for run in runs if run[name] is not None]
        spread[name] = [min(values), max(values)] if values else None
    return {"runs": runs, "spread": spread, "unsteady": _unsteady(passes)}


def _unsteady(passes: Sequence[Sequence[CallVerdict]]) -> list[dict[str, Any]]:
    """The calls put through at some offsets and not at others, with how often each was right.

    `right_offsets` counts the offsets at which the call was put through or not as its label says,
    however late (None for a call with no expectation); `put_through_at_ms` names the lead-ins.
    """
    unsteady: list[dict[str, Any]] = []
    # strict: each pass holds one verdict per call, in the same order (one call's offsets line up)
    for heard in zip(*passes, strict=True):
        at_ms = [_lead_in_ms(step) for step, v in enumerate(heard) if v.transferred]
        if 0 < len(at_ms) < len(heard):
            expected = heard[0].scenario.expect.transfer
            right = None if expected is None else sum(1 for v in heard if v.transferred == expected)
            unsteady.append({"scenario": str(heard[0].scenario.path), "name": heard[0].scenario.name,
                             "put_through_at_ms": at_ms, "right_offsets": right, "offsets": len(heard)})
    return unsteady


def _lead_in_ms(step: int) -> int:
    """How much later than the first pass's the calls of pass `step` start, in ms."""
    return round(step * FRAME_S * 1000)


def _in_pass(progress: Progress | None, step: int, passes: int) -> Progress | None:
    """Progress over every pass at once: the calls of pass `step` count after those of the earlier ones."""
    if progress is None or passes == 1:
        return progress
    return lambda done, total: progress(step * total + done, passes * total)


def _figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {name: summary[name] for name in SPREAD_FIGURES}


def _read_back(scenario: Scenario, hearing: LocalHearing, kept: HearingStore) -> Hear:
    """The call's says as kept, heard first (every say, on one stream) if they were not."""
    recordings = [turn.audio for turn in scenario.turns if turn.kind == "say" and turn.audio is not None]
    key = kept.key(recordings, hearing.lead_s)
    says = kept.get(key, len(recordings))
    if says is None:
        says = every_say(hearing, recordings)
        kept.put(key, says)
    return _in_order(says)


def _in_order(says: CallHearing) -> Hear:
    """Hands out a call's kept says one by one, in script order, as replay asks for them."""
    pending = iter(says)
    return lambda _recording: next(pending)


def _progress_line(started: float, every_s: float = 10.0) -> Progress:
    """Audio runs take minutes: a line on stderr every `every_s` seconds, and when the last call is heard."""
    shown = [started]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - shown[0] >= every_s:
            shown[0] = now
            click.echo(f"heard {done}/{total} calls ({now - started:.0f} s)", err=True)
    return show


def _within(path: Path, root: Path) -> bool:
    return path.resolve() == root.resolve() or root.resolve() in path.resolve().parents


def read_out(line: dict[str, Any]) -> str:
    """What the rules read from one heard line, in a few words: its intents and its frustration."""
    analysis = line.get("analysis") or {}
    intents = sorted((analysis.get("intents") or {}).items(), key=lambda kv: -kv[1])
    frustration = analysis.get("frustration") or {}
    level = max(frustration, key=lambda k: frustration[k]) if frustration else None
    said = ", ".join(f"{name} {p:.2f}" for name, p in intents[:2]) or "no intent"
    mood = f"{level} {frustration[level]:.2f}" if level else "mood unread"
    return f"{said}; {mood}; score {line['score']:+.2f}" if "score" in line else f"{said}; {mood}"


def print_report(report: dict[str, Any], echo: Callable[[str], None], misses: bool = False) -> None:
    """The report as a terminal reads it; with `misses`, each wrong call's lines and what was read."""
    echo(f"Model: {report.get('understanding', '?')} (LIFELINE_UNDERSTANDING); engine: {report['engine']}")
    heard = report.get("hearing")
    if heard:
        speed = heard["second_hearing"]
        second = ("heard once (LIFELINE_SECOND_HEARING=off)" if speed is None else
                  f"heard twice, the second at {speed:g} (LIFELINE_SECOND_HEARING), weighed into the mood"
                  + (" and the intents" if heard["second_hearing_intents"] else " only"))
        echo(f"Recogniser: {heard['whisper_model']}; {second}")
    lines = report.get("utterances")
    if lines:
        echo(f"Utterances: {lines['lines']} (intent threshold {lines['threshold']})")
        echo(f"  {'intent':20} {'P':>6} {'R':>6} {'F1':>6}   TP  FP  FN")
        for name, row in [*lines["intents"].items(), ("overall", lines["overall"])]:
            echo(f"  {name:20} {_f(row['precision'])} {_f(row['recall'])} {_f(row['f1'])} "
                 f"{row['tp']:4} {row['fp']:3} {row['fn']:3}")
        cpu = lines["cpu_ms_per_line"]
        echo(f"  CPU per line (analysis only): p50 {cpu['p50']} ms, p95 {cpu['p95']} ms, max {cpu['max']} ms")
        echo(f"  frustration accuracy {_f(lines['frustration']['accuracy'])}; rows truth, columns predicted:")
        echo("  " + " " * 10 + "".join(f"{c:>9}" for c in FRUSTRATION_LEVELS))
        for truth, row in lines["frustration"]["confusion"].items():
            echo(f"  {truth:10}" + "".join(f"{row[c]:9}" for c in FRUSTRATION_LEVELS))
    kept = report.get("hearings")
    if kept:
        echo(f"Hearings kept in {kept['file']}: calls read back {kept['read_back']}, heard and kept "
             f"{kept['heard']}")
    calls = report.get("calls")
    if calls:
        echo(f"Calls ({report['engine']}):")
        for v in calls["verdicts"]:
            verdict = ("ok" if v["expect_transfer"] == v["transferred"] and not v["late"] and not v["early"]
                       else "WRONG")
            what = (f"transfer at say {v['says_before_transfer']} by {v['rule']}: {v['reason']}"
                    if v["transferred"] else "no transfer")
            echo(f"  {verdict:5} {Path(v['scenario']).name}: expected "
                 f"{'transfer' if v['expect_transfer'] else 'none'}; {what}"
                 + (" (late)" if v["late"] else "") + (" (early)" if v["early"] else ""))
            if misses and verdict == "WRONG":
                for line in v["heard"]:
                    echo(f"        say {line['say']}: {line['text']!r}: {read_out(line)}")
        s = calls["summary"]
        echo(f"  calls {s['calls']}: precision {_f(s['precision'])}, recall {_f(s['recall'])}, "
             f"F1 {_f(s['f1'])}; TP {s['true_positive']} FN {s['false_negative']} "
             f"false transfers {s['false_transfers']} TN {s['true_negative']}")
        echo(f"  95 % intervals (the calls are a sample): precision {_ci(s.get('precision_ci'))}, "
             f"recall {_ci(s.get('recall_ci'))}")
        needed = callers_for_width(s["recall"])
        if needed is not None and needed > s["true_positive"] + s["false_negative"]:
            echo(f"  to narrow recall's interval to about +-0.05, label about {needed} callers who need "
                 "a person (as many calm ones again shows precision about as well)")
        echo(f"  median says before transfer {s['median_says_before_transfer']}; late {s['late']}, "
             f"early {s['early']}; decided by {s['decided_by']}")
        echo(f"  false transfers by rule {s['false_by_rule']}; missed by reason {s['missed_by_reason']}")
        offsets = calls.get("offsets")
        if offsets:
            spread = offsets["spread"]
            echo(f"  heard at {len(offsets['runs'])} window offsets (lead-in +0 to "
                 f"+{offsets['runs'][-1]['lead_in_ms']} ms): precision {_range(spread['precision'], '.3f')}, "
                 f"recall {_range(spread['recall'], '.3f')}; missed {_range(spread['false_negative'], 'd')}, "
                 f"false transfers {_range(spread['false_transfers'], 'd')}; "
                 f"unsteady calls {len(offsets['unsteady'])}")
            # one line per call, worded apart from the summary line so a grep for it shows no call
            for call in offsets["unsteady"]:
                at = ", ".join(f"+{ms} ms" for ms in call["put_through_at_ms"])
                right = "" if call["right_offsets"] is None else f"; right at {call['right_offsets']}"
                echo(f"    turns on the offset: {Path(call['scenario']).name}: put through at {at} "
                     f"of {call['offsets']} offsets{right}")
        moved = calls.get("against")
        if moved and "error" in moved:
            echo(f"  against {moved['file']}: not compared: {moved['error']}")
        elif moved:
            echo("  " + summary_line(moved["file"], moved))
            # one line per call, worded apart from the summary line so a grep for it shows no call
            for call in moved["changed"]:
                echo(f"    moved: {Path(call['scenario']).name}: {call['change']} "
                     f"({call['rule_before'] or 'no transfer'} -> {call['rule_now'] or 'no transfer'})")
        for name, part in calls.get("by_input", {}).items():
            echo(f"  {name}: calls {part['calls']}, precision {_f(part['precision'])}, recall "
                 f"{_f(part['recall'])}; false transfers {part['false_transfers']}")


def _f(value: float | None) -> str:
    return f"{value:6.3f}" if value is not None else "     -"


def _range(values: Sequence[float] | None, spec: str) -> str:
    if not values:
        return "-"
    low, high = (format(v, spec) for v in values)
    return low if low == high else f"{low}-{high}"


def _ci(interval: Sequence[float] | None) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}" if interval else "-"


@click.command("evaluate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--engine", type=click.Choice(["text", "telnyx", "local"]), default="text", show_default=True,
              help="text/telnyx: the words as written; local: each say's recording through Whisper.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Intent confidence counted as a yes for utterance figures (default: the rules' own).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report as JSON to this file.")
@click.option("--misses", is_flag=True,
              help="List the utterances that were got wrong, and under each wrong call its lines (as "
                   "heard) with the intents and frustration the rules read from them.")
@click.option("--hearings", "hearings_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --engine local: keep what was heard in this file, and read back what it "
                   "already holds (same recordings, same hearing settings) instead of hearing again.")
@click.option("--offsets", type=click.IntRange(1, MAX_OFFSETS), default=1, show_default=True,
              help="With --engine local: hear every call this many times, each starting 20 ms later, "
                   "and report the spread (how much of a difference is where the windows fell).")
@click.option("--against", "against", type=click.Path(dir_okay=False, path_type=Path),
              help="An earlier run's --json report of the same calls: say which verdicts moved, "
                   "and which way.")
@with_appcontext
def evaluate_command(paths: tuple[Path, ...], engine: str, threshold: float | None, json_out: Path | None,
                     misses: bool, hearings_file: Path | None, offsets: int, against: Path | None) -> None:
    """Measure escalation on labelled PATHS (utterances*.yaml, scenarios, or directories of them)."""
    lifeline = current_app.extensions["lifeline"]
    try:  # read once, before the run (which may take minutes of hearing), so --against is checked first
        inputs = collect(paths)
        earlier = load_calls(against) if against is not None else None
    except (ReportError, ScenarioError, CorpusError) as exc:
        raise click.UsageError(str(exc)) from exc
    if not inputs[0] and not inputs[1]:
        # A mistyped folder must not look like a run that passed (a script or CI would carry on).
        raise click.UsageError(f"no labelled files in {', '.join(str(p) for p in paths)}: give "
                               "utterances*.yaml files, call scenarios (*.yaml), or folders holding them")
    if earlier is not None and not inputs[1]:
        raise click.UsageError("--against compares call verdicts, and PATHS hold no call scenarios")
    services = lifeline.services
    if threshold is None:
        threshold = min((r.min_confidence for r in services.rules.rules
                         if hasattr(r, "min_confidence")), default=0.5)
    if hearings_file is not None and engine != "local":
        raise click.UsageError("--hearings keeps what the local engine heard: use it with --engine local")
    if offsets > 1 and engine != "local":
        raise click.UsageError("--offsets hears the recordings at several offsets: "
                               "use it with --engine local")
    kept = None
    if hearings_file is not None:
        settings = hearing_settings(lifeline.settings, LocalHearing.TRAIL_S)
        try:
            kept = HearingStore(hearings_file, settings)
        except HearingsFileError as exc:
            raise click.UsageError(str(exc)) from exc
    services.scorer.load()  # built before the first line, so its CPU figures are the lines' own
    hearing = LocalHearing(lifeline.settings) if engine == "local" else None
    try:
        report = evaluate(list(paths), services.scorer, services.rules, threshold, hearing,
                          "local" if engine == "local" else "text", progress=_progress_line(time.monotonic()),
                          kept=kept, offsets=offsets, inputs=inputs)
    except (ScenarioError, CorpusError) as exc:
        raise click.UsageError(str(exc)) from exc
    if engine == "local":  # what heard the calls, so two runs' reports can be told apart
        settings = lifeline.settings
        report["hearing"] = {"whisper_model": settings.whisper_model_name,
                             "second_hearing": settings.second_hearing,
                             "second_hearing_intents": services.scorer.second_hearing_intents}
    if earlier is not None:
        try:
            report["calls"]["against"] = {"file": str(against),
                                          **compare(earlier, report["calls"]["verdicts"])}
        except ReportError as exc:
            report["calls"]["against"] = {"file": str(against), "error": str(exc)}
    print_report(report, click.echo, misses=misses)
    if misses and "utterances" in report:
        for miss in report["utterances"]["misses"]:
            click.echo(f"  miss: {miss}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2))
        click.echo(f"JSON report written to {json_out}")
