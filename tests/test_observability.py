"""Log lines (time, level, logger, call; text or JSON; nothing secret) and GET /metrics."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeline.ivr import logs
from lifeline.ivr.metrics import Metrics
from lifeline.ivr.scope import call_scope, current_call
from lifeline.ivr.serial import KeyedSerialExecutor
from lifeline.ivr.store.sql import SqlStore
from lifeline.simulator.audio import load_pcmu
from lifeline.simulator.runner import Simulation

from .conftest import AGENTS, ROOT, wait_until

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) (?P<logger>[\w.]+) "
                       r"call=(?P<call>\S+) (?P<message>.*)$")


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    """A logger writing through a Lifeline handler into a buffer."""
    buffer = io.StringIO()
    logger = logging.getLogger("lifeline.test")
    handler = logs.make_handler("text", secrets=["s3cret-api-token-value"], stream=buffer)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield buffer, logger
    logger.removeHandler(handler)


def test_every_line_has_time_level_logger_and_call(captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    logger.info("outside any call")
    with call_scope("v3:abc-def"):
        logger.warning("inside a call")
    first, second = (TEXT_LINE.match(line) for line in buffer.getvalue().splitlines())
    assert first and (first["level"], first["logger"], first["call"]) == ("INFO", "lifeline.test", "-")
    assert second and (second["level"], second["call"], second["message"]) == \
        ("WARNING", "v3:abc-def", "inside a call")


def test_digit_strings_and_secrets_are_masked_in_messages_and_tracebacks(
        captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    logger.info("caller said %s to %s", "my card is 4111 1111 1111 1111", "+15550001111")
    logger.info("calling with Authorization: Bearer %s and ?token=abcdef123", "s3cret-api-token-value")
    logger.info("db at postgresql://bob:hunter2@db/calls, key KEY0123456789ABCDEFGHIJ")
    try:
        raise ValueError("PIN 9876 rejected")
    except ValueError:
        logger.exception("failed for v3:call-1234abcd")
    text = buffer.getvalue()
    for secret in ("4111", "5550001111", "s3cret", "abcdef123", "hunter2", "KEY0123456789", "9876"):
        assert secret not in text
    assert "my card is #### #### #### ####" in text and "+###########" in text
    assert "v3:call-1234abcd" in text  # digits inside an identifier stay, so lines remain traceable
    assert "Traceback" in text and "ValueError: PIN #### rejected" in text


def test_line_numbers_dates_and_migration_revisions_stay_readable(
        captured: tuple[io.StringIO, logging.Logger]) -> None:
    buffer, logger = captured
    logger.info("GET /api/calls?since=2026-11-30T06:11:05Z&until=2026-12-01 from caller 4111 2222")
    try:
        raise ValueError("PIN 9876 rejected")
    except ValueError:
        logger.exception("failed")
    migrations = logging.getLogger("alembic.runtime.migration")
    migrations.addHandler(logger.handlers[0])
    migrations.propagate = False
    try:
        migrations.warning("Running upgrade 0003 -> 0004, outbox lanes")
    finally:
        migrations.removeHandler(logger.handlers[0])
        migrations.propagate = True
    text = buffer.getvalue()
    assert "since=2026-11-30T06:11:05Z&until=2026-12-01 from caller #### ####" in text
    frame = next(line for line in text.splitlines() if line.lstrip().startswith('File "'))
    assert re.search(r", line \d+, in test_line_numbers", frame), frame
    assert "ValueError: PIN #### rejected" in text
    assert "Running upgrade 0003 -> 0004, outbox lanes" in text


@pytest.mark.parametrize(("said", "logged"), [
    ("born 1985-04-12", "born ####-##-##"),  # a bare date may be a date of birth
    ("heard: 0800-12-1234567", "heard: ####-##-#######"),  # shaped like a date at first only
    ("card 4111-11-1111111111", "card ####-##-##########"),
    ("ref 1234-10-10-5678", "ref ####-##-##-####"),
    ("since=2026-11-30-1234", "since=####-##-##-####"),
    ("at 2026-11-30T06:11:05.123Z, then", "at 2026-11-30T06:11:05.123Z, then"),
    ("sent 2026-11-30 10:00+01:00.", "sent 2026-11-30 10:00+01:00."),
])
def test_only_timestamps_and_query_dates_escape_the_digit_mask(said: str, logged: str) -> None:
    assert logs.mask(said) == logged


@pytest.mark.parametrize(("said", "logged"), [
    ("rejected answer: HTTP 422 90015 Invalid Call Control ID",
     "rejected answer: HTTP 422 90015 Invalid Call Control ID"),
    ("Booting worker with pid: 12345", "Booting worker with pid: 12345"),
    ("port 8000 failed", "port 8000 failed"),
    ("GET /api/calls?limit=50&offset=1000", "GET /api/calls?limit=50&offset=1000"),
    ("my number is 07700 900123, port it", "my number is ##### ######, port it"),
    ("HTTP 422 4111 1111 1111 1111", "HTTP 422 #### #### #### ####"),
    ("the database schema is at revision 0005, the code needs 0007: run `flask db upgrade`",
     "the database schema is at revision 0005, the code needs 0007: run `flask db upgrade`"),
    ("Listening at: http://127.0.0.1:8104 (12345)", "Listening at: http://127.0.0.1:8104 (12345)"),
    ("revision 4111 1111 1111 1111", "revision #### #### #### ####"),
    ("I said (12345)", "I said (#####)"),
    ("Connection in use: ('127.0.0.1', 18020)", "Connection in use: ('127.0.0.1', 18020)"),
    ("Connection in use: ('::1', 8000)", "Connection in use: ('::1', 8000)"),
    ("I said ('my number', 5551234567)", "I said ('my number', ##########)"),
    ("event_id=123456 to https://h.example.com failed", "event_id=123456 to https://h.example.com failed"),
    ("event_id=1234 5678 9012 3456", "event_id=1234 #### #### ####"),
])
def test_numbers_that_name_the_system_stay_readable_and_what_follows_them_does_not(
        said: str, logged: str) -> None:
    assert logs.mask(said) == logged


def test_a_traceback_frame_keeps_its_line_number_and_still_loses_a_secret() -> None:
    frames = '  |   File "/app/x.py", line 1234, in f\n  File "/app/y.py", line 88, in g  # token=abcdef123'
    assert logs.mask_traceback(frames) == '  |   File "/app/x.py", line 1234, in f\n' \
                                          '  File "/app/y.py", line 88, in g  # token=***'


def test_json_lines_carry_the_same_fields() -> None:
    buffer = io.StringIO()
    logger = logging.getLogger("lifeline.test.json")
    logger.addHandler(logs.make_handler("json", stream=buffer))
    logger.propagate = False
    with call_scope("v3:json-call"):
        logger.error("agent %s did not answer", "+15550002222")
    entry = json.loads(buffer.getvalue())
    assert set(entry) == {"time", "level", "logger", "call_id", "message"}
    assert (entry["level"], entry["logger"], entry["call_id"]) == \
        ("ERROR", "lifeline.test.json", "v3:json-call")
    assert entry["message"] == "agent +########### did not answer"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        logs.make_handler("xml")


def test_background_work_runs_in_the_scope_of_the_call_that_queued_it() -> None:
    executor = KeyedSerialExecutor(2, "test")
    seen: list[str | None] = []
    with call_scope("v3:queued-here"):
        executor.submit("k", lambda: seen.append(current_call()))
    executor.submit("k", lambda: seen.append(current_call()))
    assert executor.wait_idle(5)
    executor.shutdown()
    assert seen == ["v3:queued-here", None]


@pytest.fixture
def metered() -> Iterator[Simulation]:
    """The app on loopback with a metrics token of its own, beside the API token."""
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": "test-token",
                     "LIFELINE_METRICS_TOKEN": "metrics-token-0123456789"}, speed=20) as sim:
        yield sim


def _scrape(sim: Simulation, token: str) -> tuple[int, str]:
    response = sim.app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})  # type: ignore[union-attr]
    if response.status_code == 200:  # Prometheus's own type, its charset once
        assert response.headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    return response.status_code, response.get_data(as_text=True)


def test_metrics_need_a_token_and_accept_either_one(metered: Simulation) -> None:
    assert metered.app.test_client().get("/metrics").status_code == 401  # type: ignore[union-attr]
    assert _scrape(metered, "wrong")[0] == 401
    assert _scrape(metered, "test-token")[0] == 200
    assert _scrape(metered, "metrics-token-0123456789")[0] == 200


def test_metrics_take_the_bearer_scheme_in_any_case_and_refuse_a_token_in_the_url(
        metered: Simulation) -> None:
    client = metered.app.test_client()  # type: ignore[union-attr]
    assert client.get("/metrics", headers={"Authorization": "bearer test-token"}).status_code == 200
    in_url = client.get("/metrics?token=test-token", headers={"Authorization": "Bearer test-token"})
    assert in_url.status_code == 400 and "Authorization: Bearer" in in_url.get_json()["error"]["message"]


def test_metrics_after_an_escalated_call_name_every_figure(metered: Simulation) -> None:
    leg = metered.emulator.incoming_call(agent="answer")
    assert metered.emulator.wait_for_gather(leg, 5)
    metered.emulator.press(leg, "0")
    assert wait_until(lambda: leg.log.bridged)
    lifeline = metered.app.extensions["lifeline"]  # type: ignore[union-attr]
    assert wait_until(lambda: lifeline.store.get_call(leg.call_control_id).status == "transferred")
    assert lifeline.sender.wait_idle(5)

    def scraped() -> dict[str, Any]:
        status, text = _scrape(metered, "test-token")
        assert status == 200
        return {f.name: f for f in text_string_to_metric_families(text)}

    def value(families: dict[str, Any], name: str, sample: str, **labels: str) -> float:
        return sum(s.value for s in families[name].samples
                   if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    # The bridge's own webhooks can queue a command just after the sender went idle; once the
    # call settles, the gauge must come back to zero.
    assert wait_until(lambda: value(scraped(), "lifeline_outbox_depth", "lifeline_outbox_depth") == 0), \
        "commands were left undelivered"
    families = scraped()
    assert {"lifeline_webhook_ack_seconds", "lifeline_escalation_latency_seconds",
            "lifeline_transcription_real_time_factor", "lifeline_outgoing_delivery_failures",
            "lifeline_calls", "lifeline_calls_ended", "lifeline_escalations", "lifeline_transfers",
            "lifeline_outbox_depth", "lifeline_outbox_oldest_age_seconds",
            "lifeline_commands_rejected"} <= set(families)

    assert value(families, "lifeline_webhook_ack_seconds", "lifeline_webhook_ack_seconds_count") >= 3
    assert value(families, "lifeline_escalation_latency_seconds",
                 "lifeline_escalation_latency_seconds_count") == 1
    assert value(families, "lifeline_escalations", "lifeline_escalations_total", rule="dtmf_0") == 1
    assert value(families, "lifeline_transfers", "lifeline_transfers_total", outcome="connected") == 1
    assert value(families, "lifeline_calls", "lifeline_calls", state="transferred") == 1
    assert value(families, "lifeline_outbox_depth", "lifeline_outbox_depth") == 0


def test_metrics_add_up_across_gunicorn_workers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELNYX_", "LIFELINE_", "PROMETHEUS_"))}
    env.update({"TELNYX_API_KEY": "KEY_test_0123456789abcdef", "LIFELINE_MONITOR": "off",
                # Not the examples' key: its private half is published, and a server refuses it.
                "TELNYX_PUBLIC_KEY": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
                "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx",
                "LIFELINE_API_TOKEN": "test-token-0123456789", "DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    SqlStore(env["DATABASE_URL"]).close()  # the deploy step (`flask db upgrade`): workers never migrate
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                               "--workers", "2", "--bind", f"127.0.0.1:{port}", "app:app"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _get(f"{base}/healthz") == 200, timeout=60), "gunicorn never answered"
        # Each worker writes its own file once it has built the app: both run in multiprocess mode.
        assert wait_until(lambda: len(list((tmp_path / "metrics").glob("histogram_*.db"))) == 2, timeout=60)
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(20):  # a new connection each time, so either worker may take it
                assert client.post(f"{base}/webhooks/telnyx", content=b"{}").status_code == 403
            scraped = client.get(f"{base}/metrics", headers={"Authorization": "Bearer test-token-0123456789"})
        counts = [s.value for f in text_string_to_metric_families(scraped.text) for s in f.samples
                  if s.name == "lifeline_webhook_ack_seconds_count"]
        assert counts == [20.0]
    finally:
        server.terminate()
        server.wait(30)


_OBSERVE = """
from lifeline.ivr.metrics import Metrics
metrics = Metrics()
for _ in range({n}):
    metrics.webhook_ack.observe(0.01)
metrics.delivery_failed("rejected", {n})
"""


def test_a_scrape_adds_up_what_every_process_measured(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (3, 4):  # two processes, as two gunicorn workers would be
        subprocess.run([sys.executable, "-c", _OBSERVE.format(n=n)], cwd=ROOT, env=env, check=True,
                       timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    store = SqlStore(f"sqlite:///{tmp_path / 'db'}")
    try:
        text = Metrics().render(store).decode()
    finally:
        store.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("lifeline_webhook_ack_seconds_count", ())] == 7
    assert samples[("lifeline_outgoing_delivery_failures_total",
                    (("kind", "rejected"), ("target", "telnyx")))] == 7


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_the_local_engine_reports_its_real_time_factor() -> None:
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": "test-token"}, engine="local",
                    speed=20) as sim:
        leg = sim.emulator.incoming_call()
        assert sim.emulator.wait_for_gather(leg, 5)
        sim.emulator.say(leg, "", 0, audio=load_pcmu(ROOT / "examples/calls/audio/01-calm-balance-1.wav"))
        lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
        assert wait_until(lambda: bool(lifeline.store.messages(leg.call_control_id)), timeout=15)
        families = {f.name: f for f in text_string_to_metric_families(_scrape(sim, "test-token")[1])}
        [count] = [s.value for s in families["lifeline_transcription_real_time_factor"].samples
                   if s.name == "lifeline_transcription_real_time_factor_count"]
        assert count >= 1
