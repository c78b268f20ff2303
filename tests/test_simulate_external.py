"""`flask simulate --app-url`: the emulator's callers against a Lifeline run as in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lifeline import create_app
from lifeline.ivr.store.sql import SqlStore
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.external import ExternalAppError, ExternalRun, emulator_keys, twilio_account
from lifeline.simulator.scenario import load_scenario
from lifeline.simulator.server import ServerThread

from .conftest import wait_until
from .test_gunicorn_reload import _status
from .test_observability import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_callers_reach_a_gunicorn_app_given_the_emulators_kept_settings_and_a_wrong_key_is_named(
        tmp_path: Path) -> None:
    app_port, emulator_port = free_port(), free_port()
    api_key, signing_key = emulator_keys(tmp_path / "instance")  # what the first run prints, kept
    public_key = Emulator(signing_key=signing_key).public_key_b64
    assert emulator_keys(tmp_path / "instance")[0] == api_key  # read back, not made again
    database = f"sqlite:///{tmp_path / 'calls.db'}"
    SqlStore(database).close()  # the deploy step
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TELNYX_", "LIFELINE_", "PROMETHEUS_", "FLASK_")) and k != "DATABASE_URL"}
    app_env = {**clean, "DATABASE_URL": database, "TELNYX_API_KEY": api_key, "TELNYX_PUBLIC_KEY": public_key,
               "TELNYX_API_BASE_URL": f"http://127.0.0.1:{emulator_port}/v2",
               "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx", "LIFELINE_MONITOR": "off",
               "LIFELINE_API_TOKEN": "ext-token-0123456789"}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                               "--workers", "1", "--bind", f"127.0.0.1:{app_port}", "app:app"],
                              cwd=tmp_path, env=app_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def simulate(cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "flask"), "--app", str(ROOT / "app.py"),
             "--env-file", str(ROOT / "examples/emulator.env"), "simulate",
             "--app-url", f"http://127.0.0.1:{app_port}", "--emulator-port", str(emulator_port),
             # x5: a scenario's 3 s grace is 0.6 s of real time, which a loaded CI machine keeps
             # (at x20, 0.15 s, it once did not).
             "--speed", "5", "--quiet", str(ROOT / "examples/calls/01-calm-balance.yaml"),
             str(ROOT / "examples/calls/02-asks-for-human.yaml")],
            cwd=cwd, env=clean, capture_output=True, text=True, timeout=120)

    try:
        assert wait_until(lambda: _status(f"http://127.0.0.1:{app_port}", "ext-token-0123456789") == 200, 60)
        played = simulate(tmp_path)
        assert played.returncode == 0, played.stdout + played.stderr
        assert "2 passed, 0 failed" in played.stdout
        assert f"TELNYX_PUBLIC_KEY={public_key}" in played.stdout

        elsewhere = tmp_path / "elsewhere"  # another folder: other keys, which the app refuses
        elsewhere.mkdir()
        refused = simulate(elsewhere)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert ("refuses the emulator's webhooks (HTTP 403): start it (or reload it with HUP) with"
                in refused.stderr)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_media_streams_the_app_could_not_take_are_named_with_the_public_url_to_set(tmp_path: Path) -> None:
    with ExternalRun("http://127.0.0.1:8000/", free_port(), tmp_path / "instance", 1.0, None) as run:
        leg = run.emulator.incoming_call()
        assert run.emulator.handle_command(leg.call_control_id, "answer", {})[0] == 200
        assert run.stream_problems() == []
        nobody = free_port()  # the app's LIFELINE_PUBLIC_URL points where nothing listens
        started = run.emulator.handle_command(leg.call_control_id, "streaming_start",
                                              {"stream_url": f"ws://127.0.0.1:{nobody}/media?token=t"})
        assert started[0] == 200
        assert wait_until(lambda: bool(run.stream_problems()), 10)
        [problem] = run.stream_problems()
    assert f"could not open 1 media stream(s) at ws://127.0.0.1:{nobody}/media:" in problem
    assert "token" not in problem and "LIFELINE_PUBLIC_URL=http://127.0.0.1:8000" in problem


def test_twilio_callers_reach_an_app_given_the_twilio_emulators_kept_account_and_a_wrong_one_is_named(
        tmp_path: Path) -> None:
    sid, token = twilio_account(tmp_path / "instance")
    assert twilio_account(tmp_path / "instance") == (sid, token)  # read back, not made again
    emulator_port = free_port()
    holder: dict[str, Any] = {}
    server = ServerThread(lambda environ, start: holder["app"](environ, start))
    app = create_app({"TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token,
                      "TWILIO_API_BASE_URL": f"http://127.0.0.1:{emulator_port}",
                      "LIFELINE_PUBLIC_URL": server.url, "LIFELINE_ENGINE": "twilio",
                      "LIFELINE_AGENTS": "+15550001111", "LIFELINE_MONITOR": "off",
                      "LIFELINE_API_TOKEN": "ext-token-0123456789",
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}"}, migrate=True)
    app.extensions["lifeline"].load_models()  # as a server does: the first line must not wait for them
    holder["app"] = app
    server.start()
    calls = ROOT / "examples" / "calls"
    try:
        with ExternalRun(server.url, emulator_port, tmp_path / "instance", 5.0, "ext-token-0123456789",
                         provider="twilio") as run:
            assert run.settings()["LIFELINE_PUBLIC_URL"] == server.url
            run.check_app()
            results = run.run([load_scenario(calls / "02-asks-for-human.yaml")], concurrency=1)
        assert [(r.passed, r.app_outcome) for r in results] == [(True, "transferred")], results[0].problems
        assert results[0].why.startswith("decided by caller_intent")
        elsewhere = tmp_path / "elsewhere"  # another folder: another account, which the app refuses
        with ExternalRun(server.url, free_port(), elsewhere, 5.0, None, provider="twilio") as other:
            with pytest.raises(ExternalAppError, match=r"refuses the emulator's webhooks \(HTTP 403\)"):
                other.check_app()
    finally:
        server.stop()
        app.extensions["lifeline"].close()
