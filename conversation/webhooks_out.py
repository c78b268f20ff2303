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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import aliased

from ivr.store import schema
from ivr.store.sql import SqlStore

from .feed import Feed, StoredEvent
from .settings import OutputSettings

log = logging.getLogger(__name__)
LEASE_S = 60.0
SENDERS = 8  # threads sending chains at once
REQUEST_PHASES = 3  # connect, send, read: each may take up to the timeout
PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


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


class WebhookDelivery:
    """Creates, sends and retries the deliveries of the feed to LIFELINE_EVENT_WEBHOOKS."""

    def __init__(self, store: SqlStore, feed: Feed, settings: OutputSettings) -> None:
        self._store = store
        self._feed = feed
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
            created += self._materialise(url)
        return created

    def _materialise(self, url: str) -> int:
        c = schema.delivery_cursors.c
        with self._store.engine.connect() as conn:
            # Read first: most rounds find nothing new, and a write transaction would queue
            # behind the calls' own (SQLite has one writer).
            cursor = conn.execute(select(c.feed_id).where(c.url == url)).scalar()
            if cursor is not None and not conn.execute(
                    select(schema.feed.c.id).where(schema.feed.c.id > cursor).limit(1)).first():
                return 0
        with self._store.unit() as tx:
            conn = tx.connection
            query = select(c.feed_id).where(c.url == url)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            cursor = conn.execute(query).scalar()
            if cursor is None:
                # A new receiver starts from now; `flask events redeliver --since` sends history.
                start = int(conn.execute(select(func.coalesce(func.max(schema.feed.c.id), 0))).scalar() or 0)
                conn.execute(schema.delivery_cursors.insert().values(url=url, feed_id=start))
                return 0
            rows = conn.execute(select(schema.feed.c.id, schema.feed.c.call_control_id)
                                .where(schema.feed.c.id > cursor).order_by(schema.feed.c.id).limit(500)).all()
            if not rows:
                return 0
            now = time.time()
            conn.execute(schema.deliveries.insert(), [
                {"feed_id": r[0], "url": url, "call_control_id": r[1], "status": PENDING, "attempts": 0,
                 "next_at": now, "created_at": now} for r in rows])
            conn.execute(update(schema.delivery_cursors).where(c.url == url).values(feed_id=rows[-1][0]))
            return len(rows)

    def send_due(self) -> int:
        """Send what is due, each (receiver, call) as one chain in feed order; returns how many were sent."""
        chains = self._claim_chains()
        if not chains:
            return 0
        events = {e.id: e for e in self._feed.by_ids([r["feed_id"] for chain in chains for r in chain])}
        results = list(self._pool.map(lambda chain: self._send_chain(chain, events), chains))
        self._record([outcome for outcomes, _ in results for outcome in outcomes],
                     [row for _, unsent in results for row in unsent])
        return sum(1 for outcomes, _ in results for _, _, error, _ in outcomes if error is None)

    def _claim_chains(self) -> list[list[dict[str, Any]]]:
        """Due rows grouped per (receiver, call), kept only where nothing earlier is undelivered."""
        d = schema.deliveries
        earlier = aliased(d)
        now = time.time()
        receivers = self._settings.event_webhooks
        if not receivers:
            return []
        due = d.c.status.in_((PENDING, SENDING))  # a SENDING row past its lease: its sender died
        with self._store.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(
                select(d).where(due, d.c.next_at <= now, d.c.url.in_(receivers))
                .order_by(d.c.feed_id).limit(512)).mappings()]
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for row in rows:
                groups.setdefault((row["url"], row["call_control_id"]), []).append(row)
            if not groups:
                return []
            blocked = exists().where(earlier.c.url == d.c.url,
                                     earlier.c.call_control_id == d.c.call_control_id,
                                     earlier.c.feed_id < d.c.feed_id,
                                     earlier.c.status.in_((PENDING, SENDING)))
            heads = {r[0] for r in conn.execute(select(d.c.id).where(
                d.c.id.in_([g[0]["id"] for g in groups.values()]), ~blocked))}
        chains: list[list[dict[str, Any]]] = []
        lease_at = now + LEASE_S
        # The whole round must end within the lease, or another sender would take its rows while
        # they are being sent: at most one chain per sending thread (none waits for a thread), and
        # in each chain as many rows as fit one after another at the longest a send can take
        # (httpx's timeout bounds each phase, so connect, send and read each get it).
        longest = max(1, int(LEASE_S / (REQUEST_PHASES * max(self._settings.webhook_timeout_s, 0.001))) - 1)
        # One write transaction for the whole batch: each conditional update wins its row or not.
        with self._store.unit() as tx:
            for group in groups.values():
                if len(chains) == SENDERS:
                    break  # the rest go in the next round
                if group[0]["id"] not in heads:
                    continue
                chain = []
                for row in group[:longest]:
                    won = tx.connection.execute(update(d).where(
                        d.c.id == row["id"], d.c.status == row["status"], d.c.next_at == row["next_at"])
                        .values(status=SENDING, next_at=lease_at)).rowcount == 1
                    if not won:
                        break  # another sender has it: the rest of this chain waits for the next round
                    chain.append({**row, "lease_at": lease_at})
                if chain:
                    chains.append(chain)
        return chains

    def _send_chain(self, chain: list[dict[str, Any]], events: dict[int, StoredEvent]) -> tuple[
            list[tuple[dict[str, Any], int | None, str | None, float]], list[dict[str, Any]]]:
        """Send one call's events in order, stopping at the first failure; outcomes and unsent rows."""
        outcomes = []
        for index, row in enumerate(chain):
            outcome = self._attempt(row, events.get(row["feed_id"]))
            outcomes.append(outcome)
            if outcome[2] is not None:
                return outcomes, chain[index + 1:]
        return outcomes, []

    def _attempt(self, row: dict[str, Any], event: StoredEvent | None
                 ) -> tuple[dict[str, Any], int | None, str | None, float]:
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
                response = self._client.post(row["url"], content=body, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{exc.__class__.__name__}: {exc}"[:500]
        return row, status, error, (time.perf_counter() - started) * 1000

    def _record(self, outcomes: list[tuple[dict[str, Any], int | None, str | None, float]],
                unsent: list[dict[str, Any]]) -> None:
        """Write a batch of attempts' outcomes, and release the rows not tried, in one transaction."""
        d = schema.deliveries.c
        now = time.time()
        with self._store.unit() as tx:
            def held(row: dict[str, Any]) -> Any:
                # Still ours: a row whose lease ran out may have been taken by another sender,
                # whose outcome must not be overwritten with this one's.
                return (d.id == row["id"]) & (d.status == SENDING) & (d.next_at == row["lease_at"])

            for row in unsent:
                tx.connection.execute(update(schema.deliveries).where(held(row))
                                      .values(status=PENDING, next_at=row["next_at"]))
            for row, status, error, ms in outcomes:
                attempts = row["attempts"] + 1
                if error is None:
                    values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "last_error": None}
                elif now - row["created_at"] >= self._settings.retry_for_s:
                    values = {"status": FAILED, "last_error": error}
                    log.error("event %s to %s given up after %d attempts: %s", row["feed_id"], row["url"],
                              attempts, error)
                else:
                    delay = min(self._settings.retry_base_s * 2 ** (attempts - 1), 3600.0)
                    values = {"status": PENDING, "next_at": now + delay, "last_error": error}
                    log.warning("event %s to %s failed (attempt %d: %s); next try in %.1f s",
                                row["feed_id"], row["url"], attempts, error, delay)
                tx.connection.execute(update(schema.deliveries).where(held(row))
                                      .values(attempts=attempts, **values))
                tx.connection.execute(schema.delivery_attempts.insert().values(
                    delivery_id=row["id"], at=now, http_status=status, error=error, duration_ms=round(ms, 2)))

    def redeliver(self, since: float, until: float | None = None, url: str | None = None) -> int:
        """Queue every event stored in [since, until) again for each receiver (or one); returns how many."""
        urls = [url] if url else list(self._settings.event_webhooks)
        f, d = schema.feed.c, schema.deliveries.c
        query = select(f.id, f.call_control_id).where(f.created_at >= since).order_by(f.id)
        if until is not None:
            query = query.where(f.created_at < until)
        count = 0
        now = time.time()
        with self._store.unit() as tx:
            conn = tx.connection
            rows = conn.execute(query).all()
            for target in urls:
                for feed_id, ccid in rows:
                    changed = conn.execute(update(schema.deliveries).where(
                        d.feed_id == feed_id, d.url == target).values(
                        status=PENDING, next_at=now, attempts=0, created_at=now, last_error=None)).rowcount
                    if not changed:
                        conn.execute(schema.deliveries.insert().values(
                            feed_id=feed_id, url=target, call_control_id=ccid, status=PENDING,
                            attempts=0, next_at=now, created_at=now))
                    count += 1
        return count

    def attempts(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every delivery attempt (newest last), for the CLI and tests."""
        a, d = schema.delivery_attempts.c, schema.deliveries.c
        query = (select(a.delivery_id, a.at, a.http_status, a.error, a.duration_ms, d.feed_id, d.url)
                 .join(schema.deliveries, d.id == a.delivery_id).order_by(a.id))
        if url:
            query = query.where(d.url == url)
        with self._store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def close(self) -> None:
        """Finish sends in flight and release the HTTP client."""
        self._pool.shutdown(wait=True)
        self._client.close()


__all__ = ["WebhookDelivery", "signature", "verify"]
