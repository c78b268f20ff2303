"""Boot drill: start gunicorn on a fresh database N times; count the boots that come up whole.

Each boot is a deploy as docs/deploying.md describes it: a new, empty database, the upgrade once (the
function `flask db upgrade` runs), then gunicorn with W workers. A boot counts as good when /healthz
answers 200, every worker logged its boot, and the log holds no traceback or failed worker.

    python -m lifeline.simulator.boot_drill --database sqlite --boots 20 --workers 4
    python -m lifeline.simulator.boot_drill --database postgresql://postgres@127.0.0.1:5432/postgres ...
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from nacl.signing import SigningKey

from lifeline.ivr.config import PROJECT_ROOT
from lifeline.ivr.store.sql import SqlStore

# Generous: on a loaded 2-core machine four workers importing the app take well over a minute;
# the drill is about boots that fail (a crash, "database is locked"), not slow ones.
BOOT_LIMIT_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fresh_database(kind: str, workdir: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'boot-{uuid.uuid4().hex[:8]}.db'}", None
    name = f"lifeline_boot_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(kind, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return kind.rsplit("/", 1)[0] + f"/{name}", name


def _drop(kind: str, name: str | None) -> None:
    if name is not None:
        with psycopg.connect(kind, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def boot_once(kind: str, workers: int, workdir: Path) -> tuple[bool, str]:
    """One deploy on a fresh database; (good, why not)."""
    database_url, name = _fresh_database(kind, workdir)
    port = _free_port()
    key = SigningKey.generate().verify_key.encode()
    import base64
    env = {**os.environ, "DATABASE_URL": database_url, "TELNYX_API_KEY": "KEY_drill",
           "TELNYX_PUBLIC_KEY": base64.b64encode(key).decode(), "LIFELINE_ENGINE": "telnyx",
           "LIFELINE_AGENTS": "+15550001111", "TELNYX_API_BASE_URL": "http://127.0.0.1:9/v2"}
    log_path = workdir / f"boot-{port}.log"
    try:
        # The deploy step, in process: what `flask db upgrade` runs, without loading the app.
        SqlStore(database_url.replace("postgresql://", "postgresql+psycopg://")).close()
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                 "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "info", "app:app"],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + BOOT_LIMIT_S
            while time.monotonic() < deadline:
                if server.poll() is not None:
                    return False, f"gunicorn exited with {server.returncode}"
                booted = log_path.read_text(errors="replace").count("Booting worker")
                try:
                    healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    healthy = False
                if healthy and booted >= workers:
                    time.sleep(1.0)  # a worker that dies just after booting shows up here
                    text = log_path.read_text(errors="replace")
                    if "Traceback" in text or "Worker failed to boot" in text or server.poll() is not None:
                        return False, "a worker failed after boot"
                    return True, f"healthy after {time.monotonic() - (deadline - BOOT_LIMIT_S):.0f} s"
                time.sleep(0.2)
            return False, f"not healthy within {BOOT_LIMIT_S} s"
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
    finally:
        _drop(kind, name)


def main() -> None:
    """Run the drill and print one line per boot and the tally."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL admin URL")
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    good = 0
    with tempfile.TemporaryDirectory(prefix="lifeline-boot-") as tmp:
        for n in range(1, args.boots + 1):
            started = time.monotonic()
            ok, why = boot_once(args.database, args.workers, Path(tmp))
            good += ok
            print(f"boot {n}: {'ok, ' if ok else 'FAILED: '}{why} "
                  f"(whole boot {time.monotonic() - started:.0f} s)", flush=True)
    kind = "sqlite" if args.database == "sqlite" else "postgresql"
    print(f"{good} of {args.boots} fresh-database boots came up with {args.workers} workers ({kind})")


if __name__ == "__main__":
    main()
