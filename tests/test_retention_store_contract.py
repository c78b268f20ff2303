"""The retention purge's contract on every backend (SQLite, PostgreSQL, memory): what goes, what stays."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from lifeline.ivr.store import (
    CallStatus,
    Command,
    CommandStatus,
    DeliveryOutcome,
    DeliveryStatus,
    EmailStatus,
    FeedEvent,
    OutputStore,
    PurgeBatch,
    Summary,
    TransferRecord,
    TransferStatus,
)

from . import test_store_contract as contract

store = contract.store

URL = "https://a.example/hook"
DAY = 86400.0
NOW = time.time()
CUTOFF = NOW - 30 * DAY


def ended_call(store: OutputStore, ccid: str, ended_at: float, leg: str | None = None,
               recording: str | None = None, email: str | None = None, summarised: bool = True) -> None:
    """A call that ended at `ended_at` with a row in every table that can name it, all settled."""
    call = replace(contract.new_call(ccid, CallStatus.ENDED), created_at=ended_at - 60, ended_at=ended_at,
                   recording_path=recording, outcome="transferred")
    leg = leg or f"{ccid}-agent"
    with store.unit() as tx:
        assert tx.insert_call(call)
        tx.record_event(f"{ccid}-e1", "call.initiated", ccid, None, 1, "{}")
        tx.record_event(f"{leg}-e1", "call.answered", leg, None, 1, "{}")
        tx.claim(ccid, "escalation")
        tx.claim(leg, "hangup")
        tx.add_transfer(TransferRecord(ccid, 1, "+15550100001", f"{ccid}-t1", "upset", "anger",
                                       TransferStatus.CONNECTED, ended_at, ended_at,
                                       agent_call_control_id=leg))
        tx.enqueue([Command(f"{ccid}-c1", ccid, "answer", {}), Command(f"{leg}-c1", leg, "hangup", {})])
        tx.add_message(ccid, "keyword", f"{ccid}-m1", "I want a refund", 0.9, -0.5, "negative")
        tx.add_decision(ccid, "anger", "upset", [{"text": "refund"}])
        tx.add_feed([FeedEvent("call.started", ccid, {}), FeedEvent("call.ended", ccid, {})])
    for command_id in (f"{ccid}-c1", f"{leg}-c1"):
        store.mark_command(command_id, CommandStatus.SENT, 1, None)
    if not summarised:
        return
    store.add_summary(Summary(ccid, {"outcome": "transferred"}, ended_at, email_to=(email,) if email else (),
                              email_status=EmailStatus.PENDING if email else None,
                              email_next_at=NOW if email else None), [FeedEvent("summary.ready", ccid, {})])
    if email:
        store.settle_email(ccid, 1, EmailStatus.SENT, None)


def deliver_all(store: OutputStore) -> None:
    """Queue every feed event for URL (whose cursor must exist) and mark each delivered."""
    store.queue_deliveries(URL, NOW)
    for row in store.deliveries(URL):
        if row.status == DeliveryStatus.PENDING:
            [[claimed]] = store.claim_deliveries([[row]], time.time() + 60, max_chains=1)
            store.settle_deliveries([DeliveryOutcome(claimed, DeliveryStatus.DELIVERED, 200, None, 1.0)], [],
                                    time.time())


def purge_all(store: OutputStore, ended_before: float = CUTOFF, dry_run: bool = False,
              limit: int = 100) -> list[PurgeBatch]:
    """Every batch until the purge has looked at every call past the cutoff."""
    batches, after = [], None
    while True:
        batch = store.purge_ended(ended_before, limit, after, receivers=(URL,), dry_run=dry_run)
        batches.append(batch)
        if batch.last is None:
            return batches
        after = batch.last


def total(batches: list[PurgeBatch]) -> dict[str, int]:
    rows: dict[str, int] = {}
    for batch in batches:
        for kind, n in batch.rows.items():
            rows[kind] = rows.get(kind, 0) + n
    return rows


def test_a_call_ended_before_the_cutoff_goes_whole_with_its_agent_leg_and_its_recording(
        store: OutputStore) -> None:
    store.queue_deliveries(URL, NOW)  # the receiver's cursor starts before both calls
    ended_call(store, "v3:old", CUTOFF - DAY, recording="/srv/rec/v3_old.wav", email="boss@example.com")
    ended_call(store, "v3:new", CUTOFF + DAY)
    deliver_all(store)
    [batch, end] = purge_all(store)
    assert batch.rows == {"calls": 1, "events": 3, "claims": 2, "transfers": 1, "commands": 2, "messages": 1,
                          "decisions": 1, "feed": 3, "summaries": 1, "deliveries": 3, "delivery_attempts": 3}
    assert batch.recordings == ("/srv/rec/v3_old.wav",) and batch.held == 0
    assert store.purged_files() == ["/srv/rec/v3_old.wav"]  # noted with the rows' deletion, until removed
    store.forget_purged_files(["/srv/rec/v3_old.wav", "/srv/rec/unknown.wav"])
    assert store.purged_files() == []
    assert end == PurgeBatch(rows={}, recordings=(), held=0, last=None)
    assert store.get_call("v3:old") is None and store.summary("v3:old") is None
    for read in (store.events, store.messages, store.decisions, store.transfers, store.outbox,
                 store.feed_events):
        assert read("v3:old") == [] and read("v3:old-agent") == []
    assert store.claim("v3:old", "escalation") and store.claim("v3:old-agent", "hangup")  # claims gone
    assert all(d.call_control_id == "v3:new" for d in store.deliveries())
    assert {a.feed_id for a in store.delivery_attempts()} == {d.feed_id for d in store.deliveries()}
    assert store.get_call("v3:new") is not None and len(store.events("v3:new")) == 1
    assert len(store.outbox("v3:new-agent")) == 1 and store.summary("v3:new") is not None


def test_a_live_call_is_never_purged_however_old(store: OutputStore) -> None:
    old = replace(contract.new_call("v3:live", CallStatus.TRANSFERRED), created_at=CUTOFF - 9 * DAY,
                  ended_at=CUTOFF - 8 * DAY)  # an end time on a call that is not ended counts for nothing
    with store.unit() as tx:
        tx.insert_call(old)
    assert total(purge_all(store)) == {}
    assert store.get_call("v3:live") is not None


def test_a_call_with_something_still_owed_is_held_until_it_has_gone(store: OutputStore) -> None:
    store.queue_deliveries(URL, NOW)
    for ccid in ("v3:command", "v3:leg", "v3:email", "v3:webhook", "v3:unqueued"):
        ended_call(store, ccid, CUTOFF - DAY)
    ended_call(store, "v3:unsummarised", CUTOFF - DAY, summarised=False)
    deliver_all(store)
    with store.unit() as tx:  # an outbox row still pending, on the caller's leg and on an agent's
        tx.enqueue([Command("late-1", "v3:command", "hangup", {}),
                    Command("late-2", "v3:leg-agent", "hangup", {})])
    with store.unit() as tx:
        tx.add_feed([FeedEvent("call.note", "v3:webhook", {})])
    store.queue_deliveries(URL, NOW)  # a delivery pending for v3:webhook
    with store.unit() as tx:
        tx.add_feed([FeedEvent("call.note", "v3:unqueued", {})])  # past the receiver's cursor
    email = store.summary("v3:email")
    assert email is not None
    store.settle_email("v3:email", 1, EmailStatus.PENDING, "451 try later", next_at=NOW + 60)
    batches = purge_all(store)
    assert sum(b.held for b in batches) == 6 and total(batches) == {}
    assert store.get_call("v3:email") is not None and store.events("v3:leg-agent")

    store.mark_command("late-1", CommandStatus.CALL_ENDED, 1, None)
    store.mark_command("late-2", CommandStatus.SENT, 1, None)
    store.settle_email("v3:email", 2, EmailStatus.FAILED, "given up")
    store.add_summary(Summary("v3:unsummarised", {}, NOW), [])  # the outputs' worker caught up
    deliver_all(store)
    batches = purge_all(store)
    assert total(batches)["calls"] == 6 and sum(b.held for b in batches) == 0


def test_a_dry_run_counts_what_a_purge_removes_and_changes_nothing(store: OutputStore) -> None:
    store.queue_deliveries(URL, NOW)
    for n in range(5):
        ended_call(store, f"v3:c{n}", CUTOFF - n * DAY, recording=f"/srv/rec/c{n}.wav")
    with store.unit() as tx:
        tx.record_event("stray-1", "call.recording.saved", None, None, 1, "{}")
        tx.record_event("stray-2", "call.hangup", "v3:never-recorded", None, 1, "{}")
        tx.insert_call(contract.new_call("v3:live"))
        tx.record_event("live-1", "call.initiated", "v3:live", None, 1, "{}")
    deliver_all(store)
    before = [len(store.events(f"v3:c{n}")) for n in range(5)]
    cutoff = time.time() + 1  # the stray event too is older than this
    counted = purge_all(store, ended_before=cutoff, dry_run=True, limit=2)
    assert [len(store.events(f"v3:c{n}")) for n in range(5)] == before and store.purged_files() == []
    removed = purge_all(store, ended_before=cutoff, limit=2)
    assert total(counted) == total(removed) and total(removed)["calls"] == 5
    assert total(removed)["events"] == 12  # two per call, and the two that name no recorded call
    assert [e["id"] for e in store.events("v3:live")] == ["live-1"]
    recordings = [sorted(p for b in batches for p in b.recordings) for batches in (counted, removed)]
    assert recordings[0] == recordings[1] == [f"/srv/rec/c{n}.wav" for n in range(5)]


def test_batches_go_oldest_end_first_and_walk_past_held_calls(store: OutputStore) -> None:
    for n in range(5):
        ended_call(store, f"v3:c{n}", CUTOFF - (10 - n) * DAY)
    with store.unit() as tx:
        tx.enqueue([Command("late", "v3:c0", "hangup", {})])  # the oldest is held
    first = store.purge_ended(CUTOFF, 2)
    assert first.rows["calls"] == 1 and first.held == 1
    assert first.last is not None and first.last[1] == "v3:c1"
    second = store.purge_ended(CUTOFF, 2, first.last)
    assert second.rows["calls"] == 2 and second.last is not None and second.last[1] == "v3:c3"
    assert store.get_call("v3:c0") is not None and store.get_call("v3:c2") is None


def test_purges_running_at_once_remove_each_call_once(store: OutputStore) -> None:
    for n in range(12):
        ended_call(store, f"v3:c{n:02}", CUTOFF - DAY - n)
    removed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3)

    def purge() -> None:
        barrier.wait()
        count = sum(b.rows.get("calls", 0) for b in purge_all(store, limit=3))
        with lock:
            removed.append(count)

    threads = [threading.Thread(target=purge) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(removed) == 12 and store.list_calls() == []


def test_the_figures_metrics_count_from_the_store_never_go_down_when_calls_are_purged(
        store: OutputStore) -> None:
    for n in range(3):
        ended_call(store, f"v3:c{n}", CUTOFF - DAY - n)
    store.mark_command("v3:c0-c1", CommandStatus.REJECTED, 1, "refused")  # settled already: no change
    with store.unit() as tx:
        tx.enqueue([Command("refused", "v3:c1", "speak", {})])
    store.mark_command("refused", CommandStatus.REJECTED, 1, "422")
    with store.unit() as tx:
        tx.insert_call(contract.new_call("v3:live"))
    before = store.figures()
    assert before.ended_by_outcome == {"transferred": 3} and before.rejected_commands == 1
    purge_all(store, dry_run=True)
    assert store.figures() == before
    assert total(purge_all(store))["calls"] == 3
    assert store.figures() == before
    ended_call(store, "v3:c9", CUTOFF - DAY)
    purge_all(store)
    after = store.figures()
    assert after.ended_by_outcome == {"transferred": 4} and after.decisions_by_rule == {"anger": 4}
    assert after.transfers_by_status == {"connected": 4} and after.live_by_state == {"menu": 1}
