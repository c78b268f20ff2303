"""Summaries in the store: made once per ended call, with the state of their email."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ivr.events import storable_id
from ivr.store import FeedEvent, schema
from ivr.store.sql import SqlStore
from ivr.timefmt import iso

from .feed import Feed
from .settings import OutputSettings
from .summary import summarise

log = logging.getLogger(__name__)
# Asked for every ended call by every process (one makes the summary): built once.
_HAS_SUMMARY = select(schema.summaries.c.call_control_id).where(schema.summaries.c.call_control_id == bindparam("by_id"))


class Summaries:
    """Makes the summary of each ended call exactly once (any instance may), and tracks its email."""

    def __init__(self, store: SqlStore, feed: Feed, settings: OutputSettings) -> None:
        self._store = store
        self._feed = feed
        self._settings = settings
        self._cursor = 0  # call.ended events below this id have been looked at by this process
        self.behind = False  # the last round stopped at its limit: more ended calls are waiting

    def make_due(self, limit: int = 100) -> int:
        """Summarise calls that ended since last time (at most `limit`); returns how many it made."""
        made = 0
        ended = self._feed.after_kind(self._cursor, "call.ended", limit)
        self.behind = len(ended) == limit
        for event in ended:
            made += self.make(event.call_control_id)
            self._cursor = event.id
        return made

    def make(self, call_control_id: str) -> int:
        """Summarise one ended call unless that was done; 1 if this call made it."""
        with self._store.engine.connect() as conn:
            if conn.execute(_HAS_SUMMARY, {"by_id": call_control_id}).first():
                return 0
        call = self._store.get_call(call_control_id)
        if call is None or call.is_active:
            return 0
        body = summarise(call, self._feed.for_call(call_control_id))
        recipients = self._recipients(call_control_id, body)
        with self._store.unit() as tx:
            insert = pg_insert if tx.connection.dialect.name == "postgresql" else sqlite_insert
            row = tx.connection.execute(insert(schema.summaries).values(
                call_control_id=call_control_id, body=json.dumps(body), created_at=time.time(),
                email_to=",".join(recipients) or None, email_status="pending" if recipients else None,
                email_attempts=0, email_next_at=time.time() if recipients else None,
            ).on_conflict_do_nothing().returning(schema.summaries.c.call_control_id)).first()
            if row is None:
                return 0  # another instance made it first
            tx.add_feed([FeedEvent("summary.ready", call_control_id, {"summary": body})])
        return 1

    def _recipients(self, call_control_id: str, body: dict[str, Any]) -> list[str]:
        if self._settings.smtp is None:
            return []
        extra = [e.data["summary_to"] for e in self._feed.for_call(call_control_id, ("call.started",))
                 if e.data.get("summary_to")]
        if self._settings.summary_transferred_only and body["outcome"] != "transferred" and not extra:
            return []
        return list(dict.fromkeys([*self._settings.summary_to, *extra]))

    def get(self, call_control_id: str) -> dict[str, Any] | None:
        """The summary and its email state, or None."""
        if not storable_id(call_control_id):
            return None  # no call has it, and PostgreSQL would refuse a NUL with an error
        with self._store.engine.connect() as conn:
            row = conn.execute(select(schema.summaries).where(
                schema.summaries.c.call_control_id == call_control_id)).mappings().first()
        if row is None:
            return None
        return {"summary": json.loads(row["body"]), "created_at": iso(row["created_at"]),
                "email": None if not row["email_to"] else {
                    "to": row["email_to"].split(","), "status": row["email_status"],
                    "attempts": row["email_attempts"], "last_error": row["email_error"]}}

    def claim_emails(self, lease_s: float = 120.0) -> list[dict[str, Any]]:
        """Emails due now, each claimed by this process for lease_s (so one instance sends it)."""
        s = schema.summaries.c
        now = time.time()
        with self._store.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(schema.summaries).where(
                s.email_status.in_(("pending", "sending")), s.email_next_at <= now)
                .order_by(s.email_next_at).limit(20)).mappings()]
        claimed = []
        for row in rows:
            with self._store.unit() as tx:
                won = tx.connection.execute(update(schema.summaries).where(
                    s.call_control_id == row["call_control_id"], s.email_status == row["email_status"],
                    s.email_next_at == row["email_next_at"]).values(
                    email_status="sending", email_next_at=now + lease_s)).rowcount == 1
            if won:
                claimed.append(row)
        return claimed

    def email_done(self, call_control_id: str, attempts: int, error: str | None) -> None:
        """Record an email attempt: sent, retried later with backoff, or given up after the retry window."""
        s = schema.summaries.c
        with self._store.unit() as tx:
            row = tx.connection.execute(select(schema.summaries.c.created_at).where(
                s.call_control_id == call_control_id)).first()
            if error is None:
                values: dict[str, Any] = {"email_status": "sent", "email_error": None}
            elif row is not None and time.time() - row[0] > self._settings.retry_for_s:
                values = {"email_status": "failed", "email_error": error[:500]}
            else:
                delay = min(self._settings.retry_base_s * 2 ** attempts, 3600.0)
                values = {"email_status": "pending", "email_error": error[:500],
                          "email_next_at": time.time() + delay}
            tx.connection.execute(update(schema.summaries).where(s.call_control_id == call_control_id)
                                  .values(email_attempts=attempts + 1, **values))
            # Visible on the call record, among its events.
            tx.record_event(f"lifeline.email-{call_control_id}-{attempts + 1}",
                            f"lifeline.email.{values['email_status']}", call_control_id, None,
                            attempts + 1, json.dumps({"error": error}))
