"""The stream codecs Lifeline decodes, each to 8 kHz 16-bit PCM (what the endpointer hears).

Telnyx streams the codec asked for with `stream_codec` when it can transcode, else the call's
own: PCMU or PCMA (8 kHz), G722 (16 kHz wideband), L16 (big-endian 16-bit linear, 8 or 16 kHz),
OPUS or AMR-WB. G.722 is decoded by the `G722` package (libg722, bit-exact ITU G.722) in its
8 kHz output mode; OPUS and AMR-WB are not decoded, so such a stream is restarted as PCMU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from .g711 import DECODERS, Pcm

FRAME_MS = 20
G722_BIT_RATE = 64000  # Telnyx's G.722 is the 64 kbit/s mode


@dataclass(frozen=True)
class Codec:
    """One decodable stream format: its name, sample rate and 20 ms of silence in it."""

    name: str
    sample_rate: int
    silence: bytes

    def decoder(self) -> Callable[[bytes], Pcm]:
        """A decoder for one stream (G.722's is stateful: one per stream, fed in order)."""
        if self.name in DECODERS:
            table = DECODERS[self.name]
            return lambda payload: table[np.frombuffer(payload, dtype=np.uint8)]
        if self.name == "L16":
            factor = self.sample_rate // 8000
            return lambda payload: _to_8k(np.frombuffer(payload[: len(payload) // 2 * 2], dtype=">i2"),
                                          factor)
        from G722 import G722  # imported only for G.722 streams

        state = G722(8000, G722_BIT_RATE)  # 8 kHz output from a wideband bitstream
        return lambda payload: np.asarray(state.decode(payload), dtype=np.int16)


def codec_for(encoding: str | None, sample_rate: int | None) -> Codec | None:
    """The codec of a stream's `start.media_format`, or None when Lifeline cannot decode it."""
    name = (encoding or "").upper()
    rate = sample_rate or 8000
    samples = rate * FRAME_MS // 1000
    if name == "PCMU" and rate == 8000:
        return Codec(name, rate, b"\xff" * samples)
    if name == "PCMA" and rate == 8000:
        return Codec(name, rate, b"\xd5" * samples)
    if name == "L16" and rate in (8000, 16000):
        return Codec(name, rate, b"\x00\x00" * samples)
    if name == "G722" and rate in (8000, 16000):
        # G.722 carries 16 kHz audio in 8000 bytes a second, whatever rate the start frame names.
        return Codec(name, 16000, _g722_silence()) if _g722_available() else None
    return None


def _to_8k(samples: np.ndarray, factor: int) -> Pcm:
    """Linear PCM to 8 kHz: 16 kHz is averaged in pairs (a two-tap low-pass, then every other)."""
    pcm = samples.astype(np.int32)
    if factor == 2:
        pcm = (pcm[0::2][: len(pcm) // 2] + pcm[1::2][: len(pcm) // 2]) // 2
    return pcm.astype(np.int16)


def _g722_available() -> bool:
    try:
        import G722  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _g722_silence() -> bytes:
    from G722 import G722

    encoded: bytes = G722(8000, G722_BIT_RATE).encode(np.zeros(160, dtype=np.int16))
    return encoded
