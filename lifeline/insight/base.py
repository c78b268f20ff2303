"""The interface every listening engine offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple, Protocol


class Reading(NamedTuple):
    """One way a recogniser read a stretch of speech: the words and its confidence in them.

    The confidence is per token (Whisper's: the geometric mean of the tokens' probabilities), so
    the readings of one utterance do not sum to 1; they are normalised where they are weighed.
    `hearing` tells which decode of the utterance it came from: 0 for the audio as it came, 1 for
    the same audio slowed down (lifeline/insight/whisper.py); each hearing's readings are best first.
    """

    text: str
    confidence: float
    hearing: int = 0


class MessageSink(Protocol):
    """Where an engine sends what it heard.

    `readings` are the recogniser's best readings of the speech, best first (the first is `text`),
    a second hearing's after the first's; engines that give only one reading leave it empty.
    """

    def __call__(self, call_control_id: str, source_id: str, text: str, confidence: float | None,
                 readings: tuple[Reading, ...] = (), /) -> None:
        """Take one message."""


class PolledMessage(NamedTuple):
    """A message an engine fetched: its id (for de-duplication), text, and optional scores."""

    source_id: str
    text: str
    confidence: float | None
    score: float | None


class EngineState(Protocol):
    """Per-call engine data kept in the call store, so any worker or instance can use it."""

    def load(self, call_control_id: str) -> dict[str, Any] | None:
        """The data saved for a call, if any."""

    def save(self, call_control_id: str, data: dict[str, Any] | None) -> None:
        """Replace (or with None, clear) the data of a call."""


class ListeningEngine(ABC):
    """Turns a caller's speech into messages; the IVR asks it how to listen when answering."""

    name: str
    polls = False  # True for engines whose messages the monitor's sweep must fetch
    # True for engines whose words the provider's own recogniser sends (telnyx, twilio): what
    # they hear is changed with transcription_stop/start rather than with the media stream.
    provider_transcribes = False

    def bind(self, sink: MessageSink, state: EngineState | None = None) -> None:
        """Where messages go, and where per-call data is kept."""
        return None

    def warm(self) -> None:
        """Load what the engine needs before the first call (models)."""
        return None

    @abstractmethod
    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        """Extra parameters of the `answer` command that start listening to this call."""

    def dial_options(self) -> dict[str, Any]:
        """Extra parameters of a `dial` that start listening at the far end's answer; {} for none.

        Engines that return {} start listening with commands once `call.answered` arrives."""
        return {}

    def restart_options(self, call_control_id: str) -> dict[str, Any] | None:
        """Parameters of a `streaming_start` that restarts listening, or None if it cannot."""
        return None

    def call_answered(self, call_control_id: str) -> None:
        """The caller's leg is up; must return at once (it runs inside a webhook's handling)."""
        return None

    def poll(self, call_control_id: str) -> list[PolledMessage]:
        """New messages of a call, for engines that poll (called by the monitor, never a webhook)."""
        return []

    def wait_idle(self, timeout: float) -> bool:
        """Block until work the engine queued (transcriptions, starts, stops) is done."""
        return True

    def stop(self, call_control_id: str) -> None:
        """Release whatever the engine holds for a call that ended."""
        return None

    def close(self) -> None:
        """The app is closing: finish queued work and stop the engine's threads."""
        return None
