"""The encoder fine-tune: deterministic, and the runtime (insight/encoder.py) computes the model it trained.

The tiny trainings take a few seconds each; the module builds one float32 encoder (~5 s). The
full recipe is a `slow` test (about 30 min on 2 cores): `make test-slow` or `pytest -m slow`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lifeline.insight.classifier import checksum_path
from lifeline.insight.encoder import SentenceEncoder, model_dir
from lifeline.insight.tuned import arrays_sha256, load_arrays
from training.finetune import (
    DEFAULT_DELTA,
    Batcher,
    Recipe,
    Trained,
    delta_arrays,
    examples,
    metadata_path,
    save,
    train,
)

# Two steps on 48 lines, at learning rates above the real ones so that two steps move the vectors
# (cosine 0.94-0.99 to the stock model's) and the heads off uniform, without saturating them: a
# runtime ignoring the delta or the heads would be caught.
TINY = Recipe(epochs=1, lr=5e-3, head_lr=5e-3, rank=2, max_len=16, batch=24, limit=48)
ROOT = Path(__file__).resolve().parent.parent
# one labelled file, not the split: reading all of corpus/train takes seconds per training
TINY_CORPUS = (ROOT / "corpus" / "train" / "utterances.yaml",)
LINES = ["Put me through to a real person now",
         "I've been on hold for forty minutes, this is a joke",
         "cancel my contract",
         "Thanks, that's all sorted"]


@pytest.fixture(scope="module")
def tiny() -> Trained:
    return train(TINY, TINY_CORPUS)


def torch_outputs(trained: Trained, texts: list[str],
                  stock: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled vectors, frustration and intent probabilities from the torch model (stock: adapters off)."""
    scales = {name: lora.scale for name, lora in trained.adapters.items()}
    if stock:
        for lora in trained.adapters.values():
            lora.scale = 0.0
    try:
        with torch.no_grad():
            ids, mask = Batcher(model_dir(), trained.recipe.max_len)(texts)
            pooled = trained.model.pooled(ids, mask)
            f, n = trained.model.heads(pooled)
            return pooled.numpy(), torch.softmax(f, -1).numpy(), torch.sigmoid(n).numpy()
    finally:
        for name, lora in trained.adapters.items():
            lora.scale = scales[name]


def test_the_same_recipe_trains_bit_identical_arrays(tiny: Trained) -> None:
    again = delta_arrays(train(TINY, TINY_CORPUS))
    first = delta_arrays(tiny)
    assert sorted(first) == sorted(again)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert arrays_sha256(first) == arrays_sha256(again)
    # and training moved the adapters (B starts at zero), so the equality is about trained values
    assert all(np.abs(first[k]).max() > 0 for k in first if k.endswith(".lora_b"))


def test_another_seed_trains_other_arrays(tiny: Trained) -> None:
    other = delta_arrays(train(dataclasses.replace(TINY, seed=TINY.seed + 1), TINY_CORPUS))
    assert arrays_sha256(other) != arrays_sha256(delta_arrays(tiny))


def test_lines_as_heard_teach_intents_but_not_frustration(tmp_path: Path) -> None:
    line = "- {text: \"I want to speak to someone\", intents: [wants_person], frustration: annoyed}\n"
    (tmp_path / "utterances.yaml").write_text(line)
    (tmp_path / "utterances-heard.yaml").write_text(line.replace("I want", "i want"))
    lines, data = examples([tmp_path])
    assert lines == 2
    assert [(d.text, d.moody, d.intents) for d in data] == [
        ("i want to speak to someone", False, (1.0, 0.0, 0.0, 0.0)),  # heard: its own variant
        ("I want to speak to someone", True, (1.0, 0.0, 0.0, 0.0)),
        ("i want to speak to someone", True, (1.0, 0.0, 0.0, 0.0)),  # the ASR-style variant
    ]


def test_the_delta_holds_adapters_for_every_targeted_layer_and_the_heads(tiny: Trained) -> None:
    arrays = delta_arrays(tiny)
    adapters = {k.rsplit(".weight.", 1)[0] for k in arrays if ".weight.lora_" in k}
    assert len(adapters) == 6 * 6  # six Linear layers in each of six transformer layers
    assert "encoder.layer.0.attention.output.dense" in adapters
    assert "encoder.layer.5.output.dense" in adapters
    query_a = arrays["encoder.layer.0.attention.self.query.weight.lora_a"]
    query_b = arrays["encoder.layer.0.attention.self.query.weight.lora_b"]
    assert (query_a.shape, query_b.shape) == ((2, 384), (384, 2))
    assert arrays["head.frustration.weight"].shape == (3, 384)
    assert arrays["head.intents.weight"].shape == (4, 384)
    assert list(arrays) == sorted(arrays)


def test_the_runtime_with_the_delta_computes_the_trained_model(tiny: Trained, tmp_path: Path) -> None:
    path = tmp_path / "delta.npz"
    digest = save(tiny, path)
    assert checksum_path(path).read_text().split()[0] == digest
    assert json.loads(metadata_path(path).read_text())["arrays_sha256"] == digest
    runtime = SentenceEncoder(delta=path, quantized=False).embed(LINES, normalise=False)
    tuned, frustration, intents = torch_outputs(tiny, LINES)
    stock, _, _ = torch_outputs(tiny, LINES, stock=True)
    cosine = (runtime * tuned).sum(1) / np.linalg.norm(runtime, axis=1) / np.linalg.norm(tuned, axis=1)
    assert cosine.min() >= 0.999
    # the delta moves the vectors far more than the runtime differs from torch: it was applied
    assert np.abs(runtime - tuned).max() * 10 < np.abs(stock - tuned).max()
    heads = load_arrays(path)
    logits = runtime @ heads["head.frustration.weight"].T + heads["head.frustration.bias"]
    runtime_frustration = np.exp(logits - logits.max(1, keepdims=True))
    runtime_frustration /= runtime_frustration.sum(1, keepdims=True)
    runtime_intents = 1 / (1 + np.exp(-(runtime @ heads["head.intents.weight"].T
                                        + heads["head.intents.bias"])))
    assert np.abs(runtime_frustration - frustration).max() < 2e-3
    assert np.abs(runtime_intents - intents).max() < 2e-3
    # the heads learnt something, so matching probabilities is not matching uniform ones
    assert np.abs(frustration - 1 / 3).max() > 0.05 and np.abs(intents - 0.5).max() > 0.05


def test_the_committed_delta_matches_its_checksum_and_the_default_recipe() -> None:
    digest = arrays_sha256(load_arrays(DEFAULT_DELTA))
    assert checksum_path(DEFAULT_DELTA).read_text().split()[0] == digest
    meta = json.loads(metadata_path(DEFAULT_DELTA).read_text())
    assert meta["arrays_sha256"] == digest
    # `python -m training.finetune` with no options retrains this very file
    assert meta["recipe"] == {**dataclasses.asdict(Recipe()), "targets": list(Recipe().targets)}


@pytest.mark.slow
def test_the_default_recipe_reproduces_the_committed_delta(tmp_path: Path) -> None:
    path = tmp_path / "encoder-delta.npz"
    digest = save(train(Recipe()), path)
    assert digest == checksum_path(DEFAULT_DELTA).read_text().split()[0]
