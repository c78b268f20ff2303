"""Guessing the token is throttled: wrong tokens per client address, then 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lifeline.factory import create_app
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError, StoreError
from lifeline.ivr.store.memory import MemoryStore
from lifeline.ivr.throttle import FailureThrottle, client_key

from .conftest import WebhookFactory
from .test_webhooks import INITIATED

TOKEN = "s3cret-token-value"
METRICS_TOKEN = "metrics-token-value-0001"
GUESSER = {"REMOTE_ADDR": "192.0.2.7"}
NEIGHBOUR = {"REMOTE_ADDR": "198.51.100.9"}


def build(app_config: dict[str, object], **extra: object) -> Flask:
    return create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_METRICS_TOKEN": METRICS_TOKEN,
                       "LIFELINE_AUTH_FAILURES": "3", **extra}, migrate=True)


@pytest.fixture
def guarded(app_config: dict[str, object]) -> Iterator[Flask]:
    application = build(app_config)
    yield application
    application.extensions["lifeline"].close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def guess(client: FlaskClient, path: str, times: int, environ: dict[str, str] = GUESSER) -> list[int]:
    return [client.get(path, headers=bearer("wrong-guess"), environ_base=environ).status_code
            for _ in range(times)]


@pytest.mark.parametrize("path", ["/api/calls", "/metrics", "/api/events"])
def test_after_the_limit_of_wrong_tokens_even_the_right_one_gets_429_with_retry_after(
        guarded: Flask, path: str) -> None:
    client = guarded.test_client()
    assert guess(client, path, 3) == [401, 401, 401]
    refused = client.get(path, headers=bearer(TOKEN), environ_base=GUESSER)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["status"] == 429 and error["code"] == "too_many_failures"
    assert "LIFELINE_AUTH_FAILURES" in error["message"] and "LIFELINE_TRUSTED_PROXIES" in error["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 300


def test_another_address_is_not_held_up_by_a_guesser(guarded: Flask) -> None:
    client = guarded.test_client()
    guess(client, "/api/calls", 3)
    assert client.get("/api/calls", headers=bearer(TOKEN), environ_base=NEIGHBOUR).status_code == 200


def test_right_tokens_and_requests_without_one_are_never_counted(guarded: Flask) -> None:
    client = guarded.test_client()
    for _ in range(10):
        assert client.get("/api/calls", headers=bearer(TOKEN), environ_base=GUESSER).status_code == 200
        assert client.get("/api/calls", environ_base=GUESSER).status_code == 401  # no token: no guess
    assert guess(client, "/api/calls", 2) == [401, 401]  # still under the limit of 3
    assert client.get("/api/calls", headers=bearer(TOKEN), environ_base=GUESSER).status_code == 200


def test_wrong_tokens_on_the_api_metrics_and_console_add_up(guarded: Flask) -> None:
    client = guarded.test_client()
    guess(client, "/api/calls", 1)
    guess(client, "/metrics", 1)
    client.post("/dashboard/signin", data={"token": "wrong-guess"}, environ_base=GUESSER)
    assert client.get("/metrics", headers=bearer(METRICS_TOKEN), environ_base=GUESSER).status_code == 429


def test_the_console_says_in_words_when_to_try_again(guarded: Flask) -> None:
    client = guarded.test_client()
    for _ in range(3):
        wrong = client.post("/dashboard/signin", data={"token": "wrong-guess"}, environ_base=GUESSER)
        assert wrong.status_code == 403 and b"Wrong token" in wrong.data
    page = client.post("/dashboard/signin", data={"token": TOKEN}, environ_base=GUESSER)
    assert page.status_code == 429 and 1 <= int(page.headers["Retry-After"]) <= 300
    assert b"Too many wrong tokens were tried from your address. Try again in " in page.data
    assert b'name="token"' in page.data and client.get_cookie("session") is None
    # A session opened before the guessing goes on working: it presents no token.
    other = guarded.test_client()
    assert other.post("/dashboard/signin", data={"token": TOKEN}, environ_base=NEIGHBOUR).status_code == 303
    assert other.get("/api/calls", environ_base=GUESSER).status_code == 200


def test_webhooks_from_a_throttled_address_are_still_acknowledged(guarded: Flask,
                                                                  signed: WebhookFactory) -> None:
    client = guarded.test_client()
    guess(client, "/api/calls", 3)
    body, headers = signed("call.initiated", INITIATED)
    acked = client.post("/webhooks/telnyx", data=body, headers=headers, environ_base=GUESSER)
    assert acked.status_code == 200
    forged = client.post("/webhooks/telnyx", data=body, headers={**headers, "telnyx-timestamp": "1"},
                         environ_base=GUESSER)
    assert forged.status_code == 403  # refused for its signature, as ever, and not counted


def test_behind_trusted_proxies_each_forwarded_client_is_counted_apart(app_config: dict[str, object]) -> None:
    application = build(app_config, LIFELINE_TRUSTED_PROXIES="1")
    client = application.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for _ in range(3):
        client.get("/api/calls", headers={**bearer("wrong"), "X-Forwarded-For": "192.0.2.7"},
                   environ_base=proxy)
    ok = client.get("/api/calls", headers={**bearer(TOKEN), "X-Forwarded-For": "198.51.100.9"},
                    environ_base=proxy)
    held = client.get("/api/calls", headers={**bearer(TOKEN), "X-Forwarded-For": "192.0.2.7"},
                      environ_base=proxy)
    assert (ok.status_code, held.status_code) == (200, 429)
    application.extensions["lifeline"].close()


def test_without_trusted_proxies_a_forged_forwarded_header_does_not_dodge_the_count(guarded: Flask) -> None:
    client = guarded.test_client()
    for n in range(3):
        client.get("/api/calls", headers={**bearer("wrong"), "X-Forwarded-For": f"203.0.113.{n}"},
                   environ_base=GUESSER)
    assert client.get("/api/calls", headers=bearer(TOKEN), environ_base=GUESSER).status_code == 429


def test_a_limit_of_zero_turns_throttling_off(app_config: dict[str, object]) -> None:
    application = build(app_config, LIFELINE_AUTH_FAILURES="0")
    client = application.test_client()
    assert set(guess(client, "/api/calls", 20)) == {401}
    assert client.get("/api/calls", headers=bearer(TOKEN), environ_base=GUESSER).status_code == 200
    application.extensions["lifeline"].close()


def test_the_door_opens_again_once_the_oldest_failure_leaves_the_window() -> None:
    throttle = FailureThrottle(MemoryStore(), limit=3, window_s=300.0)
    for at in (1000.0, 1100.0, 1200.0):
        assert throttle.retry_after("192.0.2.7", now=at) is None
        throttle.failed("192.0.2.7", now=at)
    assert throttle.retry_after("192.0.2.7", now=1250.0) == 50  # 1000 + 300 - 1250
    assert throttle.retry_after("192.0.2.7", now=1300.5) is None  # one more try, not three
    throttle.failed("192.0.2.7", now=1301.0)
    assert throttle.retry_after("192.0.2.7", now=1302.0) == 98  # until 1100's failure is 300 s old


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same /64: one host's block, one count
    ("::ffff:192.0.2.7", "192.0.2.7"),
    (None, "unknown"),
    ("not an address", "unknown"),
])
def test_clients_are_counted_by_address_and_ipv6_by_its_64(address: str | None, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.parametrize(("name", "value"), [
    ("LIFELINE_AUTH_FAILURES", "-1"), ("LIFELINE_AUTH_FAILURES", "many"),
    ("LIFELINE_AUTH_WINDOW_S", "0"), ("LIFELINE_TRUSTED_PROXIES", "11"),
])
def test_a_wrong_throttle_setting_is_named_at_start(app_config: dict[str, object], tmp_path: Path,
                                                    name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**app_config, name: value}, tmp_path)
    assert [p.setting for p in caught.value.problems] == [name]


class _DownStore(MemoryStore):
    """A store whose database is unreachable (every read and write of failures raises)."""

    def note_auth_failure(self, client: str, at: float, forget_before: float) -> None:
        raise StoreError("cannot record the failed sign-ins: the database is unavailable")

    def auth_failures(self, client: str, since: float) -> list[float]:
        raise StoreError("cannot read the failed sign-ins: the database is unavailable")


def test_while_the_store_is_down_nothing_is_counted_or_refused() -> None:
    throttle = FailureThrottle(_DownStore(), limit=1, window_s=300.0)
    throttle.failed("192.0.2.7", now=1000.0)
    assert throttle.retry_after("192.0.2.7", now=1001.0) is None
