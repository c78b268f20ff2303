"""Caller scenarios (DESIGN.md §6): YAML files describing one caller and what must happen."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifeline.insight.labels import INTENTS
from lifeline.ivr.menu import KEYS
from lifeline.ivr.yamlfile import read_yaml

AGENT_BEHAVIOURS = ("answer", "no_answer", "busy", "reject")
_TOP_KEYS = {"name", "from", "agent", "expect", "turns"}
_EXPECT_KEYS = {"transfer", "earliest_say", "latest_say", "intent"}
_TURN_KINDS = ("wait_for", "press", "say", "pause", "hangup", "agent_says", "listening")
# What makes a labelled caller need a person: one of the intents, or frustration with none of them.
# `flask evaluate` counts missed callers by it, so a misspelt reason would be a category of its own.
REASONS = (*INTENTS, "frustration")
# `listening` turns: a supervisor pauses or resumes hearing the call through the app's API.
LISTENING_STATES = ("paused", "resumed")


class ScenarioError(ValueError):
    """A scenario file is not usable; the message names the file and the turn."""


@dataclass(frozen=True)
class Turn:
    """One step of the caller's script."""

    kind: str
    value: Any
    audio: Path | None = None


@dataclass(frozen=True)
class Expect:
    """The oracle: what the app must (not) do with this caller."""

    transfer: bool | None = None
    earliest_say: int | None = None
    latest_say: int | None = None
    intent: str | None = None  # informational: what makes the caller need a person


@dataclass(frozen=True)
class Scenario:
    """One scripted caller."""

    path: Path
    name: str
    from_: str | None
    agent: str
    expect: Expect
    turns: tuple[Turn, ...]

    @property
    def say_count(self) -> int:
        """How many `say` turns the script has."""
        return sum(1 for t in self.turns if t.kind == "say")


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file."""
    document = read_yaml(path, str(path), ScenarioError)
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with `name` and `turns`")
    unknown = set(document) - _TOP_KEYS
    if unknown:
        raise ScenarioError(f"{path}: unknown keys {sorted(unknown)}; allowed {sorted(_TOP_KEYS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{path}: `name` must be a non-empty text")
    agent = document.get("agent", "answer")
    if agent not in AGENT_BEHAVIOURS:
        raise ScenarioError(f"{path}: `agent: {agent}` must be one of {', '.join(AGENT_BEHAVIOURS)}")
    from_ = document.get("from")
    if from_ is not None and not isinstance(from_, str):
        raise ScenarioError(f"{path}: `from` must be a quoted E.164 number, e.g. \"+15551230001\"")
    raw_turns = document.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise ScenarioError(f"{path}: `turns` must be a non-empty list")
    turns = tuple(_turn(path, i, t) for i, t in enumerate(raw_turns, start=1))
    _check_listening_order(path, turns)
    scenario = Scenario(path=path, name=name.strip(), from_=from_, agent=agent,
                        expect=_expect(path, document.get("expect")), turns=turns)
    for key in ("earliest_say", "latest_say"):
        index = getattr(scenario.expect, key)
        if index is not None and not 1 <= index <= scenario.say_count:
            raise ScenarioError(f"{path}: expect.{key}: {index} but the script has "
                                f"{scenario.say_count} say turn(s)")
    return scenario


def _expect(path: Path, raw: object) -> Expect:
    if raw is None:
        return Expect()
    if not isinstance(raw, dict) or set(raw) - _EXPECT_KEYS:
        raise ScenarioError(f"{path}: `expect` may hold only {sorted(_EXPECT_KEYS)}")
    transfer = raw.get("transfer")
    if transfer is not None and not isinstance(transfer, bool):
        raise ScenarioError(f"{path}: expect.transfer must be true or false")
    bounds = {}
    for key in ("earliest_say", "latest_say"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ScenarioError(f"{path}: expect.{key} must be a say number (1 = the first say)")
        bounds[key] = value
    intent = raw.get("intent")
    if intent is not None and intent not in REASONS:
        near = difflib.get_close_matches(str(intent), REASONS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ScenarioError(f"{path}: expect.intent {intent!r} is not a reason Lifeline knows{hint}: "
                            f"use one of {', '.join(REASONS)}")
    return Expect(transfer=transfer, intent=intent, **bounds)


def _turn(path: Path, index: int, raw: object) -> Turn:
    where = f"{path}: turn {index}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where} must be a mapping such as `say: \"...\"`")
    kinds = [k for k in _TURN_KINDS if k in raw]
    extra = set(raw) - set(_TURN_KINDS) - {"audio"}
    if len(kinds) != 1 or extra or ("audio" in raw and kinds[0] not in ("say", "agent_says")):
        raise ScenarioError(f"{where} must have exactly one of {list(_TURN_KINDS)} "
                            f"(and `audio` only with `say` or `agent_says`), found {sorted(raw)}")
    kind = kinds[0]
    value = raw[kind]
    if kind == "wait_for" and value != "gather":
        raise ScenarioError(f"{where}: `wait_for` only knows `gather`")
    if kind == "press" and (not isinstance(value, (str, int)) or isinstance(value, bool)
                            or not str(value) or set(str(value)) - set(KEYS)):
        raise ScenarioError(f"{where}: `press` takes keys 0-9, * and #, quoted: press: \"2\"")
    if kind == "say" and (not isinstance(value, str) or not value.strip()):
        raise ScenarioError(f"{where}: `say` needs the words the caller says")
    if kind == "agent_says" and (not isinstance(value, str) or not value.strip()):
        raise ScenarioError(f"{where}: `agent_says` needs the words the agent says once bridged")
    if kind == "pause" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ScenarioError(f"{where}: `pause` takes seconds, e.g. pause: 1.5")
    if kind == "hangup" and value is not True:
        raise ScenarioError(f"{where}: write `hangup: true`")
    if kind == "listening" and value not in LISTENING_STATES:
        # YAML 1.1 reads on/off/yes/no as booleans, so `listening: off` arrives as False.
        read_as = " (YAML reads on/off/yes/no as true/false)" if isinstance(value, bool) else ""
        raise ScenarioError(f"{where}: `listening` takes paused or resumed{read_as}: write "
                            "`listening: paused`, then `listening: resumed` to hear the caller again")
    audio = raw.get("audio")
    if audio is not None and not isinstance(audio, str):
        raise ScenarioError(f"{where}: `audio` is a path relative to the scenario file")
    return Turn(kind=kind, value=str(value) if kind == "press" else value,
                audio=(path.parent / audio) if audio else None)


def _check_listening_order(path: Path, turns: tuple[Turn, ...]) -> None:
    """Pause and resume alternate, starting with a pause: a repeat would change nothing at the app."""
    paused_at: int | None = None
    for number, turn in enumerate(turns, start=1):
        if turn.kind != "listening":
            continue
        if turn.value == "paused" and paused_at is not None:
            raise ScenarioError(f"{path}: turn {number}: `listening: paused` but turn {paused_at} paused "
                                "listening already; resume it first with `listening: resumed`")
        if turn.value == "resumed" and paused_at is None:
            raise ScenarioError(f"{path}: turn {number}: `listening: resumed` but listening is not paused; "
                                "pause it first with `listening: paused`")
        paused_at = number if turn.value == "paused" else None


def require_audio(scenario: Scenario) -> None:
    """The local engine hears recordings: every `say` needs an existing `audio` file."""
    for number, turn in enumerate(scenario.turns, start=1):
        if turn.kind != "say":
            continue
        if turn.audio is None:
            raise ScenarioError(f"{scenario.path}: turn {number} (say {turn.value!r}) has no `audio`; the "
                                "local engine needs a recording (python -m lifeline.simulator.make_audio "
                                f"{scenario.path} makes one)")
        if not turn.audio.is_file():
            raise ScenarioError(f"{scenario.path}: turn {number}: audio file {turn.audio} does not exist")


def load_scenarios(paths: Iterable[Path], engine: str) -> list[Scenario]:
    """Scenarios from files as given and folders' *.yaml in name order, each checked (recordings
    too, for the local engine); ScenarioError names the first that is not usable, or no file at all."""
    paths = list(paths)
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.glob("*.yaml")))]
    if not files:
        raise ScenarioError(f"no scenarios (*.yaml) in {', '.join(str(p) for p in paths)}")
    loaded = [load_scenario(f) for f in files]
    if engine == "local":
        for scenario in loaded:
            require_audio(scenario)
    return loaded
