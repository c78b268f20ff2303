"""Slow and silent clients against gunicorn as deployed (gunicorn.conf.py, lifeline/server.py): a request
line and headers that do not arrive in time close their connection.

One worker and a header deadline of 1 s (LIFELINE_HEADER_TIMEOUT_S). Time limits are generous
liveness bounds, never measurements.
"""

from __future__ import annotations

import json
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

from ivr.store.sql import SqlStore

from .conftest import ROOT, wait_until
from .test_observability import free_port

HEADER_TIMEOUT_S = 1.0
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
                "LIFELINE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S), "DATABASE_URL": database_url,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})
    log = tmp / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--workers", "1",
             "--bind", f"127.0.0.1:{port}", "app:app"],
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
