"""The interface every listening engine offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class ListeningEngine(ABC):
    """Turns a caller's speech into messages; the IVR asks it how to listen when answering."""

    name: str

    @abstractmethod
    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        """Extra parameters of the `answer` command that start listening to this call."""

    def stop(self, call_control_id: str) -> None:
        """Release whatever the engine holds for a call that ended."""
        return None
