"""`flask bench` end to end under gunicorn, including a short chaos drill (bounded: 24 calls)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from flask import Flask

from lifeline.ivr.config import Settings
from lifeline.ivr.logs import JsonFormatter
from lifeline.simulator.bench import (
    BenchConfig,
    BenchUsageError,
    _report,
    ack_by_window,
    app_log_problems,
    bucket_quantiles,
    histogram_buckets,
    missed_escalation,
    parse_cpus,
    percentile,
    process_tree_cpu_s,
    run_bench,
    sweep_interval_s,
)
from lifeline.simulator.caller import PATIENCE_S, CallResult, wait_for_menu
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.haproxy import HAProxyMissing, config_text, haproxy_path
from lifeline.simulator.legs import Gather
from lifeline.simulator.scenario import load_scenario

from .conftest import ROOT, postgres_schema, postgres_url_or_skip

EXAMPLES = ROOT / "examples" / "calls"


def test_chaos_drill_leaves_no_double_transfer_no_error_and_no_open_call() -> None:
    report = run_bench(BenchConfig(calls=24, concurrency=6, chaos=0.2, speed=10, seed=3, ramp_s=1),
                       echo=lambda _: None)
    assert report["calls"] == 24
    assert report["double_transfers"] == 0
    assert report["calls_not_closed"] == 0
    assert (report["refused_commands"], report["webhook_model_problems"]) == (0, 0)  # strict emulator
    assert report["app_log_problems"] == 0, report["app_log_sample"]
    assert report["escalations"] > 0 and report["webhooks"] > 100
    assert report["escalation_latency_ms"]["p50"] is not None


def test_a_twilio_chaos_drill_leaves_no_double_transfer_and_reports_no_telnyx_only_counts() -> None:
    report = run_bench(BenchConfig(calls=12, concurrency=4, chaos=0.2, speed=10, seed=5, ramp_s=1,
                                   provider="twilio"), echo=lambda _: None)
    assert report["calls"] == 12
    assert (report["double_transfers"], report["calls_not_closed"]) == (0, 0)
    assert report["app_log_problems"] == 0, report["app_log_sample"]
    assert report["escalations"] > 0
    assert (report["refused_commands"], report["webhook_model_problems"]) == (None, None)


def test_bench_command_writes_its_report(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = app.test_cli_runner().invoke(args=["bench", "--calls", "6", "--concurrency", "3",
                                                "--ramp", "0.5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["ack_ms"]) == {"p50", "p95", "p99"}
    assert report["calls"] == 6 and report["errors"] == 0
    assert "6/6 calls" in result.output  # progress is shown while it runs
    assert report["sweep_interval_s"] == Settings.sweep_interval_s == 5.0
    assert "sweep every 5 s" in result.output


def test_the_bench_sweeps_as_often_as_a_deployment_unless_the_operator_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert sweep_interval_s() == Settings.sweep_interval_s
    monkeypatch.setenv("LIFELINE_SWEEP_INTERVAL", "2")
    assert sweep_interval_s() == 2.0


def test_the_app_and_the_generator_can_run_on_cpus_of_their_own_and_the_report_says_what_each_used() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    app_cpu, generator_cpu = cpus[0], cpus[-1]
    report = run_bench(BenchConfig(calls=6, concurrency=3, speed=10, ramp_s=0.5, app_cpus=(app_cpu,),
                                   generator_cpus=(generator_cpu,)), echo=lambda _: None)
    assert report["errors"] == 0 and report["double_transfers"] == 0
    cpu = report["cpu"]
    assert cpu["app_affinity_seen"] == [app_cpu]  # gunicorn ran where it was put
    assert (cpu["app_cpus"], cpu["generator_cpus"]) == ([app_cpu], [generator_cpu])
    assert cpu["app_cpu_s"] > 0 and cpu["generator_cpu_s"] > 0
    assert cpu["app_cpu_ms_per_webhook"] == pytest.approx(1000 * cpu["app_cpu_s"] / report["webhooks"],
                                                          abs=0.01)
    assert sorted(os.sched_getaffinity(0)) == cpus  # the bench gave this process its CPUs back
    # The app timed every webhook the emulator saw acknowledged, and each escalation it made.
    assert report["app_side"]["webhook_ack_ms_at_most"]["count"] == report["webhooks"]
    assert report["app_side"]["escalation_ms_at_most"]["count"] == report["escalations"]
    assert report["app_side"]["webhook_ack_ms_at_most"]["p50"] is not None


def test_app_side_quantiles_are_the_bucket_bounds_they_fall_under() -> None:
    exposition = "\n".join([
        "# HELP lifeline_webhook_ack_seconds Time",
        'lifeline_webhook_ack_seconds_bucket{le="0.005"} 50.0',
        'lifeline_webhook_ack_seconds_bucket{le="0.01"} 94.0',
        'lifeline_webhook_ack_seconds_bucket{le="0.025"} 99.0',
        'lifeline_webhook_ack_seconds_bucket{le="+Inf"} 100.0',
        'lifeline_webhook_ack_seconds_count 100.0',
        'other_seconds_bucket{le="0.005"} 7.0',
    ])
    buckets = histogram_buckets(exposition, ("lifeline_webhook_ack_seconds", "absent_seconds"))
    assert buckets["absent_seconds"] == {}
    assert bucket_quantiles(buckets["lifeline_webhook_ack_seconds"]) == {
        "count": 100, "p50": 5.0, "p95": 25.0, "p99": 25.0}
    assert bucket_quantiles({0.005: 1.0, float("inf"): 100.0})["p50"] is None  # past the last bound
    assert bucket_quantiles({}) == {"count": 0, "p50": None, "p95": None, "p99": None}


def test_cpu_lists_are_parsed_and_cpus_the_machine_does_not_offer_are_refused() -> None:
    first = min(os.sched_getaffinity(0))
    assert parse_cpus(str(first)) == (first,)
    assert parse_cpus(f"{first}-{first}") == (first,)
    with pytest.raises(BenchUsageError, match="numbers such as"):
        parse_cpus("one")
    with pytest.raises(BenchUsageError, match="lets the bench use"):
        parse_cpus("4096")


def test_process_tree_cpu_counts_the_children_too() -> None:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.3\n"
                              "while time.process_time() < end: pass\ntime.sleep(30)"])
    try:
        wait_until_used = time.monotonic() + 20
        while process_tree_cpu_s(os.getpid()) - (os.times().user + os.times().system) < 0.25:
            assert time.monotonic() < wait_until_used, "the child's CPU never showed"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0


# ----- issue 10 item 9: the bench reports what went wrong ---------------------------------------


def _played(scenario_file: str, *, served: bool = True, transfer: bool = False) -> CallResult:
    """A finished call of an example scenario, as the bench's caller leaves it (no app involved)."""
    emulator = Emulator()
    leg = emulator.incoming_call()
    emulator.close()
    leg.log.answered = served
    if transfer:
        leg.log.transfers.append({"t_ms": 1.0, "to": "+15550001111", "command_id": "c", "client_state": {}})
    return CallResult(scenario=load_scenario(EXAMPLES / scenario_file), leg=leg, speed=10)


def test_a_caller_who_needed_a_person_and_got_none_is_a_missed_escalation_and_an_error() -> None:
    missed = _played("02-asks-for-human.yaml")
    served = _played("02-asks-for-human.yaml", transfer=True)
    report = _report(BenchConfig(),
                     [(missed, False), (served, False), (_played("01-calm-balance.yaml"), False)],
                     0, [], 1.0)
    assert report["missed_escalations"] == 1 and report["errors"] == 1
    assert report["missed_sample"] == [missed.scenario.name]


def test_acknowledgements_are_grouped_by_when_the_webhook_was_sent_in_the_run() -> None:
    early, late = _played("01-calm-balance.yaml"), _played("01-calm-balance.yaml")
    started = early.leg.log.t0
    late.leg.log.t0 = started + 12.0  # this call began 12 s into the run
    early.leg.log.timeline[:] = [{"t_ms": 1000.0, "kind": "webhook", "status": 200, "ack_ms": 80.0},
                                 {"t_ms": 2000.0, "kind": "webhook", "status": 503, "ack_ms": 9.0}]
    late.leg.log.timeline[:] = [{"t_ms": 500.0, "kind": "webhook", "status": 200, "ack_ms": 5.0},
                                {"t_ms": 600.0, "kind": "command", "status": 200}]
    windows = ack_by_window([early, late], started, 10.0)
    assert [(w["from_s"], w["webhooks"], w["p50"]) for w in windows] == [(0.0, 1, 80.0), (10.0, 1, 5.0)]


def test_a_caller_who_hung_up_before_asking_is_not_a_missed_escalation() -> None:
    assert not missed_escalation(_played("02-asks-for-human.yaml"), cut_short=True)
    # One never served is counted once, as a caller without a menu.
    report = _report(BenchConfig(), [(_played("02-asks-for-human.yaml", served=False), False)], 0, [], 1.0)
    assert (report["calls_without_menu"], report["missed_escalations"], report["errors"]) == (1, 0, 1)


def _json_line(level: int, logger: str, message: str, call_id: str = "v3:abc") -> str:
    record = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    record.call_id = call_id
    return JsonFormatter().format(record)


def test_the_bench_reads_the_apps_errors_from_its_json_log_lines(tmp_path: Path) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("\n".join([
        _json_line(logging.INFO, "lifeline.calls.caller", "menu main opened"),
        _json_line(logging.WARNING, "lifeline.calls.agent", "agent did not take the call (busy)"),
        # What the issue saw missed: an app error without a "] ERROR " prefix.
        _json_line(logging.ERROR, "lifeline.providers.telnyx",
                   "webhook call.hangup failed: deadlock detected"),
        _json_line(logging.CRITICAL, "lifeline", "worker cannot reach the database"),
        "Traceback (most recent call last):",  # printed outside logging
        "a plain line that reports nothing",
    ]) + "\n")
    problems, by_logger = app_log_problems([log_file, tmp_path / "absent.log"])
    assert by_logger == {"lifeline.providers.telnyx": 1, "lifeline": 1}
    assert problems[0] == ("ERROR lifeline.providers.telnyx call=v3:abc "
                           "webhook call.hangup failed: deadlock detected")
    assert len(problems) == 3


def _menu() -> Gather:
    return Gather(valid="0123456789", max_digits=1, timeout_s=5)


def test_a_caller_gives_up_after_the_same_real_dead_air_at_every_speed() -> None:
    for speed in (1.0, 100.0):
        emulator = Emulator(speed=speed)
        leg = emulator.incoming_call()
        # The app's menu comes 0.3 s later in real time whatever the speed; before, a caller at
        # speed 100 gave up after 20 s / 100 = 0.2 s.
        timer = threading.Timer(0.3, lambda lg=leg: setattr(lg, "gather", _menu()))
        timer.start()
        try:
            assert wait_for_menu(emulator, leg, PATIENCE_S), f"gave up at speed {speed}"
        finally:
            timer.join()
            emulator.close()


def test_a_playing_prompt_is_not_dead_air() -> None:
    emulator = Emulator(speed=100)
    leg = emulator.incoming_call()
    leg.media_free_at = time.monotonic() + 0.6  # a prompt is still playing for 0.6 s
    timer = threading.Timer(0.5, lambda: setattr(leg, "gather", _menu()))
    timer.start()
    try:
        # Patience of 0.1 s of dead air: the caller listens to the prompt, then still gets the menu.
        assert wait_for_menu(emulator, leg, 0.1)
    finally:
        timer.join()
        emulator.close()


def test_instances_need_a_shared_postgresql_database() -> None:
    with pytest.raises(BenchUsageError, match="--database-url postgresql://"):
        run_bench(BenchConfig(instances=2), echo=lambda _: None)


def test_the_bench_refuses_a_database_that_holds_calls_or_is_not_sqlite_or_postgresql(tmp_path: Path) -> None:
    import tempfile

    from lifeline.ivr.store import CallRecord, CallStatus
    from lifeline.ivr.store.sql import SqlStore
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = SqlStore(url)
    with store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id="v3:real", call_session_id=None, call_leg_id=None,
                                  from_number="+15551230001", to_number="+15550100000",
                                  status=CallStatus.MENU, created_at=time.time(), updated_at=time.time()))
    store.close()
    before = set(Path(tempfile.gettempdir()).glob("lifeline-bench-*"))
    with pytest.raises(BenchUsageError, match="holds calls already"):
        run_bench(BenchConfig(calls=1, database_url=url), echo=lambda _: None)
    with pytest.raises(BenchUsageError, match="is not SQLite or PostgreSQL"):
        run_bench(BenchConfig(calls=1, database_url="mysql://x/y"), echo=lambda _: None)
    assert set(Path(tempfile.gettempdir()).glob("lifeline-bench-*")) == before  # nothing left behind
    after = SqlStore(url)
    assert [c.status for c in after.list_calls()] == [CallStatus.MENU]  # the real call untouched
    after.close()
    # A live database one revision behind is refused as it is, not migrated first.
    from sqlalchemy import create_engine, inspect
    from sqlalchemy import text as sql
    behind = create_engine(url)
    with behind.begin() as conn:
        conn.execute(sql("DROP INDEX ix_calls_recording_due"))
        conn.execute(sql("UPDATE alembic_version SET version_num = '0004'"))
    with pytest.raises(BenchUsageError, match="holds calls already"):
        run_bench(BenchConfig(calls=1, database_url=url), echo=lambda _: None)
    with behind.connect() as conn:
        assert conn.execute(sql("SELECT version_num FROM alembic_version")).scalar() == "0004"
        assert "ix_calls_recording_due" not in {i["name"] for i in inspect(conn).get_indexes("calls")}
    behind.dispose()


def test_the_haproxy_config_balances_instances_checks_health_and_keeps_websockets_open() -> None:
    text = config_text(18380, [18381, 18382])
    assert "bind 127.0.0.1:18380" in text and "option httpchk GET /healthz" in text
    assert "server app1 127.0.0.1:18381 check" in text and "server app2 127.0.0.1:18382 check" in text
    assert "timeout tunnel" in text  # upgraded (media WebSocket) connections stay open


def _haproxy_or_skip() -> None:
    try:
        haproxy_path()
    except HAProxyMissing as exc:
        if os.environ.get("LIFELINE_REQUIRE_HAPROXY") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.mark.postgres
def test_two_instances_behind_haproxy_on_one_postgresql_hold_under_chaos() -> None:
    _haproxy_or_skip()
    with postgres_schema(postgres_url_or_skip()) as url:
        report = run_bench(BenchConfig(calls=16, concurrency=8, chaos=0.1, speed=10, seed=5, ramp_s=1,
                                       instances=2, workers=1, database_url=url), echo=lambda _: None)
    assert report["instances"] == 2 and report["calls"] == 16
    assert all(count > 10 for count in report["requests_per_instance"]), report  # both served
    assert report["errors"] == 0, report
    assert (report["double_transfers"], report["calls_not_closed"], report["missed_escalations"]) == (0, 0, 0)
    assert report["escalations"] > 0 and report["webhooks"] > 50
    assert (report["refused_commands"], report["webhook_model_problems"]) == (0, 0)
