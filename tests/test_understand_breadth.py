"""Breadth of training (corpus/generate.py), the intent models' input, and threshold calibration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lifeline.insight.corpus import load_utterances
from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS
from lifeline.insight.understand import FEATURE_COUNT, INTENT_FEATURES, Understanding, intent_view
from training.calibrate import GRID, choose, curve

from .conftest import ROOT, load_script

GENERATED = ROOT / "corpus" / "train" / "utterances-generated.yaml"


def generator() -> ModuleType:
    return load_script("corpus/generate.py")


def test_the_generator_writes_the_same_lines_every_time() -> None:
    gen = generator()
    first, second = gen.render(gen.generate()), gen.render(gen.generate())
    assert first == second
    assert gen.render(gen.generate(seed=1)) != first  # the seed, not luck, fixes the output


@pytest.mark.parametrize("script", ["corpus/generate.py", "corpus/call_lines.py"])
def test_a_committed_generated_corpus_file_is_what_its_script_writes(script: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, script, "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    stale = tmp_path / "stale.yaml"
    stale.write_text("- {text: old, intents: [], frustration: calm}\n")
    done = subprocess.run([sys.executable, script, "--check", "--out", str(stale)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"python {script}" in done.stdout


def test_generated_lines_are_valid_labels_with_refusals_and_bad_news_carrying_no_intent() -> None:
    lines = load_utterances(GENERATED)
    assert len(lines) > 1000
    assert len({u.text.lower() for u in lines}) == len(lines)
    for intent in INTENTS:
        assert sum(1 for u in lines if intent in u.intents) >= 50, intent
    for level in FRUSTRATION_LEVELS:
        assert sum(1 for u in lines if u.frustration == level) >= 200, level
    for family in ("declines a person", "not leaving", "no threat", "uses the menu calmly",
                   "calm caller with bad news", "on topic, no intent", "calm look-alike of a mood line",
                   "short answer to the menu"):
        members = [u for u in lines if family in u.note]
        assert members, family
        assert all(not u.intents for u in members), family
    assert all(u.frustration == "calm" for u in lines if "bad news" in u.note or "look-alike" in u.note)
    assert any(u.note.endswith("asr") and u.text == u.text.lower() for u in lines)


def test_the_intent_models_do_not_read_the_asserted_pattern_flags_or_the_lexical_block() -> None:
    x = np.arange(FEATURE_COUNT, dtype=np.float64)
    view = intent_view(x)
    assert view.shape == (INTENT_FEATURES,)  # the lexical block is the frustration model's alone
    changed = np.flatnonzero(view != x[:INTENT_FEATURES])
    assert list(changed) == list(range(256, 256 + len(INTENTS)))  # exactly the asserted block
    assert x[256] == 256.0  # the input itself is not modified


def test_an_unpatterned_request_is_still_recognised_and_a_patterned_one_keeps_its_floor() -> None:
    understanding = Understanding()
    assert understanding.analyse("put me through to one of your staff").intents["wants_person"] >= 0.9
    # no construction of the pattern layer matches this; the learned model alone must carry it
    analysis = understanding.analyse("I could really do with a chinwag with a human")
    assert "wants_person" not in analysis.matched
    assert analysis.intents["wants_person"] >= 0.5


def test_calibration_picks_the_lowest_threshold_that_keeps_precision() -> None:
    scores = [(0.95, True), (0.9, True), (0.8, True), (0.72, False), (0.6, True), (0.4, False), (0.2, False)]
    choice = choose("t", scores, 0.99)
    assert choice.threshold == 0.75 and choice.precision == 1.0 and choice.recall == 0.75
    loose = choose("t", scores, 0.6)
    assert loose.threshold <= 0.4 and loose.precision >= 0.6
    assert [t for t, _, _ in curve(scores)] == list(GRID)


def test_calibration_falls_back_to_the_best_precision_when_no_threshold_reaches_the_target() -> None:
    scores = [(0.99, False), (0.5, True)]
    choice = choose("t", scores, 0.9)
    assert choice.precision < 0.9 and choice.threshold in GRID


@pytest.mark.parametrize("text", ["I don't need an agent, thanks", "no, don't transfer me"])
def test_refusals_stay_below_any_calibrated_intent_threshold(text: str) -> None:
    assert Understanding().analyse(text).intents["wants_person"] < min(GRID)


def test_lines_as_the_recogniser_heard_them_teach_intents_but_not_frustration(tmp_path: Path) -> None:
    from lifeline.insight.corpus import Utterance
    from training.train import train

    written = [Utterance("put me through to a person", frozenset({"wants_person"}), "calm", "",
                         "utterances.yaml"),
               Utterance("what is my balance", frozenset(), "calm", "", "utterances.yaml"),
               Utterance("this is a disgrace", frozenset(), "angry", "", "utterances.yaml")]
    heard = Utterance("put me through two a purse in", frozenset({"wants_person"}), "angry", "",
                      str(tmp_path / "utterances-heard.yaml"))
    moody = Utterance("put me through two a purse in", frozenset({"wants_person"}), "angry", "",
                      str(tmp_path / "utterances-more.yaml"))
    base, with_heard, with_moody = train(written), train([*written, heard]), train([*written, moody])
    np.testing.assert_array_equal(with_heard.frustration, base.frustration)
    assert not np.array_equal(with_moody.frustration, base.frustration)
    assert not np.array_equal(with_heard.intents["wants_person"], base.intents["wants_person"])


@pytest.mark.parametrize("heard", ["I need to speak with a renent of it right now",
                                   "i would like to talk to a super vice sir"])
def test_asking_to_speak_with_a_mangled_role_is_a_request_for_a_person(heard: str) -> None:
    assert Understanding().analyse(heard).intents["wants_person"] >= 0.85


def test_the_mangled_role_frame_keeps_refusals_and_machines_out() -> None:
    from lifeline.insight.patterns import find_intents

    assert find_intents("I don't need to speak with a renent, thanks").signals["wants_person"] == -1.0
    assert "wants_person" not in find_intents("I want to talk to a machine that works").matched
