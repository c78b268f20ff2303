"""Errors a retry can fix (the store is down) are 503s; bugs are 500s with a log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import create_engine

from lifeline.ivr.store import TransferRecord, TransferStatus

from .conftest import WebhookFactory
from .test_webhooks import INITIATED, post

API_TOKEN = "a-long-enough-api-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def api_app(app_config: dict[str, object]) -> Iterator[Flask]:
    """An app whose calls API is on (LIFELINE_API_TOKEN set), on a fresh SQLite file."""
    from lifeline import create_app
    application = create_app({**app_config, "LIFELINE_API_TOKEN": API_TOKEN}, migrate=True)
    yield application
    application.extensions["lifeline"].close()


def test_a_store_that_is_down_answers_503_so_telnyx_redelivers(
        app: Flask, signed: WebhookFactory, caplog: pytest.LogCaptureFixture) -> None:
    store = app.extensions["lifeline"].store
    # Nothing listens on port 9: the driver's own "connection refused", as when the server is down.
    store.engine = create_engine("postgresql+psycopg://lifeline@127.0.0.1:9/gone",
                                 connect_args={"connect_timeout": 2})
    with caplog.at_level(logging.ERROR):
        response = post(app, *signed("call.initiated", INITIATED))
    assert response.status_code == 503
    assert response.get_json()["error"]["message"].startswith("call store unavailable")
    assert "store unavailable" in caplog.text


def test_the_health_check_answers_503_naming_the_failure_while_the_store_is_down(app: Flask) -> None:
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["lifeline"].store.engine = create_engine("postgresql+psycopg://lifeline@127.0.0.1:9/gone",
                                                            connect_args={"connect_timeout": 2})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["error"]["message"] == "database unavailable: OperationalError"


def test_a_constraint_the_code_breaks_is_a_500_with_a_log_line_not_a_503(
        app: Flask, signed: WebhookFactory, caplog: pytest.LogCaptureFixture) -> None:
    for event in ("call.initiated", "call.answered"):
        assert post(app, *signed(event, INITIATED)).status_code == 200
    store = app.extensions["lifeline"].store
    with store.unit() as tx:  # attempt 1 exists already, so the transfer's insert breaks the key
        tx.add_transfer(TransferRecord("v3:test-1", 1, "+15550001111", "c", "r", "x",
                                       TransferStatus.FAILED, time.time(), time.time()))
    with caplog.at_level(logging.ERROR):
        response = post(app, *signed("call.dtmf.received", {**INITIATED, "digit": "0"}))
    assert response.status_code == 500  # a redelivery would meet the same bug
    assert "unexpected error" in caplog.text and "IntegrityError" in caplog.text


def test_a_row_no_version_writes_is_a_500_too(
        app: Flask, signed: WebhookFactory, caplog: pytest.LogCaptureFixture) -> None:
    assert post(app, *signed("call.initiated", INITIATED)).status_code == 200
    with app.extensions["lifeline"].store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE calls SET status = 'bogus'")
    with caplog.at_level(logging.ERROR):
        assert post(app, *signed("call.answered", INITIATED)).status_code == 500
    assert "ValueError" in caplog.text


def test_reads_while_the_store_is_down_answer_503_in_the_one_error_shape(api_app: Flask) -> None:
    api_app.extensions["lifeline"].store.engine = create_engine(
        "postgresql+psycopg://lifeline@127.0.0.1:9/gone", connect_args={"connect_timeout": 2})
    for path in ("/api/calls", "/api/calls?active=1", "/api/calls/v3:someone"):
        response = api_app.test_client().get(path, headers=AUTH)
        assert response.status_code == 503, path
        assert response.get_json()["error"] == {
            "status": 503, "code": "unavailable",
            "message": "the call store is unavailable; try again shortly"}


def test_the_live_feed_ends_its_stream_when_the_store_goes_down_so_the_client_reconnects(
        api_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    api_app.extensions["lifeline"].store.engine = create_engine(
        "postgresql+psycopg://lifeline@127.0.0.1:9/gone", connect_args={"connect_timeout": 2})
    with caplog.at_level(logging.WARNING, logger="lifeline.conversation.api"):
        response = api_app.test_client().get("/api/events?after=0", headers=AUTH)
    # The stream opened (200) and ended after its retry hint: the browser reconnects with its last id.
    assert response.status_code == 200 and response.get_data(as_text=True) == "retry: 1000\n\n"
    assert "feed stream ended: the store is unavailable" in caplog.text


def test_query_values_no_store_can_keep_are_refused_and_unknown_outcomes_named(api_app: Flask) -> None:
    client = api_app.test_client()
    for path in ("/api/calls?rule=%00", "/api/calls?q=a%00b", "/api/transcripts?cursor=a%00b"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 400, path
        assert "NUL" in response.get_json()["error"]["message"]
    forged = client.get("/api/transcripts?cursor=MXxhAGI=", headers=AUTH)  # base64 of "1|a<NUL>b"
    assert forged.status_code == 400 and "cursor" in forged.get_json()["error"]["message"]
    for paging in ("limit=1_0", "limit=%20%205", "offset=%D9%A3", "limit=+5"):
        assert client.get(f"/api/calls?{paging}", headers=AUTH).status_code == 400, paging
    assert client.get("/api/transcripts?limit=1_0", headers=AUTH).status_code == 400
    unknown = client.get("/api/calls?outcome=bogus", headers=AUTH)
    assert unknown.status_code == 400 and "transferred" in unknown.get_json()["error"]["message"]
    assert client.get("/api/calls?outcome=voicemail", headers=AUTH).status_code == 200
    long_id = client.get("/api/calls/v3:" + "x" * 5000, headers=AUTH)
    assert long_id.status_code == 404 and len(long_id.get_json()["error"]["message"]) < 200


def test_the_console_and_the_api_know_the_same_outcomes() -> None:
    from lifeline.console import names
    from lifeline.ivr.store import OUTCOMES
    assert set(names.OUTCOME) == set(OUTCOMES)


def test_a_get_of_a_calls_action_is_a_405_naming_the_method_not_a_404_for_a_call(api_app: Flask) -> None:
    client = api_app.test_client()
    wrong = client.get("/api/calls/v3:some-call/listening", headers=AUTH)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert wrong.get_json()["error"]["message"] == "/api/calls/v3:some-call/listening takes POST, not GET"
    # A GET route under a call stays itself, and an unknown call stays a 404.
    assert client.get("/api/calls/v3:some-call/transcript", headers=AUTH).status_code == 404
    missing = client.get("/api/calls/v3:some-call", headers=AUTH)
    assert missing.status_code == 404 and "no call" in missing.get_json()["error"]["message"]


def test_a_json_body_sent_without_its_content_type_is_refused_naming_the_header(api_app: Flask) -> None:
    client = api_app.test_client()
    as_form = client.post("/api/calls/v3:x/listening", data='{"paused": true}', headers=AUTH,
                          content_type="application/x-www-form-urlencoded")  # what curl -d sends
    assert as_form.status_code == 400
    assert as_form.get_json()["error"]["message"].endswith("with Content-Type: application/json")
    wrong = client.post("/api/calls/v3:x/listening", json={"paused": "yes"}, headers=AUTH)
    assert wrong.status_code == 400 and "Content-Type" not in wrong.get_json()["error"]["message"]
    dial = client.post("/api/calls", data='{"to": "+15557770000"}', headers=AUTH)
    assert dial.status_code == 400
    assert "Content-Type: application/json" in dial.get_json()["error"]["message"]


def test_every_405_names_the_methods_in_allow_and_in_the_one_error_shape(api_app: Flask) -> None:
    wrong = api_app.test_client().put("/healthz")
    assert wrong.status_code == 405
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"
    assert wrong.get_json()["error"]["message"].startswith("/healthz takes ")
    assert wrong.get_json()["error"]["message"].endswith(", not PUT")


def test_json_nested_past_the_webhooks_limit_is_a_400_not_a_500(api_app: Flask) -> None:
    deep = "{\"a\":" * 3000 + "1" + "}" * 3000
    for path in ("/api/calls", "/api/calls/v3:x/listening"):
        refused = api_app.test_client().post(path, data=deep, headers=AUTH, content_type="application/json")
        assert refused.status_code == 400, path
        assert refused.get_json()["error"]["code"] == "bad_request"


def test_a_csrf_token_with_non_ascii_characters_is_refused_403_not_a_500(api_app: Flask) -> None:
    client = api_app.test_client()
    client.post("/dashboard/signin", data={"token": API_TOKEN})
    assert client.post("/dashboard/signout", data={"csrf": "\u00e9t\u00e9"}).status_code == 403
    refused = client.post("/api/calls/v3:x/listening", json={"paused": True},
                          headers={"X-CSRF-Token": "\u00e9"})
    assert refused.status_code == 403


def test_an_upgrade_to_a_plain_route_is_a_400_saying_it_is_no_websocket(api_app: Flask) -> None:
    refused = api_app.test_client().get("/healthz", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["message"] == "/healthz is not a WebSocket: request it without Upgrade"


def test_api_answers_are_never_cached_or_sniffed_whatever_their_status(api_app: Flask) -> None:
    client = api_app.test_client()
    for path, headers in (("/api/calls", AUTH), ("/api/transcripts", AUTH), ("/api/calls", {})):
        response = client.get(path, headers=headers)
        assert response.headers.get("Cache-Control") == "no-store", path
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
