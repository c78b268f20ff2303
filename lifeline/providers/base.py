"""The provider interface (pipecat-style: same method names per provider) and the command router."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from lifeline.insight.frames import MediaFrame
from lifeline.ivr.events import CallEvent
from lifeline.ivr.store import Command, CommandStatus
from lifeline.ivr.telnyx_api import SendOutcome


@dataclass(frozen=True)
class WebhookRequest:
    """One provider request as it reached us: the public URL it was sent to, headers and body."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    form: Mapping[str, str] = field(default_factory=dict)


class Provider(ABC):
    """What a telephony provider must do for Lifeline; everything else is shared."""

    name: str

    @abstractmethod
    def owns(self, call_control_id: str) -> bool:
        """Whether a call id is one of this provider's (commands are routed by it)."""

    @abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise SignatureError unless the provider signed this request."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> list[CallEvent]:
        """The request as our typed events (MalformedEvent when it is not the provider's)."""

    @abstractmethod
    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """Express one queued command to the provider (answer, menu, say, stream, transfer, ...).

        `wanted` is asked before each retry; False stops retrying (the call has moved on)."""

    @abstractmethod
    def parse_media(self, raw: str | bytes) -> MediaFrame:
        """One media-stream message as our typed frame (MalformedFrame when it is not)."""

    def is_alive(self, call_control_id: str) -> bool | None:
        """Whether the provider still has this leg up; None when it could not say."""
        return None

    def close(self) -> None:
        """Release connections."""
        return None


class ProviderCommands:
    """Routes each command (and each liveness question) to the provider that owns the call.

    It offers what `CommandSender` and the monitor use of a command client, so one outbox and
    one sweep serve every provider in the deployment. The first provider is the fallback.
    """

    def __init__(self, providers: Sequence[Provider]) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.providers = tuple(providers)

    def owner(self, call_control_id: str) -> Provider:
        """The provider a call belongs to."""
        for provider in self.providers[1:]:
            if provider.owns(call_control_id):
                return provider
        return self.providers[0]

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """Send a command through the provider that owns its call."""
        return self.owner(command.call_control_id).send(command, wanted)

    def is_alive(self, call_control_id: str) -> bool | None:
        """Ask the owning provider whether a leg is still up."""
        return self.owner(call_control_id).is_alive(call_control_id)

    def close(self) -> None:
        """Close every provider's connections."""
        for provider in self.providers:
            provider.close()


def rejected(command: Command, why: str) -> SendOutcome:
    """The outcome of a command a provider cannot express."""
    return SendOutcome(CommandStatus.REJECTED, 0, f"{command.name}: {why}")
