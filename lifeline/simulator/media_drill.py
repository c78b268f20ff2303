"""`flask media-drill`: are webhooks still acknowledged while media sockets and slow clients crowd the app?

The app runs under gunicorn exactly as `flask bench` runs it (gunicorn.conf.py, local engine,
one instance), on a fresh SQLite database. Two phases, each bounded in time:

1. Sockets: `sockets` media sockets are opened on live calls (each with its own token), and
   `streaming` of them send 20 ms PCMU frames of line noise in real time (the VAD runs on every
   one); the rest stay silent. While they are open, probe calls are placed through the emulator
   one after another (answer, menu, hang up), and every webhook's acknowledgement is timed.
2. Slow bodies: `slow` connections send a webhook's headers, then one byte of body a second;
   the same probe calls run. The report says how many were cut off, and after how long.

The report: acknowledgement p50/p95/p99/max per phase, failed probes, sockets still open at the
end, frames sent, and the load average (the machine is shared: read figures with it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from lifeline.insight.g711 import encode_ulaw
from lifeline.insight.local import MediaTokens
from lifeline.ivr.store import CallRecord, CallStatus
from lifeline.ivr.store.sql import SqlStore

from .bench import BenchConfig, _free_port, _start_gunicorn, _stop, percentile
from .emulator import Emulator
from .server import ServerThread, emulator_app

FRAME_S = 0.02


@dataclass(frozen=True)
class DrillConfig:
    """One drill run."""

    sockets: int = 200
    streaming: int = 100
    slow: int = 40
    seconds: float = 30.0
    workers: int | None = None
    threads: int | None = None
    media_apart: bool = False  # media served by a gunicorn of its own (LIFELINE_MEDIA_URL), same host
    body_timeout_s: float | None = None  # LIFELINE_BODY_TIMEOUT_S (None: the app's default, 10 s)


def run_media_drill(config: DrillConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run both phases against one gunicorn instance and return the report."""
    workdir = Path(tempfile.mkdtemp(prefix="lifeline-media-drill-"))
    database_url = f"sqlite:///{workdir / 'drill.db'}"
    store = SqlStore(database_url)  # the deploy step: migrate before gunicorn starts
    emulator = Emulator(speed=10)
    emulator_server = ServerThread(emulator_app(emulator)).start()
    emulator.base_url = emulator_server.url
    port = _free_port()
    secret = secrets.token_urlsafe(24)
    bench = BenchConfig(engine="local", workers=config.workers, threads=config.threads)
    # The sweep is off: the drill's calls exist only in the database, not at the emulator.
    env = {"LIFELINE_SECRET_KEY": secret, "LIFELINE_MONITOR": "off"}
    if config.body_timeout_s is not None:
        env["LIFELINE_BODY_TIMEOUT_S"] = str(config.body_timeout_s)
    media_port = _free_port() if config.media_apart else port
    servers = []
    report: dict[str, Any] = {"sockets": config.sockets, "streaming": config.streaming, "slow": config.slow,
                              "seconds": config.seconds, "workers": config.workers, "threads": config.threads,
                              "media_apart": config.media_apart}
    try:
        if config.media_apart:
            servers.append(_start_gunicorn(bench, emulator, media_port, database_url, workdir / "media.log",
                                           echo, extra_env=env))
            env = {**env, "LIFELINE_MEDIA_URL": f"ws://127.0.0.1:{media_port}"}
        servers.append(_start_gunicorn(bench, emulator, port, database_url, workdir / "app.log", echo,
                                       extra_env=env))
        emulator.webhook_url = f"http://127.0.0.1:{port}/webhooks/telnyx"
        calls = _live_calls(store, config.sockets)
        tokens = MediaTokens(secret)
        urls = [f"ws://127.0.0.1:{media_port}/media/telnyx?token={tokens.issue(c)}" for c in calls]
        echo(f"phase 1: {config.sockets} media sockets ({config.streaming} streaming) "
             f"for {config.seconds:.0f} s")
        holder = _SocketHolder(urls, calls, config.streaming)
        holder.start()
        if not holder.opened.wait(30):  # a server that holds a thread per socket never opens them all
            echo(f"  only {holder.open_count} of {config.sockets} media sockets opened in 30 s")
        opened = holder.open_count
        acks, failed = _probe(emulator, config.seconds)
        report["sockets_phase"] = {**_summary(acks, failed), "opened": opened,
                                   "refused_sockets": holder.refused,
                                   "still_open_at_end": holder.open_count, "frames_sent": holder.frames,
                                   "load_average": [round(v, 2) for v in os.getloadavg()]}
        holder.stop()
        echo(f"phase 2: {config.slow} slow-body connections for {config.seconds:.0f} s")
        slow = _SlowBodies(port, config.slow)
        slow.start()
        acks, failed = _probe(emulator, config.seconds)
        slow.stop()
        report["slow_body_phase"] = {**_summary(acks, failed), "cut_off": slow.cut_count,
                                     "cut_after_s_median": percentile(slow.cut_after_s, .5),
                                     "load_average": [round(v, 2) for v in os.getloadavg()]}
    except BaseException:
        kept = Path("out") / "media-drill-app.log"
        kept.parent.mkdir(exist_ok=True)
        shutil.copy(workdir / "app.log", kept)
        echo(f"the app's log: {kept}")
        raise
    finally:
        for server in servers:
            _stop(server)
        emulator_server.stop()
        emulator.close()
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _live_calls(store: SqlStore, count: int) -> list[str]:
    """Calls in the menu, as if answered: the sockets' tokens are bound to them."""
    now = time.time()
    ids = [f"v3:drill-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    with store.unit() as tx:
        for ccid in ids:
            tx.insert_call(CallRecord(ccid, None, None, "+15551230000", "+15557654321", CallStatus.MENU,
                                      now, now, menu="main", answered_at=now))
    return ids


def _probe(emulator: Emulator, seconds: float) -> tuple[list[float], int]:
    """Place probe calls one after another for `seconds`; every webhook's ack time and the failures."""
    acks: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        leg = emulator.incoming_call()
        if not emulator.wait_for_gather(leg, 20):
            failed += 1
        # Hang up once the call's own stream is up: a stream that connects after the hangup is
        # refused (its call is over), which is right but not what this drill measures.
        streamer_up = time.monotonic() + 5
        while (leg.streamer is None or leg.streamer.sent_frames == 0) and time.monotonic() < streamer_up:
            time.sleep(0.01)
        emulator.caller_hangs_up(leg)
        emulator.idle(20)
        for entry in leg.log.timeline:
            if entry.get("kind") == "webhook":
                if entry["status"] == 200:
                    acks.append(entry["ack_ms"])
                else:
                    failed += 1
    return acks, failed


def _summary(acks: list[float], failed: int) -> dict[str, Any]:
    return {"webhooks": len(acks), "failed": failed,
            "ack_ms": {"p50": percentile(acks, .5), "p95": percentile(acks, .95),
                       "p99": percentile(acks, .99), "max": max(acks) if acks else None}}


def _noise_frames(count: int, seed: int) -> list[str]:
    """Base64 PCMU frames of quiet line noise (the VAD runs on them; nothing is heard)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 60, count * 160).astype(np.int16)
    pcmu = encode_ulaw(samples)
    return [base64.b64encode(pcmu[i * 160:(i + 1) * 160]).decode() for i in range(count)]


class _SocketHolder:
    """Holds the media sockets on an asyncio loop of its own thread; streams real-time frames."""

    def __init__(self, urls: list[str], calls: list[str], streaming: int) -> None:
        self._urls, self._calls, self._streaming = urls, calls, streaming
        self.opened = threading.Event()
        self.open_count = 0
        self.refused = 0
        self.frames = 0
        self._stopping: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),),
                                        name="drill-sockets", daemon=True)
        self._noise = _noise_frames(250, 7)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            ready = 0
            lock = asyncio.Lock()

            async def one(index: int) -> None:
                nonlocal ready
                try:
                    ws = await http.ws_connect(self._urls[index], heartbeat=None)
                except aiohttp.ClientError:
                    async with lock:
                        self.refused += 1
                        if ready + self.refused == len(self._urls):
                            self.opened.set()
                    return
                async with lock:
                    ready += 1
                    self.open_count += 1
                    if ready + self.refused == len(self._urls):
                        self.opened.set()
                try:
                    await self._hold(ws, index)
                finally:
                    self.open_count -= 1
                    await ws.close()

            tasks = [asyncio.create_task(one(i)) for i in range(len(self._urls))]
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _hold(self, ws: aiohttp.ClientWebSocketResponse, index: int) -> None:
        ccid = self._calls[index]
        stream_id = f"drill-{index}"
        await ws.send_str(json.dumps({"event": "connected", "version": "1.0.0"}))
        await ws.send_str(json.dumps({"event": "start", "stream_id": stream_id, "start": {
            "call_control_id": ccid,
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}))
        if index >= self._streaming:
            await ws.receive()  # silent: held open until the drill ends or the app closes it
            return
        due = time.monotonic() + (index % 50) * FRAME_S / 50  # spread the streams over a frame
        chunk = 0
        while not ws.closed:
            chunk += 1
            await ws.send_str(json.dumps({"event": "media", "stream_id": stream_id, "media": {
                "track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                "payload": self._noise[(chunk + index) % len(self._noise)]}}))
            self.frames += 1
            due += FRAME_S
            await asyncio.sleep(max(0.0, due - time.monotonic()))


class _SlowBodies:
    """Connections that send a webhook's headers, then one byte of body a second."""

    def __init__(self, port: int, count: int) -> None:
        self._port, self._count = port, count
        self._stop = threading.Event()
        self.cut_after_s: list[float] = []
        self._thread = threading.Thread(target=self._run, name="drill-slow", daemon=True)

    @property
    def cut_count(self) -> int:
        return len(self.cut_after_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        head = (f"POST /webhooks/telnyx HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode()
        opened: dict[socket.socket, float] = {}
        for _ in range(self._count):
            conn = socket.create_connection(("127.0.0.1", self._port), timeout=5)
            conn.sendall(head)
            conn.setblocking(False)
            opened[conn] = time.monotonic()
        while opened and not self._stop.wait(1.0):
            for conn, since in list(opened.items()):
                try:
                    conn.send(b" ")
                    conn.recv(4096)  # an answer (408) or the end of the stream: cut off
                except BlockingIOError:
                    continue  # nothing to read: still connected
                except OSError:
                    pass
                self.cut_after_s.append(round(time.monotonic() - since, 1))
                conn.close()
                del opened[conn]
        for conn in opened:
            conn.close()
