"""The live feed (SSE): every event of a call, in order, resumable, across instances."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from lifeline import create_app
from lifeline.conversation.hub import FeedHub, StoreListener, StorePoller
from lifeline.ivr.errors import StoreError
from lifeline.ivr.store import CallRecord, CallStatus
from lifeline.simulator.runner import Simulation
from lifeline.simulator.server import ServerThread

from .conftest import AGENTS, PG_URL, wait_until
from .sse_client import SseClient
from .test_call_flow import settle, start_call

TOKEN = "test-token"


def base_url(sim: Simulation) -> str:
    return str(sim.config["LIFELINE_PUBLIC_URL"])


def stored_feed(sim: Simulation, call: str) -> list[tuple[int, str]]:
    outputs = sim.app.extensions["conversation"]  # type: ignore[union-attr]
    return [(e.id, e.kind) for e in outputs.store.feed_for_call(call)]


def angry_call_to_the_end(sim: Simulation) -> str:
    leg = start_call(sim)
    sim.emulator.say(leg, "This is useless, I want to speak to a person now", 0.2)
    assert wait_until(lambda: sim.emulator.commands_for(leg.call_control_id, "transfer"), 10)
    assert wait_until(lambda: leg.log.bridged, 10)
    # call.bridged comes on the agent's leg only; the caller's hangup could overtake it.
    store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
    assert wait_until(
        lambda: getattr(store.get_call(leg.call_control_id), "status", None) == "transferred", 10)
    sim.emulator.caller_hangs_up(leg)
    settle(sim, leg)
    return leg.call_control_id


def test_feed_streams_a_calls_events_in_order_with_every_field(live: Simulation) -> None:
    client = SseClient(f"{base_url(live)}/api/events", TOKEN)
    call = angry_call_to_the_end(live)
    got = [e for e in client.until("summary.ready", call) if e["call_control_id"] == call]
    client.close()
    kinds = [e["type"] for e in got]
    assert kinds[0] == "call.started" and kinds[-1] == "summary.ready"
    order = [kinds.index(k) for k in ("message", "decision", "transfer", "call.ended")]
    assert order == sorted(order)
    [message] = [e for e in got if e["type"] == "message"]
    assert message["data"]["party"] == "caller"
    assert message["data"]["text"] == "This is useless, I want to speak to a person now"
    assert message["data"]["score"] < 0 and message["data"]["label"] == "negative"
    assert 0 <= message["data"]["start"] <= message["data"]["end"]
    # the intents the app's scorer reads in the line at 0.5 or more, in its order; "useless" next to
    # a request for a person also reads as a complaint about the system to the current model
    scored = live.app.extensions["lifeline"].services.scorer.analyse(message["data"]["text"])  # type: ignore[union-attr]
    assert message["data"]["intents"] == [i for i, p in scored.intents.items() if p >= 0.5]
    assert "wants_person" in message["data"]["intents"]
    # ...and the line as the rules read it, the record stored with the message, for the console
    assert message["data"]["analysis"] == scored.as_record()
    assert message["data"]["analysis"]["intents"]["wants_person"] >= 0.5
    [decision] = [e for e in got if e["type"] == "decision"]
    assert decision["data"]["rule"] and decision["data"]["reason"]
    statuses = [t["data"]["status"] for t in got if t["type"] == "transfer"]
    assert statuses == ["requested", "ringing", "connected"]
    [ended] = [e for e in got if e["type"] == "call.ended"]
    assert ended["data"]["outcome"] == "transferred"
    assert [e["id"] for e in got] == [i for i, _ in stored_feed(live, call)]
    assert all(e["event"] == e["type"] for e in got)


def test_a_client_that_disconnects_and_resumes_with_last_event_id_loses_nothing(live: Simulation) -> None:
    first = SseClient(f"{base_url(live)}/api/events", TOKEN)
    leg = start_call(live)
    seen = first.until("call.started", leg.call_control_id)
    first.close()  # gone while the call goes on
    live.emulator.say(leg, "I am so angry, this is terrible", 0.2)
    live.emulator.say(leg, "Nobody is helping me at all", 0.2)
    assert wait_until(lambda: len(stored_feed(live, leg.call_control_id)) >= 4, 10)
    live.emulator.caller_hangs_up(leg)
    settle(live, leg)
    second = SseClient(f"{base_url(live)}/api/events", TOKEN, last_event_id=seen[-1]["id"])
    rest = second.until("summary.ready", leg.call_control_id)
    second.close()
    ids = [e["id"] for e in seen + rest if e["call_control_id"] == leg.call_control_id]
    assert ids == [i for i, _ in stored_feed(live, leg.call_control_id)]
    assert len(ids) == len(set(ids))


def test_the_hub_counts_the_feeds_streams_open_and_opened(live: Simulation) -> None:
    hub = live.app.extensions["conversation"].hub  # type: ignore[union-attr]
    first = SseClient(f"{base_url(live)}/api/events", TOKEN)
    second = SseClient(f"{base_url(live)}/api/events", TOKEN)
    assert wait_until(lambda: hub.streams_open == 2) and hub.streams_opened == 2
    second.close()
    # A gone client is noticed when its stream next writes: an event (or the keepalive) does.
    leg = start_call(live)
    first.until("call.started", leg.call_control_id)
    assert wait_until(lambda: hub.streams_open == 1), "a closed stream is still counted"
    assert hub.streams_opened == 2
    first.close()
    live.emulator.caller_hangs_up(leg)


def test_one_calls_feed_starts_at_that_calls_first_event(live: Simulation) -> None:
    other = start_call(live)
    call = angry_call_to_the_end(live)
    client = SseClient(f"{base_url(live)}/api/events?call={call}", TOKEN)
    got = client.until("summary.ready", call)
    client.close()
    assert {e["call_control_id"] for e in got} == {call}
    assert [e["id"] for e in got] == [i for i, _ in stored_feed(live, call)]
    assert other.call_control_id != call


def test_the_feed_is_refused_without_the_token_and_with_a_bad_last_event_id(live: Simulation) -> None:
    client = live.app.test_client()  # type: ignore[union-attr]
    assert client.get("/api/events").status_code == 401
    assert client.get("/api/events", headers={"Authorization": "Bearer wrong"}).status_code == 401
    bad = client.get("/api/events", headers={"Authorization": f"Bearer {TOKEN}", "Last-Event-ID": "abc"})
    assert bad.status_code == 400
    assert "Last-Event-ID" in bad.get_json()["error"]["message"]
    for past_any_id in (str(2**63), "9" * 40, "\u00b2"):  # the last: "²", which str.isdigit() takes
        refused = client.get("/api/events", headers={"Authorization": f"Bearer {TOKEN}",
                                                     "Last-Event-ID": past_any_id.encode().decode("latin-1")})
        assert refused.status_code == 400, past_any_id
        assert client.get(f"/api/events?after={past_any_id}",
                          headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 400


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh schema of the PostgreSQL test database, as a URL whose search_path points at it."""
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    name = f"lifeline_feed_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield f"{PG_URL}?options=-csearch_path%3D{name}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def two_instances(database_url: str) -> None:
    """A client of instance B sees what instance A stores, woken by the store, not by B's polling."""
    # Each client's own poll is set to a minute: only the wake-up can bring the events in time.
    config = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_FEED_POLL_S": "60"}
    with Simulation(config, speed=20, database_url=database_url) as instance_a:
        instance_b = create_app(dict(instance_a.config))
        server_b = ServerThread(instance_b).start()
        try:
            client = SseClient(f"{server_b.url}/api/events", TOKEN)
            time.sleep(0.5)  # B's LISTEN connection (or store poller) is up
            started = time.monotonic()
            leg = start_call(instance_a)
            [event] = client.until("call.started", leg.call_control_id, timeout=10)[-1:]
            assert event["call_control_id"] == leg.call_control_id
            assert time.monotonic() - started < 10
            instance_a.emulator.say(leg, "I want to talk to a human", 0.2)
            got = client.until("decision", leg.call_control_id, timeout=10)
            kinds = [e["type"] for e in got if e["call_control_id"] == leg.call_control_id]
            assert kinds[-2:] == ["message", "decision"]
            client.close()
        finally:
            server_b.stop()
            instance_b.extensions["lifeline"].close()


@pytest.mark.postgres
def test_a_client_of_one_instance_sees_events_stored_by_another_on_postgresql(pg_database: str) -> None:
    two_instances(pg_database)


def test_a_client_of_one_process_sees_events_another_stored_in_the_same_sqlite_file(tmp_path: Path) -> None:
    two_instances(f"sqlite:///{tmp_path / 'shared.db'}")


def test_the_poller_rides_out_a_failing_store_with_one_warning_and_wakes_clients_after(
        caplog: pytest.LogCaptureFixture) -> None:
    answers: list[int | Exception] = [1, OSError("down"), OSError("down"), OSError("down"), 2]

    def last_id() -> int:
        answer = answers.pop(0) if answers else 2
        if isinstance(answer, Exception):
            raise answer
        return answer

    hub = FeedHub()
    seen = hub.version
    poller = StorePoller(last_id, hub, interval_s=0.01)
    with caplog.at_level(logging.INFO, logger="lifeline.conversation.hub"):
        poller.start()
        try:
            assert hub.wait(seen, timeout=5.0), "the poller never woke the hub after the store came back"
        finally:
            poller.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot read the store" in warnings[0].getMessage()
    assert any("reads the store again" in r.getMessage() for r in caplog.records)


def test_the_listener_retries_a_store_it_cannot_listen_to_and_wakes_clients_once_it_listens(
        caplog: pytest.LogCaptureFixture) -> None:
    failures = [StoreError("cannot listen for the feed's notices: the database is unavailable")] * 2
    tries: list[float] = []

    def listen(heard: Callable[[], None], stopped: Callable[[], bool]) -> None:
        """A store that refuses twice, then listens and hears one commit, until stopped."""
        tries.append(time.monotonic())
        if failures:
            raise failures.pop()
        heard()  # listening has begun
        heard()  # a commit
        while not stopped():
            time.sleep(0.01)

    hub = FeedHub()
    seen = hub.version
    listener = StoreListener(listen, hub)
    with caplog.at_level(logging.WARNING, logger="lifeline.conversation.hub"):
        listener.start()
        try:
            assert wait_until(lambda: hub.version - seen == 2), "the listener never woke the hub"
        finally:
            listener.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("feed LISTEN connection failed" in w for w in warnings)
    assert "retrying in 0.5 s" in warnings[0] and "retrying in 1.0 s" in warnings[1]  # backing off
    assert len(tries) == 3  # listening, it was not started again


def quiet(app: Flask, call_control_id: str) -> None:
    """A call in the store that says nothing."""
    now = time.time()
    with app.extensions["lifeline"].store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id=call_control_id, call_session_id=None, call_leg_id=None,
                                  from_number="+15557770000", to_number="+15550100000",
                                  status=CallStatus.MENU, created_at=now, updated_at=now))


def test_the_feed_of_a_call_nobody_made_is_a_404_not_a_stream_that_waits_for_ever(
        app_config: dict[str, object]) -> None:
    app = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN}, migrate=True)
    try:
        response = app.test_client().get("/api/events?call=v3:nope",
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 404 and response.get_json()["error"]["message"] == "no call 'v3:nope'"
    finally:
        app.extensions["lifeline"].close()


def test_a_quiet_calls_stream_still_keeps_alive_while_other_calls_wake_the_feed(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from lifeline import create_app
    from lifeline.conversation import api as conversation_api
    monkeypatch.setattr(conversation_api, "KEEPALIVE_S", 0.2)
    app = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN}, migrate=True)
    quiet(app, "v3:quiet")
    busy = threading.Event()

    def other_calls() -> None:  # events of other calls wake every stream of the process
        while not busy.is_set():
            app.extensions["conversation"].hub.wake()
            busy.wait(0.02)

    waker = threading.Thread(target=other_calls, daemon=True)
    waker.start()
    try:
        response = app.test_client().get("/api/events?call=v3:quiet",
                                         headers={"Authorization": f"Bearer {TOKEN}"}, buffered=False)
        kept_alive = threading.Event()

        def read() -> None:  # in a thread: a stream that never writes would block the test for good
            for chunk in response.response:
                if b": keepalive" in chunk:
                    kept_alive.set()
                    return

        threading.Thread(target=read, daemon=True).start()
        assert kept_alive.wait(5)
        response.close()
    finally:
        busy.set()
        waker.join(2)
        app.extensions["lifeline"].close()
