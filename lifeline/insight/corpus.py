"""Labelled caller lines (`utterances.yaml`, format in corpus/LABELS.md), read and checked."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from lifeline.ivr.errors import LifelineError
from lifeline.ivr.yamlfile import read_yaml

from .labels import FRUSTRATION_LEVELS, INTENTS


class CorpusError(LifelineError, ValueError):
    """A labelled file is not usable; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Utterance:
    """One labelled caller line."""

    text: str
    intents: frozenset[str]
    frustration: str
    note: str = ""
    source: str = ""


def load_utterances(path: Path) -> list[Utterance]:
    """Read one utterances file: a list of {text, intents, frustration, note}."""
    document = read_yaml(path, str(path), CorpusError)
    if not isinstance(document, list):
        raise CorpusError(f"{path}: an utterances file is a list of {{text, intents, frustration}}")
    lines: list[Utterance] = []
    for index, raw in enumerate(document, start=1):
        where = f"{path}: entry {index}"
        if not isinstance(raw, dict) or set(raw) - {"text", "intents", "frustration", "note"}:
            raise CorpusError(f"{where} must be a mapping of text, intents, frustration and note")
        text, intents = raw.get("text"), raw.get("intents") or []
        frustration, note = raw.get("frustration"), raw.get("note") or ""
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f"{where}: `text` must be the caller's words")
        if not isinstance(intents, list) or any(i not in INTENTS for i in intents):
            raise CorpusError(f"{where}: `intents` must be a list drawn from {', '.join(INTENTS)}")
        if frustration not in FRUSTRATION_LEVELS:
            raise CorpusError(f"{where}: `frustration` must be one of {', '.join(FRUSTRATION_LEVELS)}")
        lines.append(Utterance(text.strip(), frozenset(intents), frustration, str(note), str(path)))
    return lines


def utterance_files(root: Path) -> list[Path]:
    """The utterance files of a split directory (utterances*.yaml), in a stable order."""
    return sorted(root.glob("utterances*.yaml"))


def load_split(roots: Iterable[Path]) -> list[Utterance]:
    """Every labelled line under the given split directories or files."""
    lines: list[Utterance] = []
    for root in roots:
        for path in ([root] if root.is_file() else utterance_files(root)):
            lines.extend(load_utterances(path))
    return lines


def first_need(says: Iterable[tuple[Collection[str], str]]) -> int | None:
    """The 1-based say at which LABELS.md's call rule first holds for (intents, frustration) labels.

    A caller needs a person at the first say with an intent, the first angry say, or the second
    say that is annoyed or worse; None when no say gets there.
    """
    annoyed = 0
    for number, (intents, level) in enumerate(says, start=1):
        annoyed += level != "calm"
        if intents or level == "angry" or annoyed >= 2:
            return number
    return None
