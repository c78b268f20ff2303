"""Webhooks are never starved: gunicorn as deployed (gunicorn.conf.py), crowded by media sockets and
slow clients.

One worker with 4 threads per pool, so that a handful of sockets would take every thread if a
socket held one. Counting, not timing: the only time limits are generous liveness bounds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lifeline.insight.local import MediaTokens
from lifeline.ivr.store import CallRecord, CallStatus
from lifeline.ivr.store.sql import SqlStore
from lifeline.simulator.emulator import Emulator

from .conftest import ROOT, WebhookFactory, make_signer, wait_until
from .ws_client import close_code, frame_header, handshake, send_text

SECRET = "starvation-test-secret-0123456789"
TOKEN = "starvation-api-token-0123456789"
THREADS = 4
LIVENESS_S = 20.0  # generous: a starved webhook never answers at all


@dataclass
class Served:
    port: int
    store: SqlStore
    tokens: MediaTokens
    signed: WebhookFactory

    def live_call(self) -> str:
        """A call in the menu, as if answered; media tokens may be bound to it."""
        ccid = f"v3:starve-{uuid.uuid4().hex[:12]}"
        now = time.time()
        with self.store.unit() as tx:
            tx.insert_call(CallRecord(ccid, None, None, "+15551230000", "+15557654321", CallStatus.MENU,
                                      now, now, menu="main", answered_at=now))
        return ccid

    def media_path(self, ccid: str) -> str:
        return f"/media/telnyx?token={self.tokens.issue(ccid)}"

    def webhook(self, event_type: str, payload: dict[str, object]) -> int:
        body, headers = self.signed(event_type, payload)
        return httpx.post(f"http://127.0.0.1:{self.port}/webhooks/telnyx", content=body, headers=headers,
                          timeout=LIVENESS_S).status_code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("starvation")
    emulator = Emulator()  # its keys only: the webhooks below are signed with them
    port = _free_port()
    database_url = f"sqlite:///{tmp / 'db'}"
    store = SqlStore(database_url)  # the deploy step (`flask db upgrade`)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELNYX_", "LIFELINE_", "PROMETHEUS_"))}
    env.update({"TELNYX_API_KEY": emulator.api_key, "TELNYX_PUBLIC_KEY": emulator.public_key_b64,
                "TELNYX_API_BASE_URL": "http://127.0.0.1:9/v2", "LIFELINE_AGENTS": "+15550001111",
                "LIFELINE_ENGINE": "local", "LIFELINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "LIFELINE_SECRET_KEY": SECRET, "LIFELINE_MONITOR": "off", "LIFELINE_BODY_TIMEOUT_S": "2",
                "LIFELINE_API_TOKEN": TOKEN,
                "DATABASE_URL": database_url, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics")})
    log = (tmp / "gunicorn.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                               "--workers", "1", "--threads", str(THREADS), "--bind", f"127.0.0.1:{port}",
                               "app:app"],
                              cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        assert wait_until(lambda: _healthy(port), timeout=90), (tmp / "gunicorn.log").read_text()[-2000:]
        yield Served(port, store, MediaTokens(SECRET), make_signer(emulator))
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        store.close()
        emulator.close()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _slow_body(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=LIVENESS_S)
    conn.sendall(f"POST /webhooks/telnyx HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    return conn


def test_webhooks_are_acknowledged_while_media_sockets_and_slow_clients_outnumber_the_threads(
        served: Served) -> None:
    crowd = 3 * THREADS
    sockets = [handshake(served.port, served.media_path(served.live_call())) for _ in range(crowd)]
    slow = [_slow_body(served.port) for _ in range(crowd)]
    for _ in range(crowd):  # and clients that never finish their headers
        slow.append(socket.create_connection(("127.0.0.1", served.port), timeout=LIVENESS_S))
        slow[-1].sendall(b"POST /webhooks/telnyx HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
    try:
        assert [status for status, _ in sockets] == [101] * crowd
        for _ in range(THREADS + 1):  # more webhooks than there are threads: none waits for a socket
            assert served.webhook("call.hangup", {"call_control_id": f"v3:gone-{uuid.uuid4().hex[:8]}",
                                                  "hangup_cause": "normal_clearing"}) == 200
        assert httpx.get(f"http://127.0.0.1:{served.port}/healthz", timeout=LIVENESS_S).status_code == 200
    finally:
        for _, conn in sockets:
            conn.close()
        for conn in slow:
            conn.close()


def _feed_reader(port: int) -> socket.socket:
    """A live-feed client whose stream has begun (its answer's headers read): it holds its thread."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=LIVENESS_S)
    conn.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        assert chunk, "the feed closed before it began"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return conn


def test_open_live_feeds_never_take_the_threads_of_the_health_check_and_the_api(served: Served) -> None:
    readers = [_feed_reader(served.port) for _ in range(3 * THREADS)]  # three times the general pool
    try:
        base = f"http://127.0.0.1:{served.port}"
        assert httpx.get(f"{base}/healthz", timeout=LIVENESS_S).status_code == 200
        auth = {"Authorization": f"Bearer {TOKEN}"}
        calls = httpx.get(f"{base}/api/calls", headers=auth, timeout=LIVENESS_S)
        assert calls.status_code == 200
    finally:
        for conn in readers:
            conn.close()


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed(served: Served) -> None:
    conn = _slow_body(served.port)
    conn.settimeout(LIVENESS_S)
    answer = b""
    while chunk := conn.recv(4096):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"LIFELINE_BODY_TIMEOUT_S" in answer
    conn.close()


@pytest.mark.parametrize(("request_head", "status"), [
    ("GET /api/calls?q=" + "a" * 5000 + " HTTP/1.1\r\nHost: x\r\n\r\n", 414),  # request line too long
    ("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + "x" * 9000 + "\r\n\r\n", 431),  # a header too long
])
def test_what_gunicorn_refuses_before_the_app_is_answered_in_the_one_json_error_shape(
        served: Served, request_head: str, status: int) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=LIVENESS_S) as conn:
        conn.sendall(request_head.encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"Content-Type: application/json" in head
    assert json.loads(body)["error"]["status"] == status


def test_a_body_larger_than_the_limit_is_refused_before_it_is_sent(served: Served) -> None:
    conn = socket.create_connection(("127.0.0.1", served.port), timeout=LIVENESS_S)
    conn.sendall(f"POST /webhooks/telnyx HTTP/1.1\r\nHost: x\r\n"
                 f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode())
    assert conn.recv(4096).startswith(b"HTTP/1.1 413")
    conn.close()


def test_a_10_mb_media_frame_is_refused_without_being_read(served: Served) -> None:
    status, conn = handshake(served.port, served.media_path(served.live_call()))
    assert status == 101
    conn.sendall(frame_header(10 * 1024 * 1024) + b"x" * 70_000)  # the header and 70 kB of 10 MB
    assert close_code(conn, LIVENESS_S) == 1009  # message too big, before the rest was ever sent
    conn.close()


def test_a_media_token_opens_one_socket_and_the_socket_closes_when_its_call_ends(served: Served) -> None:
    ccid = served.live_call()
    path = served.media_path(ccid)
    status, conn = handshake(served.port, path)
    assert status == 101
    send_text(conn, '{"event": "connected", "version": "1.0.0"}')
    again, second = handshake(served.port, path)
    assert again == 403  # the same token, a second time
    second.close()
    assert served.webhook("call.hangup", {"call_control_id": ccid, "hangup_cause": "normal_clearing"}) == 200
    assert close_code(conn, LIVENESS_S) == 1000
    conn.close()
    late, third = handshake(served.port, served.media_path(ccid))
    assert late == 403  # a fresh token of an ended call opens nothing
    third.close()


def test_the_media_drill_bounded_acks_every_webhook_and_cuts_off_every_slow_body() -> None:
    from lifeline.simulator.media_drill import DrillConfig, run_media_drill

    report = run_media_drill(DrillConfig(sockets=12, streaming=4, slow=4, seconds=4, body_timeout_s=1.5),
                             echo=lambda _: None)
    sockets, slow = report["sockets_phase"], report["slow_body_phase"]
    assert (sockets["opened"], sockets["still_open_at_end"], sockets["failed"]) == (12, 12, 0)
    assert sockets["webhooks"] > 0 and sockets["frames_sent"] > 0
    assert (slow["failed"], slow["cut_off"]) == (0, 4)
    assert slow["webhooks"] > 0
