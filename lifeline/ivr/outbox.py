"""Sends committed commands in the background, in order per call, and resends stragglers.

Per call, commands start in the order their units of work committed, but a command waits for
the one before it at most `hold_s` (LIFELINE_COMMAND_HOLD, 1 s) after that one started: a
command Telnyx is slow to answer (timeouts, 5xx, 4 attempts of 5 s) keeps being retried with its
command_id while the call's next command (a menu, a transfer) goes ahead. Which orders matter,
and what keeps them (docs/architecture.md, "Command order"):

- `answer` before everything: every other command of an inbound call reacts to a webhook
  Telnyx sends only once the call is answered, so causality keeps it, whatever the outbox does.
- A prompt before the next prompt, and a start before its stop: kept by the lane while Telnyx
  answers within `hold_s`; when it does not, the earlier command is dropped (`superseded`)
  instead of retried once Telnyx has accepted a later one (`_STALE_AFTER`), so a late retry
  cannot replace the menu the caller is in, talk over a transfer, or listen to a caller who
  paused listening.
- The handoff line before the transfer: kept within `hold_s`; past it the transfer goes first
  and the line is dropped — getting the caller to a person matters more than announcing it.
- A stop before the start right behind it (after a bridge, transcription or the stream is
  restarted for both parties): strict, the start waits for the stop however long it takes;
  overtaking it would be refused ("already in progress") and the late stop would leave the call
  unheard. Nothing a caller waits for follows a restart (the call is with an agent by then).
- A transfer, a hangup and a stop are never dropped: they are retried until Telnyx answers.
  A transfer is given up only once its attempt is closed: a late resend would ring an agent for
  nobody. (The monitor closes an attempt Telnyx has not taken only after twice the stuck time,
  lifeline/calls/monitor.py; a leg it makes after all is hung up when it shows up.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

from .events import decode_client_state
from .lanes import BoundedLanes
from .reachability import TelnyxReachability
from .scope import call_scope
from .store import CallStatus, CallStore, Command, CommandStatus, TransferStatus
from .telnyx_api import SendOutcome

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)
# Commands worth retrying only until the call has moved on: once Telnyx has accepted a later
# command of the same call (None: any; else one of these names), a retry would be stale.
_STALE_AFTER: dict[str, frozenset[str] | None] = {
    "answer": None,  # a later accepted command means the call was answered (or is over)
    "speak": None,
    "gather_using_speak": None,
    "streaming_start": frozenset({"streaming_stop"}),
    "transcription_start": frozenset({"transcription_stop"}),
    "record_start": frozenset({"record_stop"}),
}
# A start queued right behind its own stop is a restart: it waits for the stop, however long.
_RESTARTS = {("transcription_stop", "transcription_start"), ("streaming_stop", "streaming_start")}


class CommandClient(Protocol):
    """What the outbox needs of a provider's command client: TelnyxCommands, or a router over several."""

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """Send one command; the outcome says whether it went, and if not whether to retry."""

    def close(self) -> None:
        """Release the client's connections."""


class Sender(Protocol):
    """The outbox as the app holds it: CommandSender, or a wrapper that routes some calls elsewhere."""

    @property
    def reachability(self) -> TelnyxReachability:
        """Whether the provider's API answers (flask monitor reports it)."""

    def submit(self, commands: Sequence[Command]) -> None:
        """Send commands that their unit of work has committed."""

    def in_answer(self, commands: Sequence[Command]) -> frozenset[str]:
        """The ids of commands that leave in the answer to the request being handled, not from here."""

    def resend_due(self, older_than_s: float = 10.0, untried_older_than_s: float | None = None) -> int:
        """Resend commands left pending (untried ones after their own age); returns how many."""

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued command has been tried."""

    def close(self) -> None:
        """Finish queued commands, then stop."""


class CommandSender:
    """Delivers outbox commands to the provider (the providers' router) off the webhook's path."""

    def __init__(self, store: CallStore, client: CommandClient, workers: int,
                 metrics: Metrics | None = None, api_url: str | None = None, hold_s: float = 1.0,
                 tells_reachability: Callable[[str], bool] | None = None) -> None:
        self._metrics = metrics
        self._store = store
        self._client = client
        self._executor = BoundedLanes(workers, hold_s, "lifeline-cmd", on_overtake=_overtaking,
                                      waits_fully=lambda ahead, mine: (ahead, mine) in _RESTARTS)
        # A router over several providers has no single base URL: its caller passes api_url.
        self.reachability = TelnyxReachability(api_url if api_url is not None
                                               else getattr(client, "base_url", ""))
        # Which calls' commands say whether Telnyx answers: with other providers routed through the
        # same client (a resent Twilio command), theirs must not declare a Telnyx outage.
        self._tells_reachability = tells_reachability or (lambda call_control_id: True)
        self._call_ended: Callable[[str, str], object] | None = None
        # Commands queued or being sent by this process: the sweep must not send them a second
        # time alongside (one command can take four timeouts and their back-off, past the sweep's age).
        self._in_flight: set[str] = set()
        self._in_flight_lock = threading.Lock()
        self._resubmit: Callable[[Sequence[Command]], None] = self.submit

    def route_resends(self, submit: Callable[[Sequence[Command]], None]) -> None:
        """Send what the sweep resends through `submit` (a wrapper that routes some calls elsewhere)."""
        self._resubmit = submit

    def on_call_ended(self, callback: Callable[[str, str], object]) -> None:
        """Call `callback(call_control_id, cause)` when Telnyx answers a command with 90018."""
        self._call_ended = callback

    def in_answer(self, commands: Sequence[Command]) -> frozenset[str]:
        """None: every command of a Telnyx call leaves from the outbox."""
        return frozenset()

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue commands that their unit of work has already committed to the outbox."""
        for command in commands:
            with self._in_flight_lock:
                self._in_flight.add(command.command_id)
            self._executor.submit(command.call_control_id, partial(self._send, command), tag=command.name)

    def _send(self, command: Command) -> None:
        try:
            self._deliver(command)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(command.command_id)

    def _deliver(self, command: Command) -> None:
        with call_scope(command.call_control_id):
            outcome = self._client.send(command, partial(self._wanted, command))
            # Telnyx has answered (or the attempts are over): the call's next command goes now.
            # Recording the outcome waits for the database's write lock, which under load is
            # queued behind webhooks; the next command (a transfer after its handoff line) must
            # not wait for that as well.
            self._executor.release()
            self._store.mark_command(command.command_id, outcome.status, outcome.attempts, outcome.error)
            if self._metrics is not None:
                self._measure(command, outcome.status, outcome.attempts)
            refused = outcome.status == CommandStatus.REJECTED and (outcome.error or "").startswith(
                ("HTTP 401", "HTTP 403"))
            if outcome.status == CommandStatus.SUPERSEDED:
                log.info("%s on %s given up after %d attempt(s): %s", command.name,
                         command.call_control_id, outcome.attempts, outcome.error or "superseded")
                return
            counts = self._tells_reachability(command.call_control_id)
            if outcome.status == CommandStatus.PENDING or refused:
                if counts:
                    self.reachability.failed(outcome.error or "no answer")
                log.debug("%s on %s not delivered after %d attempts; the sweep will resend it",
                          command.name, command.call_control_id, outcome.attempts)
            elif counts:
                self.reachability.answered()
            if outcome.status == CommandStatus.CALL_ENDED and self._call_ended is not None:
                # Any command can be the first to learn the leg is gone (its hangup may be late or
                # lost): close the call now instead of leaving it open until the stale sweep.
                self._call_ended(command.call_control_id, "call_ended_90018")

    def report(self, command: Command, outcome: SendOutcome) -> None:
        """What a delivery made by another sender (Twilio's REST queue) means here: its metrics, and
        a call the provider says has ended is closed now, as for this sender's own."""
        if self._metrics is not None:
            self._measure(command, outcome.status, outcome.attempts)
        if outcome.status == CommandStatus.CALL_ENDED and self._call_ended is not None:
            self._call_ended(command.call_control_id, "call_ended")

    def _wanted(self, command: Command) -> bool:
        """Whether a retry of this command still makes sense (see `_STALE_AFTER`)."""
        return self.stale_because(command) is None

    def stale_because(self, command: Command) -> str | None:
        """What makes this command stale (a later accepted command, a closed transfer), or None."""
        if command.name == "transfer":
            return self._transfer_closed(command)
        if command.name not in _STALE_AFTER:
            return None
        by = _STALE_AFTER[command.name]
        entries = self._store.outbox(command.call_control_id)
        mine = next((e for e in entries if e.command.command_id == command.command_id), None)
        if mine is None:
            return None
        for entry in entries:
            if (entry.created_at > mine.created_at
                    and entry.status == CommandStatus.SENT and (by is None or entry.command.name in by)):
                return entry.command.name
        return None

    def _transfer_closed(self, command: Command) -> str | None:
        """A transfer is wanted only while its attempt waits to be taken: once the attempt is closed
        (failed, cancelled) a late resend would ring an agent for a caller who has moved on."""
        attempt = next((t for t in self._store.transfers(command.call_control_id)
                        if t.command_id == command.command_id), None)
        if attempt is None or attempt.status == TransferStatus.REQUESTED:
            return None
        return f"transfer attempt {attempt.attempt} ({attempt.status})"

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

    def resend_due(self, older_than_s: float = 10.0, untried_older_than_s: float | None = None) -> int:
        """Resend pending commands whose sender gave up or died; returns how many."""
        resend: list[Command] = []
        for command in self._store.due_commands(older_than_s, untried_older_than_s=untried_older_than_s):
            with self._in_flight_lock:
                if command.command_id in self._in_flight:
                    continue  # still being tried here: its sender records the outcome
            call = self._store.get_call(command.call_control_id)
            if call is not None and call.status == CallStatus.ENDED:
                # The caller is gone: nothing to play, stream or transfer any more.
                self._give_up(command, CommandStatus.CALL_ENDED,
                              "not sent: the call ended before Telnyx could take it")
                continue
            later = self.stale_because(command)
            if later is not None:
                self._give_up(command, CommandStatus.SUPERSEDED, f"not resent: stale after {later}")
                continue
            resend.append(command)
        self._resubmit(resend)
        return len(resend)

    def _give_up(self, command: Command, status: str, why: str) -> None:
        tried = next((o.attempts for o in self._store.outbox(command.call_control_id)
                      if o.command.command_id == command.command_id), 0)
        self._store.mark_command(command.command_id, status, tried, why)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued command has been tried (tests and shutdown)."""
        return self._executor.wait_idle(timeout)

    def close(self) -> None:
        """Finish queued commands, then stop."""
        self._executor.shutdown(wait=True)
        self._client.close()


def _overtaking(call_control_id: str, hold_s: float) -> None:
    log.info("a command on %s is still unanswered after %.1f s: the call's next command goes ahead",
             call_control_id, hold_s)
