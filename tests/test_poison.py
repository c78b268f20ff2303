"""Hostile but signed webhooks: 400 or 200, never a 5xx (Telnyx would redeliver a 5xx forever).

Each case runs on SQLite and on PostgreSQL: the two databases fail on different bytes (a NUL is
fine in SQLite text and an error in PostgreSQL; lengths are enforced by PostgreSQL only).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.ivr.security import sign
from lifeline.simulator.emulator import Emulator

from .conftest import postgres_schema, postgres_url_or_skip
from .test_console import csrf_of

CCID = "v3:poison-1"
INITIATED = {"call_control_id": CCID, "call_leg_id": "leg-1", "call_session_id": "sess-1",
             "direction": "incoming", "state": "parked", "from": "+15551230001",
             "to": "+15550100000"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def poison_app(request: pytest.FixtureRequest, app_config: dict[str, object],
               tmp_path: Path) -> Iterator[Flask]:
    """An app on each database, wired to the emulator."""
    config = {**app_config, "LIFELINE_API_TOKEN": "t0ken"}
    with ExitStack() as stack:
        if request.param == "postgres":
            config["DATABASE_URL"] = stack.enter_context(postgres_schema(postgres_url_or_skip()))
        application = create_app(config, migrate=True)
        yield application
        application.extensions["lifeline"].close()


def deliver(app: Flask, emulator: Emulator, body: bytes | str) -> Any:
    """POST a body signed with the emulator's (that is, Telnyx's) key."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    headers = {"content-type": "application/json",
               **sign(emulator.signing_key, raw, int(time.time()))}
    return app.test_client().post("/webhooks/telnyx", data=raw, headers=headers)


def envelope(event_type: str, payload: dict[str, Any], attempt: Any = 1, event_id: str | None = None) -> str:
    return json.dumps({"data": {"record_type": "event", "event_type": event_type,
                                "id": event_id or str(uuid.uuid4()),
                                "occurred_at": "2026-11-22T10:00:00.000000Z", "payload": payload},
                       "meta": {"attempt": attempt}})


def transcript(text_json: str, confidence_json: str = "0.9") -> str:
    """A call.transcription body with raw JSON for the transcript and confidence."""
    return (f'{{"data": {{"id": "{uuid.uuid4()}", "event_type": "call.transcription", "payload": {{'
            f'"call_control_id": "{CCID}", "transcription_data": {{"transcript": {text_json}, '
            f'"confidence": {confidence_json}, "is_final": true}}}}}}}}')


def start_call(app: Flask, emulator: Emulator) -> None:
    assert deliver(app, emulator, envelope("call.initiated", INITIATED)).status_code == 200
    assert deliver(app, emulator, envelope("call.answered", {"call_control_id": CCID})).status_code == 200


def messages(app: Flask) -> list[dict[str, Any]]:
    return app.extensions["lifeline"].store.messages(CCID)


@pytest.mark.parametrize("case", [
    "long_call_control_id", "long_from", "long_hangup_cause", "long_occurred_at",
    "nul_in_event_id", "nul_in_from", "nul_in_client_state", "lone_surrogate_in_from",
    "huge_attempt", "negative_attempt", "deep_nesting", "deep_nesting_in_client_state",
])
def test_hostile_lifecycle_bodies_are_answered_without_a_5xx(
        poison_app: Flask, emulator: Emulator, case: str) -> None:
    from lifeline.ivr.events import encode_client_state
    bodies: dict[str, str] = {
        "long_call_control_id": envelope("call.initiated",
                                         {**INITIATED, "call_control_id": "v3:" + "x" * 300}),
        "long_from": envelope("call.initiated", {**INITIATED, "from": "+1" * 400}),
        "long_hangup_cause": envelope("call.hangup", {"call_control_id": CCID, "hangup_cause": "c" * 500}),
        "long_occurred_at": envelope("call.initiated", INITIATED).replace(
            "2026-11-22T10:00:00.000000Z", "9" * 400),
        "nul_in_event_id": envelope("call.initiated", INITIATED, event_id="evt\u0000nul"),
        "nul_in_from": envelope("call.initiated", {**INITIATED, "from": "+1555\u00001230001"}),
        "nul_in_client_state": envelope("call.hangup", {
            "call_control_id": "v3:agent", "hangup_cause": "busy",
            "client_state": encode_client_state({"role": "agent", "caller": "v3:\u0000x", "attempt": 1})}),
        "lone_surrogate_in_from": envelope("call.initiated", {**INITIATED, "from": "\ud800+1555"}),
        "huge_attempt": envelope("call.initiated", INITIATED, attempt=10**30),
        "negative_attempt": envelope("call.initiated", INITIATED, attempt=-(10**30)),
        "deep_nesting": '{"data": {"id": "e", "event_type": "call.hangup", "payload": {"x": '
                        + "[" * 50_000 + "]" * 50_000 + "}}}",
        "deep_nesting_in_client_state": envelope("call.hangup", {
            "call_control_id": "v3:agent", "client_state": encode_client_state({"a": 1}).replace(
                encode_client_state({"a": 1}),
                __import__("base64").b64encode(b"[" * 20_000 + b"]" * 20_000).decode())}),
    }
    response = deliver(poison_app, emulator, bodies[case])
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    assert response.get_json()["result" if response.status_code == 200 else "error"]


def test_a_call_id_longer_than_the_column_is_refused_as_malformed(
        poison_app: Flask, emulator: Emulator) -> None:
    body = envelope("call.initiated", {**INITIATED, "call_control_id": "v3:" + "x" * 300})
    response = deliver(poison_app, emulator, body)
    assert response.status_code == 400
    assert "call_control_id" in response.get_json()["error"]["message"]


def test_an_attempt_beyond_any_real_count_reads_as_the_first(poison_app: Flask, emulator: Emulator) -> None:
    assert deliver(poison_app, emulator,
                   envelope("call.initiated", INITIATED, attempt=10**30)).status_code == 200
    assert [e["attempt"] for e in poison_app.extensions["lifeline"].store.events(CCID)] == [1]


def test_a_nul_in_a_transcript_does_not_lose_the_callers_words(poison_app: Flask, emulator: Emulator) -> None:
    start_call(poison_app, emulator)
    response = deliver(poison_app, emulator, transcript(json.dumps("I want\u0000 a refund")))
    assert response.status_code == 200
    assert [m["text"] for m in messages(poison_app)] == ["I want a refund"]


def test_a_lone_surrogate_in_a_transcript_is_replaced_not_fatal(
        poison_app: Flask, emulator: Emulator) -> None:
    start_call(poison_app, emulator)
    response = deliver(poison_app, emulator, transcript('"caf\\ud800 please"'))
    assert response.status_code == 200
    assert [m["text"] for m in messages(poison_app)] == ["caf\ufffd please"]


@pytest.mark.parametrize("confidence", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_a_non_finite_confidence_is_refused_and_nothing_is_stored(
        poison_app: Flask, emulator: Emulator, confidence: str) -> None:
    start_call(poison_app, emulator)
    response = deliver(poison_app, emulator, transcript('"hello there"', confidence))
    assert response.status_code == 400
    assert "finite" in response.get_json()["error"]["message"]
    assert messages(poison_app) == []


def test_a_non_finite_number_anywhere_in_the_body_is_refused(poison_app: Flask, emulator: Emulator) -> None:
    body = envelope("call.initiated", INITIATED).replace('"attempt": 1', '"attempt": NaN')
    assert deliver(poison_app, emulator, body).status_code == 400


def test_the_api_never_emits_nan_even_for_a_stored_one(poison_app: Flask, emulator: Emulator) -> None:
    """A NaN that reached the database before this fix must not blank the dashboard."""
    start_call(poison_app, emulator)
    with poison_app.extensions["lifeline"].store.unit() as tx:
        tx.add_message(CCID, "telnyx", "m-1", "hello", 0.9, 0.1, "neutral")
    store = poison_app.extensions["lifeline"].store
    # SQLite keeps no NaN (it reads back NULL) but does keep Infinity; PostgreSQL keeps both.
    bad = "9e999" if store.engine.dialect.name == "sqlite" else "'NaN'"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE messages SET confidence = {bad}")
    response = poison_app.test_client().get(f"/api/calls/{CCID}", headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert response.get_json()["messages"][0]["confidence"] is None


def test_the_store_keeps_non_finite_numbers_and_bad_text_out_on_its_own(poison_app: Flask) -> None:
    """Engines call the store directly (not through a webhook), so the store cleans what it writes."""
    store = poison_app.extensions["lifeline"].store
    with store.unit() as tx:
        tx.add_message(CCID, "local", "m-1", "a\u0000b \ud800", math.nan, math.inf, "neutral")
    [message] = store.messages(CCID)
    assert (message["text"], message["confidence"], message["score"]) == ("ab \ufffd", None, None)


@pytest.mark.parametrize("ccid", ["v3:%00x", "v3:%ED%A0%80", "v3:" + "x" * 300])
@pytest.mark.parametrize(("method", "route"), [
    ("GET", "/api/calls/{}"), ("GET", "/api/calls/{}/transcript"), ("GET", "/api/calls/{}/summary"),
    ("POST", "/api/calls/{}/listening")])
def test_looking_up_an_impossible_call_id_is_a_404(
        poison_app: Flask, ccid: str, method: str, route: str) -> None:
    response = poison_app.test_client().open(route.format(ccid), method=method, json={"paused": True},
                                             headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 404
    assert "no call" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("ccid", ["v3:%00x", "v3:" + "x" * 300])
def test_pausing_an_impossible_call_id_from_the_console_is_a_404(poison_app: Flask, ccid: str) -> None:
    client = poison_app.test_client()
    client.post("/dashboard/signin", data={"token": "t0ken"})
    response = client.post(f"/dashboard/calls/{ccid}/listening",
                           data={"paused": "1", "csrf": csrf_of(client)})
    assert response.status_code == 404


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "offset=-1", "limit=0", "limit=501",
                                   "limit=-5", "limit=x"])
def test_a_paging_number_out_of_range_is_a_400_naming_the_range(poison_app: Flask, query: str) -> None:
    response = poison_app.test_client().get(f"/api/calls?{query}", headers={"Authorization": "Bearer t0ken"})
    assert response.status_code == 400
    assert "from 1 to 500" in response.get_json()["error"]["message"]
