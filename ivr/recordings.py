"""Voicemail audio kept where the operator chose, fetched as soon as Telnyx says it is saved.

Telnyx's `recording_urls` are documented as valid for 10 minutes, so a stored URL is a link
that dies: the audio is downloaded when `call.recording.saved` arrives (after the webhook's
unit of work commits, on a thread of its own), kept by a sink (recording_sinks.py: the
`LIFELINE_RECORDINGS_DIR` directory, or the `LIFELINE_RECORDINGS_BUCKET` S3-compatible bucket)
under a name derived from the call, and its location, SHA-256 and duration are put on the call
record. A fetch
that fails is recorded as `failed` with the reason, logged, and retried by the monitor until
it succeeds or the URL is too old to work: 15 s after the first attempt, then twice as long each
time, at most 5 minutes apart. Each attempt is counted on the call before it is made, so the
sweeps of other workers and instances leave it to the one that counted it.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import logging
import re
import socket
import threading
import time
import wave
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx

from .backoff import doubling
from .errors import RecordingError
from .recording_sinks import RecordingSink, SinkError, audio_format
from .store import CallRecord, CallStore

log = logging.getLogger(__name__)
URL_LIFETIME_S = 600.0  # Telnyx: recording URLs are valid for 10 minutes
KEPT_BY_PROVIDER_S = 24 * 3600.0  # a provider that keeps recordings (Twilio): retried for a day
MAX_BYTES = 50 * 1024 * 1024  # 2 minutes of mono WAV is about 2 MB; anything near this is wrong
# Retries back off from longer than one fetch can take (its timeout), so a sweep never starts a
# second fetch of a recording while the first is still under way.
RETRY_FIRST_S = 15.0
RETRY_MAX_S = 300.0


class RecordingStatus:
    """Where a call's recording is (values stored in calls.recording_status)."""

    PENDING = "pending"
    KEPT = "kept"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class KeptRecording:
    """A recording kept by a sink: where (a path or an s3:// URL), its SHA-256, and how long it is."""

    location: str
    sha256: str
    duration_s: float | None


def _retry_delay(attempts: int) -> float:
    """The wait after a call's `attempts`-th attempt: 15 s, doubling, at most 5 minutes."""
    return doubling(attempts, RETRY_FIRST_S, RETRY_MAX_S) if attempts else 0.0


def next_attempt_at(call: CallRecord) -> float:
    """When the monitor may next try a call's recording, after the attempts it has had."""
    if call.recording_attempted_at is not None:
        # Counted from the last attempt, so attempts a pause in the sweeps (a restart) left behind
        # schedule are not made back to back when the sweeps resume.
        return call.recording_attempted_at + _retry_delay(call.recording_attempts)
    # Attempts counted before the column existed (migration 0008): the schedule from the save.
    delays = (_retry_delay(n) for n in range(1, call.recording_attempts + 1))
    return (call.recording_saved_at or 0.0) + sum(delays, 0.0)


class RecordingFetchError(RecordingError):
    """The recording could not be downloaded or kept; the message says why."""


MAX_REDIRECTS = 5  # Twilio's media URLs redirect once, to where the audio is stored


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased as browsers compare origins."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def url_refusal(url: str, trusted: Collection[str] = ()) -> str | None:
    """Why a recording URL must not be fetched, or None. A URL comes from a webhook, so it may
    name any host: only https to hosts on the internet, never this machine or a private network
    (cloud metadata, internal services), except the configured provider APIs themselves (`trusted`
    origins, scheme and host: an emulator on loopback serves its recordings there)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        return f"not a URL ({exc})"
    if _origin(url) in trusted:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return f"{parts.scheme or 'no'}:// URL (only https:// recording URLs are fetched)"
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"{parts.hostname} does not resolve ({exc})"
    except ValueError:
        return f"{parts.netloc} has a port that is not a number from 0 to 65535"
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global:
            return f"{parts.hostname} resolves to {ip}, which is not an address on the internet"
    return None


class RecordingKeeper:
    """Downloads recordings into a sink and records the outcome on the call."""

    def __init__(self, store: CallStore, sink: RecordingSink, timeout_s: float = 10.0,
                 credentials: Mapping[str, tuple[str, str]] | None = None,
                 provider_apis: Collection[str | None] = ()) -> None:
        self._store = store
        self.sink = sink
        # host -> (user, password): a provider whose recording URLs need its credentials (Twilio,
        # when the account requires HTTP auth on media); its URLs also outlive Telnyx's 10 minutes.
        self._credentials = dict(credentials or {})
        self._timeout_s = timeout_s
        # The configured provider APIs' hosts, which may serve recordings over http or on loopback
        # (an emulator); any other host must be https and on the internet (url_refusal).
        self._trusted = frozenset(_origin(url) for url in provider_apis if url)
        # Redirects are followed here, each hop checked as the first URL is (url_refusal).
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._threads: set[threading.Thread] = set()
        self._closed = False

    def fetch_later(self, call_control_id: str) -> None:
        """Fetch a call's recording on a thread of its own (never on the webhook's)."""
        thread = threading.Thread(target=self._fetch_in_background, args=(call_control_id,),
                                  name="lifeline-recording", daemon=True)
        with self._lock:
            if self._closed:  # shutting down: the recording stays pending for the monitor
                return
            self._threads.add(thread)
        thread.start()

    def _fetch_in_background(self, call_control_id: str) -> None:
        try:
            self.fetch(call_control_id, first=True)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def fetch(self, call_control_id: str, due_by: float | None = None, first: bool = False) -> str | None:
        """Fetch and keep a call's pending or failed recording; returns the status it ended in, or
        None when there was nothing to do. With `due_by`, only when its next attempt is due then;
        with `first`, only if no attempt was made yet (a sweep may have been quicker)."""
        with self._lock:
            # After close() nothing starts: the call keeps its pending status and the monitor
            # of the next start fetches it (the URL lives for 10 minutes).
            if self._closed or call_control_id in self._busy:
                return None
            self._busy.add(call_control_id)
        try:
            call = self._take_attempt(call_control_id, due_by, first)
            return None if call is None else self._fetch(call)
        finally:
            with self._lock:
                self._busy.discard(call_control_id)

    def retry_failed(self, now: float | None = None, limit: int = 200) -> int:
        """The monitor's retry: fetch recordings that are pending or failed, oldest first (however
        many calls came since); returns how many were tried."""
        now = time.time() if now is None else now
        tried = 0
        for call in self._store.recordings_due((RecordingStatus.PENDING, RecordingStatus.FAILED), limit):
            lifetime = (KEPT_BY_PROVIDER_S if urlsplit(call.recording_url or "").netloc in self._credentials
                        else URL_LIFETIME_S)
            if call.recording_saved_at is not None and now - call.recording_saved_at > lifetime:
                log.error("recording of %s was never kept and its URL has expired: %s",
                          call.call_control_id, call.recording_error)
                self._record(call.call_control_id, recording_status=RecordingStatus.EXPIRED)
                continue
            if now >= next_attempt_at(call) and self.fetch(call.call_control_id, due_by=now) is not None:
                tried += 1
        return tried

    def _take_attempt(self, call_control_id: str, due_by: float | None, first: bool) -> CallRecord | None:
        """Count the next attempt on the call (its row locked) and return the call as counted; None
        when its recording is kept or gone, or it is not the attempt asked for (see fetch)."""
        with self._store.unit() as tx:
            call = tx.get_call(call_control_id)
            if call is None or not call.recording_url or call.recording_status not in (
                    RecordingStatus.PENDING, RecordingStatus.FAILED):
                return None
            if due_by is not None and due_by < next_attempt_at(call):
                return None  # another worker's sweep (or instance's) counted it first
            if first and call.recording_attempts:
                return None
            attempts = call.recording_attempts + 1
            # When it is made, not when the sweep began (one sweep fetches many in turn, each up to its
            # timeouts), and never before the sweep's own clock.
            at = time.time() if due_by is None else max(due_by, time.time())
            tx.update_call(call_control_id, updated_at=call.updated_at, recording_attempts=attempts,
                           recording_attempted_at=at)
        return replace(call, recording_attempts=attempts, recording_attempted_at=at)

    def close(self) -> None:
        """Stop taking fetches, let those under way finish, then close the HTTP connection pool."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        # A fetch under way ends within the client's timeout; closing the pool under it would
        # fail it half-way (and count a failed attempt for a recording that was fine).
        deadline = time.monotonic() + self._timeout_s + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._http.close()

    def _fetch(self, call: CallRecord) -> str:
        assert call.recording_url is not None
        try:
            kept = self._download(call.call_control_id, call.recording_url)
        except RecordingFetchError as exc:
            retry_in = next_attempt_at(call) - time.time()
            log.error("recording of %s not kept (attempt %d): %s; the monitor retries in %.0f s",
                      call.call_control_id, call.recording_attempts, exc, max(retry_in, 0.0))
            self._record(call.call_control_id, recording_status=RecordingStatus.FAILED,
                         recording_error=str(exc)[:500])
            return RecordingStatus.FAILED
        log.info("recording of %s kept at %s (%s s)", call.call_control_id, kept.location, kept.duration_s)
        self._record(call.call_control_id, recording_status=RecordingStatus.KEPT,
                     recording_path=kept.location, recording_sha256=kept.sha256,
                     recording_duration_s=kept.duration_s, recording_error=None)
        return RecordingStatus.KEPT

    def _download(self, call_control_id: str, url: str) -> KeptRecording:
        audio = self._get(url)
        if not audio:
            raise RecordingFetchError("recording is 0 bytes")
        extension, mime = audio_format(audio)
        name = re.sub(r"[^A-Za-z0-9_-]", "_", call_control_id)[-120:] + "." + extension
        try:
            location = self.sink.put(name, audio, mime)
        except SinkError as exc:
            raise RecordingFetchError(str(exc)) from None
        return KeptRecording(location, hashlib.sha256(audio).hexdigest(), _duration(audio))

    def _may_send_credentials(self, url: str) -> bool:
        """Credentials go over https, or to a configured provider API exactly as configured."""
        return urlsplit(url).scheme == "https" or _origin(url) in self._trusted

    def _get(self, url: str) -> bytes:
        """The audio at url, following redirects that pass the same checks; RecordingFetchError if not."""
        for _ in range(MAX_REDIRECTS + 1):
            refused = url_refusal(url, self._trusted)
            if refused is not None:
                raise RecordingFetchError(f"recording URL refused: {refused}")
            # Credentials only to the host they are for, never to where it redirects, and never
            # over plain http, even to that host: a redirect could ask for them there.
            auth = self._credentials.get(urlsplit(url).netloc) if self._may_send_credentials(url) else None
            try:
                with self._http.stream("GET", url, auth=auth) as response:
                    if response.is_redirect and response.headers.get("location"):
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code != 200:
                        raise RecordingFetchError(f"HTTP {response.status_code} from the recording URL")
                    return _read_at_most(response, MAX_BYTES)
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                # A malformed URL or redirect is this recording's failure, not the sweep's.
                raise RecordingFetchError(f"{exc.__class__.__name__}: {exc}") from None
        raise RecordingFetchError(f"more than {MAX_REDIRECTS} redirects from the recording URL")

    def _record(self, call_control_id: str, **fields: object) -> None:
        with self._store.unit() as tx:
            call = tx.get_call(call_control_id)
            if call is not None:
                tx.update_call(call_control_id, updated_at=call.updated_at, **fields)


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body, read chunk by chunk: one larger than `limit` is refused before it is all in memory."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise RecordingFetchError(f"recording is over {limit} bytes: not kept")
        chunks.append(chunk)
    return b"".join(chunks)


def _duration(audio: bytes) -> float | None:
    """Seconds of a WAV recording; None for formats we do not parse (MP3)."""
    if audio_format(audio)[0] != "wav":
        return None
    try:
        with wave.open(io.BytesIO(audio)) as wav:
            seconds: float = round(wav.getnframes() / float(wav.getframerate()), 3)
            return seconds
    except (wave.Error, EOFError, ZeroDivisionError):
        return None
