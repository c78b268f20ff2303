"""Sends committed commands in the background, in order per call, and resends stragglers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from .events import decode_client_state
from .reachability import TelnyxReachability
from .scope import call_scope
from .serial import KeyedSerialExecutor
from .store import CallStatus, CallStore, Command, CommandStatus
from .telnyx_api import TelnyxCommands

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)


class CommandSender:
    """Delivers outbox commands to Telnyx off the webhook's critical path."""

    def __init__(self, store: CallStore, telnyx: TelnyxCommands, workers: int,
                 metrics: Metrics | None = None, api_url: str | None = None) -> None:
        self._metrics = metrics
        self._store = store
        self._telnyx = telnyx
        self._executor = KeyedSerialExecutor(workers, "lifeline-cmd")
        # api_url: where commands go when `telnyx` is a router over several providers
        self.reachability = TelnyxReachability(api_url if api_url is not None else telnyx.base_url)

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue commands that their unit of work has already committed to the outbox."""
        for command in commands:
            self._executor.submit(command.call_control_id, partial(self._send, command))

    def _send(self, command: Command) -> None:
        with call_scope(command.call_control_id):
            outcome = self._telnyx.send(command)
            self._store.mark_command(command.command_id, outcome.status, outcome.attempts, outcome.error)
            if self._metrics is not None:
                self._measure(command, outcome.status, outcome.attempts)
            refused = outcome.status == CommandStatus.REJECTED and (outcome.error or "").startswith(
                ("HTTP 401", "HTTP 403"))
            if outcome.status == CommandStatus.PENDING or refused:
                self.reachability.failed(outcome.error or "no answer")
                log.debug("%s on %s not delivered after %d attempts; the sweep will resend it",
                          command.name, command.call_control_id, outcome.attempts)
            else:
                self.reachability.answered()

    def _measure(self, command: Command, status: str, attempts: int) -> None:
        assert self._metrics is not None
        failed_tries = attempts - 1 if status in (CommandStatus.SENT, CommandStatus.CALL_ENDED) else attempts
        self._metrics.delivery_failed("attempt", failed_tries)
        if status == CommandStatus.PENDING:
            self._metrics.delivery_failed("gave_up")
        elif status == CommandStatus.REJECTED:
            self._metrics.delivery_failed("rejected")
        elif status == CommandStatus.SENT and command.name == "transfer":
            state = decode_client_state(command.params.get("client_state")) or {}
            if state.get("attempt") == 1:
                self._metrics.transfer_accepted()

    def resend_due(self, older_than_s: float = 10.0) -> int:
        """Resend pending commands whose sender gave up or died; returns how many."""
        count = 0
        for command in self._store.due_commands(older_than_s):
            call = self._store.get_call(command.call_control_id)
            if call is not None and call.status == CallStatus.ENDED:
                # The caller is gone: nothing to play, stream or transfer any more.
                self._give_up(command)
                continue
            self.submit([command])
            count += 1
        return count

    def _give_up(self, command: Command) -> None:
        tried = next((o.attempts for o in self._store.outbox(command.call_control_id)
                      if o.command.command_id == command.command_id), 0)
        self._store.mark_command(command.command_id, CommandStatus.CALL_ENDED, tried,
                                 "not sent: the call ended before Telnyx could take it")

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued command has been tried (tests and shutdown)."""
        return self._executor.wait_idle(timeout)

    def close(self) -> None:
        """Finish queued commands, then stop."""
        self._executor.shutdown(wait=True)
        self._telnyx.close()
