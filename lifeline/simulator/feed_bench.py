"""`flask feed-bench`: how long an event takes to leave, live (SSE) and by webhook, under load.

The app runs under gunicorn as in production (gunicorn.conf.py), with LIFELINE_EVENT_WEBHOOKS
pointing at a receiver in this process; one SSE client follows every call. Callers cycle through
the example scenarios, C at a time. For each `message` event: feed delay = SSE arrival − the
time the event was stored; webhook delay = the receiver's arrival − the same stored time
(stored times are read from the app's database afterwards: one machine, one clock).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask, request
from sqlalchemy import create_engine, select

from lifeline.ivr.config import PROJECT_ROOT
from lifeline.ivr.store import schema
from lifeline.ivr.store.sql import SqlStore

from .bench import BenchConfig, _free_port, _start_gunicorn, _stop, percentile
from .caller import play
from .emulator import Emulator
from .runner import SIMULATED_SETTLE_S, caller_number
from .scenario import load_scenario
from .server import ServerThread, emulator_app

TOKEN = "feed-bench-token"
RAMP_S = 10.0
SECRET = "feed-bench-secret"


class _SseArrivals:
    """Follows /api/events and notes when each event id arrived."""

    def __init__(self, port: int) -> None:
        self.arrived: dict[int, float] = {}
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self._conn.connect()
        self._sock = self._conn.sock
        self._conn.request("GET", "/api/events", headers={"Authorization": f"Bearer {TOKEN}"})
        self._response = self._conn.getresponse()
        if self._response.status != 200:
            raise RuntimeError(f"/api/events answered {self._response.status}")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                line = self._response.readline()
                if not line:
                    return
                if line.startswith(b"id: "):
                    self.arrived[int(line[4:])] = time.time()
        except (OSError, ValueError, http.client.HTTPException):
            return

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()


def _receiver() -> tuple[ServerThread, dict[int, float]]:
    arrived: dict[int, float] = {}
    app = Flask("feed-bench-receiver")

    @app.post("/hook")
    def hook() -> tuple[str, int]:
        arrived.setdefault(int(request.headers["Lifeline-Event-Id"]), time.time())
        return "", 204

    return ServerThread(app).start(), arrived


def run_feed_bench(calls: int, concurrency: int, speed: float, workers: int | None, threads: int | None,
                   echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Play the calls and report feed and webhook delays (ms) of message events."""
    scenarios = [load_scenario(p) for p in sorted((PROJECT_ROOT / "examples" / "calls").glob("*.yaml"))]
    workdir = Path(tempfile.mkdtemp(prefix="lifeline-feed-bench-"))
    emulator = Emulator(speed=speed)
    emulator_server = ServerThread(emulator_app(emulator)).start()
    emulator.base_url = emulator_server.url
    receiver, hooked = _receiver()
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    port = _free_port()
    config = BenchConfig(engine="telnyx", calls=calls, concurrency=concurrency, speed=speed,
                         workers=workers, threads=threads)
    SqlStore(database_url).close()  # the deploy step (`flask db upgrade`): gunicorn never migrates
    app = _start_gunicorn(config, emulator, port, database_url, workdir / "app.log", echo, extra_env={
        "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_EVENT_WEBHOOKS": f"{receiver.url}/hook",
        "LIFELINE_EVENT_SECRET": SECRET,
        # Emulated calls' last words are in within a second or two (as in every simulation): their
        # summaries need not wait the production minute, which would outlast the bench's wait.
        "LIFELINE_TRANSCRIPT_SETTLE_S": SIMULATED_SETTLE_S})
    emulator.webhook_url = f"http://127.0.0.1:{port}/webhooks/telnyx"
    started = time.monotonic()
    try:
        # One SSE client per gunicorn worker would be luck; several make every worker serve one.
        clients = [_SseArrivals(port) for _ in range(4)]
        time.sleep(1.0)
        gap = RAMP_S / concurrency  # the first wave arrives spread out, as `flask bench` does

        def call(index: int) -> None:
            if index < concurrency:
                time.sleep(index * gap)
            play(emulator, scenarios[index % len(scenarios)], caller_number(index))

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="caller") as pool:
            list(pool.map(call, range(calls)))
        engine = create_engine(database_url)
        deadline = time.monotonic() + 60  # the last events and webhooks land (summaries come last)
        while True:
            time.sleep(1.0)
            with engine.connect() as conn:
                stored = {r[0]: (r[1], r[2]) for r in conn.execute(
                    select(schema.feed.c.id, schema.feed.c.created_at, schema.feed.c.kind))}
            landed = all(i in hooked and all(i in c.arrived for c in clients) for i in stored)
            if landed or time.monotonic() > deadline:
                break
        engine.dispose()
        for client in clients:
            client.close()
    finally:
        _stop(app)
        receiver.stop()
        emulator_server.stop()
        emulator.close()
    messages = [i for i, (_, kind) in stored.items() if kind == "message"]
    feed_ms = [(c.arrived[i] - stored[i][0]) * 1000 for c in clients for i in messages if i in c.arrived]
    hook_ms = [(hooked[i] - stored[i][0]) * 1000 for i in messages if i in hooked]
    report = {
        "calls": calls, "concurrency": concurrency, "speed": speed, "events": len(stored),
        "message_events": len(messages), "sse_clients": len(clients),
        "feed_received": len(feed_ms), "webhook_received": len(hook_ms),
        "missing_on_feed": sum(1 for c in clients for i in stored if i not in c.arrived),
        "missing_by_webhook": sum(1 for i in stored if i not in hooked),
        "feed_delay_ms": _stats(feed_ms), "webhook_delay_ms": _stats(hook_ms),
        "wall_s": round(time.monotonic() - started, 1),
    }
    shutil.rmtree(workdir, ignore_errors=True)
    return report


def _stats(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "max": round(max(values), 2) if values else None}


def write_report(report: dict[str, Any], path: Path) -> None:
    """Save the report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
