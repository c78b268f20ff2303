"""Where a Twilio call's commands go: into the TwiML of the webhook being answered, or to REST.

Twilio takes TwiML in the response to its own request. While a Twilio webhook is handled, the
commands its unit of work queues for that call are captured (a context variable set by the
webhook, read in the same thread) and become the response; the unit of work that queued them
records them sent as it commits, so no sweep takes them for commands still to send. Commands
queued anywhere else (speech heard on the media socket, the monitor, another call's webhook)
leave after commit as one REST update per call and unit of work, so a handoff `<Say>` and its
`<Dial>` stay together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

from lifeline.ivr.outbox import CommandSender
from lifeline.ivr.reachability import TelnyxReachability
from lifeline.ivr.serial import KeyedSerialExecutor
from lifeline.ivr.store import CallStore, Command

from .provider import TwilioProvider
from .twiml import TWIML_COMMANDS

log = logging.getLogger(__name__)


@dataclass
class Capture:
    """The TwiML commands of the call whose webhook is being answered."""

    call_sid: str | None
    commands: list[Command] = field(default_factory=list)


_capture: ContextVar[Capture | None] = ContextVar("lifeline_twilio_capture", default=None)


@contextmanager
def capturing(call_sid: str | None) -> Iterator[Capture]:
    """Collect the TwiML commands queued for `call_sid` while the block runs (this thread only)."""
    capture = Capture(call_sid)
    token = _capture.set(capture)
    try:
        yield capture
    finally:
        _capture.reset(token)


class TwilioAwareSender:
    """The outbox sender of a deployment with Twilio: Telnyx commands pass through unchanged."""

    def __init__(self, inner: CommandSender, store: CallStore, twilio: TwilioProvider, workers: int,
                 longest_send_s: float = 0.0) -> None:
        self._inner = inner
        self._store = store
        self._twilio = twilio
        self._executor = KeyedSerialExecutor(workers, "lifeline-twilio")
        self._hold_s = longest_send_s  # a claimed command stays out of the sweep's hand-over this long
        # The sweep's resends of Twilio calls come back here, so they go by REST on the call's queue.
        inner.route_resends(self._resend)

    def _captured(self, capture: Capture | None, command: Command) -> bool:
        """Whether the command becomes part of the TwiML answering the webhook being handled."""
        return (capture is not None and command.call_control_id == capture.call_sid
                and command.name in TWIML_COMMANDS and self._twilio.owns(command.call_control_id))

    def in_answer(self, commands: Sequence[Command]) -> frozenset[str]:
        """The commands the webhook being handled will answer with: its unit records them sent."""
        capture = _capture.get()
        return frozenset(c.command_id for c in commands if self._captured(capture, c))

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue committed commands: captured, grouped for REST, or passed to the Telnyx sender."""
        capture = _capture.get()
        others: list[Command] = []
        batches: dict[str, list[Command]] = {}
        for command in commands:
            sid = command.call_control_id
            if not self._twilio.owns(sid):
                others.append(command)
            elif self._captured(capture, command):
                assert capture is not None
                capture.commands.append(command)
            elif command.name in TWIML_COMMANDS:
                batches.setdefault(sid, []).append(command)
            else:
                self._executor.submit(sid, partial(self._send, [command], time.time()))
        self._inner.submit(others)
        for sid, batch in batches.items():
            self._executor.submit(sid, partial(self._send, batch, time.time()))

    def _resend(self, commands: Sequence[Command]) -> None:
        """The sweep's resends: each Twilio command as its own update, in order. Commands of
        different units of work must not share a document: a menu's <Gather> would hold back a
        <Dial> behind it."""
        others = [c for c in commands if not self._twilio.owns(c.call_control_id)]
        for command in commands:
            if self._twilio.owns(command.call_control_id):
                self._executor.submit(command.call_control_id, partial(self._send, [command], time.time()))
        self._inner.submit(others)

    def _send(self, batch: list[Command], queued_at: float) -> None:
        # Twilio's REST API has no idempotency key, so a command must go once: one queued here may
        # wait past the sweep's resend age (a slow Twilio, a long queue), and then a sweep (in any
        # process) hands it to a resend. The store says which of the two sends it.
        batch = [c for c in batch if self._store.claim_command(c.command_id, queued_at, self._hold_s)]
        if not batch:
            log.info("commands queued at %.3f were handed to a resend meanwhile; not sent twice", queued_at)
            return
        outcome = self._twilio.send_batch(batch)
        for command in batch:
            self._store.mark_command(command.command_id, outcome.status, outcome.attempts, outcome.error)
            self._inner.report(command, outcome)

    @property
    def reachability(self) -> TelnyxReachability:
        """Whether Telnyx's API answers (Twilio's commands do not count towards it)."""
        return self._inner.reachability

    def resend_due(self, older_than_s: float = 10.0, untried_older_than_s: float | None = None) -> int:
        """Resend pending commands (each provider's through the router)."""
        return self._inner.resend_due(older_than_s, untried_older_than_s)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued command has been tried."""
        return self._executor.wait_idle(timeout) and self._inner.wait_idle(timeout)

    def close(self) -> None:
        """Finish queued commands, then stop."""
        self._executor.shutdown(wait=True)
        self._inner.close()
