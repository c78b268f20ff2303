"""One contract for every store backend: SQLite (default), PostgreSQL (several instances), memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lifeline.ivr.store import (
    CallQuery,
    CallRecord,
    CallStatus,
    CallStore,
    Command,
    CommandStatus,
    FeedEvent,
    Message,
    TransferRecord,
    TransferStatus,
)
from lifeline.ivr.store.memory import MemoryStore
from lifeline.ivr.store.sql import SqlStore

from .conftest import postgres_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CallStore]:
    """Each backend, empty."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        backend = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
        yield backend
        backend.close()
        return
    with postgres_store() as backend:
        yield backend


def race(workers: int, action: Callable[[], bool]) -> list[bool]:
    """Run action in `workers` threads released at the same moment."""
    barrier = threading.Barrier(workers)
    results: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        outcome = action()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def new_call(ccid: str = "v3:call-1", status: str = CallStatus.MENU) -> CallRecord:
    now = time.time()
    return CallRecord(call_control_id=ccid, call_session_id="s-1", call_leg_id="l-1",
                      from_number="+15551230001", to_number="+15550100000", status=status,
                      created_at=now, updated_at=now)


@pytest.mark.parametrize("ccid", ["v3:\x00x", "v3:\ud800", "v3:" + "x" * 300])
def test_an_id_no_call_can_have_is_simply_not_found(store: CallStore, ccid: str) -> None:
    assert store.get_call(ccid) is None
    with store.unit() as tx:
        assert tx.get_call(ccid) is None


def test_a_store_that_is_up_answers_the_health_ping(store: CallStore) -> None:
    assert store.ping() is None


def test_claim_has_exactly_one_winner_among_racing_threads(store: CallStore) -> None:
    results = race(12, lambda: store.claim("v3:call-1", "transfer"))
    assert sorted(results) == [False] * 11 + [True]


def test_claims_are_per_call_and_per_action(store: CallStore) -> None:
    assert store.claim("v3:call-1", "transfer")
    assert store.claim("v3:call-1", "transfer:2")
    assert store.claim("v3:call-2", "transfer")
    assert not store.claim("v3:call-1", "transfer")


def test_event_is_recorded_once_even_when_delivered_concurrently(store: CallStore) -> None:
    def record() -> bool:
        with store.unit() as tx:
            return tx.record_event("evt-1", "call.hangup", "v3:call-1", None, 1, "{}")
    assert sorted(race(8, record)) == [False] * 7 + [True]
    assert [e["id"] for e in store.events("v3:call-1")] == ["evt-1"]


def test_failed_unit_of_work_leaves_nothing_behind(store: CallStore) -> None:
    with pytest.raises(RuntimeError):
        with store.unit() as tx:
            tx.record_event("evt-2", "call.initiated", "v3:call-1", None, 1, "{}")
            tx.claim("v3:call-1", "transfer")
            tx.insert_call(new_call())
            raise RuntimeError("handler crashed")
    assert store.events("v3:call-1") == []
    assert store.get_call("v3:call-1") is None
    assert store.claim("v3:call-1", "transfer")


def test_feed_events_keep_commit_order_and_vanish_with_a_failed_unit(store: CallStore) -> None:
    with store.unit() as tx:
        tx.add_feed([FeedEvent("call", "v3:call-1", {"status": "answering"}),
                     FeedEvent("call", "v3:call-2", {"status": "answering"})])
    with pytest.raises(RuntimeError):
        with store.unit() as tx:
            tx.add_feed([FeedEvent("message", "v3:call-1", {"text": "lost"})])
            raise RuntimeError("handler crashed")
    with store.unit() as tx:
        tx.add_feed([FeedEvent("message", "v3:call-1", {"text": "hello", "party": "caller"})])
    assert store.feed_events("v3:call-1") == [FeedEvent("call", "v3:call-1", {"status": "answering"}),
                                              FeedEvent("message", "v3:call-1",
                                                        {"text": "hello", "party": "caller"})]


def test_call_is_created_once_and_updated(store: CallStore) -> None:
    with store.unit() as tx:
        assert tx.insert_call(new_call())
        assert not tx.insert_call(new_call())
        tx.update_call("v3:call-1", status=CallStatus.TRANSFERRING, retries=2)
    call = store.get_call("v3:call-1")
    assert call is not None and (call.status, call.retries) == (CallStatus.TRANSFERRING, 2)


def test_list_calls_can_show_only_active_ones(store: CallStore) -> None:
    with store.unit() as tx:
        tx.insert_call(new_call("v3:a"))
        tx.insert_call(new_call("v3:b", status=CallStatus.ENDED))
    assert {c.call_control_id for c in store.list_calls()} == {"v3:a", "v3:b"}
    assert [c.call_control_id for c in store.list_calls(active_only=True)] == ["v3:a"]


def test_ended_among_names_the_ended_and_the_unknown_calls_in_one_read(store: CallStore) -> None:
    with store.unit() as tx:
        tx.insert_call(new_call("v3:a"))
        tx.insert_call(new_call("v3:b", status=CallStatus.ENDED))
    assert store.ended_among({"v3:a", "v3:b", "v3:never"}) == {"v3:b", "v3:never"}
    assert store.ended_among(set()) == set()


def test_transfer_attempts_are_kept_in_order_and_found_by_agent_leg(store: CallStore) -> None:
    now = time.time()
    with store.unit() as tx:
        for attempt, agent in ((2, "+15550002222"), (1, "+15550001111")):
            tx.add_transfer(TransferRecord("v3:call-1", attempt, agent, f"cmd-{attempt}", "asked",
                                           "asks_for_human", TransferStatus.REQUESTED, now, now))
        tx.update_transfer("v3:call-1", 1, agent_call_control_id="v3:agent-1",
                           status=TransferStatus.RINGING)
    assert [t.attempt for t in store.transfers("v3:call-1")] == [1, 2]
    with store.unit() as tx:
        found = tx.transfer_for_agent_leg("v3:agent-1")
    assert found is not None and (found.attempt, found.status) == (1, TransferStatus.RINGING)


def test_outbox_holds_commands_until_marked(store: CallStore) -> None:
    command = Command("cmd-1", "v3:call-1", "speak", {"payload": "hi", "voice": "v"})
    with store.unit() as tx:
        tx.enqueue([command, command])
    [entry] = store.outbox("v3:call-1")
    assert (entry.command, entry.status) == (command, CommandStatus.PENDING)
    store.mark_command("cmd-1", CommandStatus.SENT, 2, None)
    assert store.outbox("v3:call-1")[0].status == CommandStatus.SENT


def test_commands_that_leave_in_a_webhooks_answer_are_recorded_sent_by_the_unit_that_queues_them(
        store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("by-rest", "v3:call-1", "hangup", {})])
    with store.unit() as tx:
        tx.enqueue([Command("in-answer", "v3:call-1", "speak", {}),
                    Command("by-rest", "v3:call-1", "hangup", {}),
                    Command("later", "v3:call-1", "hangup", {})], sent={"in-answer", "by-rest"})
    found = {e.command.command_id: (e.status, e.attempts) for e in store.outbox("v3:call-1")}
    assert found == {"in-answer": (CommandStatus.SENT, 1), "by-rest": (CommandStatus.SENT, 1),
                     "later": (CommandStatus.PENDING, 0)}
    assert [c.command_id for c in store.due_commands(older_than_s=-1)] == ["later"]
    with store.unit() as tx:  # a settled command keeps its outcome, as with mark_command
        tx.enqueue([Command("in-answer", "v3:call-1", "speak", {})])
    store.mark_command("later", CommandStatus.REJECTED, 1, "HTTP 422")
    with store.unit() as tx:
        tx.enqueue([Command("later", "v3:call-1", "hangup", {})], sent={"later"})
    statuses = {e.command.command_id: e.status for e in store.outbox("v3:call-1")}
    assert statuses["later"] == CommandStatus.REJECTED


def test_one_outbox_entry_is_read_inside_a_unit_of_work(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("cmd-1", "v3:call-1", "transfer", {"to": "+15550001111"})])
        entry = tx.outbox_entry("cmd-1")
        assert entry is not None and (entry.command.name, entry.status) == ("transfer", CommandStatus.PENDING)
        assert tx.outbox_entry("cmd-none") is None
    store.mark_command("cmd-1", CommandStatus.REJECTED, 1, "HTTP 422")
    with store.unit() as tx:
        entry = tx.outbox_entry("cmd-1")
    assert entry is not None and (entry.status, entry.last_error) == (CommandStatus.REJECTED, "HTTP 422")


def test_a_settled_command_keeps_its_outcome_when_a_slower_sender_reports_late(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("cmd-1", "v3:call-1", "transfer", {"to": "+15550001111"})])
    assert store.mark_command("cmd-1", CommandStatus.SENT, 1, None)
    # The first sender gave up after its attempts; a resend had already been accepted.
    assert not store.mark_command("cmd-1", CommandStatus.PENDING, 4, "HTTP 503")
    [entry] = store.outbox("v3:call-1")
    assert (entry.status, entry.attempts, entry.last_error) == (CommandStatus.SENT, 1, None)
    assert list(store.due_commands(older_than_s=-1)) == []
    assert not store.mark_command("cmd-unknown", CommandStatus.SENT, 1, None)


def test_due_commands_are_handed_to_one_sweeper_only(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command(f"cmd-{i}", "v3:call-1", "hangup", {}) for i in range(5)])
    # Taking a command touches it, and a touched command is due again `older_than_s` later (a
    # sweeper that died holding it): the race must finish within that, or a slow CI machine sees
    # a legitimate second hand-over (it did with 10 ms).
    lease_s = 1.0
    time.sleep(lease_s + 0.05)
    taken: list[str] = []
    lock = threading.Lock()

    def sweep() -> bool:
        mine = [c.command_id for c in store.due_commands(older_than_s=lease_s)]
        with lock:
            taken.extend(mine)
        return bool(mine)

    race(3, sweep)
    assert sorted(taken) == [f"cmd-{i}" for i in range(5)]


def test_a_queued_command_a_sweep_handed_to_a_resend_is_not_claimed_by_its_first_sender(
        store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("first", "v3:c", "transfer", {}), Command("second", "v3:c", "transfer", {})])
    queued_at = time.time()
    time.sleep(0.02)
    assert [c.command_id for c in store.due_commands(older_than_s=-1)] == ["first", "second"]
    resent_at = time.time()
    # The senders that queued them before the hand-over stand down; the resends go.
    assert not store.claim_command("first", queued_at)
    assert store.claim_command("first", resent_at)
    # Claimed, it is not handed over again until it is due once more, nor while its hold lasts.
    assert list(store.due_commands(older_than_s=10)) == []
    assert store.claim_command("first", time.time(), hold_s=30)
    assert [c.command_id for c in store.due_commands(older_than_s=0)] == ["second"]
    store.mark_command("second", CommandStatus.SENT, 1, None)
    assert not store.claim_command("second", time.time())  # settled
    assert not store.claim_command("unknown", time.time())


def test_a_claim_and_a_sweeps_hand_over_never_both_win(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command(f"cmd-{i}", "v3:c", "transfer", {}) for i in range(20)])
    queued_at = time.time()
    # Due to the sweep from the start; a claimed one is due again a lease later (as in the test above).
    lease_s = 1.0
    time.sleep(lease_s + 0.05)
    claimed: list[str] = []
    handed: list[str] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        claimed.extend(f"cmd-{i}" for i in range(20) if store.claim_command(f"cmd-{i}", queued_at))

    def sweep() -> None:
        barrier.wait()
        handed.extend(c.command_id for c in store.due_commands(older_than_s=lease_s))

    threads = [threading.Thread(target=claim), threading.Thread(target=sweep)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed + handed) == sorted(f"cmd-{i}" for i in range(20))  # each exactly once


def test_recent_or_finished_commands_are_not_due(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("old-sent", "v3:c", "hangup", {}), Command("fresh", "v3:c", "hangup", {})])
    store.mark_command("old-sent", CommandStatus.SENT, 1, None)
    assert list(store.due_commands(older_than_s=60)) == []
    assert list(store.due_commands(older_than_s=-1)) == [Command("fresh", "v3:c", "hangup", {})]


def test_message_is_stored_once_per_source(store: CallStore) -> None:
    with store.unit() as tx:
        assert tx.add_message("v3:call-1", "telnyx", "evt-9", "hello", 0.9, None, None)
        assert not tx.add_message("v3:call-1", "telnyx", "evt-9", "hello", 0.9, None, None)
    assert [m["text"] for m in store.messages("v3:call-1")] == ["hello"]


def test_recent_messages_are_the_newest_scored_ones_oldest_first(store: CallStore) -> None:
    with store.unit() as tx:
        for i, score in enumerate((0.1, None, -0.2, -0.5)):
            tx.add_message("v3:call-1", "telnyx", f"m{i}", f"text {i}", None, score, None)
        tx.add_message("v3:call-2", "telnyx", "other", "elsewhere", None, -0.9, None)
        recent = tx.recent_messages("v3:call-1", 2)
    assert [(m.source_id, m.score) for m in recent] == [("m2", -0.2), ("m3", -0.5)]
    assert all(isinstance(m, Message) for m in recent)


def test_recent_messages_carry_the_recognisers_confidence(store: CallStore) -> None:
    with store.unit() as tx:
        tx.add_message("v3:call-1", "local", "m0", "heard", 0.42, -0.3, None)
        tx.add_message("v3:call-1", "telnyx", "m1", "no confidence given", None, -0.3, None)
        recent = tx.recent_messages("v3:call-1", 2)
    assert [m.confidence for m in recent] == [0.42, None]


def test_decisions_keep_their_evidence(store: CallStore) -> None:
    with store.unit() as tx:
        tx.add_decision("v3:call-1", "asks_for_human", "asked for a person", [{"text": "agent"}])
    [decision] = store.decisions("v3:call-1")
    assert (decision["rule"], decision["evidence"]) == ("asks_for_human", [{"text": "agent"}])


def test_sweep_takes_active_calls_not_swept_lately_oldest_first(store: CallStore) -> None:
    with store.unit() as tx:
        for ccid in ("v3:a", "v3:b", "v3:c", "v3:d"):
            tx.insert_call(new_call(ccid, status=CallStatus.ENDED if ccid == "v3:c" else CallStatus.MENU))
            time.sleep(0.002)
        tx.update_call("v3:b", swept_at=time.time())
    with store.unit() as tx:
        swept = tx.calls_to_sweep(time.time() - 60, 10)
    assert [c.call_control_id for c in swept] == ["v3:a", "v3:d"]


def test_stamping_calls_swept_marks_only_those_and_leaves_their_last_activity(store: CallStore) -> None:
    with store.unit() as tx:
        for ccid in ("v3:a", "v3:b", "v3:c"):
            tx.insert_call(new_call(ccid, status=CallStatus.MENU))
    before = {ccid: store.get_call(ccid) for ccid in ("v3:a", "v3:b", "v3:c")}
    with store.unit() as tx:
        tx.stamp_swept(["v3:a", "v3:c", "v3:unknown"], 1234.5)
        tx.stamp_swept([], 99.0)
    after = {ccid: store.get_call(ccid) for ccid in ("v3:a", "v3:b", "v3:c")}
    assert [after[c].swept_at for c in ("v3:a", "v3:b", "v3:c")] == [1234.5, None, 1234.5]  # type: ignore[union-attr]
    assert all(after[c].updated_at == before[c].updated_at for c in after)  # type: ignore[union-attr]


def test_an_unknown_field_is_a_programming_error_not_a_store_outage(store: CallStore) -> None:
    with pytest.raises(TypeError, match="unknown call fields"):
        with store.unit() as tx:
            tx.insert_call(new_call())
            tx.update_call("v3:call-1", colour="blue")
    assert store.get_call("v3:call-1") is None


def test_liveness_check_takes_idle_active_calls_least_recently_checked_first(store: CallStore) -> None:
    now = time.time()
    with store.unit() as tx:
        for ccid in ("v3:never", "v3:long-ago", "v3:just-now", "v3:busy", "v3:ended"):
            tx.insert_call(new_call(ccid, status=CallStatus.ENDED if ccid == "v3:ended" else CallStatus.MENU))
        for ccid in ("v3:never", "v3:long-ago", "v3:just-now", "v3:ended"):
            tx.update_call(ccid, updated_at=now - 3600)
        tx.update_call("v3:long-ago", checked_at=now - 3000, updated_at=now - 3600)
        tx.update_call("v3:just-now", checked_at=now - 10, updated_at=now - 3600)
    with store.unit() as tx:
        due = tx.calls_to_check(now - 900, 10)
    assert [c.call_control_id for c in due] == ["v3:never", "v3:long-ago"]
    with store.unit() as tx:
        assert [c.call_control_id for c in tx.calls_to_check(now - 900, 1)] == ["v3:never"]


def _history(store: CallStore) -> None:
    """Five calls a minute apart (v3:h0 oldest): outcomes, rules and words to search for."""
    base = 1_800_000_000.0
    with store.unit() as tx:
        for i in range(5):
            call = new_call(f"v3:h{i}", status=CallStatus.ENDED)
            call.created_at = call.updated_at = base + 60 * i
            call.from_number = f"+1555000000{i}"
            call.outcome = "transferred" if i % 2 == 0 else "completed"
            tx.insert_call(call)
        tx.add_message("v3:h0", "telnyx", "a", "I want my REFUND now", None, -0.6, None)
        tx.add_message("v3:h1", "telnyx", "b", "what is my balance", None, 0.1, None)
        tx.add_message("v3:h2", "telnyx", "c", "100% sure, 50_50 odds", None, 0.0, None)
        tx.add_message("v3:h3", "telnyx", "d", "refund me", None, -0.3, None)
        tx.add_decision("v3:h0", "negative_streak", "two unhappy messages", [])
        tx.add_decision("v3:h2", "dtmf_0", "pressed 0", [])
        tx.add_decision("v3:h4", "dtmf_0", "pressed 0", [])


def test_search_pages_all_calls_newest_first_with_the_total(store: CallStore) -> None:
    _history(store)
    first = store.search_calls(CallQuery(limit=2))
    second = store.search_calls(CallQuery(limit=2, offset=2))
    last = store.search_calls(CallQuery(limit=2, offset=4))
    assert [c.call_control_id for c in first.calls + second.calls + last.calls] == \
        ["v3:h4", "v3:h3", "v3:h2", "v3:h1", "v3:h0"]
    assert first.total == second.total == last.total == 5
    assert first.rules == {"v3:h4": "dtmf_0"} and last.rules == {"v3:h0": "negative_streak"}


def test_search_continues_after_a_page_unmoved_by_calls_that_start_meanwhile(store: CallStore) -> None:
    _history(store)
    first = store.search_calls(CallQuery(limit=2))
    assert first.more and [c.call_control_id for c in first.calls] == ["v3:h4", "v3:h3"]
    with store.unit() as tx:  # a newer call starts between the pages, and one at the same instant
        newer = new_call("v3:newer")
        newer.created_at = first.calls[0].created_at + 60
        tx.insert_call(newer)
        twin = new_call("v3:g-same-time", status=CallStatus.ENDED)
        twin.created_at = first.calls[-1].created_at
        tx.insert_call(twin)
    seen = [c.call_control_id for c in first.calls]
    page = first
    while page.more:
        last = page.calls[-1]
        page = store.search_calls(CallQuery(limit=2, before=(last.created_at, last.call_control_id)))
        seen += [c.call_control_id for c in page.calls]
    # At the same start time the larger id comes first, so "v3:g-same-time" follows "v3:h3": not skipped.
    assert seen == ["v3:h4", "v3:h3", "v3:g-same-time", "v3:h2", "v3:h1", "v3:h0"]
    assert not page.more and page.total == 7
    filtered = store.search_calls(CallQuery(outcome="transferred", limit=1,
                                            before=(1_800_000_000.0 + 240, "v3:h4")))
    assert [c.call_control_id for c in filtered.calls] == ["v3:h2"] and filtered.more


def test_search_filters_by_outcome_rule_and_start_time_together(store: CallStore) -> None:
    _history(store)
    base = 1_800_000_000.0

    def ids(query: CallQuery) -> list[str]:
        return [c.call_control_id for c in store.search_calls(query).calls]

    assert ids(CallQuery(outcome="completed")) == ["v3:h3", "v3:h1"]
    assert ids(CallQuery(rule="dtmf_0")) == ["v3:h4", "v3:h2"]
    assert ids(CallQuery(since=base + 60, until=base + 180)) == ["v3:h2", "v3:h1"]  # until excluded
    assert ids(CallQuery(outcome="transferred", rule="dtmf_0", since=base + 150)) == ["v3:h4"]
    assert store.search_calls(CallQuery(outcome="voicemail")).total == 0


def test_search_text_ignores_case_and_takes_like_wildcards_literally(store: CallStore) -> None:
    _history(store)

    def ids(text: str) -> list[str]:
        return [c.call_control_id for c in store.search_calls(CallQuery(text=text)).calls]

    assert ids("refund") == ["v3:h3", "v3:h0"]
    assert ids("Refund NOW") == ["v3:h0"]
    assert ids("100%") == ["v3:h2"] and ids("%") == ["v3:h2"] and ids("_") == ["v3:h2"]
    assert ids("+15550000001") == ["v3:h1"]  # the caller's number
    assert ids("v3:h4") == ["v3:h4"]
    assert ids("nobody said this") == []


def test_failed_sign_ins_are_counted_per_client_in_the_window_and_older_ones_are_forgotten(
        store: CallStore) -> None:
    assert store.auth_failures("192.0.2.7", 0.0) == []
    store.note_auth_failure("192.0.2.7", 1000.0, forget_before=0.0)
    store.note_auth_failure("192.0.2.7", 1010.0, forget_before=0.0)
    store.note_auth_failure("2001:db8:1:2::/64", 1020.0, forget_before=0.0)
    assert store.auth_failures("192.0.2.7", 0.0) == [1000.0, 1010.0]
    assert store.auth_failures("192.0.2.7", 1005.0) == [1010.0]  # only those in the window asked for
    assert store.auth_failures("2001:db8:1:2::/64", 0.0) == [1020.0]
    # Each failure prunes everyone's failures that left the window, so the table stays small.
    store.note_auth_failure("198.51.100.9", 1030.0, forget_before=1015.0)
    assert store.auth_failures("192.0.2.7", 0.0) == []
    assert store.auth_failures("2001:db8:1:2::/64", 0.0) == [1020.0]


def test_a_revoked_session_is_known_until_it_expires_then_pruned(store: CallStore) -> None:
    now = time.time()
    assert not store.session_revoked("s-1")
    store.revoke_session("s-1", now + 3600)
    store.revoke_session("s-1", now + 3600)  # signing out twice is fine
    store.revoke_session("s-old", now - 1)  # already past its 8 hours
    assert store.session_revoked("s-1") and not store.session_revoked("s-2")
    store.revoke_session("s-2", now + 3600)  # each sign-out forgets the rows that have expired
    assert store.session_revoked("s-2") and not store.session_revoked("s-old")


def test_figures_count_live_and_ended_calls_decisions_transfers_and_the_outbox(store: CallStore) -> None:
    empty = store.figures()
    assert (empty.live_by_state, empty.pending_commands, empty.oldest_pending_at) == ({}, 0, None)
    before = time.time()
    with store.unit() as tx:
        for ccid, status in (("v3:a", CallStatus.MENU), ("v3:b", CallStatus.MENU),
                             ("v3:c", CallStatus.TRANSFERRING), ("v3:d", CallStatus.ENDED),
                             ("v3:e", CallStatus.ENDED)):
            tx.insert_call(new_call(ccid, status=status))
        tx.update_call("v3:d", outcome="transferred")
        tx.add_decision("v3:c", "asks_for_human", "asked", [])
        tx.add_decision("v3:d", "asks_for_human", "asked", [])
        tx.add_decision("v3:e", "dtmf_0", "pressed 0", [])
        tx.add_transfer(TransferRecord("v3:c", 1, "+15550001111", "cmd-t", "asked", "asks_for_human",
                                       TransferStatus.RINGING, before, before))
        tx.enqueue([Command(f"cmd-{i}", "v3:a", "hangup", {}) for i in range(3)])
    store.mark_command("cmd-0", CommandStatus.SENT, 1, None)
    store.mark_command("cmd-1", CommandStatus.REJECTED, 1, "422")
    figures = store.figures()
    assert figures.live_by_state == {CallStatus.MENU: 2, CallStatus.TRANSFERRING: 1}
    assert figures.ended_by_outcome == {"transferred": 1, "unknown": 1}
    assert figures.decisions_by_rule == {"asks_for_human": 2, "dtmf_0": 1}
    assert figures.transfers_by_status == {TransferStatus.RINGING: 1}
    assert (figures.pending_commands, figures.rejected_commands) == (1, 1)
    assert (figures.oldest_pending_at is not None
            and before - 1 <= figures.oldest_pending_at <= time.time() + 1)


def test_recordings_due_are_every_call_in_those_states_oldest_saved_first(store: CallStore) -> None:
    with store.unit() as tx:
        for n in range(6):
            tx.insert_call(new_call(f"v3:r{n}"))
        for ccid, status, saved in (("v3:r0", "kept", 100.0), ("v3:r1", "failed", 300.0),
                                    ("v3:r2", "pending", 200.0), ("v3:r3", "expired", 50.0),
                                    ("v3:r4", "failed", 100.0)):
            tx.update_call(ccid, recording_status=status, recording_saved_at=saved)
    due = store.recordings_due(("pending", "failed"), limit=10)
    assert [c.call_control_id for c in due] == ["v3:r4", "v3:r2", "v3:r1"]
    assert ([c.call_control_id for c in store.recordings_due(("pending", "failed"), limit=2)]
            == ["v3:r4", "v3:r2"])


def test_an_untried_command_is_due_only_after_its_own_longer_age(store: CallStore) -> None:
    with store.unit() as tx:
        tx.enqueue([Command("untried", "v3:c", "hangup", {}), Command("tried", "v3:c", "speak", {})])
    store.mark_command("tried", CommandStatus.PENDING, 4, "HTTP 503")  # its sender gave up
    time.sleep(0.05)
    assert list(store.due_commands(older_than_s=0.01, untried_older_than_s=60)) == [
        Command("tried", "v3:c", "speak", {})]
    time.sleep(0.05)
    assert [c.command_id for c in store.due_commands(older_than_s=0.01, untried_older_than_s=0.01)] == [
        "untried", "tried"]
