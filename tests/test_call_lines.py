"""The training calls' lines as line-model training data (corpus/call_lines.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from lifeline.insight.corpus import Utterance, first_need, load_utterances

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
                      "# intents: [], frustration: calm, asr  ",
                      "# annoyed leave_or_cancel")
    lines, left_out = mod.call_lines([path])
    assert left_out == []
    assert [(line.text, line.intents, line.frustration) for line in lines] == [
        ("Hello, it's about my bill.", frozenset(), "calm"),
        ('I\'m moving to another supplier, "for good".', frozenset({"leave_or_cancel"}), "annoyed")]
    assert [line.note for line in lines] == ["call tb900 say 1; asr", "call tb900 say 2"]


@pytest.mark.parametrize(("levels", "intent_at", "need"), [
    (["annoyed", "calm", "calm", "annoyed"], None, 4),  # two annoyed lines, however far apart
    (["annoyed"], None, None),                          # one annoyed line is not enough
    (["calm", "angry"], None, 2),                       # one angry line is
    (["calm", "calm", "calm"], 2, 2),                   # an intent on a calm line is
    (["calm", "calm"], None, None),
])
def test_the_first_need_follows_the_call_rule_of_labels_md(levels: list[str], intent_at: int | None,
                                                           need: int | None) -> None:
    labels = [(("wants_person",) if number == intent_at else (), level)
              for number, level in enumerate(levels, start=1)]
    assert first_need(labels) == need


def test_a_call_whose_line_labels_contradict_its_expect_block_is_left_out(tmp_path: Path) -> None:
    mod = script()
    late = write_call(tmp_path, "tb901", "  transfer: true\n  latest_say: 1",  # the need comes at say 2
                      "# intents: [], frustration: calm", "# intents: [leave_or_cancel], frustration: calm")
    early = write_call(tmp_path, "tb902", "  transfer: true\n  latest_say: 2",  # the need comes at say 1
                       "# intents: [leave_or_cancel], frustration: calm", "# intents: [], frustration: calm")
    calm = write_call(tmp_path, "tb903", "  transfer: false",
                      "# intents: [], frustration: annoyed", "# intents: [], frustration: annoyed")
    before_earliest = write_call(tmp_path, "tb904", "  transfer: true\n  earliest_say: 2\n  latest_say: 2",
                                 "# intents: [], frustration: angry", "# intents: [], frustration: calm")
    agreeing = write_call(tmp_path, "tb905", "  transfer: true\n  earliest_say: 2\n  latest_say: 2",
                          "# intents: [], frustration: calm",
                          "# intents: [leave_or_cancel], frustration: calm")
    lines, left_out = mod.call_lines([late, early, calm, agreeing, before_earliest])
    assert left_out == [late, early, calm, before_earliest]
    assert [line.note for line in lines] == ["call tb905 say 1", "call tb905 say 2"]


def test_a_training_call_without_a_transfer_label_is_refused(tmp_path: Path) -> None:
    mod = script()
    unlabelled = write_call(tmp_path, "tb906", "  intent: frustration",
                            "# intents: [], frustration: calm", "# intents: [], frustration: calm")
    with pytest.raises(mod.LabelError, match="needs `expect: {transfer: true|false}`"):
        mod.call_lines([unlabelled])


def test_rendered_lines_read_back_unchanged_quotes_backslashes_and_notes_included(tmp_path: Path) -> None:
    mod = script()
    written = [Utterance('She said "no\\way", twice', frozenset({"wants_person", "bot_complaint"}), "angry",
                         "call tb907 say 1; asr"),
               Utterance("plain line", frozenset(), "calm", "call tb907 say 2")]
    out = tmp_path / "utterances-calls.yaml"
    out.write_text(mod.render(written), encoding="utf-8")
    read = load_utterances(out)
    assert [(u.text, u.intents, u.frustration, u.note) for u in read] == \
        [(u.text, u.intents, u.frustration, u.note) for u in written]


def test_a_say_without_labels_or_with_an_unknown_label_is_refused_with_the_fix(tmp_path: Path) -> None:
    mod = script()
    bare = write_call(tmp_path, "tb908", "  transfer: false", "", "# intents: [], frustration: calm")
    with pytest.raises(mod.LabelError, match=r"tb908.yaml:6: a say without a label comment; add `# intents"):
        mod.call_lines([bare])
    typo = write_call(tmp_path, "tb909", "  transfer: false", "# intents: [wants_persn], frustration: calm",
                      "# intents: [], frustration: calm")
    with pytest.raises(mod.LabelError, match="wants_persn is not a label"):
        mod.call_lines([typo])


def test_every_training_call_gives_its_lines_but_the_two_whose_labels_disagree() -> None:
    lines, left_out = script().call_lines(sorted((ROOT / "corpus" / "train" / "calls").glob("t[b-m]*.yaml")))
    # a call that starts to disagree must be looked at, not silently dropped from training
    assert [path.name for path in left_out] == ["tc053-gym-leave-and-person.yaml",
                                                "tf058-bank-formal-complaint-calm.yaml"]
    assert len({line.note.split(" say ")[0] for line in lines}) == 840
    assert [(u.text, u.intents, u.frustration, u.note) for u in lines] == \
        [(u.text, u.intents, u.frustration, u.note) for u in load_utterances(CALL_LINES)]
