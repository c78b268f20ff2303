"""Sends committed commands in the background, in order per call, and resends stragglers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from .serial import KeyedSerialExecutor
from .store import CallStore, Command, CommandStatus
from .telnyx_api import TelnyxCommands

log = logging.getLogger(__name__)


class CommandSender:
    """Delivers outbox commands to Telnyx off the webhook's critical path."""

    def __init__(self, store: CallStore, telnyx: TelnyxCommands, workers: int) -> None:
        self._store = store
        self._telnyx = telnyx
        self._executor = KeyedSerialExecutor(workers, "lifeline-cmd")
        self._call_ended: Callable[[str, str], object] | None = None

    def on_call_ended(self, callback: Callable[[str, str], object]) -> None:
        """Call `callback(call_control_id, cause)` when Telnyx answers a command with 90018."""
        self._call_ended = callback

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue commands that their unit of work has already committed to the outbox."""
        for command in commands:
            self._executor.submit(command.call_control_id, partial(self._send, command))

    def _send(self, command: Command) -> None:
        outcome = self._telnyx.send(command)
        self._store.mark_command(command.command_id, outcome.status, outcome.attempts, outcome.error)
        if outcome.status == CommandStatus.CALL_ENDED and self._call_ended is not None:
            # Any command can be the first to learn the leg is gone (its hangup may be late or
            # lost): close the call now instead of leaving it open until the stale sweep.
            self._call_ended(command.call_control_id, "call_ended_90018")
        if outcome.status == CommandStatus.PENDING:
            log.error("%s on %s still failing after %d attempts; the sweep will resend it",
                      command.name, command.call_control_id, outcome.attempts)

    def resend_due(self, older_than_s: float = 10.0) -> int:
        """Resend pending commands whose sender gave up or died; returns how many."""
        count = 0
        for command in self._store.due_commands(older_than_s):
            self.submit([command])
            count += 1
        return count

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued command has been tried (tests and shutdown)."""
        return self._executor.wait_idle(timeout)

    def close(self) -> None:
        """Finish queued commands, then stop."""
        self._executor.shutdown(wait=True)
        self._telnyx.close()
