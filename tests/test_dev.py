"""`flask dev` (under `make dev`): up on fixed ports with callers, one line to open, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from flask import Flask

from .conftest import ROOT, wait_until
from .test_observability import free_port


def test_dev_serves_looping_callers_then_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELNYX_", "LIFELINE_", "FLASK_"))}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--env-file", str(ROOT / "examples/emulator.env"),
         "--app", str(ROOT / "app.py"), "dev", "--port", str(port), "--emulator-port", str(emulator_port),
         "--every", "0.5", "--speed", "10"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # type: ignore[union-attr]
        token = (tmp_path / "instance" / "dev-token").read_text().strip()
        assert first.startswith(f"Lifeline dev: http://127.0.0.1:{port}/dashboard  (sign in with the API "
                                f"token {token};")
        assert f"; API http://127.0.0.1:{port}/api with 'Authorization: Bearer <token>';" in first
        auth = {"Authorization": f"Bearer {token}"}

        def calls() -> int:
            reply = httpx.get(f"http://127.0.0.1:{port}/api/calls", headers=auth, timeout=5)
            return len(reply.json()["calls"]) if reply.status_code == 200 else 0

        assert wait_until(lambda: calls() >= 3, timeout=60), "callers never arrived"
        # A second one in the same folder would take this one's live calls for an earlier run's.
        second = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--env-file", str(ROOT / "examples/emulator.env"),
             "--app", str(ROOT / "app.py"), "dev", "--port", str(free_port()), "--emulator-port",
             str(free_port())], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert f"another `flask dev` (pid {process.pid}) is running in this folder" in second.stderr
        assert calls() >= 3 and all(c.get("hangup_cause") != "dev_restart"
                                    for c in httpx.get(f"http://127.0.0.1:{port}/api/calls", headers=auth,
                                                       timeout=5).json()["calls"])
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip() == "stopped" and "Traceback" not in err
    assert (tmp_path / "instance" / "dev.db").is_file()
    assert token in first and token not in out + err  # printed once, in the one line


def test_a_restart_closes_the_calls_an_earlier_run_left_up(tmp_path: Path) -> None:
    import time

    from lifeline.ivr.store import CallRecord, CallStatus
    from lifeline.ivr.store.sql import SqlStore
    (tmp_path / "instance").mkdir()
    store = SqlStore(f"sqlite:///{tmp_path / 'instance' / 'dev.db'}")
    with store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id="v3:emu-earlier", call_session_id=None, call_leg_id=None,
                                  from_number="+15551230001", to_number="+15550100000",
                                  status=CallStatus.MENU, created_at=time.time(), updated_at=time.time()))
    port, emulator_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELNYX_", "LIFELINE_", "FLASK_"))}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--env-file", str(ROOT / "examples/emulator.env"),
         "--app", str(ROOT / "app.py"), "dev", "--port", str(port), "--emulator-port", str(emulator_port),
         "--every", "600"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # type: ignore[union-attr]
        second = process.stdout.readline()  # type: ignore[union-attr]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert first.strip() == "closed 1 call(s) left up by an earlier run"
    assert second.startswith("Lifeline dev:")
    call = store.get_call("v3:emu-earlier")
    assert call is not None and (call.status, call.outcome, call.hangup_cause) == (CallStatus.ENDED, "lost",
                                                                                   "dev_restart")
    store.close()


def test_dev_leaves_real_outputs_off_and_names_them_unless_asked_to_keep_them() -> None:
    from lifeline.simulator.dev import real_outputs
    environ = {"LIFELINE_EVENT_WEBHOOKS": "http://127.0.0.1:8730/hook", "LIFELINE_EVENT_SECRET": "s" * 32,
               "LIFELINE_SMTP_URL": " ", "LIFELINE_AGENTS": "+15550100001"}
    assert real_outputs(environ, keep=False) == ({}, ["LIFELINE_EVENT_SECRET", "LIFELINE_EVENT_WEBHOOKS"])
    assert real_outputs(environ, keep=True) == ({"LIFELINE_EVENT_WEBHOOKS": "http://127.0.0.1:8730/hook",
                                                 "LIFELINE_EVENT_SECRET": "s" * 32}, [])


def test_dev_on_a_taken_emulator_port_says_which_option_to_change(app: Flask) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["dev", "--port", str(free_port()),
                                                        "--emulator-port", str(busy)])
    assert result.exit_code == 2
    assert f"127.0.0.1:{busy} is taken by another program" in result.output
    assert "give --emulator-port another port" in result.output


def test_dev_loops_the_callers_it_is_given_and_refuses_a_folder_without_any(tmp_path: Path) -> None:
    import pytest

    from lifeline.simulator.scenario import ScenarioError, load_scenarios
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "b.yaml").write_text("name: second\nturns:\n  - say: hello\n")
    (mine / "a.yaml").write_text("name: first\nturns:\n  - press: '1'\n")
    assert [s.name for s in load_scenarios((mine,), "telnyx")] == ["first", "second"]  # a folder, by name
    with pytest.raises(ScenarioError, match="needs a recording|audio"):
        load_scenarios((mine / "b.yaml",), "local")  # the local engine hears recordings, and b has none
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError, match=r"no scenarios \(\*\.yaml\) in"):
        load_scenarios((tmp_path / "empty",), "telnyx")
    (mine / "c.yaml").write_text("name: x\nturns: []\n")
    with pytest.raises(ScenarioError, match="c.yaml"):
        load_scenarios((mine,), "telnyx")


def test_dev_refuses_a_folder_without_callers_as_a_usage_error(app: Flask, tmp_path: Path) -> None:
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["dev", str(tmp_path), "--port", str(free_port()),
                                                    "--emulator-port", str(free_port())])
    assert result.exit_code == 2
    assert "no scenarios (*.yaml) in" in result.output
