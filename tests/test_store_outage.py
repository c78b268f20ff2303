"""The store's contract for an outage: every read and write of an unreachable database is a StoreError.

Callers outside lifeline/ivr/store catch StoreError alone (tests/test_layout.py keeps the drivers out of
them), so a driver error escaping any method would be answered as a bug: a 500, a traceback a
round, a monitor job that stops saying the store is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from lifeline.ivr.errors import StoreError
from lifeline.ivr.store import CallQuery, Delivery, DeliveryOutcome, DeliveryStatus, OutputStore, Summary
from lifeline.ivr.store.sql import SqlStore

# Nothing listens on port 1: the driver's own "connection refused", as when the server is down.
PASSWORD = "not-in-any-message"
UNREACHABLE = f"postgresql+psycopg://lifeline:{PASSWORD}@127.0.0.1:1/gone"

_ROW = Delivery(id=1, feed_id=1, url="https://a.example/hook", call_control_id="v3:a",
                status=DeliveryStatus.PENDING, attempts=0, next_at=0.0, created_at=0.0)
_SUMMARY = Summary(call_control_id="v3:a", body={}, created_at=0.0)


def _unit(store: OutputStore) -> None:
    with store.unit():
        pass


def _purge(store: OutputStore) -> None:
    # A dry run reads outside any unit of work: its outage must be a StoreError as well.
    with pytest.raises(StoreError, match="DATABASE_URL"):
        store.purge_ended(time.time(), 10, dry_run=True)
    store.purge_ended(time.time(), 10)


# Each method of the interface, called as its callers do. Methods that never touch the database
# are left out by name in the test, so a method added to the interface must be added here too.
CALLS: dict[str, Callable[[OutputStore], object]] = {
    "unit": _unit,
    "claim": lambda s: s.claim("v3:a", "hangup"),
    "get_call": lambda s: s.get_call("v3:a"),
    "list_calls": lambda s: s.list_calls(active_only=True),
    "recordings_due": lambda s: s.recordings_due(["failed"], 10),
    "search_calls": lambda s: s.search_calls(CallQuery(text="refund")),
    "ended_among": lambda s: s.ended_among(["v3:a"]),
    "transfers": lambda s: s.transfers("v3:a"),
    "events": lambda s: s.events("v3:a"),
    "messages": lambda s: s.messages("v3:a"),
    "feed_events": lambda s: s.feed_events("v3:a"),
    "decisions": lambda s: s.decisions("v3:a"),
    "outbox": lambda s: s.outbox("v3:a"),
    "mark_command": lambda s: s.mark_command("c-1", "sent", 1, None),
    "claim_command": lambda s: s.claim_command("c-1", time.time()),
    "due_commands": lambda s: list(s.due_commands(10.0)),
    "revoke_session": lambda s: s.revoke_session("session-1", time.time() + 60),
    "session_revoked": lambda s: s.session_revoked("session-1"),
    "note_auth_failure": lambda s: s.note_auth_failure("192.0.2.7", time.time(), time.time() - 60),
    "auth_failures": lambda s: s.auth_failures("192.0.2.7", time.time() - 60),
    "figures": lambda s: s.figures(),
    "ping": lambda s: s.ping(),
    "schema_problem": lambda s: s.schema_problem(),
    "feed_after": lambda s: s.feed_after(0),
    "ends_unsummarised": lambda s: s.ends_unsummarised(0),
    "feed_by_ids": lambda s: s.feed_by_ids([1]),
    "feed_for_call": lambda s: s.feed_for_call("v3:a", ["message"]),
    "feed_last_id": lambda s: s.feed_last_id(),
    "listen_feed": lambda s: s.listen_feed(lambda: None, lambda: True),
    "has_summary": lambda s: s.has_summary("v3:a"),
    "summary": lambda s: s.summary("v3:a"),
    "add_summary": lambda s: s.add_summary(_SUMMARY, []),
    "claim_emails": lambda s: s.claim_emails(time.time(), time.time() + 60),
    "settle_email": lambda s: s.settle_email("v3:a", 1, "sent", None),
    "queue_deliveries": lambda s: s.queue_deliveries(_ROW.url, time.time()),
    "due_deliveries": lambda s: s.due_deliveries([_ROW.url], time.time()),
    "unblocked_deliveries": lambda s: s.unblocked_deliveries([1]),
    "claim_deliveries": lambda s: s.claim_deliveries([[_ROW]], time.time() + 60, 8),
    "settle_deliveries": lambda s: s.settle_deliveries(
        [DeliveryOutcome(_ROW, DeliveryStatus.DELIVERED, 200, None, 1.0)], [], time.time()),
    "requeue_deliveries": lambda s: s.requeue_deliveries(0.0, None, [_ROW.url], time.time()),
    "deliveries": lambda s: s.deliveries(),
    "delivery_attempts": lambda s: s.delivery_attempts(),
    "calls_by_start": lambda s: s.calls_by_start(None, None, None, 10),
    "purge_ended": _purge,
    "purged_files": lambda s: s.purged_files(),
    "forget_purged_files": lambda s: s.forget_purged_files(["/srv/rec/a.wav"]),
}
# The health check answers with this method's message to anyone who asks: it names no URL.
TERSE = {"ping"}


@pytest.fixture
def unreachable() -> Iterator[SqlStore]:
    """A PostgreSQL store whose server is down (never connected: no schema is made)."""
    store = SqlStore(UNREACHABLE, create_schema=False)
    yield store
    store.close()


def test_every_read_and_write_of_an_unreachable_postgresql_raises_store_error_naming_database_url(
        unreachable: SqlStore) -> None:
    for name, call in CALLS.items():
        with pytest.raises(StoreError) as raised:
            call(unreachable)
        message = str(raised.value)
        assert raised.value.__cause__ is not None, f"{name}: the driver's error is not chained"
        assert PASSWORD not in message, f"{name} shows the password: {message}"
        if name not in TERSE:
            assert "DATABASE_URL" in message and "127.0.0.1:1/gone" in message, f"{name}: {message}"


def test_a_read_says_what_failed_where_and_what_to_check(unreachable: SqlStore) -> None:
    with pytest.raises(StoreError, match=r"^cannot list calls: the database at "
                                         r"postgresql\+psycopg://127\.0\.0\.1:1/gone is unavailable "
                                         r"\(OperationalError: .+\); check DATABASE_URL"):
        unreachable.list_calls()


def test_the_outage_table_covers_every_method_of_the_store_interface_that_reaches_the_database() -> None:
    public = {name for name in dir(OutputStore) if not name.startswith("_")}
    no_database = {"close", "feed_notices"}
    assert public - no_database == set(CALLS), "add the new store method to CALLS"
