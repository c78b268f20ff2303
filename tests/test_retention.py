"""Retention: a purge deletes old calls' rows, then their recordings; `flask retention purge` says so."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from lifeline import create_app
from lifeline.ivr.errors import StoreError
from lifeline.ivr.metrics import Metrics
from lifeline.ivr.recording_sinks import DirectorySink, SinkError
from lifeline.ivr.retention import DAY_S, Retention
from lifeline.ivr.store import CallStatus, OutputStore, PurgeBatch
from lifeline.ivr.store.memory import MemoryStore
from lifeline.simulator.runner import Simulation

from . import test_store_contract as contract
from .conftest import wait_until
from .test_retention_store_contract import ended_call

NOW = time.time()


def voicemail(folder: Path, ccid: str) -> str:
    """A kept recording as DirectorySink writes it (0600 in a 0700 folder)."""
    return DirectorySink(folder).put(ccid.replace(":", "_") + ".wav", b"RIFF....WAVE", "audio/wav")


def seed(store: OutputStore, folder: Path, count: int, days_ago: float) -> list[str]:
    """`count` calls that ended `days_ago` days ago, each with a recording; their recordings."""
    kept = []
    for n in range(count):
        ccid = f"v3:d{days_ago:g}-{n}"
        kept.append(voicemail(folder, ccid))
        ended_call(store, ccid, NOW - days_ago * DAY_S - n, recording=kept[-1])
    return kept


class FlakySink(DirectorySink):
    """A directory sink whose deletes fail while `refusing` is set (a full disk, a bucket's 503)."""

    refusing = True

    def delete(self, location: str) -> None:
        if self.refusing:
            raise SinkError(f"cannot remove {location}: [Errno 30] Read-only file system")
        super().delete(location)


def test_a_purge_deletes_old_calls_rows_then_their_recordings_and_counts_both(tmp_path: Path) -> None:
    store, metrics = MemoryStore(), Metrics()
    old, recent = seed(store, tmp_path / "rec", 3, 40), seed(store, tmp_path / "rec", 2, 10)
    retention = Retention(store, DirectorySink(tmp_path / "rec"), 30, metrics=metrics, batch=2, pause_s=0)
    seen: list[int] = []
    report = retention.purge(30, progress=lambda r: seen.append(r.calls))
    assert report.calls == 3 and report.recordings == 3 and report.batches == 3 and seen == [2, 3, 3]
    assert not any(os.path.exists(p) for p in old) and all(os.path.exists(p) for p in recent)
    assert {c.call_control_id for c in store.list_calls()} == {"v3:d10-0", "v3:d10-1"}
    sample = metrics.registry.get_sample_value
    assert sample("lifeline_retention_purged_total", {"kind": "calls"}) == 3
    assert sample("lifeline_retention_purged_total", {"kind": "events"}) == 6
    assert sample("lifeline_retention_purged_total", {"kind": "recordings"}) == 3


def test_a_dry_run_counts_and_deletes_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    old = seed(store, tmp_path / "rec", 3, 40)
    report = Retention(store, DirectorySink(tmp_path / "rec"), None, pause_s=0).purge(30, dry_run=True)
    assert (report.calls, report.recordings, report.rows["feed"]) == (3, 3, 9)
    assert all(os.path.exists(p) for p in old) and len(store.list_calls()) == 3


def test_a_recording_the_sink_refuses_is_logged_and_removed_by_the_next_purge(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, metrics = MemoryStore(), Metrics()
    [kept] = seed(store, tmp_path / "rec", 1, 40)
    sink = FlakySink(tmp_path / "rec")
    retention = Retention(store, sink, 30, metrics=metrics, pause_s=0)
    with caplog.at_level(logging.WARNING, "lifeline.ivr.retention"):
        first = retention.purge(30)
    assert (first.calls, first.recordings, first.recordings_failed) == (1, 0, 1)
    assert store.get_call("v3:d40-0") is None and os.path.exists(kept)  # the rows went all the same
    assert f"recording {kept} stays for now" in caplog.text and "Read-only file system" in caplog.text
    assert metrics.registry.get_sample_value("lifeline_retention_recording_failures_total") == 1
    sink.refusing = False
    # Another process (here a new Retention, as after a restart) finds it in the store.
    second = Retention(store, sink, 30, pause_s=0).purge(30)
    assert (second.calls, second.recordings, second.recordings_failed) == (0, 1, 0)
    assert not os.path.exists(kept) and store.purged_files() == []


def test_unset_retention_keeps_everything_and_schedules_no_purge(tmp_path: Path) -> None:
    store = MemoryStore()
    seed(store, tmp_path / "rec", 1, 4000)
    assert Retention(store, DirectorySink(tmp_path / "rec"), None).run() is None
    assert len(store.list_calls()) == 1


def test_a_live_call_is_never_purged_by_the_scheduled_run(tmp_path: Path) -> None:
    store = MemoryStore()
    with store.unit() as tx:
        tx.insert_call(replace(contract.new_call("v3:live", CallStatus.VOICEMAIL),
                               created_at=NOW - 90 * DAY_S))
    report = Retention(store, DirectorySink(tmp_path / "rec"), 1, pause_s=0).run()
    assert report is not None and report.calls == 0 and store.get_call("v3:live") is not None


# The monitor and the command.


@pytest.fixture
def retained(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    application = create_app({**app_config, "LIFELINE_RETENTION_DAYS": "30",
                              "LIFELINE_RECORDINGS_DIR": str(tmp_path / "rec")}, migrate=True)
    yield application
    application.extensions["lifeline"].close()


def test_the_monitor_schedules_the_purge_as_a_job_of_its_own_when_retention_is_set(
        retained: Flask, app: Flask) -> None:
    jobs = {job.id: job for job in retained.extensions["lifeline"].monitor._schedule(BackgroundScheduler())
            .get_jobs()}
    assert set(jobs) == {"lifeline-sweep", "lifeline-upkeep", "lifeline-retention"}
    assert jobs["lifeline-retention"].trigger.interval.total_seconds() == 3600
    unset = {job.id for job in app.extensions["lifeline"].monitor._schedule(BackgroundScheduler()).get_jobs()}
    assert "lifeline-retention" not in unset


def test_flask_retention_purge_prints_what_it_would_delete_then_deletes_it(retained: Flask,
                                                                            tmp_path: Path) -> None:
    store = retained.extensions["lifeline"].store
    old = seed(store, tmp_path / "rec", 3, 40)
    seed(store, tmp_path / "rec", 1, 5)
    assert stat.S_IMODE(os.stat(old[0]).st_mode) == 0o600
    runner = retained.test_cli_runner()
    dry = runner.invoke(args=["retention", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete (dry run): calls that ended before " in dry.output and "(30 days ago)" in dry.output
    assert "  calls: 3\n" in dry.output and "  events: 6\n" in dry.output and "  recordings: 3" in dry.output
    assert all(os.path.exists(p) for p in old)
    done = runner.invoke(args=["retention", "purge", "--older-than", "1"])
    assert done.exit_code == 0, done.output
    assert "Deleted: calls that ended before" in done.output and "  calls: 4\n" in done.output
    assert "... 4 calls deleted so far" in done.output  # progress, on stderr
    assert store.list_calls() == [] and not any(os.path.exists(p) for p in old)


def test_flask_retention_purge_needs_a_period_and_stops_clearly_when_the_store_is_down(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = app.test_cli_runner()
    unset = runner.invoke(args=["retention", "purge"])
    assert unset.exit_code == 2 and "give --older-than DAYS, or set LIFELINE_RETENTION_DAYS" in unset.output
    store = app.extensions["lifeline"].store

    def down(*_: object, **__: object) -> PurgeBatch:
        raise StoreError("cannot write to the store: the database at postgresql://db/x is unavailable")

    monkeypatch.setattr(store, "purge_ended", down)
    failed = runner.invoke(args=["retention", "purge", "--older-than", "30"])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "Error: the call store is unavailable (cannot write to the store: the database at " \
           in failed.output
    assert "check that the database at DATABASE_URL is up; what was deleted before it stays deleted, " \
           "run the command again to go on" in failed.output


def test_a_store_outage_pauses_the_scheduled_purge_with_one_line_naming_database_url(
        retained: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monitor = retained.extensions["lifeline"].monitor

    def down(*_: object, **__: object) -> PurgeBatch:
        raise StoreError("cannot write to the store: the database at sqlite:///x is unavailable")

    monkeypatch.setattr(retained.extensions["lifeline"].store, "purge_ended", down)
    with caplog.at_level(logging.INFO, "lifeline.calls.monitor"):
        monitor._safe(monitor.retention.run, "retention")
        monitor._safe(monitor.retention.run, "retention")  # still down: no second line
    paused = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert len(paused) == 1
    assert paused[0].startswith("monitor retention paused: the call store is unavailable")
    assert "check that the database at DATABASE_URL is up" in paused[0]
    monkeypatch.undo()
    with caplog.at_level(logging.INFO, "lifeline.calls.monitor"):
        monitor._safe(monitor.retention.run, "retention")
    assert "monitor retention resumed" in caplog.text


def test_after_a_purge_no_row_or_recording_of_a_real_call_is_left_anywhere(live: Simulation) -> None:
    """Calls played through the app (a voicemail after a busy agent, a transfer that connected):
    every table that can name them or their agent legs is empty of them after the purge."""
    from sqlalchemy import func, select

    from lifeline.ivr.store import schema

    from .test_call_flow import accepted, settle, start_call

    lifeline = live.app.extensions["lifeline"]  # type: ignore[union-attr]
    store = lifeline.store
    voicemail_leg = start_call(live, agent="busy")
    live.emulator.press(voicemail_leg, "0")
    ccid = voicemail_leg.call_control_id
    assert wait_until(lambda: len(accepted(live, ccid, "gather_using_speak")) == 2, 5)
    live.emulator.press(voicemail_leg, "2")
    assert wait_until(lambda: bool(accepted(live, ccid, "record_start")))
    time.sleep(0.1)  # 2 s of message in scenario time
    live.emulator.caller_hangs_up(voicemail_leg)
    connected = start_call(live)
    live.emulator.press(connected, "0")
    assert wait_until(lambda: connected.log.bridged)
    live.emulator.caller_hangs_up(connected)
    for leg in (voicemail_leg, connected):
        settle(live, leg)
    ids = [voicemail_leg.call_control_id, connected.call_control_id]
    assert wait_until(lambda: store.get_call(ids[0]).recording_status == "kept", 5)
    assert wait_until(lambda: all(store.has_summary(one) for one in ids), 10)
    recording = store.get_call(ids[0]).recording_path
    legs = {t.agent_call_control_id for one in ids for t in store.transfers(one)} - {None}
    assert legs and store.events(next(iter(legs)))  # the agents' legs have rows of their own
    before = store.figures()

    report = lifeline.monitor.retention.purge(0)
    assert report.calls == 2 and report.recordings == 1 and not os.path.exists(recording)
    named = set(ids) | legs
    with store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if "call_control_id" in table.c:
                left = conn.execute(select(func.count()).select_from(table)
                                    .where(table.c.call_control_id.in_(named))).scalar()
                assert left == 0, f"{table.name} still names a purged call"
        assert conn.execute(select(func.count()).select_from(schema.delivery_attempts)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(schema.purged_files)).scalar() == 0
    assert store.figures().ended_by_outcome == before.ended_by_outcome
