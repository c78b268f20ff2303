"""Declarative escalation rules (LIFELINE_RULES): which caller needs a person, and why.

Each rule type is a small class with the same two methods; the file picks, orders and tunes
them. Rules see the caller's recent messages (oldest first) and never act themselves: they
return a Decision, and the transfer executor makes it happen once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS
from lifeline.insight.patterns import asserted_phrase, normalise
from lifeline.ivr.errors import ConfigError, Problem
from lifeline.ivr.menu import AFTER_AGENTS, KEYS, OPERATOR_DIGIT, Menu
from lifeline.ivr.store.records import Message
from lifeline.ivr.yamlfile import read_setting_yaml

_SETTING = "LIFELINE_RULES"


@dataclass(frozen=True)
class Decision:
    """A rule fired: which, why, and the messages that made it fire."""

    rule: str
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def _refused(message: str, *keys: str | int) -> ConfigError:
    """A problem of the rule being read, at `keys` below it (load_rules places it in the file)."""
    return ConfigError([Problem(message, keys=keys)])


class Rule:
    """Base of every rule type: parameters are checked when the file is loaded."""

    type_name: ClassVar[str]
    default_reason: ClassVar[str]
    window = 1  # how many of the newest messages the rule reads
    reads_score = False  # whether the line's sentiment score (not only intents, frustration) can fire it

    def __init__(self, name: str, reason: str | None, params: dict[str, Any], where: str) -> None:
        self.name = name
        self.reason = reason or self.default_reason
        self._where = where
        self.configure(params)
        unknown = set(params) - self.consumed
        if unknown:
            slips = ", ".join(_named(u, sorted(self.consumed)) for u in sorted(unknown))
            known = ", ".join(sorted(self.consumed)) or "none beyond enabled and reason"
            raise _refused(f"{where}: unknown settings {slips} for type {self.type_name}; its settings "
                           f"are {known}")

    consumed: set[str]

    def configure(self, params: dict[str, Any]) -> None:
        """Read and check this type's parameters."""
        self.consumed = set()

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        """Judge the newest message in its context."""
        return None

    def on_digit(self, digit: str) -> Decision | None:
        """Judge a key press."""
        return None

    def on_tick(self, history: Sequence[Message], seconds_in_call: float) -> Decision | None:
        """Judge the call as time passes (called by the monitor's sweep)."""
        return None

    def ticks_from_s(self) -> float | None:
        """How far into a call `on_tick` can first fire; None when it never fires."""
        # A rule type that judges time without saying from when is asked on every tick.
        return 0.0 if type(self).on_tick is not Rule.on_tick else None

    # parameter helpers -------------------------------------------------------------------

    def _number(self, params: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
        self.consumed.add(key)
        value = params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            # A share written as a percentage (80 for 0.8) is the likely slip on a 0-1 setting.
            share = (f" (a share: for {value:g} % write {value / 100:g})"
                     if (low, high) == (0.0, 1.0) and isinstance(value, (int, float))
                     and not isinstance(value, bool) and 1 < value <= 100 else "")
            raise _refused(f"{self._where}.{key} must be a number from {low} to {high}{share}", key)
        return float(value)

    def _count(self, params: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = self._number(params, key, default, low, high)
        if value != int(value):
            raise _refused(f"{self._where}.{key} must be a whole number", key)
        return int(value)

    def _phrases(self, params: dict[str, Any], key: str, default: Sequence[str] | None = None
                 ) -> re.Pattern[str]:
        self.consumed.add(key)
        value = params.get(key, default)
        if (not isinstance(value, list) or not value
                or not all(isinstance(p, str) and p.strip() for p in value)):
            raise _refused(f"{self._where}.{key} must be a non-empty list of phrases", key)
        # Matched against normalised text (lower case, contractions expanded), so phrases are too.
        alternatives = "|".join(re.escape(normalise(p.strip())).replace(r"\ ", r"\s+") for p in value)
        return re.compile(rf"\b({alternatives})s?\b", re.IGNORECASE)


def _evidence(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """What the decision keeps of each message: words, score, intents, class probabilities, how well heard."""
    return [{"source_id": m.source_id, "text": m.text, "score": m.score,
             "intents": {k: round(v, 4) for k, v in m.intents.items()},
             "frustration": {k: round(v, 4) for k, v in m.frustration.items()},
             "confidence": m.confidence} for m in messages]


class PhraseRule(Rule):
    """The caller says one of the phrases (e.g. asks for a person)."""

    type_name = "phrase"
    default_reason = "caller asked for a person"

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.pattern = self._phrases(params, "phrases")

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        # "I don't need an agent" names the phrase but refuses it: the pattern layer's scope rules.
        found = asserted_phrase(self.pattern, history[-1].text)
        if not found:
            return None
        return Decision(self.name, f"{self.reason} ({found!r})", _evidence(history[-1:]))


class DigitRule(Rule):
    """The caller presses one of these keys at any moment, even mid-prompt."""

    type_name = "dtmf"
    default_reason = "caller pressed 0 for the operator"

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.consumed.add("digits")
        digits = str(params.get("digits", "0"))
        if not digits or set(digits) - set(KEYS):
            raise _refused(f"{self._where}.digits must be keys from 0-9, * and #", "digits")
        self.digits = digits

    def on_digit(self, digit: str) -> Decision | None:
        return Decision(self.name, self.reason) if digit in self.digits else None


class RollingMeanRule(Rule):
    """The mean score of the last `window` messages is below `below` (with enough evidence)."""

    type_name = "rolling_mean"
    default_reason = "caller has been unhappy for several messages"
    reads_score = True

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.window = self._count(params, "window", 3, 1, 20)
        self.min_messages = self._count(params, "min_messages", 2, 1, 20)
        self.below = self._number(params, "below", -0.35, -1.0, 1.0)

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        recent = history[-self.window:]
        if len(recent) < self.min_messages:
            return None
        mean = sum(m.score for m in recent) / len(recent)
        if mean >= self.below:
            return None
        return Decision(self.name, f"{self.reason} (mean {mean:+.2f})", _evidence(recent))


class ConsecutiveNegativeRule(Rule):
    """The last `count` messages all scored at or below `below`."""

    type_name = "consecutive_negative"
    default_reason = "caller is frustrated"
    reads_score = True

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.count = self._count(params, "count", 2, 1, 10)
        self.below = self._number(params, "below", -0.2, -1.0, 1.0)

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        recent = history[-self.count:]
        if len(recent) < self.count or any(m.score > self.below for m in recent):
            return None
        return Decision(self.name, f"{self.reason} ({self.count} negative messages in a row)",
                        _evidence(recent))


class SharpDropRule(Rule):
    """The score fell by at least `by` from one message to the next, to below `to_below`."""

    type_name = "sharp_drop"
    default_reason = "caller's mood dropped sharply"
    reads_score = True

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.by = self._number(params, "by", 1.0, 0.1, 2.0)
        self.to_below = self._number(params, "to_below", -0.5, -1.0, 1.0)

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        if len(history) < 2:
            return None
        before, now = history[-2], history[-1]
        if before.score - now.score < self.by or now.score >= self.to_below:
            return None
        return Decision(self.name, f"{self.reason} ({before.score:+.2f} to {now.score:+.2f})",
                        _evidence(history[-2:]))


class PositiveIntentRule(Rule):
    """A happy caller who wants to buy: hand them to a person who can sell."""

    type_name = "positive_intent"
    default_reason = "caller is keen to buy"
    reads_score = True

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.pattern = self._phrases(params, "phrases", ["sign up", "buy", "upgrade", "purchase",
                                                         "subscribe", "order"])
        self.above = self._number(params, "above", 0.5, -1.0, 1.0)
        self.window = self._count(params, "window", 3, 1, 20)

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        recent = history[-self.window:]
        if not self.pattern.search(history[-1].text) or max(m.score for m in recent) <= self.above:
            return None
        return Decision(self.name, self.reason, _evidence(recent))


class TimeInIvrRule(Rule):
    """The caller has been in the IVR for `after_s` seconds and is not happy."""

    type_name = "time_in_ivr"
    default_reason = "caller has been in the menu too long"
    reads_score = True

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.after_s = self._number(params, "after_s", 300, 10, 86400)
        self.below = self._number(params, "below", -0.05, -1.0, 1.0)

    def ticks_from_s(self) -> float | None:
        """This rule fires only once the caller has been `after_s` in the call."""
        return self.after_s

    def on_tick(self, history: Sequence[Message], seconds_in_call: float) -> Decision | None:
        unhappy = [m for m in history if m.score <= self.below]
        if seconds_in_call < self.after_s or not unhappy:
            return None
        return Decision(self.name, f"{self.reason} ({seconds_in_call:.0f} s)", _evidence(unhappy[-3:]))


INTENT_REASONS = {
    "wants_person": "caller asked for a person",
    "leave_or_cancel": "caller threatens to leave",
    "legal_or_complaint": "caller threatens a complaint or legal action",
    "bot_complaint": "caller is fed up with the automated system",
}


class IntentRule(Rule):
    """The newest message carries one of `intents` with at least `min_confidence`.

    With `count` above 1, so must `count` of the last `window` messages (not always the same intent).
    """

    type_name = "intent"
    default_reason = ""  # named after the intent that fired

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.consumed.add("intents")
        intents = params.get("intents")
        if not isinstance(intents, list) or not intents or not all(isinstance(i, str) for i in intents):
            raise _refused(f"{self._where}.intents must be a non-empty list drawn from {', '.join(INTENTS)}",
                           "intents")
        unknown = [i for i in intents if i not in INTENTS]
        if unknown:
            raise _refused(f"{self._where}.intents: {', '.join(_named(u, INTENTS) for u in unknown)} "
                           f"{'is not an intent' if len(unknown) == 1 else 'are not intents'}; "
                           f"the intents are {', '.join(INTENTS)}", "intents")
        self.intents = tuple(intents)
        self.min_confidence = self._number(params, "min_confidence", 0.5, 0.0, 1.0)
        self.count = self._count(params, "count", 1, 1, 10)
        if self.count == 1 and "window" in params:
            raise _refused(f"{self._where}.window needs a count above 1 (with count 1 the newest "
                           "message is judged alone): set count, or remove window", "window")
        self.window = self._count(params, "window", max(self.count, 3), 1, 20)
        if self.window < self.count:
            raise _refused(f"{self._where}.window must be at least count ({self.count})", "window")

    def _strongest(self, message: Message) -> tuple[float, str] | None:
        found = [(message.intents.get(i, 0.0), i) for i in self.intents
                 if message.intents.get(i, 0.0) >= self.min_confidence]
        return max(found) if found else None

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        strongest = self._strongest(history[-1])
        if strongest is None:
            return None  # judged when such a message arrives, so the newest is always evidence
        confidence, intent = strongest
        reason = self.reason or INTENT_REASONS[intent]
        if self.count == 1:
            return Decision(self.name, f"{reason} ({intent} {confidence:.2f})", _evidence(history[-1:]))
        carrying = [m for m in history[-self.window:] if self._strongest(m) is not None]
        if len(carrying) < self.count:
            return None
        return Decision(self.name, f"{reason} ({intent} {confidence:.2f}; {len(carrying)} of the last "
                        f"{self.window})", _evidence(carrying))


class StrongNegativeRule(Rule):
    """One message is enough: P(angry) at least `angry_at_least`, or a score at or below `score_below`."""

    type_name = "strong_negative"
    default_reason = "caller is angry"

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.consumed.update({"angry_at_least", "score_below"})
        angry, below = params.get("angry_at_least", 0.6), params.get("score_below")
        if angry is None and below is None:
            raise _refused(f"{self._where}: set angry_at_least (0-1), score_below (-1 to 1), or both")
        self.angry_at_least = None if angry is None else self._number(params, "angry_at_least", 0.6, 0.0, 1.0)
        self.score_below = None if below is None else self._number(params, "score_below", -0.8, -1.0, 1.0)
        self.reads_score = self.score_below is not None

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        newest = history[-1]
        angry = newest.frustration.get("angry", 0.0)
        if self.angry_at_least is not None and angry >= self.angry_at_least:
            return Decision(self.name, f"{self.reason} (P(angry) {angry:.2f})", _evidence(history[-1:]))
        if self.score_below is not None and newest.score <= self.score_below:
            return Decision(self.name, f"{self.reason} (score {newest.score:+.2f})", _evidence(history[-1:]))
        return None


class FrustratedRule(Rule):
    """`count` of the last `window` messages are `at_least` annoyed (or angry) with `min_probability`."""

    type_name = "frustrated"
    default_reason = "caller has been annoyed for several messages"

    def configure(self, params: dict[str, Any]) -> None:
        super().configure(params)
        self.consumed.add("at_least")
        level = params.get("at_least", "annoyed")
        if level not in FRUSTRATION_LEVELS[1:]:
            raise _refused(f"{self._where}.at_least must be annoyed or angry", "at_least")
        self.levels = FRUSTRATION_LEVELS[FRUSTRATION_LEVELS.index(level):]
        self.count = self._count(params, "count", 2, 1, 10)
        self.window = self._count(params, "window", 3, 1, 20)
        if self.window < self.count:
            raise _refused(f"{self._where}.window must be at least count ({self.count})", "window")
        self.min_probability = self._number(params, "min_probability", 0.5, 0.0, 1.0)

    def _upset(self, message: Message) -> bool:
        return sum(message.frustration.get(level, 0.0) for level in self.levels) >= self.min_probability

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        if not self._upset(history[-1]):
            return None  # judged when an upset message arrives, so the newest is always evidence
        upset = [m for m in history[-self.window:] if self._upset(m)]
        if len(upset) < self.count:
            return None
        return Decision(self.name, f"{self.reason} ({len(upset)} of the last {self.window})",
                        _evidence(upset))


RULE_TYPES: dict[str, type[Rule]] = {cls.type_name: cls for cls in (
    PhraseRule, DigitRule, RollingMeanRule, ConsecutiveNegativeRule, SharpDropRule,
    PositiveIntentRule, TimeInIvrRule, IntentRule, StrongNegativeRule, FrustratedRule)}


@dataclass(frozen=True)
class RuleSet:
    """The enabled rules, in file order: the first that fires decides."""

    rules: tuple[Rule, ...]
    handoff: str | None
    history: int = 10

    def on_message(self, history: Sequence[Message]) -> Decision | None:
        """The first rule that fires on the newest message, if any."""
        return next((d for r in self.rules if (d := r.on_message(history)) is not None), None)

    def on_digit(self, digit: str) -> Decision | None:
        """The first rule that fires on a key press, if any."""
        return next((d for r in self.rules if (d := r.on_digit(digit)) is not None), None)

    def may_tick(self, seconds_in_call: float) -> bool:
        """Whether any rule's `on_tick` can fire this far into a call (if not, the sweep need not
        read the call's messages)."""
        return any(start is not None and seconds_in_call >= start
                   for start in (rule.ticks_from_s() for rule in self.rules))

    def on_tick(self, history: Sequence[Message], seconds_in_call: float) -> Decision | None:
        """The first time-based rule that fires, if any."""
        return next((d for r in self.rules if (d := r.on_tick(history, seconds_in_call)) is not None),
                    None)


def _named(value: str, choices: Sequence[str]) -> str:
    """`value`, with the choice it is likely a slip for."""
    near = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"{value!r} (did you mean {near[0]!r}?)" if near else repr(value)


def load_rules(path: Path) -> RuleSet:
    """Read and check a rules file; ConfigError names the file, every rule's problem and the fix."""
    document = read_setting_yaml(path, _SETTING)

    def in_file(message: str, *keys: str | int) -> ConfigError:
        return ConfigError([Problem(message, _SETTING, path, keys)])

    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        slip = [k for k in document if k != "rules" and difflib.get_close_matches(str(k), ["rules"], n=1)] \
            if isinstance(document, dict) else []
        hint = f" (is `{slip[0]}:` meant to be `rules:`?)" if slip else ""
        raise in_file(f"the file must have a `rules:` list{hint}")
    unknown = set(document) - {"rules", "handoff"}
    if unknown:
        raise in_file(f"unknown keys {sorted(unknown)}; allowed: handoff, rules")
    handoff = document.get("handoff")
    if handoff is not None and (not isinstance(handoff, str) or not handoff.strip()):
        raise in_file("`handoff` must be the line said before a transfer, or left out", "handoff")
    rules: list[Rule] = []
    names: set[str] = set()
    problems: list[Problem] = []  # one per rule, all of them: a file with three slips needs one restart
    for index, raw in enumerate(document["rules"]):
        try:
            rule = _load_rule(index, raw, names)
        except ConfigError as exc:
            # The rule's problems are at keys below it: place them at its index in this file.
            problems += [replace(p, setting=_SETTING, path=path, keys=("rules", index, *p.keys))
                         for p in exc.problems]
            continue
        if rule is not None:
            rules.append(rule)
    if problems:
        raise ConfigError(problems)
    # every rule is given at least the messages its window reads, so "of the last 20" means 20
    history = max([RuleSet.history, *(rule.window for rule in rules)])
    return RuleSet(rules=tuple(rules), handoff=handoff.strip() if handoff else None, history=history)


def _load_rule(index: int, raw: object, names: set[str]) -> Rule | None:
    """One rule of the file (None when it is off); its name goes into `names`. A problem is raised
    at keys below the rule."""
    at = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise _refused(f"{at} must be a mapping with `name` and `type`")
    params = dict(raw)
    name, kind = params.pop("name", None), params.pop("type", None)
    enabled, reason = params.pop("enabled", True), params.pop("reason", None)
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
        raise _refused(f"{at}.name must be a short snake_case name, e.g. asks_for_human", "name")
    at = f"rules[{index}] ({name})"
    if name in names:
        raise _refused(f"{at}: the name is used twice")
    names.add(name)
    if kind is None:
        raise _refused(f"{at} has no `type`: give it one of {', '.join(RULE_TYPES)}")
    if not isinstance(kind, str) or kind not in RULE_TYPES:
        shown = _named(kind, list(RULE_TYPES)) if isinstance(kind, str) else repr(kind)
        raise _refused(f"{at}.type {shown} is unknown; choose one of {', '.join(RULE_TYPES)}", "type")
    if not isinstance(enabled, bool):
        raise _refused(f"{at}.enabled must be true or false", "enabled")
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise _refused(f"{at}.reason must be a short text", "reason")
    rule = RULE_TYPES[kind](name, reason, params, at)
    return rule if enabled else None


def menu_and_rules_warnings(menu: Menu, rules: RuleSet, rules_path: Path, ivr_path: Path) -> list[str]:
    """Warnings for a rules file with no rule on, and for menu options a `dtmf` rule takes first
    (a key pressed at any moment is the rule's)."""
    found = []
    if not rules.rules:
        found.append(f"{rules_path}: no escalation rule is on: callers are put through only by "
                     f"pressing {OPERATOR_DIGIT}; enable rules there (examples/rules.yaml has the defaults)")
    for node in menu.nodes.values():
        for key in sorted(node.options):
            decision = rules.on_digit(key) if key != OPERATOR_DIGIT else None
            if decision is None:
                continue
            if node.name == AFTER_AGENTS:  # built in, not in the file: name it by what it is
                found.append(f"{rules_path}: rule {decision.rule!r} acts on key {key}, which the "
                             "built-in menu offered when no agent answers uses (1: back to the menu, 2: "
                             f"leave a message): a caller pressing {key} there is put through again instead; "
                             "drop the key from the rule's digits")
                continue
            found.append(f"{rules_path}: rule {decision.rule!r} acts on key {key}, which menu "
                         f"{node.name!r} offers ({ivr_path}): a caller pressing {key} there is "
                         "put through instead; drop the key from the rule's digits or from the menu")
    return found
