"""G.711 (PCMU / PCMA) to 16-bit PCM and back, with numpy tables (`audioop` is gone in 3.13)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


def _ulaw_table() -> Pcm:
    code = (~np.arange(256)) & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> Pcm:
    code = np.arange(256) ^ 0x55
    mantissa, segment = code & 0x0F, (code >> 4) & 0x07
    magnitude = np.where(segment == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (segment - 1))
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


ULAW_TO_PCM = _ulaw_table()
ALAW_TO_PCM = _alaw_table()
DECODERS = {"PCMU": ULAW_TO_PCM, "PCMA": ALAW_TO_PCM}
ULAW_SILENCE = 0xFF


def decode(payload: bytes, encoding: str) -> Pcm:
    """G.711 bytes to 16-bit PCM samples; encoding is PCMU or PCMA."""
    table = DECODERS.get(encoding.upper())
    if table is None:
        raise ValueError(f"unsupported media encoding {encoding!r}; request PCMU or PCMA")
    return table[np.frombuffer(payload, dtype=np.uint8)]


def encode_ulaw(samples: Pcm) -> bytes:
    """16-bit PCM to PCMU (G.711 mu-law), the inverse of ULAW_TO_PCM up to quantisation."""
    pcm = samples.astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())
