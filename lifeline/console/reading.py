"""What the escalation rules read from a caller line, put for the console: the frustration level
and the intents that reach a bar, beside (not instead of) the sentiment score.

The rules (lifeline/transfer/rules.py) act on each line's `analysis` (lifeline/insight/understand.py): intent
confidences and frustration class probabilities. The sentiment score only counts for the rule
types that read it (`Rule.reads_score`), so the page says which those are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lifeline.transfer.rules import IntentRule, Rule

DEFAULT_BAR = 0.5  # with no intent rule on: "more likely than not", as the feed's `intents` list


@dataclass(frozen=True)
class Reading:
    """One caller line as the rules read it."""

    level: str  # calm, annoyed or angry: the most probable frustration class ('' if not classified)
    probability: float  # that class's probability
    intents: list[tuple[str, float]]  # the intents at or above the bar, strongest first

    @property
    def tone(self) -> str:
        """A CSS class for the level (the level is always said in words too)."""
        return {"angry": "neg", "annoyed": "warn"}.get(self.level, "")


def read(analysis: Mapping[str, Any] | None, bar: float) -> Reading | None:
    """The reading of a stored analysis (or a decision's evidence); None when the line has none."""
    if not analysis:
        return None
    frustration = {k: float(v) for k, v in (analysis.get("frustration") or {}).items()}
    intents = {k: float(v) for k, v in (analysis.get("intents") or {}).items()}
    if not frustration and not intents:
        return None
    level = max(frustration, key=lambda k: frustration[k]) if frustration else ""
    above = sorted(((name, p) for name, p in intents.items() if p >= bar), key=lambda kv: -kv[1])
    return Reading(level, frustration.get(level, 0.0), above)


def intent_bar(rules: Sequence[Rule]) -> tuple[float, str | None]:
    """The lowest confidence at which an enabled intent rule acts, and that rule's name
    (DEFAULT_BAR and None with no intent rule on)."""
    bars = [(rule.min_confidence, rule.name) for rule in rules if isinstance(rule, IntentRule)]
    if not bars:
        return DEFAULT_BAR, None
    bar, name = min(bars)
    return bar, name


def score_rules(rules: Sequence[Rule]) -> list[str]:
    """The names of the enabled rules that the sentiment score can fire, in file order."""
    return [rule.name for rule in rules if rule.reads_score]
