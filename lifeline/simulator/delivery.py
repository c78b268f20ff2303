"""Signed webhook delivery: Ed25519-signed POSTs, in order per leg, redelivered like Telnyx.

With chaos, a webhook may arrive late (and so out of order) or twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from nacl.signing import SigningKey

from lifeline.ivr.security import sign
from lifeline.ivr.serial import KeyedSerialExecutor

from .clock import Timers
from .faults import Chaos
from .legs import CallLog
from .strict import event_problems

log = logging.getLogger(__name__)
# Webhooks that start the app's clock for escalation latency (what the caller said or pressed).
TRIGGER_EVENTS = ("call.transcription", "call.dtmf.received")
ATTEMPTS = 3


def iso_now() -> str:
    """Telnyx's timestamp format."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class WebhookDelivery:
    """Posts each leg's webhooks to the app in order, signed, with Telnyx's retries."""

    def __init__(self, signing_key: SigningKey, timers: Timers, chaos: Chaos | None) -> None:
        self.signing_key = signing_key
        self.url: str | None = None
        self.problems: list[str] = []  # webhooks we sent that the SDK's models do not accept
        self._timers = timers
        self._chaos = chaos
        self._queue = KeyedSerialExecutor(64, "emulator-webhook")
        self._lost: dict[str, int] = {}  # webhooks of a type still to lose (lose())
        self._lost_lock = threading.Lock()
        self._closed = False  # set by close(): a scripted far end still talking sends nothing more
        # Room for every concurrent call's webhook: a pool that queues would inflate measured acks.
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(max_connections=2000,
                                                                    max_keepalive_connections=500))

    def lose(self, event_type: str, times: int) -> None:
        """Never deliver the next `times` webhooks of this type."""
        with self._lost_lock:
            self._lost[event_type] = self._lost.get(event_type, 0) + times

    def submit(self, key: str, call_log: CallLog, event_type: str, payload: dict[str, Any]) -> None:
        """Queue one webhook behind the others of the same leg (`key`)."""
        with self._lost_lock:
            if self._closed:
                # A script thread (a dialled far end, a caller) can outlive the emulator by a say;
                # what it says then goes nowhere, as on a line that has been cut.
                log.debug("emulator closed: %s for %s not sent", event_type, key)
                return
            if self._lost.get(event_type, 0) > 0:
                self._lost[event_type] -= 1
                log.info("emulator: %s for %s lost on purpose", event_type, key)
                return
        with call_log.cond:
            call_log.in_flight += 1

        def deliver() -> None:
            try:
                if not self._closed:  # queued before close(): its connection is gone
                    self._post(call_log, event_type, payload)
            finally:
                with call_log.cond:
                    call_log.in_flight -= 1
                    call_log.cond.notify_all()

        if self._chaos is not None and self._chaos.happens():
            # Late, and so out of order with what this leg sends next.
            late_key = f"late-{uuid.uuid4()}"
            self._timers.after(self._chaos.delay(), lambda: self._submit(late_key, deliver))
            return
        self._submit(key, deliver)

    def _submit(self, key: str, work: Callable[[], None]) -> None:
        """Queue work unless the emulator has closed meanwhile (under the lock close() takes)."""
        with self._lost_lock:
            if not self._closed:
                self._queue.submit(key, work)

    def idle(self, timeout: float) -> bool:
        """Wait until no webhook is queued or in flight."""
        return self._queue.wait_idle(timeout)

    def close(self) -> None:
        """Stop delivering and close connections."""
        with self._lost_lock:
            self._closed = True
        self._queue.shutdown(wait=False)
        self._http.close()

    def _post(self, call_log: CallLog, event_type: str, payload: dict[str, Any]) -> None:
        if not self.url:
            return
        event_id = str(uuid.uuid4())
        data = {"record_type": "event", "event_type": event_type, "id": event_id,
                "occurred_at": iso_now(), "payload": payload}
        problems = event_problems(data)
        if problems:
            log.error("emulator webhook %s departs from the SDK's model: %s", event_type, problems)
            self.problems.extend(problems[:5])
        for attempt in range(1, ATTEMPTS + 1):  # Telnyx redelivers on 5xx and timeouts
            body = json.dumps({
                "data": data,
                "meta": {"attempt": attempt, "delivered_to": self.url}}).encode()
            status = self._send(call_log, event_type, body)
            if 200 <= status < 300:
                if self._chaos is not None and self._chaos.happens():
                    # The very same event again, as Telnyx sometimes does.
                    duplicate = self._send(call_log, event_type, body, duplicate=True)
                    if not 200 <= duplicate < 300:
                        call_log.webhook_failures += 1
                return
            if 400 <= status < 500:
                break
            time.sleep(0.2 * attempt)
        call_log.webhook_failures += 1

    def _send(self, call_log: CallLog, event_type: str, body: bytes, duplicate: bool = False) -> int:
        """POST one signed delivery and put it on the call's timeline; 0 when nothing answered."""
        headers = {"content-type": "application/json", "user-agent": "telnyx-webhooks",
                   **sign(self.signing_key, body, int(time.time()))}
        sent = time.monotonic()
        if event_type in TRIGGER_EVENTS and not duplicate:
            call_log.trigger_sent_at = sent
        try:
            status = self._http.post(self.url or "", content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            log.warning("webhook %s not delivered: %s", event_type, exc)
            status = 0
        entry: dict[str, Any] = {"t_ms": call_log.t_ms(sent), "kind": "webhook", "type": event_type,
                                 "status": status, "ack_ms": round((time.monotonic() - sent) * 1000, 2)}
        if duplicate:
            entry["duplicate"] = True
        call_log.add(entry)
        return status
