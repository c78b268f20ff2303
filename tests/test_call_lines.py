"""The training calls' lines as line-model training data (corpus/call_lines.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from insight.corpus import load_utterances

from .conftest import ROOT, load_script

CALL_LINES = ROOT / "corpus" / "train" / "utterances-calls.yaml"

CALL = """name: {name}
expect:
{expect}
turns:
  - wait_for: gather
  - say: "Hello, it's about my bill."  {first}
  - pause: 1.0
  - say: "I'm moving to another supplier, \\"for good\\"."  {second}
"""


def script() -> ModuleType:
    return load_script("corpus/call_lines.py")


def write_call(folder: Path, name: str, expect: str, first: str, second: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(CALL.format(name=name, expect=expect, first=first, second=second), encoding="utf-8")
    return path


def test_both_label_comment_forms_are_read_with_the_say_text_unescaped(tmp_path: Path) -> None:
    mod = script()
    path = write_call(tmp_path, "tb900", "  transfer: true\n  latest_say: 2",
                      "# intents: [], frustration: calm, asr",
                      "# annoyed leave_or_cancel")
    lines, left_out = mod.call_lines([path])
    assert left_out == []
    assert [(line.text, line.intents, line.frustration) for line in lines] == [
        ("Hello, it's about my bill.", frozenset(), "calm"),
        ('I\'m moving to another supplier, "for good".', frozenset({"leave_or_cancel"}), "annoyed")]
    assert lines[1].note == "call tb900 say 2"


def test_a_call_whose_line_labels_contradict_its_expect_block_is_left_out(tmp_path: Path) -> None:
    mod = script()
    early = write_call(tmp_path, "tb901", "  transfer: true\n  latest_say: 1",  # the need comes at say 2
                       "# intents: [], frustration: calm", "# intents: [leave_or_cancel], frustration: calm")
    calm = write_call(tmp_path, "tb902", "  transfer: false",
                      "# intents: [], frustration: annoyed", "# intents: [], frustration: annoyed")
    before_earliest = write_call(tmp_path, "tb903", "  transfer: true\n  earliest_say: 2\n  latest_say: 2",
                                 "# intents: [], frustration: angry", "# intents: [], frustration: calm")
    lines, left_out = mod.call_lines([early, calm, before_earliest])
    assert lines == [] and left_out == [early, calm, before_earliest]


def test_a_say_without_labels_or_with_an_unknown_label_is_refused_with_the_fix(tmp_path: Path) -> None:
    mod = script()
    bare = write_call(tmp_path, "tb904", "  transfer: false", "", "# intents: [], frustration: calm")
    with pytest.raises(mod.LabelError, match=r"tb904.yaml:6: a say without a label comment; add `# intents"):
        mod.call_lines([bare])
    typo = write_call(tmp_path, "tb905", "  transfer: false", "# intents: [wants_persn], frustration: calm",
                      "# intents: [], frustration: calm")
    with pytest.raises(mod.LabelError, match="wants_persn is not a label"):
        mod.call_lines([typo])


def test_the_call_lines_are_valid_labels_from_nearly_every_training_call() -> None:
    lines = load_utterances(CALL_LINES)
    calls = {line.note.rsplit(" say ", 1)[0] for line in lines}
    assert len(calls) >= 830  # of the 842 labelled calls tb* to tm*, only disagreeing ones are left out
    assert all(line.note.startswith("call t") for line in lines)
    assert sum(1 for line in lines if line.intents) >= 300
    assert {line.frustration for line in lines} == {"calm", "annoyed", "angry"}
