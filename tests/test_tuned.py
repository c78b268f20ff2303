"""The fine-tuned model's file checks, its heads' arithmetic, the model choice and the build cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from lifeline.insight import encoder as encoder_module
from lifeline.insight.encoder import SentenceEncoder, cache_name
from lifeline.insight.labels import FRUSTRATION_LEVELS, INTENTS
from lifeline.insight.tuned import DEFAULT_DELTA, TunedModel, arrays_sha256, load_delta
from lifeline.insight.understand import (
    PATTERN_FLOOR,
    REFUSAL_GATE,
    REFUSED_CAP,
    THREAT_GATE,
    Understanding,
    understanding_from,
)
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError

DIM = SentenceEncoder.dim


class FixedEncoder(SentenceEncoder):
    """An encoder whose every line has the same vector: the heads' arithmetic alone is tested."""

    def __init__(self, vector: npt.NDArray[np.float32]) -> None:
        super().__init__()
        self.vector = vector
        self.loaded = 0

    def load(self) -> None:
        self.loaded += 1

    def embed(self, texts: list[str], normalise: bool = True) -> npt.NDArray[np.float32]:
        assert not normalise, "the heads were trained on the raw mean: it must not be normalised"
        return np.tile(self.vector, (len(texts), 1))


def write_delta(path: Path, arrays: dict[str, npt.NDArray[np.float32]], digest: str | None = None) -> Path:
    with path.open("wb") as out:
        np.savez(out, **arrays)
    path.with_name(path.name + ".sha256").write_text(
        f"{digest or arrays_sha256(dict(arrays))}  {path.name}\n")
    return path


def heads(seed: int = 1) -> dict[str, npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return {"head.frustration.weight": rng.normal(0, 0.1, (len(FRUSTRATION_LEVELS), DIM)).astype(np.float32),
            "head.frustration.bias": rng.normal(0, 0.1, len(FRUSTRATION_LEVELS)).astype(np.float32),
            "head.intents.weight": rng.normal(0, 0.1, (len(INTENTS), DIM)).astype(np.float32),
            "head.intents.bias": rng.normal(0, 0.1, len(INTENTS)).astype(np.float32)}


def test_the_heads_give_a_softmax_over_frustration_and_a_sigmoid_per_intent(tmp_path: Path) -> None:
    arrays = heads()
    vector = np.random.default_rng(2).normal(0, 1, DIM).astype(np.float32)
    model = TunedModel(write_delta(tmp_path / "d.npz", arrays), encoder=FixedEncoder(vector))
    intents, frustration = model.probabilities("any line")
    h = vector.astype(np.float64)
    logits = arrays["head.frustration.weight"].astype(np.float64) @ h + arrays["head.frustration.bias"]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert list(frustration) == list(FRUSTRATION_LEVELS)
    assert np.allclose([frustration[k] for k in FRUSTRATION_LEVELS], expected, atol=1e-9)
    sig = 1 / (1 + np.exp(-(arrays["head.intents.weight"].astype(np.float64) @ h
                            + arrays["head.intents.bias"])))
    assert np.allclose([intents[k] for k in INTENTS], sig, atol=1e-9)


def test_a_delta_changed_after_training_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write_delta(tmp_path / "d.npz", heads(), digest="0" * 64)
    with pytest.raises(ConfigError, match="python -m training.finetune"):
        load_delta(path)


def test_a_missing_delta_names_the_lighter_model_as_a_way_out(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LIFELINE_UNDERSTANDING=linear"):
        load_delta(tmp_path / "absent.npz")


def test_heads_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    arrays = heads()
    arrays["head.intents.weight"] = arrays["head.intents.weight"][:, :10]
    with pytest.raises(ConfigError, match="heads of shapes"):
        TunedModel(write_delta(tmp_path / "d.npz", arrays), encoder=FixedEncoder(np.zeros(DIM, np.float32)))


def test_a_delta_without_heads_is_refused(tmp_path: Path) -> None:
    arrays = heads()
    del arrays["head.frustration.bias"]
    with pytest.raises(ConfigError, match="head.frustration.bias"):
        load_delta(write_delta(tmp_path / "d.npz", arrays))


def test_the_committed_delta_matches_its_recorded_checksum() -> None:
    arrays = load_delta(DEFAULT_DELTA)
    assert all(np.all(np.isfinite(a)) for a in arrays.values())


def model_saying(tmp_path: Path, p: float) -> Understanding:
    """An Understanding whose model gives every intent probability `p` (0 < p < 1) on every line."""
    arrays = heads()
    arrays["head.intents.bias"] = np.full(len(INTENTS), np.log(p / (1 - p)), np.float32)
    encoder = FixedEncoder(np.zeros(DIM, np.float32))
    return Understanding(tuned=TunedModel(write_delta(tmp_path / f"d{p}.npz", arrays), encoder=encoder))


def test_understanding_reads_the_tuned_models_probabilities_and_keeps_the_pattern_layer(
        tmp_path: Path) -> None:
    understanding = model_saying(tmp_path, 0.001)  # the model says no intent
    assert understanding.name == "tuned"
    asked = understanding.analyse("can you put me through to an agent please")
    assert asked.intents["wants_person"] >= 0.9  # an asserted construction still lifts it
    assert understanding.analyse("what time do you open").intents["wants_person"] < 0.01
    assert sum(asked.frustration.values()) == pytest.approx(1.0)


THREATS = {"leave_or_cancel": "I am going to cancel my account today",
           "legal_or_complaint": "I will be making a formal complaint"}
REQUESTS = {"wants_person": "put me through to a person",
            "bot_complaint": "this automated system is useless, I keep going round in circles"}


def test_a_threat_the_model_finds_unlikely_keeps_the_models_probability(tmp_path: Path) -> None:
    doubting = model_saying(tmp_path, THREAT_GATE * 0.99)
    for intent, line in THREATS.items():
        analysis = doubting.analyse(line)
        assert analysis.intents[intent] == pytest.approx(THREAT_GATE * 0.99, rel=1e-3)
        assert intent not in analysis.matched  # the decision record names no words it did not use


def test_a_threat_the_model_finds_plausible_is_lifted_to_the_floor(tmp_path: Path) -> None:
    open_minded = model_saying(tmp_path, THREAT_GATE * 1.01)
    for intent, line in THREATS.items():
        analysis = open_minded.analyse(line)
        assert analysis.intents[intent] == PATTERN_FLOOR
        assert analysis.matched[intent]


def test_a_request_for_a_person_or_a_bot_complaint_is_lifted_whatever_the_model_says(tmp_path: Path) -> None:
    doubting = model_saying(tmp_path, 0.001)
    for intent, line in REQUESTS.items():
        assert doubting.analyse(line).intents[intent] == PATTERN_FLOOR


# Lines the pattern layer refuses: a negation, and a polite "is it alright if I" read as a condition.
REFUSED = ["I don't need an agent, thanks",
           "is it alright if I speak to a real person in the mortgages team"]


def test_a_refused_request_the_model_doubts_is_capped(tmp_path: Path) -> None:
    unsure = model_saying(tmp_path, REFUSAL_GATE * 0.99)
    for line in REFUSED:
        assert unsure.analyse(line).intents["wants_person"] == REFUSED_CAP


def test_a_refused_request_the_model_is_sure_of_keeps_the_models_probability(tmp_path: Path) -> None:
    sure = model_saying(tmp_path, REFUSAL_GATE * 1.01)
    for line in REFUSED:
        assert sure.analyse(line).intents["wants_person"] == pytest.approx(REFUSAL_GATE * 1.01, rel=1e-3)


def test_the_committed_model_reads_a_negation_as_no_and_a_polite_request_as_yes() -> None:
    tuned = Understanding(tuned=TunedModel())
    declined, polite = (tuned.analyse(line).intents["wants_person"] for line in REFUSED)
    assert declined <= REFUSED_CAP
    assert polite >= PATTERN_FLOOR


def test_load_builds_the_tuned_encoder_and_the_linear_model_has_nothing_to_load(tmp_path: Path) -> None:
    fixed = FixedEncoder(np.zeros(DIM, np.float32))
    Understanding(tuned=TunedModel(write_delta(tmp_path / "d.npz", heads()), encoder=fixed)).load()
    assert fixed.loaded == 1
    linear = Understanding()
    linear.load()
    assert linear.name == "linear" and linear.tuned is None


def test_the_setting_chooses_the_model_and_an_unknown_name_says_the_choices(tmp_path: Path) -> None:
    base = {"TELNYX_API_KEY": "KEY_x", "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}
    settings = load_settings({**base, "LIFELINE_UNDERSTANDING": "linear"}, tmp_path)
    assert understanding_from(settings).name == "linear"
    for model in ("tuned", "linear"):  # whether a second hearing's intents count reaches either model
        given = {**base, "LIFELINE_UNDERSTANDING": model}
        assert understanding_from(load_settings(given, tmp_path)).second_hearing_intents is False
        switched = load_settings({**given, "LIFELINE_SECOND_HEARING_INTENTS": "on"}, tmp_path)
        assert understanding_from(switched).second_hearing_intents is True
    assert load_settings(base, tmp_path).understanding == "tuned"
    with pytest.raises(ConfigError, match="choose tuned .* or linear"):
        load_settings({**base, "LIFELINE_UNDERSTANDING": "bert"}, tmp_path)
    off = load_settings({**base, "LIFELINE_MODEL_CACHE": "off"}, tmp_path)
    assert off.model_cache_dir is None
    assert load_settings({**base, "LIFELINE_MODEL_CACHE": str(tmp_path / "c")},
                         tmp_path).model_cache_dir == tmp_path / "c"


def test_a_cached_build_is_loaded_without_building_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Path | None] = []
    real = encoder_module.build_in_child

    def counting(directory: Path, delta: Path | None = None, quantized: bool = True) -> bytes:
        built.append(delta)
        return real(directory, delta, quantized)

    monkeypatch.setattr(encoder_module, "build_in_child", counting)
    cache = tmp_path / "cache"
    first = SentenceEncoder(cache_dir=cache)
    first.warm_cache()
    assert len(built) == 1 and len(list(cache.glob("minilm-*.onnx"))) == 1
    second = SentenceEncoder(cache_dir=cache)
    vector = second.embed(["I want to speak to a person"])
    assert len(built) == 1  # loaded from the cache
    fresh = SentenceEncoder(cache_dir=None).embed(["I want to speak to a person"])
    assert float(vector[0] @ fresh[0]) > 0.999
    assert len(built) == 2


def test_the_cache_name_changes_with_the_delta_and_the_precision(tmp_path: Path) -> None:
    one = write_delta(tmp_path / "one.npz", heads(1))
    two = write_delta(tmp_path / "two.npz", heads(2))
    names = {cache_name(None, True), cache_name(None, False), cache_name(one, True), cache_name(two, True)}
    assert len(names) == 4
