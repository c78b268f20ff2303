"""Sentence embeddings from WordLlama's static token vectors, shipped inside its PyPI wheel.

The weights (16 MB, MIT) and the tokenizer are files in the installed `wordllama` package, so
nothing is fetched at run time: the loader is pointed at the package directory, downloads are
switched off, and both files are checked against the SHA-256 they had in the pinned wheel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lifeline.ivr.errors import ConfigError

if TYPE_CHECKING:
    from wordllama.inference import WordLlamaInference

DIM = 256
# SHA-256 of the files inside wordllama==0.4.0.post1 (the wheel itself is pinned in requirements.txt).
PINNED_FILES: dict[str, str] = {
    "weights/l2_supercat_256.safetensors":
        "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5",
    "tokenizers/l2_supercat_tokenizer_config.json":
        "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68",
}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(root: Path, pinned: dict[str, str]) -> None:
    """Refuse to load model files that are missing or differ from the pinned checksums."""
    for relative, expected in pinned.items():
        path = root / relative
        if not path.is_file():
            raise ConfigError(f"model file {path} is missing; reinstall the pinned package "
                              "(pip install -r requirements.txt -c constraints.txt)")
        actual = sha256_of(path)
        if actual != expected:
            raise ConfigError(f"model file {path} has SHA-256 {actual}, expected {expected}; the "
                              "installed package is not the pinned one: reinstall it")


class SentenceEmbedder:
    """Turns texts into unit-length 256-dimensional vectors (0.1 ms a sentence on one core)."""

    dim = DIM

    def __init__(self, package_dir: Path | None = None) -> None:
        from wordllama import WordLlama

        if package_dir is None:
            import wordllama

            package_dir = Path(wordllama.__file__).parent
        verify_files(package_dir, PINNED_FILES)
        # cache_dir is the package itself: WordLlama looks for `tokenizers/` and `weights/` there.
        self._model: WordLlamaInference = WordLlama.load(
            config="l2_supercat", dim=DIM, cache_dir=package_dir, disable_download=True)

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One row per text, L2-normalised (an empty text embeds as zeros)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vectors = np.asarray(self._model.embed(texts, norm=False), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: npt.NDArray[np.float32] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return unit
