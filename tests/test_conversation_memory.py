"""The outputs over the store interface alone: they run on the memory store as on SQL, and the
feed's wake-up across processes follows the backend."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lifeline.conversation import email_out
from lifeline.conversation.hub import FeedHub, StoreListener, StorePoller
from lifeline.conversation.outputs import feed_listener
from lifeline.conversation.settings import OutputSettings
from lifeline.conversation.summaries import Summaries
from lifeline.conversation.webhooks_out import WebhookDelivery, verify
from lifeline.ivr.errors import StoreError
from lifeline.ivr.store import CallRecord, CallStatus, FeedEvent
from lifeline.ivr.store.memory import MemoryStore
from lifeline.ivr.store.sql import SqlStore

from .conftest import wait_until
from .test_conversation_out import SECRET, Receiver


def test_the_feed_wakeup_is_notify_on_postgresql_polling_on_sqlite_and_none_in_memory(
        tmp_path: Path) -> None:
    hub = FeedHub()
    assert feed_listener(MemoryStore(), hub) is None  # one process: its own writes wake its readers
    sqlite = SqlStore(f"sqlite:///{tmp_path / 'out.db'}")
    # Not connected: the choice is the engine's dialect, not a look at the URL's text.
    postgres = SqlStore("postgresql+psycopg://lifeline@127.0.0.1:9/none", create_schema=False)
    try:
        assert isinstance(feed_listener(sqlite, hub), StorePoller)
        assert isinstance(feed_listener(postgres, hub), StoreListener)
        assert postgres.feed_notices().listen
    finally:
        sqlite.close()
        postgres.close()


def _ended_call(store: MemoryStore, ccid: str) -> None:
    now = time.time()
    with store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id=ccid, call_session_id=None, call_leg_id=None,
                                  from_number="+15551230001", to_number="+15550100000",
                                  status=CallStatus.ENDED, created_at=now - 30, updated_at=now, ended_at=now,
                                  outcome="completed"))
        said = {"party": "caller", "text": "I need a refund please", "score": -0.2, "end": 3.0}
        tx.add_feed([FeedEvent("call.started", ccid, {}), FeedEvent("message", ccid, said),
                     FeedEvent("call.ended", ccid, {"outcome": "completed"})])


def test_a_summary_waits_the_settle_time_so_words_heard_after_the_hang_up_are_in_it() -> None:
    store = MemoryStore()
    _ended_call(store, "v3:a")
    summaries = Summaries(store, OutputSettings(transcript_settle_s=0.3))
    assert summaries.make_due() == 0 and summaries.get("v3:a") is None  # just ended: not yet
    late = {"party": "caller", "text": "and please send me the form", "score": 0.1, "end": 6.0}
    with store.unit() as tx:  # the last line, transcribed after the hang-up
        tx.add_feed([FeedEvent("message", "v3:a", late)])
    assert wait_until(lambda: summaries.make_due() == 1, 5)
    made = summaries.get("v3:a")
    assert made is not None and made["summary"]["messages"] == 2
    kinds = [e.kind for e in store.feed_for_call("v3:a")]
    assert kinds[-2:] == ["message", "summary.ready"]


def test_a_summary_is_made_once_per_ended_call_on_the_memory_store() -> None:
    store = MemoryStore()
    _ended_call(store, "v3:a")
    summaries = Summaries(store, OutputSettings(transcript_settle_s=0))
    assert summaries.make_due() == 1 and summaries.make_due() == 0 and summaries.make("v3:a") == 0
    made = summaries.get("v3:a")
    assert made is not None and made["summary"]["outcome"] == "completed" and made["email"] is None
    assert [e.kind for e in store.feed_for_call("v3:a")][-1] == "summary.ready"


def test_the_feed_goes_out_to_a_receiver_in_order_from_the_memory_store() -> None:
    store = MemoryStore()
    hook = Receiver(failures=1)
    webhooks = WebhookDelivery(store, OutputSettings(
        event_webhooks=(hook.url,), event_secret=SECRET, retry_base_s=0.05))
    try:
        assert webhooks.materialise() == 0  # a new receiver starts from now
        _ended_call(store, "v3:a")
        assert webhooks.materialise() == 3
        assert wait_until(lambda: webhooks.send_due() == 0 and len(hook.accepted) == 3, 5)
        sent = [json.loads(a["body"]) for a in hook.accepted]
        assert [s["type"] for s in sent] == ["call.started", "message", "call.ended"]
        assert [s["id"] for s in sent] == [e.id for e in store.feed_for_call("v3:a")]
        assert all(verify(SECRET, a["headers"]["Lifeline-Signature"], a["body"]) for a in hook.accepted)
        assert [a["http_status"] for a in webhooks.attempts()] == [500, 200, 200, 200]
    finally:
        webhooks.close()
        hook.server.stop()


class _StoreFailsOnce(Summaries):
    """Summaries whose store goes down for the first record of a sent email, as in an outage."""

    failures = 1

    def email_done(self, call_control_id: str, attempts: int, error: str | None) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database unavailable")
        super().email_done(call_control_id, attempts, error)


def test_an_email_sent_just_before_the_store_failed_is_recorded_when_it_returns_not_sent_again() -> None:
    from aiosmtpd.controller import Controller

    from lifeline.conversation.settings import load_output_settings
    from lifeline.conversation.worker import OutputsWorker

    from .test_conversation_out import Inbox, free_port
    port = free_port()
    settings = load_output_settings({"LIFELINE_SMTP_URL": f"smtp://127.0.0.1:{port}",
                                     "LIFELINE_SUMMARY_TO": "ops@example.com",
                                     "LIFELINE_SUMMARY_FROM": "Lifeline <calls@example.org>",
                                     "LIFELINE_TRANSCRIPT_SETTLE_S": "0"})
    store = MemoryStore()
    _ended_call(store, "v3:a")
    summaries = _StoreFailsOnce(store, settings)
    assert summaries.make_due() == 1
    worker = OutputsWorker(FeedHub(), summaries, WebhookDelivery(store, settings), settings)
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with pytest.raises(StoreError):
            worker.send_emails()  # sent, then the store fails before it can say so
        assert worker.send_emails() == 0  # the record is written first; nothing is claimed again
        assert worker.send_emails() == 0
    finally:
        smtp.stop()
    assert len(inbox.messages) == 1
    made = summaries.get("v3:a")
    assert made is not None and made["email"]["status"] == "sent"
    # Were it sent again all the same (a crash between the two), the copy says it is one.
    [mail] = inbox.messages
    assert mail["Message-ID"] == email_out.message_id("v3:a", "Lifeline <calls@example.org>")
    assert mail["Message-ID"].endswith("@example.org>") and mail["Date"]
