"""The asyncio front's hand-over of Flask responses to the loop (lifeline/server.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response

from lifeline import server
from lifeline.server import Front, _environ


def _front(app: Flask) -> Front:
    front = Front.__new__(Front)  # only `app` is used by _respond; no lifeline services needed
    front.app = app
    return front


def _app() -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/telnyx")
    def webhook() -> Any:
        return {"result": "handled"}

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            yield b"one\n"
            yield b"two\n"
        return Response(chunks(), mimetype="text/plain")

    return app


def _respond(path: str, method: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What _respond returned, and what it sent through the loop itself, for one request."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        scope = {"type": "http", "method": method, "path": path, "headers": [], "http_version": "1.1"}
        return await loop.run_in_executor(None, _front(_app())._respond, _environ(scope, b""), loop, send,
                                          threading.Event())

    return asyncio.run(run()), sent


def test_a_one_piece_response_is_returned_for_the_loop_to_send_instead_of_being_pushed_from_the_thread(
        ) -> None:
    returned, pushed = _respond("/webhooks/telnyx", "POST")
    assert pushed == []
    assert [m["type"] for m in returned] == ["http.response.start", "http.response.body"]
    assert returned[0]["status"] == 200
    assert returned[1]["more_body"] is False and b'"handled"' in returned[1]["body"]


def test_a_streamed_response_is_pushed_chunk_by_chunk_and_ends_with_an_empty_last_body() -> None:
    returned, pushed = _respond("/stream", "GET")
    assert returned == []
    assert pushed[0]["type"] == "http.response.start"
    assert [(m["body"], m["more_body"]) for m in pushed[1:]] == [(b"one\n", True), (b"two\n", True),
                                                                 (b"", False)]


def test_a_stream_whose_client_stopped_reading_lets_its_thread_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "STALLED_CLIENT_S", 0.2)
    app = Flask(__name__)
    produced: list[int] = []

    @app.get("/feed")
    def feed() -> Response:
        def chunks() -> Iterator[bytes]:
            for n in range(1000):
                produced.append(n)
                yield b"event\n"
        return Response(chunks(), mimetype="text/event-stream")

    taken: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if len(taken) >= 2:  # the client's buffers are full: this send never completes
            await asyncio.Event().wait()
        taken.append(message)

    async def run() -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        scope = {"type": "http", "method": "GET", "path": "/feed", "headers": [], "http_version": "1.1"}
        gone = threading.Event()
        returned = await asyncio.wait_for(loop.run_in_executor(
            None, _front(app)._respond, _environ(scope, b""), loop, send, gone), timeout=30)
        assert gone.is_set()
        return returned

    assert asyncio.run(run()) == []
    assert len(produced) < 10  # it stopped producing once the client stopped taking
