"""Telnyx Call Control commands through the official SDK, with timeouts and safe retries.

Retries resend the identical command with the same command_id, so Telnyx executes it at most
once; 422 90018 ("call has already ended") is the normal race with a caller hanging up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import telnyx

from .backoff import command_backoff_s
from .config import Settings, TelnyxSettings
from .errors import ProviderError
from .store import Command, CommandStatus

log = logging.getLogger(__name__)
CALL_ENDED_CODE = "90018"
_RETRYABLE_STATUS = {408, 409, 429}


@dataclass(frozen=True)
class SendOutcome:
    """What became of one logical command after all its attempts."""

    status: str
    attempts: int
    error: str | None = None


def longest_send_s(attempts: int, timeout_s: float) -> float:
    """How long sending one command can last: every attempt timing out, with the pauses between."""
    return attempts * timeout_s + sum(command_backoff_s(a) for a in range(1, attempts))


class TelnyxCommands:
    """Sends Command objects to Telnyx; one logical command, however many HTTP attempts."""

    def __init__(self, settings: Settings, account: TelnyxSettings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = telnyx.Telnyx(
            api_key=account.api_key,
            base_url=account.api_base_url,
            max_retries=0,  # we retry ourselves, so every attempt is counted and logged
            timeout=httpx.Timeout(settings.command_timeout_s, connect=min(2.0, settings.command_timeout_s)),
        )
        self._attempts = settings.command_attempts
        self.base_url = account.api_base_url
        self._sleep = sleep
        actions = self._client.calls.actions
        self._methods: dict[str, Callable[..., Any]] = {
            "answer": actions.answer,
            "speak": actions.speak,
            "gather_using_speak": actions.gather_using_speak,
            "transfer": actions.transfer,
            "hangup": actions.hangup,
            "transcription_start": actions.start_transcription,
            "transcription_stop": actions.stop_transcription,
            "streaming_start": actions.start_streaming,
            "streaming_stop": actions.stop_streaming,
            "record_start": actions.start_recording,
            "record_stop": actions.stop_recording,
            "send_dtmf": actions.send_dtmf,
        }
        self._connection_id = account.connection_id

    def send(self, command: Command, wanted: Callable[[], bool] | None = None) -> SendOutcome:
        """Send a command, retrying transient failures with the same command_id.

        Before each retry `wanted()` is asked; when it says no, the command is given up as
        superseded (a later command of the call has made it stale)."""
        method = self._methods.get(command.name)
        if method is None:
            return SendOutcome(CommandStatus.REJECTED, 0, f"unknown command {command.name!r}")
        error = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1 and wanted is not None and not wanted():
                why = f"not retried, a later command of the call was accepted (last try: {error})"
                return SendOutcome(CommandStatus.SUPERSEDED, attempt - 1, why)
            try:
                method(command.call_control_id, command_id=command.command_id, **command.params)
                return SendOutcome(CommandStatus.SENT, attempt)
            except telnyx.APIStatusError as exc:
                code = _error_code(exc.body)
                if exc.status_code == 422 and code == CALL_ENDED_CODE:
                    log.debug("%s on %s: call already ended", command.name, command.call_control_id)
                    return SendOutcome(CommandStatus.CALL_ENDED, attempt)
                error = f"HTTP {exc.status_code} {code or ''} {_error_detail(exc.body)}".strip()
                if exc.status_code < 500 and exc.status_code not in _RETRYABLE_STATUS:
                    if exc.status_code not in (401, 403):  # credentials: the outbox reports those once
                        log.error("Telnyx rejected %s on %s: %s", command.name, command.call_control_id,
                                  error)
                    return SendOutcome(CommandStatus.REJECTED, attempt, error)
            except telnyx.APIConnectionError as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            # Each try is a debug line; an outage is reported once by the outbox (lifeline.ivr.reachability).
            log.debug("%s on %s failed (attempt %d/%d): %s", command.name,
                        command.call_control_id, attempt, self._attempts, error)
            if attempt < self._attempts:
                self._sleep(command_backoff_s(attempt))
        return SendOutcome(CommandStatus.PENDING, self._attempts, error)

    def dial(self, to: str, from_: str, client_state: str, command_id: str,
             listen: Mapping[str, Any] | None = None) -> tuple[str, str | None]:
        """Place an outbound call (Telnyx `dial`); returns its call_control_id and call_session_id.

        `listen` holds the engine's dial parameters (e.g. `transcription`, `transcription_config`).

        Raises ProviderError with Telnyx's reason when the call cannot be placed.
        """
        if not self._connection_id:
            raise ProviderError("TELNYX_CONNECTION_ID is not set: dialling out needs the Call Control "
                                "Application's id", status=None, code=None, retryable=False)
        try:
            data = self._client.calls.dial(connection_id=self._connection_id, to=to, from_=from_,
                                           client_state=client_state, command_id=command_id,
                                           **(listen or {})).data
        except telnyx.APIStatusError as exc:
            raise ProviderError(f"Telnyx refused the dial: HTTP {exc.status_code} "
                                f"{_error_detail(exc.body)}".strip(), status=exc.status_code,
                                code=_error_code(exc.body), retryable=exc.status_code >= 500) from exc
        except telnyx.APITimeoutError as exc:
            if isinstance(exc.__cause__, httpx.ConnectTimeout):  # never sent: nothing rings
                raise ProviderError(f"Telnyx is unreachable: {exc}", status=None, code=None,
                                    retryable=True) from exc
            # Sent, and no answer: the call may be ringing.
            raise ProviderError("Telnyx did not answer the dial in time, so the call may have been placed: "
                                "it is recorded when its first event arrives. Look for it (GET "
                                "/api/calls?active=1) before dialling again, or repeat the request with "
                                "the same Idempotency-Key, which Telnyx never dials twice", status=None,
                                code=None, retryable=False, outcome_unknown=True) from exc
        except telnyx.APIConnectionError as exc:
            raise ProviderError(f"Telnyx is unreachable: {exc}", status=None, code=None,
                                retryable=True) from exc
        if data is None or not data.call_control_id:
            raise ProviderError("Telnyx accepted the dial but returned no call_control_id", status=None,
                                code=None, retryable=False)
        return data.call_control_id, data.call_session_id

    def is_alive(self, call_control_id: str) -> bool | None:
        """Whether Telnyx still has this leg up; None when Telnyx could not say."""
        try:
            status = self._client.calls.retrieve_status(call_control_id).data
        except telnyx.NotFoundError:
            return False
        except (telnyx.APIStatusError, telnyx.APIConnectionError) as exc:
            log.debug("status of %s unknown: %s", call_control_id, exc)
            return None
        return None if status is None else bool(status.is_alive)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def _first_error(body: object) -> dict[str, Any]:
    """Telnyx's `{"errors": [{"code", "title", "detail"}]}`, first entry; {} for anything else."""
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}


def _error_code(body: object) -> str | None:
    code = _first_error(body).get("code")
    return str(code) if code is not None else None


def _error_detail(body: object) -> str:
    first = _first_error(body)
    return str(first.get("title") or first.get("detail") or "")
