"""Schema migrations: they agree with the models, adopt an old database with its data, run once
under a lock, and an app on a stale schema refuses to work and says what to run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Engine, inspect, text

from lifeline import create_app, schema_gate
from lifeline.ivr.store import CallStatus
from lifeline.ivr.store import migrate as migrations
from lifeline.ivr.store.schema import metadata
from lifeline.ivr.store.sql import SqlStore
from lifeline.startup import EX_CONFIG, entry_app, require_current_schema

from .conftest import postgres_schema, postgres_url_or_skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_schema(postgres_url_or_skip()) as url:
        yield url.replace("postgresql://", "postgresql+psycopg://")


_opened: list[SqlStore] = []


@pytest.fixture(autouse=True)
def close_stores() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def engine_for(url: str) -> Engine:
    """An engine on the database, closed after the test (no migration is run)."""
    store = SqlStore(url, create_schema=False)
    _opened.append(store)
    return store.engine


def test_migrations_build_exactly_the_models_schema(database_url: str) -> None:
    engine = engine_for(database_url)
    migrations.upgrade(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                       metadata)
    assert differences == []
    assert migrations.current(engine) == migrations.head()
    assert migrations.schema_problem(engine) is None


# Columns the revisions after 0001 add: the baseline is today's models without them.
_ADDED_AFTER_BASELINE = (
    ("calls", "checked_at"),  # 0002
    *(("calls", c) for c in ("listening_reason", "recording_status", "recording_saved_at", "recording_path",
                             "recording_sha256", "recording_duration_s", "recording_attempts",
                             "recording_error")),  # 0003
    ("calls", "recording_attempted_at"),  # 0008
    ("messages", "analysis"),  # 0003
)
_TABLES_AFTER_BASELINE = ("feed", "deliveries", "delivery_attempts", "delivery_cursors", "summaries",  # 0004
                          "revoked_sessions",  # 0006
                          "auth_failures",  # 0010
                          "purged_counts", "purged_files")  # 0011
_INDEXES_AFTER_BASELINE = ("ix_calls_recording_due", "ix_calls_newest",  # 0005, 0007
                           "ix_calls_ended", "ix_webhook_events_received")  # 0011


def make_pre_migration_database(engine: Engine, with_checked_at: bool = False) -> None:
    """What Lifeline made before migrations: `create_all` of the baseline schema, with a call in it
    (the last release before migrations also made `calls.checked_at`)."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        for index in _INDEXES_AFTER_BASELINE:
            conn.execute(text(f"DROP INDEX {index}"))
        for table, column in _ADDED_AFTER_BASELINE:
            if not (with_checked_at and column == "checked_at"):
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for table in _TABLES_AFTER_BASELINE:
            conn.execute(text(f"DROP TABLE {table}"))
    now = time.time()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO webhook_events (id, event_type, call_control_id, received_at, "
                          "attempt, payload) VALUES ('evt-old', 'call.initiated', 'v3:old', :now, 1, '{}')"),
                     {"now": now})
        conn.execute(text("INSERT INTO calls (call_control_id, status, retries, created_at, updated_at) "
                          "VALUES ('v3:old', 'menu', 0, :now, :now)"), {"now": now})


@pytest.mark.parametrize("with_checked_at", [False, True], ids=["baseline", "last release before migrations"])
def test_an_old_create_all_database_is_adopted_and_keeps_its_data(database_url: str,
                                                                 with_checked_at: bool) -> None:
    engine = engine_for(database_url)
    make_pre_migration_database(engine, with_checked_at)
    assert "was made before migrations" in (migrations.schema_problem(engine) or "")
    before, after = migrations.upgrade(engine)
    assert (before, after) == (None, migrations.head())
    store = SqlStore(database_url, create_schema=False)
    _opened.append(store)
    call = store.get_call("v3:old")
    assert call is not None and (call.status, call.checked_at) == (CallStatus.MENU, None)
    assert [e["id"] for e in store.events("v3:old")] == ["evt-old"]
    with engine.connect() as conn:
        assert "checked_at" in {c["name"] for c in inspect(conn).get_columns("calls")}
    assert migrations.upgrade(engine) == (migrations.head(), migrations.head())  # idempotent


def test_a_database_of_the_last_release_before_migrations_left_stamped_at_0001_upgrades(
        database_url: str) -> None:
    from alembic import command
    engine = engine_for(database_url)
    make_pre_migration_database(engine, with_checked_at=True)
    with engine.begin() as conn:  # what the adoption of an earlier release did with it
        command.stamp(migrations._config(conn), "0001")
    assert migrations.upgrade(engine) == ("0001", migrations.head())
    assert migrations.schema_problem(engine) is None


def test_concurrent_upgrades_of_a_fresh_database_take_turns(database_url: str) -> None:
    """Several deploy steps (or instances) started at once: the lock lets one migrate at a time."""
    engines = [engine_for(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        barrier.wait()
        try:
            migrations.upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - any failure is what this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrations.current(engines[0]) == migrations.head()


def test_an_app_started_before_the_upgrade_serves_once_it_has_run_without_a_restart(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock_module

    from lifeline import schema_gate
    clock = [1000.0]
    monkeypatch.setattr(clock_module, "monotonic", lambda: clock[0])
    app = create_app(app_config)  # a fresh, empty database: nothing migrated it
    try:
        client = app.test_client()
        refused = client.get("/healthz")
        assert (refused.status_code == 503
                and "looks again every 5 s" in refused.get_json()["error"]["message"])
        migrations.upgrade(app.extensions["lifeline"].store.engine)  # `flask db upgrade`, elsewhere
        assert client.get("/healthz").status_code == 503  # not looked again yet
        clock[0] += schema_gate.RECHECK_S
        assert client.get("/healthz").status_code == 200
        assert app.extensions["lifeline"].schema_problem is None
    finally:
        app.extensions["lifeline"].close()


def test_an_app_on_a_stale_schema_refuses_requests_and_says_to_upgrade(
        app_config: dict[str, object]) -> None:
    app = create_app(app_config)  # a fresh, empty database: nothing migrated it
    try:
        problem = app.extensions["lifeline"].schema_problem
        assert problem is not None and "run `flask db upgrade`" in problem and "\n" not in problem
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert "flask db upgrade" in response.get_json()["error"]["message"]
        assert app.test_client().post("/webhooks/telnyx", data=b"{}").status_code == 503
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 0 and f"to {migrations.head()}" in result.output
    finally:
        app.extensions["lifeline"].close()
    upgraded = create_app(app_config)  # a fresh process: the schema is current from the start
    try:
        assert upgraded.extensions["lifeline"].schema_problem is None
        assert upgraded.test_client().get("/healthz").status_code == 200
        result = upgraded.test_cli_runner().invoke(args=["db", "current"])
        assert f"database: {migrations.head()}" in result.output
    finally:
        upgraded.extensions["lifeline"].close()


def test_a_served_app_on_a_stale_schema_says_so_once_at_start(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    for name, value in app_config.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING):
        app = entry_app()  # what a WSGI server imports (gunicorn without its config, waitress...)
    try:
        said = [r.getMessage() for r in caplog.records if "schema" in r.getMessage()]
        database = app.extensions["lifeline"].store.engine.url.render_as_string(hide_password=True)
        assert said == [f"the database schema ({database}) is empty: run `flask db upgrade`; "
                        "until then every request is answered 503"]
    finally:
        app.extensions["lifeline"].close()


def test_the_monitor_and_outputs_wait_quietly_for_the_schema_and_start_once_it_is_upgraded(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(schema_gate, "RECHECK_S", 0.05)
    app = create_app({**app_config, "LIFELINE_MONITOR": "on"})  # a fresh, empty database
    lifeline = app.extensions["lifeline"]
    lifeline.monitor.interval_s = 0.05
    try:
        with caplog.at_level(logging.INFO):
            lifeline.start_background()
            time.sleep(0.5)  # ten looks at the schema, and ten sweeps if the monitor had started
            assert not lifeline.monitor.running and lifeline.outputs.worker._thread is None
            assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
            assert app.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
            deadline = time.monotonic() + 5
            # The monitor starts first, then the outputs: wait for both, not only the first.
            while (not lifeline.monitor.running or lifeline.outputs.worker._thread is None) \
                    and time.monotonic() < deadline:
                time.sleep(0.02)
        assert lifeline.monitor.running and lifeline.outputs.worker._thread is not None
        assert lifeline.schema_problem is None
        assert app.test_client().get("/healthz").status_code == 200
        assert "the database schema is current now: the monitor and the outputs start" in caplog.text
    finally:
        lifeline.close()


def test_closing_during_a_slow_schema_check_never_starts_the_background_work_afterwards() -> None:
    class SlowStore:
        """Its schema is current, but saying so takes a while (a busy database)."""

        def __init__(self) -> None:
            self.asked = threading.Event()

        def schema_problem(self) -> str | None:
            self.asked.set()
            time.sleep(0.5)
            return None

    class Holder:
        schema_problem: str | None = "the database schema is empty: run `flask db upgrade`"

    started: list[float] = []
    store = SlowStore()
    waiting = schema_gate.SchemaWait(store, Holder(), recheck_s=0.01)
    waiting.start(lambda: started.append(time.monotonic()))
    assert store.asked.wait(5)
    waiting.stop()  # the app closes while the check is under way
    stopped = time.monotonic()
    time.sleep(0.8)  # past the check's end
    assert started == [], f"started {started[0] - stopped:.2f} s after stop() returned"


def test_the_monitor_command_will_not_run_on_a_stale_schema(app_config: dict[str, object]) -> None:
    app = create_app(app_config)
    try:
        result = app.test_cli_runner().invoke(args=["monitor", "--once"])
        assert result.exit_code != 0 and "flask db upgrade" in result.output
    finally:
        app.extensions["lifeline"].close()


def test_the_server_gate_stops_with_one_line_before_workers_start(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name, value in app_config.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        require_current_schema()
    assert stopped.value.code == EX_CONFIG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run `flask db upgrade`" in err
    SqlStore(str(app_config["DATABASE_URL"])).close()  # the deploy step
    require_current_schema()  # passes now


def test_the_app_never_migrates_on_its_own(app_config: dict[str, object]) -> None:
    app: Flask = create_app(app_config)
    try:
        engine = app.extensions["lifeline"].store.engine
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        app.extensions["lifeline"].close()


def test_a_database_a_newer_release_migrated_is_named_so_and_never_downgraded(
        app_config: dict[str, object]) -> None:
    app = create_app(app_config, migrate=True)
    try:
        with app.extensions["lifeline"].store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        engine = app.extensions["lifeline"].store.engine
        problem = migrations.schema_problem(engine)
        assert (problem is not None and "newer than this code knows" in problem
                and "flask db upgrade" not in problem)
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code != 0 and "migrated by a newer release" in result.output
        assert "Traceback" not in result.output
        assert migrations.current(engine) == "0099"
        shown = app.test_cli_runner().invoke(args=["db", "current"]).output
        assert "newer than this code" in shown and "flask db upgrade" not in shown
    finally:
        app.extensions["lifeline"].close()


@pytest.mark.postgres
def test_an_index_left_invalid_by_an_interrupted_concurrent_build_is_built_again() -> None:
    from alembic import command

    with postgres_schema(postgres_url_or_skip()) as url:
        engine = engine_for(url)
        migrations.upgrade(engine)
        with engine.begin() as conn:  # what a cancelled CREATE INDEX CONCURRENTLY leaves behind
            conn.execute(text("UPDATE pg_index SET indisvalid = false "
                              "WHERE indexrelid = 'ix_calls_newest'::regclass"))
            conn.execute(text("ALTER TABLE calls DROP COLUMN recording_attempted_at"))  # 0008's, to come
            conn.execute(text("DROP TABLE auth_failures"))  # 0010's, to come
            conn.execute(text("DROP TABLE purged_counts"))  # 0011's, to come
            conn.execute(text("DROP TABLE purged_files"))
            command.stamp(migrations._config(conn), "0006")
        assert migrations.upgrade(engine) == ("0006", migrations.head())
        with engine.connect() as conn:
            valid = conn.execute(text("SELECT indisvalid FROM pg_index "
                                      "WHERE indexrelid = 'ix_calls_newest'::regclass")).scalar()
        assert valid is True
        engine.dispose()


def test_an_interrupted_upgrade_says_in_one_line_where_it_stopped_and_what_to_do(
        app_config: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline import db_cli
    app = create_app(app_config)  # a fresh, empty database: nothing migrated it

    def interrupted(engine: Engine) -> tuple[str | None, str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(db_cli, "upgrade", interrupted)
    try:
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert ("interrupted at revision none" in result.output
                and "run `flask db upgrade` again" in result.output)
        behind = app.test_cli_runner().invoke(args=["db", "current"])
        assert f"code: {migrations.head()} (run `flask db upgrade`)" in behind.output
    finally:
        app.extensions["lifeline"].close()


def test_calls_recorded_before_0009_get_the_outcomes_no_agent_and_missed_where_they_apply(
        database_url: str) -> None:
    from alembic import command
    engine = engine_for(database_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0008")
        for ccid, outcome, answered in (("v3:tried", "completed", 1), ("v3:finished", "completed", 1),
                                        ("v3:through", "transferred", 1), ("v3:rang", "abandoned", 1),
                                        ("v3:unanswered", "abandoned", None),
                                        ("v3:while-answering", "completed", None)):
            conn.execute(text("INSERT INTO calls (call_control_id, status, retries, created_at, updated_at, "
                              "outcome, answered_at) VALUES (:c, 'ended', 0, 1, 1, :o, :a)"),
                         {"c": ccid, "o": outcome, "a": answered})
        for ccid in ("v3:tried", "v3:through", "v3:rang"):
            conn.execute(text("INSERT INTO transfers (call_control_id, attempt, to_number, command_id, "
                              "reason, rule, status, requested_at, updated_at) VALUES (:c, 1, '+1555000', "
                              ":c, 'asked', 'caller_intent', 'failed', 1, 1)"), {"c": ccid})

    def outcomes() -> dict[str, str]:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT call_control_id, outcome FROM calls")).all())  # type: ignore[arg-type]

    assert migrations.upgrade(engine) == ("0008", migrations.head())
    assert outcomes() == {"v3:tried": "no_agent", "v3:finished": "completed", "v3:through": "transferred",
                          "v3:rang": "abandoned", "v3:unanswered": "missed", "v3:while-answering": "missed"}
    with engine.begin() as conn:
        command.downgrade(migrations._config(conn), "0008")
    assert (outcomes()["v3:tried"], outcomes()["v3:unanswered"]) == ("completed", "abandoned")
