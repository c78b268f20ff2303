"""The outputs' background work: summaries, webhooks out and emails, woken by the feed.

It runs beside the web workers (never on a call's path) and is safe on several instances:
summaries are made with an insert that only one wins, deliveries and emails are leased.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable

from lifeline.ivr.errors import StoreError

from . import email_out
from .hub import BackgroundLoop, FeedHub
from .settings import OutputSettings
from .summaries import Summaries
from .webhooks_out import WebhookDelivery

log = logging.getLogger(__name__)
# Summaries are looked for at most this often. The worker wakes on every feed event of the
# process (tens a second under load), and each look is a feed query; a summary does not need to
# be ready within milliseconds, live events and their webhooks do (they are not held back).
SUMMARY_ROUND_S = 0.25
OUTAGE_RETRY_S = 2.0  # between rounds while the store fails


class OutputsWorker(BackgroundLoop):
    """One thread per process: after each wake-up (or poll interval), does whatever is due."""

    thread_name = "lifeline-outputs"
    join_timeout_s = 10.0  # stop() lets the current round finish

    def __init__(self, hub: FeedHub, summaries: Summaries, webhooks: WebhookDelivery,
                 settings: OutputSettings, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._hub = hub
        self._summaries = summaries
        self._webhooks = webhooks
        self._settings = settings
        self._summaries_at = float("-inf")  # monotonic time of the last look for summaries
        # Emails sent whose outcome the store could not take (it failed just after the send):
        # written before anything else is claimed, so the lease does not send them a second time.
        self._unrecorded: list[tuple[str, int, str | None]] = []

    def _interrupt(self) -> None:
        self._hub.wake()  # the loop waits on the hub between rounds

    def _run(self) -> None:
        failing_since: float | None = None
        while not self._stop.is_set():
            seen = self._hub.version
            try:
                busy = self.run_once()
            except StoreError as exc:  # the store is down: all the work waits in it
                if failing_since is None:
                    failing_since = self._clock()
                    # Once per outage, not once a round: a database down for a minute would
                    # otherwise write hundreds of lines.
                    log.error("outputs paused (summaries, webhooks out, emails): %s: %s; retrying "
                              "every %.0f s", exc.__class__.__name__, " ".join(str(exc).split())[:300],
                              OUTAGE_RETRY_S)
                self._stop.wait(OUTAGE_RETRY_S)
                continue
            except Exception:  # a bug: every round says so, with its traceback, but not in a tight loop
                log.exception("outputs round failed; retrying in %.0f s", OUTAGE_RETRY_S)
                self._stop.wait(OUTAGE_RETRY_S)
                continue
            if failing_since is not None:
                log.warning("outputs resumed after %.0f s", self._clock() - failing_since)
                failing_since = None
            if not busy:
                timeout = min(self._settings.feed_poll_s, 0.5)
                until_summaries = self._summaries_at + SUMMARY_ROUND_S - self._clock()
                if until_summaries > 0:  # a call that ended meanwhile is summarised on time
                    timeout = min(timeout, until_summaries)
                self._hub.wait(seen, timeout)

    def run_once(self) -> int:
        """One round: summaries, deliveries, emails; returns how much was done."""
        done = 0
        if self._webhooks.enabled:  # first: live events should not wait behind summaries
            done += self._webhooks.materialise()
            done += self._webhooks.send_due()
        now = self._clock()
        if self._summaries.behind or now - self._summaries_at >= SUMMARY_ROUND_S:
            self._summaries_at = now
            made = self._summaries.make_due(limit=10)
            if made:
                self._hub.wake()  # summary.ready is in the feed: readers of this process, look
            done += made + int(self._summaries.behind)
        if self._settings.smtp is not None:
            done += self.send_emails()
        return done

    def send_emails(self) -> int:
        """Send the summary emails that are due; returns how many went out."""
        sent = 0
        smtp = self._settings.smtp
        if smtp is None:
            return 0
        while self._unrecorded:  # raises while the store is still down: nothing more is claimed
            self._summaries.email_done(*self._unrecorded[0])
            self._unrecorded.pop(0)
        for due in self._summaries.claim_emails():
            try:
                # Built inside the try: a summary that cannot become an email is a failed attempt
                # of its own, not a round that leaves it and the rest of the batch claimed.
                message = email_out.render(due.body, self._settings.summary_from, list(due.email_to))
                email_out.send(smtp, message)
                error = None
                sent += 1
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
                log.warning("summary email for %s failed (attempt %d): %s", due.call_control_id,
                            due.email_attempts + 1, error)
            try:
                self._summaries.email_done(due.call_control_id, due.email_attempts, error)
            except StoreError:  # an outage: kept to write first when it is over
                self._unrecorded.append((due.call_control_id, due.email_attempts, error))
                raise
        return sent
