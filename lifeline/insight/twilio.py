"""Twilio real-time transcription: Twilio does speech-to-text and posts each utterance to us.

On a Twilio call the answer's `transcription` option becomes `<Start><Transcription>`; on a
Telnyx call in the same deployment it stays Telnyx transcription, so the engine is the
provider's own recogniser either way.
"""

from __future__ import annotations

from .telnyx import TelnyxTranscription


class TwilioTranscription(TelnyxTranscription):
    """The provider transcribes the caller's track; messages are stored under engine `twilio`."""

    name = "twilio"
