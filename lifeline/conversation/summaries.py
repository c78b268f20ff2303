"""Summaries in the store: made once per ended call, with the state of their email."""

from __future__ import annotations

import logging
import time
from typing import Any

from lifeline.ivr.backoff import doubling
from lifeline.ivr.store import EmailStatus, FeedEvent, OutputStore, Summary
from lifeline.ivr.timefmt import iso

from .settings import OutputSettings
from .summary import summarise

log = logging.getLogger(__name__)
EMAIL_LEASE_S = 120.0  # a claimed email is another process's to send for this long
EMAILS_PER_ROUND = 20


def summary_due(settle_s: float) -> str:
    """When a call's summary is made, as a person reads it: "60 s after the call ends"."""
    if settle_s <= 0:
        return "as soon as the call ends"
    return f"{settle_s:g} s after the call ends (LIFELINE_TRANSCRIPT_SETTLE_S)"


def no_summary_message(ended_at: float | None, settle_s: float, now: float) -> str:
    """Why a known call has no summary yet, by where it stands: in progress, ended within the
    settle time (words may still be coming in), or ended longer ago (none was made)."""
    if ended_at is None:
        return f"no summary yet: the call is still going; its summary is made {summary_due(settle_s)}"
    if now - ended_at < settle_s + SETTLE_GRACE_S:
        return (f"no summary yet: the call ended {max(now - ended_at, 0):.0f} s ago and its summary is made "
                f"{summary_due(settle_s)}, once its last words are in; ask again then")
    return ("no summary for this call: none was made after it ended (summaries are made by a server's "
            "outputs worker, under gunicorn with gunicorn.conf.py, flask run or flask dev)")


SETTLE_GRACE_S = 5.0  # the outputs worker's round comes a little after the settle time


class Summaries:
    """Makes the summary of each ended call exactly once (any instance may), and tracks its email."""

    def __init__(self, store: OutputStore, settings: OutputSettings) -> None:
        self._store = store
        self._settings = settings
        # call.ended events at or below this id are summarised; at start-up, one query finds the
        # ended calls of all history that have none (a restart does not walk every past call).
        self._cursor = 0
        self.behind = False  # the last round stopped at its limit: more ended calls are waiting

    def make_due(self, limit: int = 100) -> int:
        """Summarise calls that ended at least LIFELINE_TRANSCRIPT_SETTLE_S ago and have no summary
        (at most `limit`); returns how many it made."""
        made = 0
        # Read before the search: an event committed after it has a larger id (the feed's rule),
        # so when the search finds nothing left, nothing at or below this id is missed.
        ceiling = self._store.feed_last_id()
        ended = self._store.ends_unsummarised(self._cursor, limit)
        self.behind = len(ended) == limit
        # A call's last words can be transcribed after its hang-up (the transcript batches wait
        # for them too): the summary waits as long, or it would leave them out for good.
        settled_by = time.time() - self._settings.transcript_settle_s
        for event in ended:
            if event.created_at > settled_by:
                self.behind = False
                return made  # it and every later one wait; the cursor stays before it
            made += self.make(event.call_control_id)
            self._cursor = event.id
        if not self.behind:
            self._cursor = max(self._cursor, ceiling)
        return made

    def make(self, call_control_id: str) -> int:
        """Summarise one ended call unless that was done; 1 if this call made it."""
        if self._store.has_summary(call_control_id):
            return 0
        call = self._store.get_call(call_control_id)
        if call is None or call.is_active:
            return 0
        body = summarise(call, self._store.feed_for_call(call_control_id))
        recipients = self._recipients(call_control_id, body)
        made = Summary(call_control_id=call_control_id, body=body, created_at=time.time(),
                       email_to=tuple(recipients), email_status=EmailStatus.PENDING if recipients else None,
                       email_attempts=0, email_next_at=time.time() if recipients else None)
        ready = FeedEvent("summary.ready", call_control_id, {"summary": body})
        return int(self._store.add_summary(made, [ready]))  # 0: another instance made it first

    def _recipients(self, call_control_id: str, body: dict[str, Any]) -> list[str]:
        if self._settings.smtp is None:
            return []
        extra = [e.data["summary_to"] for e in self._store.feed_for_call(call_control_id, ("call.started",))
                 if e.data.get("summary_to")]
        if self._settings.summary_transferred_only and body["outcome"] != "transferred" and not extra:
            return []
        return list(dict.fromkeys([*self._settings.summary_to, *extra]))

    def get(self, call_control_id: str) -> dict[str, Any] | None:
        """The summary and its email state, or None."""
        found = self._store.summary(call_control_id)
        if found is None:
            return None
        return {"summary": found.body, "created_at": iso(found.created_at),
                "email": None if not found.email_to else {
                    "to": list(found.email_to), "status": found.email_status,
                    "attempts": found.email_attempts, "last_error": found.email_error}}

    def claim_emails(self, lease_s: float = EMAIL_LEASE_S) -> list[Summary]:
        """Emails due now, each claimed by this process for lease_s (so one instance sends it)."""
        now = time.time()
        return self._store.claim_emails(now, now + lease_s, EMAILS_PER_ROUND)

    def email_done(self, call_control_id: str, attempts: int, error: str | None) -> None:
        """Record an email attempt: sent, retried later with backoff, or given up after the retry window."""
        made = self._store.summary(call_control_id)
        next_at = None
        if error is None:
            status = EmailStatus.SENT
        elif made is not None and time.time() - made.created_at > self._settings.retry_for_s:
            status = EmailStatus.FAILED
        else:
            status = EmailStatus.PENDING
            next_at = time.time() + doubling(attempts + 1, self._settings.retry_base_s, 3600.0)
        # Visible on the call record, among its events.
        self._store.settle_email(call_control_id, attempts + 1, status, error, next_at)
