"""gunicorn's reload (HUP): checked first, refused on a mistake without stopping, `.env` read again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lifeline.ivr.store.sql import SqlStore

from .conftest import wait_until
from .test_observability import free_port

ROOT = Path(__file__).resolve().parent.parent
MENU = ('start: main\ngreeting: "Hello."\nmenus:\n  main:\n    prompt: "Press 1."\n    options:\n'
        '      "1": {say: "Thank you."}\n')
BROKEN_MENU = MENU.replace("{say: \"Thank you.\"}", "{menu: nowhere}")


def _env_file(token: str) -> str:
    return (f"LIFELINE_API_TOKEN={token}\nLIFELINE_IVR=ivr.yaml\n"
            "TELNYX_API_KEY=KEY_test_0123456789abcdef\n"
            "TELNYX_PUBLIC_KEY=A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
            "LIFELINE_AGENTS=+15550001111\nLIFELINE_ENGINE=telnyx\nLIFELINE_MONITOR=off\n"
            # The test asks with the rotated token many times a second until the reload takes;
            # each early 401 is a wrong token, which the throttle (tested on its own) would count.
            "LIFELINE_AUTH_FAILURES=0\n")


def _status(base: str, token: str) -> int:
    try:
        answer = httpx.get(f"{base}/api/calls", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    except httpx.HTTPError:
        return 0
    return answer.status_code


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """gunicorn with one worker on a fresh, migrated SQLite file and `.env` holding the first token;
    the server, its base URL and its log. Metrics (and the reload handover) in tmp_path/metrics."""
    port = free_port()
    (tmp_path / "ivr.yaml").write_text(MENU)
    (tmp_path / ".env").write_text(_env_file("first-token-0123456789"))
    database = f"sqlite:///{tmp_path / 'calls.db'}"
    SqlStore(database).close()  # the deploy step (`flask db upgrade`): servers never migrate
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELNYX_", "LIFELINE_", "PROMETHEUS_", "FLASK_")) and k != "DATABASE_URL"}
    env.update(DATABASE_URL=database, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--workers", "1",
             "--bind", f"127.0.0.1:{port}", "app:app"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}", log


def test_a_reload_with_a_broken_menu_is_refused_and_a_good_one_takes_a_rotated_token(tmp_path: Path) -> None:
    server, base, log = _start(tmp_path)
    try:
        assert wait_until(lambda: _status(base, "first-token-0123456789") == 200, timeout=60), log.read_text()

        # A typo, then HUP: refused and logged, and the server goes on with what it had.
        (tmp_path / "ivr.yaml").write_text(BROKEN_MENU)
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in log.read_text(), timeout=30), log.read_text()
        assert "unknown menu 'nowhere'" in log.read_text()
        time.sleep(1)  # had the reload gone on, its new worker would fail and stop the master now
        assert server.poll() is None, log.read_text()
        assert _status(base, "first-token-0123456789") == 200

        # A database a newer release has migrated: refused (the reload would stop the master).
        (tmp_path / "ivr.yaml").write_text(MENU)
        with sqlite3.connect(tmp_path / "calls.db") as db:
            head = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            db.execute("UPDATE alembic_version SET version_num = '0099'")
        server.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "newer than this code" in log.read_text(), timeout=30), log.read_text()
        assert server.poll() is None and _status(base, "first-token-0123456789") == 200
        with sqlite3.connect(tmp_path / "calls.db") as db:
            db.execute("UPDATE alembic_version SET version_num = ?", (head,))

        # Fixed, with the token rotated in .env: the reload takes both.
        (tmp_path / "ivr.yaml").write_text(MENU)
        (tmp_path / ".env").write_text(_env_file("second-token-0123456789"))
        server.send_signal(signal.SIGHUP)
        rotated = wait_until(lambda: _status(base, "second-token-0123456789") == 200, timeout=60)
        assert rotated, log.read_text()
        assert wait_until(lambda: _status(base, "first-token-0123456789") == 401, timeout=30)

        # One line per event after the reload, not one per logger the master has built.
        httpx.post(f"{base}/webhooks/telnyx", content=b"{}", timeout=5)
        assert wait_until(lambda: "webhook refused" in log.read_text(), timeout=10)
        time.sleep(0.5)
        refused = [line for line in log.read_text().splitlines() if "webhook refused" in line]
        assert len(refused) == 1, refused
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_whatever_the_reload_check_raises_the_reload_is_refused_and_the_environment_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline import gunicorn_hooks, startup

    def broken(config: object = None) -> None:
        raise RuntimeError("a bug in a check")

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LIFELINE_API_TOKEN=changed-in-env-0123456789\n")
    monkeypatch.setitem(gunicorn_hooks._state, "env_path", str(tmp_path / ".env"))
    monkeypatch.setitem(gunicorn_hooks._state, "env_owned", {"LIFELINE_API_TOKEN"})
    monkeypatch.setenv("LIFELINE_API_TOKEN", "running-token-0123456789")
    monkeypatch.setattr(startup, "check", broken)
    assert gunicorn_hooks.reload_problems() == ["RuntimeError: a bug in a check"]
    assert os.environ["LIFELINE_API_TOKEN"] == "running-token-0123456789"


def _serving(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a worker that has exited and waits to be reaped serves nobody


@pytest.mark.parametrize("restarted", [False, True], ids=["first start", "after a restart"])
def test_a_reloads_old_worker_serves_until_the_new_one_is_ready_then_stops(tmp_path: Path,
                                                                            restarted: bool) -> None:
    # The metrics folder is the operator's own (it outlives a master): a restarted master's first
    # reload must hand over as the first master's did.
    if restarted:
        first, base, log = _start(tmp_path)
        try:
            assert wait_until(lambda: _status(base, "first-token-0123456789") == 200, 60), log.read_text()
            first.send_signal(signal.SIGHUP)
            assert wait_until(lambda: "reload: serving until" in log.read_text(), 60), log.read_text()
        finally:
            first.terminate()
            first.wait(timeout=60)
        assert not (tmp_path / "metrics" / f"lifeline-handover-{first.pid}").exists()  # gone with it
    server, base, log = _start(tmp_path)
    try:
        assert wait_until(lambda: _status(base, "first-token-0123456789") == 200, timeout=60), log.read_text()
        [old] = [int(p) for p in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()]
        (tmp_path / ".env").write_text(_env_file("second-token-0123456789"))
        server.send_signal(signal.SIGHUP)
        ready = tmp_path / "metrics" / f"lifeline-handover-{server.pid}"
        overlap = None
        deadline = time.monotonic() + 60
        while overlap is None and time.monotonic() < deadline:
            old_serves = _serving(old)  # sampled before the marker: alive then means alive after it
            if list(ready.glob("ready-1-*")):
                overlap = old_serves
            time.sleep(0.01)
        assert overlap is True, log.read_text()  # the old worker outlived the new one's start
        assert wait_until(lambda: not _serving(old), timeout=60), log.read_text()
        assert "reload: serving until the new workers are ready" in log.read_text()
        assert _status(base, "second-token-0123456789") == 200
    finally:
        server.terminate()
        server.wait(timeout=60)
