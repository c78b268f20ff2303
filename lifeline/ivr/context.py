"""What a handler works with while it handles one event inside one unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .events import CallEvent
from .menu import Menu
from .store import Command, FeedEvent, StoreTx

# Fixed namespace: the same logical step of the same call always gets the same command_id,
# so a redelivered webhook or a resend after a restart cannot make Telnyx act twice.
_COMMAND_NAMESPACE = uuid.UUID("2f0d8a3e-6f1c-4c63-9d55-8d1f4a9a2b71")


def command_id_for(call_control_id: str, step: str) -> str:
    """The deterministic command_id of one logical step of one call."""
    return str(uuid.uuid5(_COMMAND_NAMESPACE, f"{call_control_id}:{step}"))


@dataclass
class CallContext:
    """The event being handled, the unit of work, and what it will do once it has committed."""

    tx: StoreTx
    event: CallEvent
    menu: Menu
    commands: list[Command] = field(default_factory=list)
    effects: list[Callable[[], None]] = field(default_factory=list)
    feed: list[FeedEvent] = field(default_factory=list)

    def send(self, name: str, call_control_id: str, step: str, **params: Any) -> Command:
        """Queue a command; it goes to the outbox with this unit of work."""
        command = Command(command_id_for(call_control_id, step), call_control_id, name, params)
        self.commands.append(command)
        return command

    def publish(self, kind: str, call_control_id: str, **data: Any) -> None:
        """Add an event to the outgoing feed; it is stored with this unit of work or not at all."""
        self.feed.append(FeedEvent(kind, call_control_id, data))

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Run an effect on another system (an engine, Symbl) only if this unit of work commits."""
        self.effects.append(effect)
