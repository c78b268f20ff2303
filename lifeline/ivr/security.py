"""Telnyx webhook signatures (Ed25519 over "{timestamp}|{raw body}")."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .errors import SignatureError

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"


class WebhookVerifier:
    """Checks that a request was signed by Telnyx's key within the replay window."""

    def __init__(self, public_key: bytes, tolerance_s: int = 300) -> None:
        self._key = VerifyKey(public_key)
        self._tolerance = tolerance_s

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Raise SignatureError unless the body carries a valid, fresh signature."""
        signature = _header(headers, SIGNATURE_HEADER)
        stamp = _header(headers, TIMESTAMP_HEADER)
        if not signature or not stamp:
            raise SignatureError("missing telnyx-signature-ed25519 or telnyx-timestamp header")
        # Digits only, and few of them: int() also takes "1_000" and other scripts' digits, and a
        # 400-digit stamp would overflow the float arithmetic below (a 500 for a forged request).
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise SignatureError("telnyx-timestamp is not a Unix time")
        sent_at = int(stamp)
        current = time.time() if now is None else now
        if abs(current - sent_at) > self._tolerance:
            raise SignatureError("telnyx-timestamp is outside the replay window; check the "
                                 "server clock (NTP) if every webhook is refused")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            self._key.verify(stamp.encode() + b"|" + body, raw_signature)
        except (binascii.Error, ValueError, BadSignatureError):
            raise SignatureError("signature does not match TELNYX_PUBLIC_KEY") from None


def sign(key: SigningKey, body: bytes, timestamp: int) -> dict[str, str]:
    """Headers Telnyx would send with this body (used by the emulator and tests)."""
    signed = key.sign(str(timestamp).encode() + b"|" + body).signature
    return {SIGNATURE_HEADER: base64.b64encode(signed).decode(), TIMESTAMP_HEADER: str(timestamp)}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    return value.strip() if value else None

