"""Slow and silent clients against gunicorn as deployed (gunicorn.conf.py, lifeline/server.py): a request
line and headers that do not arrive in time close their connection, and a worker holds at most its
cap of connections.

One worker, a header deadline of 1 s (LIFELINE_HEADER_TIMEOUT_S) and a cap of CAP connections
(gunicorn's --worker-connections). Time limits are generous liveness bounds, never measurements.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gunicorn.config import Config

from lifeline.ivr.store.sql import SqlStore
from lifeline.server import FD_HEADROOM, Worker, connection_cap

from .conftest import ROOT, wait_until
from .test_observability import free_port

HEADER_TIMEOUT_S = 1.0
CAP = 6
TOKEN = "limits-token-0123456789"
LIVENESS_S = 20.0  # generous: what is never closed would hang here until this runs out


@dataclass
class Served:
    port: int
    log: Path

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=LIVENESS_S)

    def healthz(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=LIVENESS_S).status_code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("connection-limits")
    port = free_port()
    database_url = f"sqlite:///{tmp / 'db'}"
    SqlStore(database_url).close()  # the deploy step (`flask db upgrade`): servers never migrate
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELNYX_", "LIFELINE_", "PROMETHEUS_", "FLASK_")) and k != "DATABASE_URL"}
    env.update({"TELNYX_API_KEY": "KEY_test_0123456789abcdef",
                "TELNYX_PUBLIC_KEY": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
                "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx", "LIFELINE_MONITOR": "off",
                "LIFELINE_API_TOKEN": TOKEN,
                "LIFELINE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
                "LIFELINE_BODY_TIMEOUT_S": "60",  # slow bodies hold their connections until closed here
                "DATABASE_URL": database_url,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--workers", "1",
             "--worker-connections", str(CAP), "--bind", f"127.0.0.1:{port}", "app:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: _healthy(port), timeout=90), log.read_text()[-2000:]
        yield Served(port, log)
    finally:
        server.terminate()
        server.wait(30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def _one_answer(conn: socket.socket) -> bytes:
    """One whole response (its head and Content-Length bytes of body) on a connection left open."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = conn.recv(65536)
        assert chunk, f"closed before a whole answer: {answer[:200]!r}"
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "closed in the middle of a body"
        body += chunk
    return head + b"\r\n\r\n" + body


def _error_status(answer: bytes) -> int:
    """The status of a refusal in the one JSON error shape (and its status line's)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head, head
    status = int(json.loads(body)["error"]["status"])
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    return status


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_request_head_that_stops_midway_gets_408_and_its_connection_is_closed_while_healthz_answers(
        served: Served) -> None:
    with served.connect() as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: ")  # and nothing more
        assert served.healthz() == 200
        answer = _until_closed(conn)
    assert _error_status(answer) == 408
    assert b"LIFELINE_HEADER_TIMEOUT_S" in answer


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(served: Served) -> None:
    with served.connect() as conn:
        assert _until_closed(conn) == b""


def test_a_kept_alive_connection_may_idle_past_the_header_deadline_but_its_next_head_is_due_in_time(
        served: Served) -> None:
    with served.connect() as conn:
        conn.sendall(HEALTHZ)
        assert _one_answer(conn).startswith(b"HTTP/1.1 200")
        # Idle between requests is gunicorn's keepalive timeout's (30 s), not the header deadline's.
        time.sleep(1.5 * HEADER_TIMEOUT_S)
        conn.sendall(HEALTHZ)
        assert _one_answer(conn).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        assert _error_status(_until_closed(conn)) == 408


def _busy(served: Served) -> socket.socket:
    """A connection past its request head, sending its body slowly: it waits for no request."""
    conn = served.connect()
    conn.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):  # the server has read the head once it asks for the body
        chunk = conn.recv(1)
        assert chunk, "closed before asking for the body"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    conn.sendall(b"{")
    return conn


def _idle(served: Served) -> socket.socket:
    """A kept-alive connection after one request, waiting for its next."""
    conn = served.connect()
    conn.sendall(HEALTHZ)
    assert _one_answer(conn).startswith(b"HTTP/1.1 200")
    return conn


def test_at_the_connection_cap_a_new_connection_takes_the_place_of_the_one_waiting_longest_for_a_request(
        served: Served) -> None:
    idle = [_idle(served) for _ in range(CAP)]
    try:
        assert served.healthz() == 200  # one connection past the cap
        assert _until_closed(idle[0]) == b""  # idle since its answer: closed as a keepalive timeout closes it
        idle[-1].sendall(HEALTHZ)
        assert _one_answer(idle[-1]).startswith(b"HTTP/1.1 200")
    finally:
        for conn in idle:
            conn.close()


def test_at_the_connection_cap_with_none_waiting_for_a_request_a_new_connection_gets_503_at_once(
        served: Served) -> None:
    busy = [_busy(served) for _ in range(CAP)]
    try:
        with served.connect() as newcomer:
            answer = _until_closed(newcomer)
        assert _error_status(answer) == 503 and b"Retry-After: 1" in answer
    finally:
        for conn in busy:
            conn.close()
    assert wait_until(lambda: _healthy(served.port), timeout=LIVENESS_S)  # room again once they left
    assert served.log.read_text().count("Booting worker") == 1  # the same worker throughout


def test_the_cap_is_worker_connections_lowered_to_leave_headroom_under_the_open_files_limit() -> None:
    assert connection_cap(1000, None) == 1000  # no limit
    assert connection_cap(1000, 65536) == 1000
    assert connection_cap(1000, 1024) == 1024 - FD_HEADROOM
    assert connection_cap(1000, 256) == 128  # a tiny limit: half of it still goes to connections


def test_accepts_failing_for_want_of_file_descriptors_are_logged_once_per_few_seconds_without_tracebacks(
        caplog: pytest.LogCaptureFixture) -> None:
    worker = Worker.__new__(Worker)  # gunicorn's constructor needs a master; only the limits are used
    worker.cfg = Config()
    worker.limit_connections()
    loop = asyncio.new_event_loop()
    try:
        with socket.socket() as listening, caplog.at_level(logging.INFO):
            # What asyncio's accept loop reports each time accept() fails with EMFILE.
            for _ in range(1000):
                worker._loop_exception(loop, {"message": "socket.accept() out of system resource",
                                              "exception": OSError(errno.EMFILE, "Too many open files"),
                                              "socket": listening})
            worker._loop_exception(loop, {"message": "something else", "exception": ValueError("other")})
    finally:
        loop.close()
    accepts = [r for r in caplog.records if r.name == "lifeline.connections"]
    assert len(accepts) == 1 and "Too many open files" in accepts[0].getMessage()
    assert accepts[0].exc_info is None
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["asyncio"]  # others as before


def _still_open(conn: socket.socket) -> bool:
    """Whether the server has not closed the connection (nothing more to read now, or more data)."""
    conn.settimeout(0.3)
    try:
        return conn.recv(65536) != b""
    except TimeoutError:
        return True


def test_an_open_live_feed_outlasts_the_header_deadline_and_never_gives_way_at_the_cap(
        served: Served) -> None:
    feed = served.connect()
    try:
        feed.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = feed.recv(65536)
            assert chunk, f"the feed closed before its answer began: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head
        time.sleep(1.5 * HEADER_TIMEOUT_S)  # a stream under way is no slow request head
        assert _still_open(feed)
        idle = [_idle(served) for _ in range(CAP - 1)]  # the cap, with the feed
        try:
            assert served.healthz() == 200  # one past it: an idle connection gives way, not the feed
            assert _still_open(feed)
        finally:
            for conn in idle:
                conn.close()
    finally:
        feed.close()
