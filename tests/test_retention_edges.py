"""Review 39: what the retention purge keeps that it should delete, and what a typo makes it delete."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.ivr.store import DeliveryStatus, OutputStore, PurgeBatch

from . import test_store_contract as contract
from .conftest import postgres_store, postgres_url_or_skip
from .test_retention_store_contract import ended_call

store = contract.store

DAY = 86400.0
GONE = "https://old-receiver.example/hook"  # once in LIFELINE_EVENT_WEBHOOKS, since removed


def purge_every_batch(store: OutputStore, ended_before: float,
                      receivers: tuple[str, ...]) -> list[PurgeBatch]:
    """Every batch of one purge, until it has looked at every call past the cutoff."""
    batches: list[PurgeBatch] = []
    after: tuple[float, str] | None = None
    while True:
        batch = store.purge_ended(ended_before, 100, after, receivers=receivers, dry_run=False)
        batches.append(batch)
        if batch.last is None:
            return batches
        after = batch.last


def test_a_delivery_to_a_receiver_no_longer_configured_does_not_hold_its_call_for_ever(
        store: OutputStore) -> None:
    store.queue_deliveries(GONE, time.time())  # the receiver's cursor, from when it was configured
    ended_call(store, "v3:kept-by-gone", time.time() - 90 * DAY)
    assert store.queue_deliveries(GONE, time.time()) == 3  # its events queued, never sent: it went away
    assert {d.status for d in store.deliveries(GONE)} == {DeliveryStatus.PENDING}
    # The operator removed GONE from LIFELINE_EVENT_WEBHOOKS: no worker will ever send these
    # (WebhookSender asks only for the configured receivers' deliveries), so nothing is owed.
    batches = purge_every_batch(store, time.time() - 30 * DAY, receivers=())
    assert sum(b.held for b in batches) == 0
    assert store.get_call("v3:kept-by-gone") is None


@pytest.fixture
def pg_app(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    from .conftest import postgres_schema
    with postgres_schema(postgres_url_or_skip()) as url:
        application = create_app({**app_config, "DATABASE_URL": url,
                                  "LIFELINE_RECORDINGS_DIR": str(tmp_path / "rec")}, migrate=True)
        yield application
        application.extensions["lifeline"].close()


@pytest.mark.parametrize("days", ["nan", "inf"])
def test_flask_retention_purge_refuses_a_period_that_is_not_a_number_of_days(app: Flask, days: str) -> None:
    store = app.extensions["lifeline"].store
    ended_call(store, "v3:yesterday", time.time() - DAY)
    result = app.test_cli_runner().invoke(args=["retention", "purge", "--older-than", days])
    assert result.exit_code == 2, result.output  # a usage error naming --older-than, not a traceback
    assert "--older-than" in result.output
    assert store.get_call("v3:yesterday") is not None


def test_flask_retention_purge_older_than_nan_deletes_nothing_on_postgresql(pg_app: Flask) -> None:
    store = pg_app.extensions["lifeline"].store
    ended_call(store, "v3:a-minute-ago", time.time() - 60)
    pg_app.test_cli_runner().invoke(args=["retention", "purge", "--older-than", "nan"])
    # `ended_at < 'NaN'` is true for every float on PostgreSQL: a call that ended a minute ago goes.
    assert store.get_call("v3:a-minute-ago") is not None


def test_the_store_counters_metrics_reads_do_not_count_a_call_twice_when_a_purge_commits_mid_read() -> None:
    import threading

    from sqlalchemy import event

    with postgres_store() as backend:
        ended_call(backend, "v3:old", time.time() - 90 * DAY)
        before = backend.figures()
        assert sum(before.ended_by_outcome.values()) == 1
        fired: list[int] = []

        @event.listens_for(backend.engine, "before_cursor_execute")
        def purge_now(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            # Another instance's hourly purge commits between figures()' count of the ended calls
            # and its read of purged_counts (READ COMMITTED: each statement sees its own snapshot).
            if "purged_counts" in statement and statement.lstrip().upper().startswith("SELECT") and not fired:
                fired.append(1)
                worker = threading.Thread(target=purge_every_batch,
                                          args=(backend, time.time() - 30 * DAY, ()))
                worker.start()
                worker.join(30)

        after = backend.figures()
        assert fired and backend.get_call("v3:old") is None
        # lifeline_calls_ended_total would read 2, then 1 at the next scrape: a counter that goes
        # down, which Prometheus takes for a restart (rate() and increase() jump).
        assert sum(after.ended_by_outcome.values()) == 1


def test_a_summary_email_made_while_a_purge_looks_at_its_call_holds_the_call_on_postgresql() -> None:
    import threading

    from sqlalchemy import event

    from lifeline.ivr.store import EmailStatus, FeedEvent, Summary
    with postgres_store() as backend:
        # Ended long ago, summary not made yet (the outputs' worker was down, and is catching up).
        ended_call(backend, "v3:late-summary", time.time() - 90 * DAY, summarised=False)
        made: list[int] = []

        @event.listens_for(backend.engine, "after_cursor_execute")
        def summary_commits_now(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            # The worker commits the summary, with its email to send, just after the purge has asked
            # whether an email is owed (when that was a question of its own, before it asked whether
            # a summary was still to be made, the summary passed both and was deleted).
            if "email_status" in statement and "summaries" in statement and not made:
                made.append(1)
                summary = Summary("v3:late-summary", {"outcome": "transferred"}, time.time(),
                                  email_to=("boss@example.com",), email_status=EmailStatus.PENDING,
                                  email_next_at=time.time())
                worker = threading.Thread(target=backend.add_summary,
                                          args=(summary, [FeedEvent("summary.ready", "v3:late-summary", {})]))
                worker.start()
                worker.join(30)

        purge_every_batch(backend, time.time() - 30 * DAY, receivers=())
        assert made
        # Its email is owed: the call (and the summary the email is sent from) must still be there.
        assert backend.summary("v3:late-summary") is not None
