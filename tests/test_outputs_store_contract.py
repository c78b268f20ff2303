"""One contract for the outputs' store on every backend: SQLite, PostgreSQL and memory.

The feed's reads, summaries and their emails, webhook deliveries (cursors, due rows, claims,
outcomes, replays) and the transcript batches' paging, as lifeline/conversation/ relies on them.
"""

from __future__ import annotations

import threading
import time

import pytest

from lifeline.ivr.store import (
    CallRecord,
    CallStatus,
    Delivery,
    DeliveryOutcome,
    DeliveryStatus,
    EmailStatus,
    FeedEvent,
    OutputStore,
    Summary,
)
from lifeline.ivr.store.memory import MemoryStore
from lifeline.ivr.store.sql import SqlStore

from . import test_store_contract as contract
from .conftest import wait_until

# The call store's backends, each empty (SQLite, PostgreSQL, memory): the same fixture as its contract.
store = contract.store

URL, OTHER = "https://a.example/hook", "https://b.example/hook"


def feed(store: OutputStore, *events: tuple[str, str]) -> None:
    """Append (kind, call) events to the feed in one unit of work, each with its position as data."""
    with store.unit() as tx:
        tx.add_feed([FeedEvent(kind, ccid, {"n": n}) for n, (kind, ccid) in enumerate(events)])


def summary(ccid: str, *to: str, next_at: float | None = None, body: str = "first") -> Summary:
    return Summary(call_control_id=ccid, body={"outcome": body, "topics": ["refund"]}, created_at=time.time(),
                   email_to=to, email_status=EmailStatus.PENDING if to else None,
                   email_next_at=next_at if to else None)


def ready(ccid: str) -> list[FeedEvent]:
    return [FeedEvent("summary.ready", ccid, {"summary": {}})]


def queued(store: OutputStore, *events: tuple[str, str], url: str = URL) -> list[Delivery]:
    """Start `url`'s cursor, store the events, queue them; the deliveries, in feed order."""
    now = time.time()
    store.queue_deliveries(url, now)
    feed(store, *events)
    assert store.queue_deliveries(url, now) == len(events)
    return store.deliveries(url)


def outcome(row: Delivery, status: str, error: str | None = None, next_at: float | None = None,
            http_status: int | None = 200) -> DeliveryOutcome:
    return DeliveryOutcome(row, status, http_status, error, 12.5, next_at=next_at)


# The feed.


def test_the_feed_is_read_after_an_id_in_commit_order_for_all_calls_or_one(store: OutputStore) -> None:
    feed(store, ("call.started", "v3:a"), ("call.started", "v3:b"))
    feed(store, ("message", "v3:a"), ("message", "v3:b"), ("call.ended", "v3:a"))
    everything = store.feed_after(0)
    assert [(e.kind, e.call_control_id, e.data["n"]) for e in everything] == [
        ("call.started", "v3:a", 0), ("call.started", "v3:b", 1), ("message", "v3:a", 0),
        ("message", "v3:b", 1), ("call.ended", "v3:a", 2)]
    ids = [e.id for e in everything]
    assert ids == sorted(set(ids)) and ids[0] > 0
    assert all(time.time() - 60 < e.created_at <= time.time() for e in everything)
    assert store.feed_after(ids[1]) == everything[2:]
    assert [e.id for e in store.feed_after(0, "v3:a")] == [ids[0], ids[2], ids[4]]
    assert store.feed_after(ids[0], "v3:a", limit=1) == [everything[2]]
    assert store.feed_after(0, limit=2) == everything[:2]
    assert store.feed_after(ids[-1]) == []


def test_ended_calls_without_a_summary_are_found_after_an_id_oldest_first(store: OutputStore) -> None:
    feed(store, ("call.ended", "v3:a"), ("message", "v3:b"), ("call.ended", "v3:b"), ("call.ended", "v3:c"),
         ("call.ended", "v3:d"))
    ended = store.ends_unsummarised(0)
    assert [e.call_control_id for e in ended] == ["v3:a", "v3:b", "v3:c", "v3:d"]
    assert [e.call_control_id for e in store.ends_unsummarised(ended[0].id, limit=1)] == ["v3:b"]
    store.add_summary(summary("v3:b"), [])
    store.add_summary(summary("v3:c"), [])
    assert [e.call_control_id for e in store.ends_unsummarised(0)] == ["v3:a", "v3:d"]
    assert [e.call_control_id for e in store.ends_unsummarised(ended[0].id, limit=1)] == ["v3:d"]
    assert store.ends_unsummarised(ended[-1].id) == []


def test_events_are_found_by_id_oldest_first_skipping_unknown_ids(store: OutputStore) -> None:
    feed(store, ("message", "v3:a"), ("message", "v3:b"), ("message", "v3:c"))
    first, second, third = store.feed_after(0)
    assert store.feed_by_ids([third.id, 10_000, first.id]) == [first, third]
    assert store.feed_by_ids([second.id, second.id]) == [second]
    assert store.feed_by_ids([]) == []


def test_one_calls_events_are_read_oldest_first_optionally_of_some_kinds(store: OutputStore) -> None:
    feed(store, ("call.started", "v3:a"), ("message", "v3:b"), ("message", "v3:a"), ("listening", "v3:a"))
    assert [e.kind for e in store.feed_for_call("v3:a")] == ["call.started", "message", "listening"]
    assert [e.kind for e in store.feed_for_call("v3:a", ("listening", "message"))] == ["message", "listening"]
    assert store.feed_for_call("v3:a", ("decision",)) == [] and store.feed_for_call("v3:none") == []


def test_the_last_id_is_zero_for_an_empty_feed_and_a_failed_unit_leaves_no_event(store: OutputStore) -> None:
    assert store.feed_last_id() == 0 and store.feed_after(0) == []
    feed(store, ("message", "v3:a"), ("message", "v3:a"))
    last = store.feed_last_id()
    with pytest.raises(RuntimeError):
        with store.unit() as tx:
            tx.add_feed([FeedEvent("message", "v3:a", {"lost": True})])
            raise RuntimeError("handler crashed")
    assert store.feed_last_id() == last == store.feed_after(0)[-1].id
    assert all("lost" not in e.data for e in store.feed_after(0))


def test_an_event_read_and_changed_by_a_reader_is_unchanged_in_the_store(store: OutputStore) -> None:
    feed(store, ("message", "v3:a"))
    [event] = store.feed_after(0)
    event.data["n"] = 99
    assert store.feed_after(0)[0].data == {"n": 0} and store.feed_for_call("v3:a")[0].data == {"n": 0}


def test_feed_notices_are_a_notify_channel_on_postgresql_polling_on_sqlite_and_none_in_memory(
        store: OutputStore) -> None:
    notices = store.feed_notices()
    if isinstance(store, MemoryStore):
        assert (notices.listen, notices.poll) == (False, False)
    elif isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql":
        assert (notices.listen, notices.poll) == (True, False)
    else:
        assert (notices.listen, notices.poll) == (False, True)


def test_a_store_that_sends_notices_hears_every_commit_to_the_feed_and_one_that_does_not_says_so(
        store: OutputStore) -> None:
    if not store.feed_notices().listen:
        with pytest.raises(NotImplementedError, match="feed_notices"):
            store.listen_feed(lambda: None, lambda: False)
        return
    heard: list[bool] = []
    stop = threading.Event()
    listening = threading.Thread(target=store.listen_feed, args=(lambda: heard.append(True), stop.is_set))
    listening.start()
    try:
        assert wait_until(lambda: len(heard) == 1), "no call once listening had begun"
        feed(store, ("message", "v3:a"))
        assert wait_until(lambda: len(heard) >= 2), "the commit to the feed was not heard"
    finally:
        stop.set()
        listening.join(timeout=5)
    assert not listening.is_alive(), "listen_feed did not return once stopped"


# Summaries.


def test_a_summary_is_stored_once_with_its_feed_events_and_a_second_changes_nothing(
        store: OutputStore) -> None:
    assert not store.has_summary("v3:a") and store.summary("v3:a") is None
    assert store.add_summary(summary("v3:a", "x@example.com", "y@example.com", next_at=5.0), ready("v3:a"))
    assert not store.add_summary(summary("v3:a", body="second"), ready("v3:a") + ready("v3:a"))
    assert store.has_summary("v3:a") and not store.has_summary("v3:b")
    found = store.summary("v3:a")
    assert found is not None and found.body == {"outcome": "first", "topics": ["refund"]}
    email = (found.email_to, found.email_status, found.email_attempts, found.email_next_at, found.email_error)
    assert email == (("x@example.com", "y@example.com"), EmailStatus.PENDING, 0, 5.0, None)
    assert [e.kind for e in store.feed_for_call("v3:a")] == ["summary.ready"]


def test_a_summary_without_recipients_has_no_email_state(store: OutputStore) -> None:
    assert store.add_summary(summary("v3:a"), [])
    found = store.summary("v3:a")
    assert found is not None and (found.email_to, found.email_status, found.email_next_at) == ((), None, None)
    assert store.feed_after(0) == []


def test_a_summary_changed_by_its_reader_is_unchanged_in_the_store(store: OutputStore) -> None:
    store.add_summary(summary("v3:a"), [])
    found = store.summary("v3:a")
    assert found is not None
    found.body["topics"].append("changed")
    again = store.summary("v3:a")
    assert again is not None and again.body["topics"] == ["refund"]


@pytest.mark.parametrize("ccid", ["v3:\x00x", "v3:" + "x" * 300])
def test_no_summary_is_found_for_an_id_no_call_can_have(store: OutputStore, ccid: str) -> None:
    assert store.summary(ccid) is None


def test_racing_instances_store_one_summary_and_one_ready_event(store: OutputStore) -> None:
    results = contract.race(8, lambda: store.add_summary(summary("v3:a"), ready("v3:a")))
    assert sorted(results) == [False] * 7 + [True]
    assert [e.kind for e in store.feed_after(0)] == ["summary.ready"]


def test_due_emails_are_claimed_earliest_first_once_until_their_lease_lapses(store: OutputStore) -> None:
    now = time.time()
    for ccid, next_at in (("v3:later", now - 10), ("v3:earliest", now - 20), ("v3:future", now + 100)):
        store.add_summary(summary(ccid, "x@example.com", next_at=next_at), [])
    store.add_summary(summary("v3:no-email"), [])
    store.add_summary(summary("v3:sent", "x@example.com", next_at=now - 30), [])
    store.settle_email("v3:sent", 1, EmailStatus.SENT, None)
    claimed = store.claim_emails(now, now + 60, limit=1)
    assert [(s.call_control_id, s.email_status) for s in claimed] == [("v3:earliest", EmailStatus.PENDING)]
    assert claimed[0].body == {"outcome": "first", "topics": ["refund"]}  # as it was when claimed
    assert [s.call_control_id for s in store.claim_emails(now, now + 70)] == ["v3:later"]
    assert store.claim_emails(now, now + 60) == []  # held by the claims
    held = store.summary("v3:later")
    assert held is not None and (held.email_status, held.email_next_at) == (EmailStatus.SENDING, now + 70)
    again = store.claim_emails(now + 65, now + 125)  # the first lease ran out: its sender died
    assert [(s.call_control_id, s.email_status) for s in again] == [("v3:earliest", EmailStatus.SENDING)]
    assert [s.call_control_id for s in store.claim_emails(now + 200, now + 260)] == [
        "v3:later", "v3:future", "v3:earliest"]


def test_racing_senders_claim_each_due_email_once(store: OutputStore) -> None:
    now = time.time()
    for n in range(6):
        store.add_summary(summary(f"v3:c{n}", "x@example.com", next_at=now - n), [])
    taken: list[str] = []
    lock = threading.Lock()

    def claim() -> bool:
        mine: list[str] = []
        while won := store.claim_emails(time.time(), time.time() + 60, limit=3):  # until none is left
            mine += [s.call_control_id for s in won]
        with lock:
            taken.extend(mine)
        return bool(mine)

    contract.race(4, claim)
    assert sorted(taken) == [f"v3:c{n}" for n in range(6)]


def test_an_email_attempt_is_settled_with_its_event_on_the_call(store: OutputStore) -> None:
    store.add_summary(summary("v3:a", "x@example.com", next_at=1.0), [])
    long_error = "SMTPServerDisconnected: " + "x" * 600
    store.settle_email("v3:a", 1, EmailStatus.PENDING, long_error, next_at=1234.5)
    retried = store.summary("v3:a")
    assert retried is not None
    assert (retried.email_attempts, retried.email_status, retried.email_next_at) == (
        1, EmailStatus.PENDING, 1234.5)
    assert retried.email_error == long_error[:500]
    store.settle_email("v3:a", 2, EmailStatus.SENT, None)
    sent = store.summary("v3:a")
    assert sent is not None
    assert (sent.email_attempts, sent.email_status, sent.email_error, sent.email_next_at) == (
        2, EmailStatus.SENT, None, 1234.5)  # no next time given: it is left as it was
    events = store.events("v3:a")
    assert [(e["id"], e["event_type"], e["attempt"]) for e in events] == [
        ("lifeline.email-v3:a-1", "lifeline.email.pending", 1),
        ("lifeline.email-v3:a-2", "lifeline.email.sent", 2)]
    assert long_error in events[0]["payload"]  # the event keeps the whole error


# Webhook deliveries.


def test_a_new_receiver_starts_at_the_feed_end_then_queues_later_events_in_feed_order(
        store: OutputStore) -> None:
    now = time.time()
    feed(store, ("call.started", "v3:old"))
    assert store.queue_deliveries(URL, now) == 0  # history is not sent to a new receiver
    assert store.queue_deliveries(URL, now) == 0  # nothing new since
    feed(store, ("call.started", "v3:a"), ("message", "v3:b"), ("message", "v3:a"))
    assert store.queue_deliveries(URL, now, limit=2) == 2
    assert store.queue_deliveries(URL, now) == 1
    assert store.queue_deliveries(URL, now) == 0
    rows = store.deliveries(URL)
    events = store.feed_after(0)[1:]
    assert [(d.feed_id, d.call_control_id) for d in rows] == [(e.id, e.call_control_id) for e in events]
    assert all((d.url, d.status, d.attempts, d.next_at, d.created_at, d.last_error, d.delivered_at)
               == (URL, DeliveryStatus.PENDING, 0, now, now, None, None) for d in rows)
    assert len({d.id for d in rows}) == 3


def test_instances_starting_a_new_receiver_at_once_all_succeed_and_queue_each_event_once(
        store: OutputStore) -> None:
    feed(store, ("call.started", "v3:old"))
    now = time.time()
    assert contract.race(8, lambda: store.queue_deliveries(URL, now) == 0) == [True] * 8
    feed(store, ("message", "v3:a"))
    assert sum(contract.race(4, lambda: store.queue_deliveries(URL, now) == 1)) == 1
    assert [d.call_control_id for d in store.deliveries(URL)] == ["v3:a"]


def test_each_receiver_has_a_cursor_of_its_own(store: OutputStore) -> None:
    now = time.time()
    store.queue_deliveries(URL, now)
    feed(store, ("message", "v3:a"))
    store.queue_deliveries(OTHER, now)  # starts after the event above
    feed(store, ("message", "v3:b"))
    assert store.queue_deliveries(URL, now) == 2 and store.queue_deliveries(OTHER, now) == 1
    assert [d.call_control_id for d in store.deliveries(OTHER)] == ["v3:b"]
    assert len(store.deliveries()) == 3


def test_due_deliveries_are_those_of_the_given_receivers_due_by_now_in_feed_order(store: OutputStore) -> None:
    rows = queued(store, ("message", "v3:a"), ("message", "v3:b"), ("message", "v3:a"))
    due_at = rows[0].next_at
    assert store.due_deliveries([URL], due_at) == rows
    assert store.due_deliveries([URL, OTHER], due_at, limit=2) == rows[:2]
    assert store.due_deliveries([OTHER], due_at) == [] and store.due_deliveries([], due_at) == []
    assert store.due_deliveries([URL], due_at - 1) == []


def test_deliveries_behind_one_that_backs_off_are_not_due_so_they_never_fill_the_round(
        store: OutputStore) -> None:
    a1, a2, b1, a3, c1 = queued(store, ("message", "v3:a"), ("message", "v3:a"), ("message", "v3:b"),
                                ("message", "v3:a"), ("message", "v3:c"))
    now = time.time()
    [[head]] = store.claim_deliveries([[a1]], now + 60, max_chains=1)
    # Its receiver is down: the head backs off for 30 s; the rest of its call waits behind it.
    store.settle_deliveries([outcome(head, DeliveryStatus.PENDING, next_at=now + 30)], [], now)
    assert [d.id for d in store.due_deliveries([URL], now + 1)] == [b1.id, c1.id]
    assert [d.id for d in store.due_deliveries([URL], now + 1, limit=1)] == [b1.id]  # not a2
    assert [d.id for d in store.due_deliveries([URL], now + 30)] == [a1.id, a2.id, b1.id, a3.id, c1.id]


def test_a_delivery_waits_while_an_earlier_one_to_its_receiver_and_call_is_unsettled(
        store: OutputStore) -> None:
    a1, b1, a2, a3 = queued(store, ("message", "v3:a"), ("message", "v3:b"), ("message", "v3:a"),
                            ("message", "v3:a"))
    assert store.unblocked_deliveries([a1.id, b1.id, a2.id, a3.id]) == {a1.id, b1.id}
    [[claimed]] = store.claim_deliveries([[a1]], time.time() + 60, max_chains=1)
    assert store.unblocked_deliveries([a2.id]) == set()  # one being sent blocks too
    store.settle_deliveries([outcome(claimed, DeliveryStatus.DELIVERED)], [], time.time())
    assert store.unblocked_deliveries([a2.id, a3.id]) == {a2.id}
    assert store.unblocked_deliveries([]) == set()


def test_a_chain_is_claimed_in_order_up_to_a_row_another_sender_took(store: OutputStore) -> None:
    rows = queued(store, *[("message", "v3:a")] * 3, ("message", "v3:b"), ("message", "v3:c"))
    lease_at = time.time() + 60
    assert store.claim_deliveries([[rows[1]]], lease_at, max_chains=1)  # another sender's
    won = store.claim_deliveries([rows[:3], [rows[3]], [rows[4]]], lease_at, max_chains=2)
    assert [[d.id for d in chain] for chain in won] == [[rows[0].id], [rows[3].id]]
    assert all(d.lease_at == lease_at and d.status == DeliveryStatus.PENDING for chain in won for d in chain)
    sending, pending = DeliveryStatus.SENDING, DeliveryStatus.PENDING
    assert [d.status for d in store.deliveries()] == [sending, sending, pending, sending, pending]
    # Held until the lease ends, then due again (its sender died); the row behind them waits.
    assert [d.id for d in store.due_deliveries([URL], time.time())] == [rows[4].id]
    assert [d.id for d in store.due_deliveries([URL], lease_at)] == [d.id for d in rows]


def test_racing_senders_claim_each_delivery_once(store: OutputStore) -> None:
    rows = queued(store, *[("message", f"v3:c{n}") for n in range(10)])
    taken: list[int] = []
    lock = threading.Lock()

    def send() -> bool:
        mine: list[int] = []
        while due := store.due_deliveries([URL], time.time()):  # until every row is held
            won = store.claim_deliveries([[d] for d in due], time.time() + 60, max_chains=3)
            mine += [d.id for chain in won for d in chain]
        with lock:
            taken.extend(mine)
        return bool(mine)

    contract.race(4, send)
    assert sorted(taken) == sorted(d.id for d in rows)


def test_settling_records_each_outcome_and_puts_unsent_rows_back(store: OutputStore) -> None:
    rows = queued(store, ("message", "v3:a"), ("message", "v3:b"), ("message", "v3:c"), ("message", "v3:d"),
                  ("message", "v3:d"))
    lease_at = time.time() + 60
    won = store.claim_deliveries([[rows[0]], [rows[1]], [rows[2]], rows[3:]], lease_at, max_chains=4)
    sent, gone, later, (tried, unsent) = (chain if len(chain) > 1 else chain[0] for chain in won)
    at = time.time()
    long_error = "ConnectError: " + "x" * 600
    store.settle_deliveries([
        outcome(sent, DeliveryStatus.DELIVERED),
        outcome(gone, DeliveryStatus.FAILED, "HTTP 410", http_status=410),
        outcome(later, DeliveryStatus.PENDING, long_error, next_at=at + 30, http_status=None),
        outcome(tried, DeliveryStatus.PENDING, "HTTP 500", next_at=at + 5, http_status=500)], [unsent], at)
    now = {d.id: d for d in store.deliveries()}
    delivered = now[sent.id]
    assert (delivered.status, delivered.attempts, delivered.delivered_at, delivered.last_error) == (
        DeliveryStatus.DELIVERED, 1, at, None)
    assert (now[gone.id].status, now[gone.id].attempts, now[gone.id].last_error) == (
        DeliveryStatus.FAILED, 1, "HTTP 410")
    assert (now[later.id].status, now[later.id].next_at, now[later.id].last_error) == (
        DeliveryStatus.PENDING, at + 30, long_error[:500])
    assert (now[tried.id].status, now[tried.id].next_at) == (DeliveryStatus.PENDING, at + 5)
    # Put back as it was before the claim: pending, due when it was, no attempt counted.
    assert (now[unsent.id].status, now[unsent.id].next_at, now[unsent.id].attempts) == (
        DeliveryStatus.PENDING, rows[4].next_at, 0)
    attempts = store.delivery_attempts()
    assert [(a.delivery_id, a.http_status, a.at, a.duration_ms, a.url) for a in attempts] == [
        (sent.id, 200, at, 12.5, URL), (gone.id, 410, at, 12.5, URL), (later.id, None, at, 12.5, URL),
        (tried.id, 500, at, 12.5, URL)]
    assert [a.feed_id for a in attempts] == [d.feed_id for d in rows[:4]]
    assert attempts[2].error == long_error[:500]


def test_an_outcome_after_the_lease_lapsed_leaves_the_next_senders_claim_alone(store: OutputStore) -> None:
    [row] = queued(store, ("message", "v3:a"))
    [[first]] = store.claim_deliveries([[row]], row.next_at + 1, max_chains=1)
    [due] = store.due_deliveries([URL], row.next_at + 2)  # the first sender's lease has run out
    [[second]] = store.claim_deliveries([[due]], row.next_at + 100, max_chains=1)
    late = outcome(first, DeliveryStatus.FAILED, "timeout", http_status=None)
    store.settle_deliveries([late], [], time.time())
    store.settle_deliveries([], [first], time.time())  # nor is it put back by the first sender
    [now] = store.deliveries()
    assert (now.status, now.next_at, now.attempts, now.last_error) == (
        DeliveryStatus.SENDING, row.next_at + 100, 0, None)
    assert [a.error for a in store.delivery_attempts()] == ["timeout"]  # the attempt happened all the same
    store.settle_deliveries([outcome(second, DeliveryStatus.DELIVERED)], [], time.time())
    assert store.deliveries()[0].status == DeliveryStatus.DELIVERED


def test_requeued_events_go_again_as_new_to_each_receiver(store: OutputStore) -> None:
    rows = queued(store, ("message", "v3:old"))
    time.sleep(0.02)
    since = time.time()
    feed(store, ("message", "v3:a"), ("message", "v3:b"))
    time.sleep(0.02)
    until = time.time()
    feed(store, ("message", "v3:after"))
    store.queue_deliveries(URL, time.time())
    a = store.deliveries(URL)[1]
    [[claimed]] = store.claim_deliveries([[a]], time.time() + 60, max_chains=1)
    store.settle_deliveries([outcome(claimed, DeliveryStatus.FAILED, "HTTP 404", http_status=404)], [],
                            time.time())
    now = time.time() + 1000
    assert store.requeue_deliveries(since, until, [URL, OTHER], now) == 4
    mine = {d.call_control_id: d for d in store.deliveries(URL)}
    assert (mine["v3:a"].status, mine["v3:a"].attempts, mine["v3:a"].next_at, mine["v3:a"].created_at,
            mine["v3:a"].last_error, mine["v3:a"].id) == (DeliveryStatus.PENDING, 0, now, now, None, a.id)
    assert mine["v3:b"].next_at == now and mine["v3:old"] == rows[0] and mine["v3:after"].next_at < now
    other = store.deliveries(OTHER)
    assert [(d.call_control_id, d.status, d.next_at) for d in other] == [
        ("v3:a", DeliveryStatus.PENDING, now), ("v3:b", DeliveryStatus.PENDING, now)]
    assert store.requeue_deliveries(until + 3600, None, [URL], now) == 0


def test_events_a_replay_queued_past_the_cursor_are_not_queued_again_and_the_rest_are(
        store: OutputStore) -> None:
    queued(store, ("message", "v3:old"))
    time.sleep(0.02)
    since = time.time()
    feed(store, ("message", "v3:a"), ("message", "v3:b"))  # stored, not yet queued (the cursor is behind)
    now = time.time()
    assert store.requeue_deliveries(since, None, [URL], now) == 2  # `flask events redeliver` first
    feed(store, ("message", "v3:c"))
    assert store.queue_deliveries(URL, now) == 1  # only v3:c is new; the replayed two stay as they are
    assert [d.call_control_id for d in store.deliveries(URL)] == ["v3:old", "v3:a", "v3:b", "v3:c"]
    feed(store, ("message", "v3:d"))
    assert store.queue_deliveries(URL, now) == 1  # the cursor moved past the replayed ones


def test_delivery_attempts_are_listed_oldest_first_for_one_receiver_or_all(store: OutputStore) -> None:
    [mine] = queued(store, ("message", "v3:a"))
    [theirs] = queued(store, ("message", "v3:b"), url=OTHER)
    for row, status in ((mine, 500), (theirs, 200)):
        [[claimed]] = store.claim_deliveries([[row]], time.time() + 60, max_chains=1)
        settled = DeliveryStatus.DELIVERED if status == 200 else DeliveryStatus.PENDING
        store.settle_deliveries([outcome(claimed, settled, None if status == 200 else "HTTP 500",
                                         next_at=time.time(), http_status=status)], [], time.time())
    assert [(a.url, a.http_status) for a in store.delivery_attempts()] == [(URL, 500), (OTHER, 200)]
    assert [a.delivery_id for a in store.delivery_attempts(OTHER)] == [theirs.id]
    assert store.delivery_attempts("https://c.example/none") == []


# Transcript batches.


def _calls(store: OutputStore, *started: tuple[str, float]) -> None:
    with store.unit() as tx:
        for ccid, at in started:
            call = CallRecord(call_control_id=ccid, call_session_id=None, call_leg_id=None, from_number=None,
                              to_number=None, status=CallStatus.ENDED, created_at=at, updated_at=at)
            tx.insert_call(call)


def test_calls_by_start_page_oldest_first_after_the_cursor_with_ties_by_id(store: OutputStore) -> None:
    base = 1_800_000_000.0
    _calls(store, ("v3:c2", base + 120), ("v3:a0", base), ("v3:b1", base + 60), ("v3:d3", base + 180))
    assert [c.call_control_id for c in store.calls_by_start(None, None, None, 10)] == [
        "v3:a0", "v3:b1", "v3:c2", "v3:d3"]
    first = store.calls_by_start(None, None, None, 2)
    assert [c.call_control_id for c in first] == ["v3:a0", "v3:b1"]
    _calls(store, ("v3:a9", base + 60), ("v3:b0", base + 60))  # same start as the page's last: by id
    cursor = (first[-1].created_at, first[-1].call_control_id)
    rest = store.calls_by_start(None, None, cursor, 10)
    assert [c.call_control_id for c in rest] == ["v3:c2", "v3:d3"]  # v3:a9 and v3:b0 sort before v3:b1
    assert [c.call_control_id for c in store.calls_by_start(None, None, (base + 60, "v3:a9"), 2)] == [
        "v3:b0", "v3:b1"]
    assert [c.call_control_id for c in store.calls_by_start(base + 60, base + 180, None, 10)] == [
        "v3:a9", "v3:b0", "v3:b1", "v3:c2"]  # until excluded
    assert store.calls_by_start(base + 999, None, None, 5) == []


def test_a_call_read_for_a_batch_and_changed_is_unchanged_in_the_store(store: OutputStore) -> None:
    _calls(store, ("v3:a", 1_800_000_000.0))
    [call] = store.calls_by_start(None, None, None, 1)
    call.status = CallStatus.MENU
    assert store.calls_by_start(None, None, None, 1)[0].status == CallStatus.ENDED

