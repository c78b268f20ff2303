"""Print the counts in corpus/dev5/README.md: `.venv/bin/python corpus/dev5/counts.py` from the root.

Lines are read with the project's own loader (lifeline/insight/corpus.py), which also checks their labels.
Each call's `expect` is re-derived from the per-say label comments under the LABELS.md call rule
(a say with an intent, an angry say, or the second say that is annoyed or worse decides), and the
calls where the two disagree are counted.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # a script run from the root: the insight package sits beside corpus/

from lifeline.insight.corpus import Utterance, first_need, load_utterances  # noqa: E402
from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS  # noqa: E402

SPLIT = ROOT / "corpus" / "dev5"
SAY_LABEL = re.compile(r"\s*# say \d+:")


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%"


def line_counts(lines: list[Utterance]) -> list[str]:
    """Intent, frustration and recogniser-style counts of the caller lines."""
    total = len(lines)
    intents = Counter(i for line in lines for i in line.intents)
    none = sum(1 for line in lines if not line.intents)
    frustration = Counter(line.frustration for line in lines)
    out = [f"- caller lines: {total}", *(f"  - `{k}`: {intents[k]}" for k in INTENTS),
           f"  - no intent: {none} ({_percent(none, total)})",
           f"  - more than one intent: {sum(1 for line in lines if len(line.intents) > 1)}",
           "- frustration: " + ", ".join(f"{k} {frustration[k]} ({_percent(frustration[k], total)})"
                                         for k in FRUSTRATION_LEVELS)]
    asr = [line for line in lines if line.note.startswith("asr")]
    asr_intents = Counter(i for line in asr for i in line.intents)
    asr_frustration = Counter(line.frustration for line in asr)
    out.append(f"- asr lines: {len(asr)}; intents: " + ", ".join(f"{k} {asr_intents[k]}" for k in INTENTS)
               + f", none {sum(1 for line in asr if not line.intents)}; frustration: "
               + ", ".join(f"{k} {asr_frustration[k]}" for k in FRUSTRATION_LEVELS))
    return out


def deciding_say(path: Path) -> int | None:
    """The say at which the call's per-say label comments say the caller needs a person."""
    labels = [line.split(":", 1)[1].strip().split(", ") for line in path.read_text().splitlines()
              if SAY_LABEL.match(line)]
    return first_need((intents, frustration) for frustration, *intents in labels)


def call_counts(files: list[Path]) -> list[str]:
    """Transfer, say, intent and sector counts of the call scenarios."""
    transfer: Counter[bool] = Counter()
    says: Counter[int] = Counter()
    intents: Counter[str] = Counter()
    latest: Counter[int] = Counter()
    earliest: Counter[object] = Counter()
    sectors: Counter[str] = Counter()
    pressed = disagree = 0
    for path in files:
        scenario = yaml.safe_load(path.read_text())
        expect, turns = scenario["expect"], scenario["turns"]
        transfer[expect["transfer"]] += 1
        says[sum(1 for turn in turns if "say" in turn)] += 1
        pressed += any("press" in turn for turn in turns)
        sectors[path.name.split("-")[1]] += 1
        if expect["transfer"]:
            intents[expect["intent"]] += 1
            latest[expect["latest_say"]] += 1
            earliest[expect.get("earliest_say", "none")] += 1
        derived = deciding_say(path)
        disagree += bool(derived) != expect["transfer"] or bool(derived and derived != expect["latest_say"])
    return [
        f"- calls: {len(files)}; transfer true {transfer[True]}, false {transfer[False]}; calls that press a "
        f"key first: {pressed}; calls whose expect disagrees with the per-say comments under the LABELS.md "
        f"rule: {disagree}",
        "- says per call: " + ", ".join(f"{k} says: {says[k]}" for k in sorted(says))
        + f" (total {sum(k * v for k, v in says.items())})",
        "- intent of true calls: " + ", ".join(f"{k} {v}" for k, v in sorted(intents.items())),
        "- latest_say (true calls): " + ", ".join(f"{k}: {latest[k]}" for k in sorted(latest)),
        "- earliest_say (true calls): " + ", ".join(f"{k}: {earliest[k]}" for k in sorted(earliest, key=str)),
        f"- WAV files in calls/audio: {len(list((SPLIT / 'calls' / 'audio').glob('*.wav')))}",
        "- sectors (calls each): " + ", ".join(f"{k} {v}" for k, v in sorted(sectors.items())),
    ]


def main() -> None:
    """Print every count, in the README's order."""
    lines = load_utterances(SPLIT / "utterances.yaml")
    print("\n".join(line_counts(lines) + call_counts(sorted((SPLIT / "calls").glob("*.yaml")))))


if __name__ == "__main__":
    main()
