"""Symbl.ai adapter (LIFELINE_ENGINE=symbl, off by default).

Symbl's public API was shut down in 2026 (its hosts no longer resolve). This adapter follows
Symbl's documented shapes for private tenants and compatible servers (SYMBL_API_BASE_URL):
token generation with caching, the Telephony API (`endpoint:connect` start/stop, PSTN with DTMF
or SIP) and polling of `/v1/conversations/{id}/messages?sentiment=true`. Plain `requests`, not
the `symbl` SDK: the SDK hides HTTP errors, keeps one global credential and needs PortAudio.

Symbl listens by calling SYMBL_DIAL_IN (a number or SIP URI that carries the call's audio, e.g.
a conference your Telnyx app joins the caller to); connecting that leg is the deployment's job.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from lifeline.ivr.backoff import doubling
from lifeline.ivr.errors import ConfigError, ProviderError
from lifeline.ivr.events import as_object

from .base import EngineState, ListeningEngine, MessageSink, PolledMessage

if TYPE_CHECKING:
    from lifeline.ivr.config import Settings

log = logging.getLogger(__name__)
REFRESH_MARGIN_S = 300.0
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class SymblConnection:
    """A live Symbl telephony session: the leg (connection) and its transcript (conversation)."""

    connection_id: str
    conversation_id: str


@dataclass(frozen=True)
class SymblMessage:
    """One finalised sentence with Symbl's sentiment, when it gave one."""

    id: str
    text: str
    score: float | None


class SymblClient:
    """Symbl's REST API with a cached token, one refresh on 401, and errors that say what failed."""

    def __init__(self, base_url: str, app_id: str, app_secret: str, *, timeout_s: float = 5.0,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time) -> None:
        self._base = base_url.rstrip("/")
        self._app_id = app_id
        self._app_secret = app_secret
        self._timeout = timeout_s
        self._http = session or requests.Session()
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self, refresh: bool = False) -> str:
        """An access token, reused until shortly before it expires."""
        with self._lock:
            if refresh or self._token is None or self._clock() > self._expires_at - REFRESH_MARGIN_S:
                response = self._send("POST", "/oauth2/token:generate", None, json={
                    "type": "application", "appId": self._app_id, "appSecret": self._app_secret})
                if response.status_code == 401:
                    raise ProviderError("Symbl refused SYMBL_APP_ID/SYMBL_APP_SECRET (401): check the "
                                        "credentials in symbl.conf or the environment",
                                        status=401, code=None, retryable=False)
                body = _json(response, "token")
                self._token = str(body["accessToken"])
                self._expires_at = self._clock() + float(body.get("expiresIn", 86400))
            return self._token

    def start(self, endpoint: dict[str, Any], name: str) -> SymblConnection:
        """Ask Symbl to call an endpoint (PSTN or SIP) and listen."""
        body = self._call("POST", "/v1/endpoint:connect", json={
            "operation": "start", "endpoint": endpoint, "languages": ["en-US"],
            "data": {"session": {"name": name}}})
        return SymblConnection(str(body["connectionId"]), str(body["conversationId"]))

    def stop(self, connection_id: str) -> None:
        """Hang up Symbl's leg (its billing stops with it)."""
        self._call("POST", "/v1/endpoint:connect", json={"operation": "stop", "connectionId": connection_id})

    def messages(self, conversation_id: str) -> list[SymblMessage]:
        """Every message of the conversation so far (Symbl does not paginate this list)."""
        body = self._call("GET", f"/v1/conversations/{conversation_id}/messages",
                          params={"sentiment": "true"})
        found = []
        for item in body.get("messages") or []:
            if not isinstance(item, dict) or not item.get("id") or not isinstance(item.get("text"), str):
                continue
            score = as_object(as_object(item.get("sentiment")).get("polarity")).get("score")
            found.append(SymblMessage(str(item["id"]), item["text"],
                                      float(score) if isinstance(score, (int, float)) else None))
        return found

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, self.token(), **kwargs)
        if response.status_code == 401:  # revoked or expired early: one fresh token, one retry
            response = self._send(method, path, self.token(refresh=True), **kwargs)
        return _json(response, f"{method} {path}")

    def _send(self, method: str, path: str, token: str | None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self._http.request(method, self._base + path, headers=headers, timeout=self._timeout,
                                      **kwargs)
        except requests.RequestException as exc:
            raise ProviderError(f"Symbl unreachable at {self._base}: {exc.__class__.__name__}",
                                status=None, code=None, retryable=True) from exc


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    status = response.status_code
    if status >= 400:
        retryable = status == 429 or status >= 500
        try:
            detail = str(response.json().get("message", ""))[:200]
        except ValueError:
            detail = response.text[:200]
        raise ProviderError(f"Symbl {what}: HTTP {status} {detail}".strip(), status=status, code=None,
                            retryable=retryable)
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError(f"Symbl {what}: the answer is not JSON", status=status, code=None,
                            retryable=True) from exc
    if not isinstance(body, dict):
        raise ProviderError(f"Symbl {what}: unexpected answer", status=status, code=None, retryable=False)
    return body


class SymblEngine(ListeningEngine):
    """Symbl calls in to listen; the monitor's sweep polls its messages."""

    name = "symbl"
    polls = True

    def __init__(self, settings: Settings, client: SymblClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        symbl = settings.symbl
        if symbl is None:
            raise ConfigError("the Symbl engine needs its settings: set LIFELINE_ENGINE=symbl with "
                              "SYMBL_DIAL_IN and the credentials (see docs/listening.md)")
        self._dial_in = symbl.dial_in
        if client is None:
            client = SymblClient(symbl.api_base_url, symbl.app_id, symbl.app_secret)
        self.client = client
        self._clock = clock
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lifeline-symbl")
        self._state: EngineState | None = None
        # Only a pacing hint: a worker that never saw a failure simply polls at the normal rate.
        self._backoff: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def bind(self, sink: MessageSink, state: EngineState | None = None) -> None:
        """Symbl's session ids live in the call store: the worker that gets the hangup may not be
        the one that started the session."""
        self._state = state

    def _session(self, call_control_id: str) -> SymblConnection | None:
        data = self._state.load(call_control_id) if self._state else None
        if not data or "connection_id" not in data or "conversation_id" not in data:
            return None
        return SymblConnection(str(data["connection_id"]), str(data["conversation_id"]))

    def answer_options(self, call_control_id: str) -> dict[str, Any]:
        return {}

    def endpoint(self, call_control_id: str) -> dict[str, Any]:
        """Where Symbl should call: SIP as given, or PSTN digits plus a DTMF code naming the call."""
        if self._dial_in.startswith("sip:"):
            return {"type": "sip", "uri": self._dial_in,
                    "audioConfig": {"encoding": "PCMU", "sampleRate": 8000}}
        code = zlib.crc32(call_control_id.encode()) % 10**8
        return {"type": "pstn", "phoneNumber": self._dial_in.lstrip("+"), "dtmf": f",,{code:08d}#"}

    def call_answered(self, call_control_id: str) -> None:
        self._workers.submit(self._start, call_control_id)

    def _start(self, call_control_id: str) -> None:
        for attempt in range(3):
            try:
                connection = self.client.start(self.endpoint(call_control_id), f"Lifeline {call_control_id}")
            except ProviderError as exc:
                log.warning("Symbl start for %s failed: %s", call_control_id, exc)
                if not exc.retryable:
                    return
                time.sleep(doubling(attempt + 1, 0.5))
                continue
            if self._state is not None:
                self._state.save(call_control_id, {"connection_id": connection.connection_id,
                                                   "conversation_id": connection.conversation_id})
            return

    def poll(self, call_control_id: str) -> list[PolledMessage]:
        with self._lock:
            wait_until, delay = self._backoff.get(call_control_id, (0.0, 0.0))
        if self._clock() < wait_until:
            return []
        session = self._session(call_control_id)
        if session is None:
            return []
        try:
            found = self.client.messages(session.conversation_id)
        except ProviderError as exc:
            if exc.retryable:
                delay = min(MAX_BACKOFF_S, max(2.0, delay * 2))
                with self._lock:
                    self._backoff[call_control_id] = (self._clock() + delay, delay)
                log.warning("Symbl messages for %s: %s; next try in %.0f s", call_control_id, exc, delay)
            else:
                log.error("Symbl messages for %s: %s", call_control_id, exc)
            return []
        with self._lock:
            self._backoff.pop(call_control_id, None)
        return [PolledMessage(f"symbl:{m.id}", m.text, None, m.score) for m in found]

    def stop(self, call_control_id: str) -> None:
        with self._lock:
            self._backoff.pop(call_control_id, None)
        # Off the webhook's path, and after its unit of work has committed.
        self._workers.submit(self._stop, call_control_id)

    def _stop(self, call_control_id: str) -> None:
        session = self._session(call_control_id)
        if session is None:
            return
        try:
            self.client.stop(session.connection_id)
        except ProviderError as exc:
            log.warning("Symbl stop of %s failed: %s", session.connection_id, exc)
            return
        if self._state is not None:
            self._state.save(call_control_id, None)

    def wait_idle(self, timeout: float) -> bool:
        """Finish queued starts and stops (tests)."""
        self._workers.shutdown(wait=True)
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lifeline-symbl")
        return True
