"""`flask bench` end to end under gunicorn, including a short chaos drill (bounded: 24 calls)."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask

from simulator.bench import BenchConfig, percentile, run_bench


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


def test_bench_command_writes_its_report(app: Flask, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = app.test_cli_runner().invoke(args=["bench", "--calls", "6", "--concurrency", "3",
                                                "--ramp", "0.5", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["ack_ms"]) == {"p50", "p95", "p99"}
    assert report["calls"] == 6 and report["errors"] == 0
    assert "6/6 calls" in result.output  # progress is shown while it runs


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0
