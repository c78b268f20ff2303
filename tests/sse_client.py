"""A small Server-Sent Events client for the tests: reads a live stream on a thread."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
from typing import Any
from urllib.parse import urlsplit


class SseClient:
    """Connects to an SSE URL and collects its events; close() drops the connection at once."""

    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        parts = urlsplit(url)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self._conn.connect()
        self._sock = self._conn.sock
        self._conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        self.response = self._conn.getresponse()
        if self.response.status != 200:
            raise AssertionError(f"SSE refused: {self.response.status} {self.response.read()!r}")
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if "data" in fields:
                        self.events.put({"id": int(fields["id"]), "event": fields.get("event"),
                                         **json.loads(fields["data"])})
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed by the test

    def take(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` events (fewer if the timeout passes first)."""
        got: list[dict[str, Any]] = []
        for _ in range(count):
            try:
                got.append(self.events.get(timeout=timeout))
            except queue.Empty:
                break
        return got

    def until(self, kind: str, call: str | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Events up to and including the first of this kind (of this call)."""
        got: list[dict[str, Any]] = []
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                return got
            got.append(event)
            if event["type"] == kind and (call is None or event["call_control_id"] == call):
                return got

    def close(self) -> None:
        """Drop the connection, as a client that goes away would."""
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
