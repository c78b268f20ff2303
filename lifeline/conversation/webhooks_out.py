"""Transcript webhooks out: the feed, signed, POSTed to each receiver from a durable outbox.

Each (event, receiver) pair is a `deliveries` row. Rows are created from the feed behind a
per-receiver cursor, sent in feed order per call and receiver (a later event of a call waits
while an earlier one is retried), retried with exponential backoff for the retry window, and
every attempt is kept in `delivery_attempts`. Any instance may send; a lease on the row makes
one of them do it. A round sends at most one chain per sending thread, each no longer than fits
in the lease at the longest a send can take, and an outcome is written only while its sender
still holds the lease. Only rows for the receivers configured now are sent: a URL taken out of
LIFELINE_EVENT_WEBHOOKS keeps its rows, unsent, until it is put back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from typing import Any

import httpx

from lifeline.ivr.backoff import doubling
from lifeline.ivr.store import Delivery, DeliveryOutcome, DeliveryStatus, OutputStore, StoredEvent

from .settings import OutputSettings

log = logging.getLogger(__name__)
LEASE_S = 60.0
SENDERS = 8  # threads sending chains at once
REQUEST_PHASES = 3  # connect, send, read: each may take up to the timeout
DUE_PER_ROUND = 512  # due rows looked at per round
QUEUED_PER_ROUND = 500  # feed events queued per receiver per round
BODY_READ_MAX = 64 * 1024  # a receiver's answer read so its connection is reused, if no longer...
BODY_READ_S = 2.0  # ...and in by then
PENDING, SENDING = DeliveryStatus.PENDING, DeliveryStatus.SENDING
DELIVERED, FAILED = DeliveryStatus.DELIVERED, DeliveryStatus.FAILED
# One send: the row, the HTTP status (None without an answer), the error (None when delivered), ms.
_Sent = tuple[Delivery, int | None, str | None, float]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Lifeline-Signature header: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance_s: float = 300.0) -> bool:
    """What a receiver does with the header (used by our tests; receivers may copy the idea)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


def _read_briefly(response: httpx.Response) -> None:
    """Read a receiver's answer if it is short and quick; else stop (its connection is then closed)."""
    deadline = time.monotonic() + BODY_READ_S
    size = 0
    try:
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > BODY_READ_MAX or time.monotonic() > deadline:
                return
    except httpx.HTTPError:
        return  # the status has come: an answer's body that fails or stalls changes nothing


class WebhookDelivery:
    """Creates, sends and retries the deliveries of the feed to LIFELINE_EVENT_WEBHOOKS."""

    def __init__(self, store: OutputStore, settings: OutputSettings) -> None:
        self._store = store
        self._settings = settings
        self._client = httpx.Client(timeout=settings.webhook_timeout_s)
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="lifeline-hook")

    @property
    def enabled(self) -> bool:
        """Whether any receiver is configured."""
        return bool(self._settings.event_webhooks)

    @property
    def receivers(self) -> tuple[str, ...]:
        """The receiver URLs configured now (LIFELINE_EVENT_WEBHOOKS), in their order."""
        return self._settings.event_webhooks

    def materialise(self) -> int:
        """Create delivery rows for feed events past each receiver's cursor; returns how many."""
        created = 0
        for url in self._settings.event_webhooks:
            # A new receiver starts from now; `flask events redeliver --since` sends history.
            created += self._store.queue_deliveries(url, time.time(), QUEUED_PER_ROUND)
        return created

    def send_due(self) -> int:
        """Send what is due, each (receiver, call) as one chain in feed order; returns how many were sent."""
        chains = self._claim_chains()
        if not chains:
            return 0
        events = {e.id: e for e in self._store.feed_by_ids([r.feed_id for chain in chains for r in chain])}
        futures = [self._pool.submit(self._send_chain, chain, events) for chain in chains]
        sent = 0
        # Each chain's outcome is written as soon as it ends, not when the round's slowest does.
        for future in as_completed(futures):
            outcomes, unsent = future.result()
            self._record(outcomes, unsent)
            sent += sum(1 for _, _, error, _ in outcomes if error is None)
        return sent

    def _claim_chains(self) -> list[list[Delivery]]:
        """Due rows grouped per (receiver, call), kept only where nothing earlier is undelivered."""
        now = time.time()
        receivers = self._settings.event_webhooks
        if not receivers:
            return []
        groups: dict[tuple[str, str], list[Delivery]] = {}
        for row in self._store.due_deliveries(receivers, now, DUE_PER_ROUND):
            groups.setdefault((row.url, row.call_control_id), []).append(row)
        if not groups:
            return []
        heads = self._store.unblocked_deliveries([g[0].id for g in groups.values()])
        # The whole round must end within the lease, or another sender would take its rows while
        # they are being sent: at most one chain per sending thread (none waits for a thread), and
        # in each chain as many rows as fit one after another at the longest a send can take
        # (httpx's timeout bounds each phase, so connect, send and read each get it).
        longest = max(1, int(LEASE_S / (REQUEST_PHASES * max(self._settings.webhook_timeout_s, 0.001))) - 1)
        chains = [group[:longest] for group in groups.values() if group[0].id in heads]
        return self._store.claim_deliveries(chains, now + LEASE_S, max_chains=SENDERS)

    def _send_chain(self, chain: list[Delivery], events: dict[int, StoredEvent]) -> tuple[
            list[_Sent], list[Delivery]]:
        """Send one call's events in order, stopping at the first failure; outcomes and unsent rows."""
        outcomes = []
        for index, row in enumerate(chain):
            outcome = self._attempt(row, events.get(row.feed_id))
            outcomes.append(outcome)
            if outcome[2] is not None:
                return outcomes, chain[index + 1:]
        return outcomes, []

    def _attempt(self, row: Delivery, event: StoredEvent | None) -> _Sent:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        if event is None:
            error = "the event is no longer in the feed"
        else:
            body = event.body()
            headers = {"Content-Type": "application/json", "Lifeline-Event-Id": str(event.id),
                       "Lifeline-Signature": signature(self._settings.event_secret or "", int(time.time()),
                                                       body),
                       "User-Agent": "Lifeline-Events/1"}
            try:
                # Streamed: only the status matters. A short body is read (so the connection is
                # kept for the next event); one that is long, or trickles (each read's timeout
                # would start again at every byte), is left unread and its connection closed, so
                # it cannot hold the send past the lease.
                with self._client.stream("POST", row.url, content=body, headers=headers) as response:
                    status = response.status_code
                    _read_briefly(response)
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - whatever stops one attempt (a bad URL too) fails that attempt only
                error = f"{exc.__class__.__name__}: {exc}"[:500]
        return row, status, error, (time.perf_counter() - started) * 1000

    def _record(self, outcomes: list[_Sent], unsent: list[Delivery]) -> None:
        """Write a batch of attempts' outcomes, and release the rows not tried, in one transaction."""
        now = time.time()
        settled = []
        for row, status, error, ms in outcomes:
            attempts = row.attempts + 1
            if error is None:
                settled.append(DeliveryOutcome(row, DELIVERED, status, None, round(ms, 2)))
            elif now - row.created_at >= self._settings.retry_for_s:
                settled.append(DeliveryOutcome(row, FAILED, status, error, round(ms, 2)))
                log.error("event_id=%s to %s given up after %d attempts: %s", row.feed_id, row.url, attempts,
                          error)
            else:
                delay = doubling(attempts, self._settings.retry_base_s, 3600.0)
                settled.append(DeliveryOutcome(row, PENDING, status, error, round(ms, 2),
                                               next_at=now + delay))
                log.warning("event_id=%s to %s failed (attempt %d: %s); next try in %.1f s",
                            row.feed_id, row.url, attempts, error, delay)
        # Only rows still held by this sender change (a lapsed lease's row may be another's now).
        self._store.settle_deliveries(settled, unsent, now)

    def redeliver(self, since: float, until: float | None = None, url: str | None = None) -> int:
        """Queue every event stored in [since, until) again for each receiver (or one); returns how many."""
        urls = [url] if url else list(self._settings.event_webhooks)
        return self._store.requeue_deliveries(since, until, urls, time.time())

    def attempts(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every delivery attempt (newest last), for the CLI and tests."""
        return [asdict(a) for a in self._store.delivery_attempts(url)]

    def close(self) -> None:
        """Finish sends in flight and release the HTTP client."""
        self._pool.shutdown(wait=True)
        self._client.close()


__all__ = ["DELIVERED", "FAILED", "PENDING", "SENDING", "WebhookDelivery", "signature", "verify"]
