"""The interface every listening engine offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class ListeningEngine(ABC):
    """Turns a caller's speech into messages; the IVR asks it how to listen when answering."""

    name: str

    def bind(self, sink: Callable[[str, str, str, float], None]) -> None:
        """Where an engine that hears the caller itself delivers messages (ccid, id, text, confidence)."""
        return None

    def warm(self) -> None:
        """Load what the engine needs before the first call (models)."""
        return None

    @abstractmethod
    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        """Extra parameters of the `answer` command that start listening to this call."""

    def restart_options(self, call_control_id: str) -> dict[str, Any] | None:
        """Parameters of a `streaming_start` that restarts listening, or None if it cannot."""
        return None

    def stop(self, call_control_id: str) -> None:
        """Release whatever the engine holds for a call that ended."""
        return None
