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

A recording URL comes from a webhook: check_url resolves its host once and judges every address
(an IPv6 address that leads to an IPv4 one by that IPv4 address), and the fetch connects to the
address it judged, with the name in Host, SNI and the certificate check (FetchTarget.request).
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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
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


Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> its addresses, as getaddrinfo gives them

# IPv6 ranges whose traffic goes to an IPv4 address written inside them: NAT64's well-known
# prefix (RFC 6052) and its local-use one (RFC 8215), SIIT's IPv4-translated addresses (RFC 2765,
# ::ffff:0:0:0/96) and IPv4-compatible addresses (deprecated).
# 6to4 (2002::/16), Teredo (2001::/32) and IPv4-mapped ones are read by the ipaddress module.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system's resolver gives for host, in its order."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries traffic to (a translator or tunnel on the way
    delivers it there), or () for an address that embeds none."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip in _NAT64 or ip in _NAT64_LOCAL or ip in _IPV4_TRANSLATED or ip in _IPV4_COMPATIBLE:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)  # the /96 layout: the last 32 bits
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # the relay server, and the client the traffic is for
    return ()


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be connected to (it or the IPv4 address it leads to is not on the
    internet), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL and int(ip) >> 32 != int(_NAT64_LOCAL.network_address) >> 32:
            # RFC 6052 lets a local translator put the IPv4 address elsewhere in the 128 bits; only
            # 64:ff9b:1::a.b.c.d (the /96 layout) can be read with certainty.
            return "which is a local-use NAT64 address (64:ff9b:1::/48) whose IPv4 address cannot be told"
        inner = embedded_ipv4(ip)
        if inner:
            # Judged by where the traffic ends up, not by the IPv6 prefix (6to4's 2002::/16 counts
            # as global; Teredo's 2001::/32 does not, though its client may well be).
            closed = [v4 for v4 in inner if not v4.is_global]
            return f"which leads to {closed[0]}, not an address on the internet" if closed else None
    return None if ip.is_global else "which is not an address on the internet"


@dataclass(frozen=True)
class FetchTarget:
    """A recording URL as checked: the addresses to connect to, in the resolver's order (none:
    connect by name, a configured provider API), so the connection goes where the check looked and
    not where a second lookup says."""

    url: str
    addresses: tuple[str, ...] = ()

    def request(self, address: str | None) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """The URL to ask for, headers and extensions: the checked address in the URL, the name in
        Host and in TLS (the SNI and the certificate check are against the name, as for any https)."""
        url = httpx.URL(self.url)
        if address is None or url.host == address:
            return url, {}, {}
        return (url.copy_with(host=address), {"Host": url.netloc.decode("ascii")},
                {"sni_hostname": url.raw_host.decode("ascii")})


def check_url(url: str, trusted: Collection[str] = (), resolve: Resolver = system_resolver) -> FetchTarget:
    """The URL's target, resolved once and checked: only https to hosts on the internet, never this
    machine or a private network (cloud metadata, internal services), except the configured provider
    APIs themselves (`trusted` origins, scheme and host: an emulator on loopback serves recordings
    there). A URL comes from a webhook, so it may name any host; RecordingFetchError says why not."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise RecordingFetchError(f"recording URL refused: not a URL ({exc})") from None
    if _origin(url) in trusted:
        return FetchTarget(url)
    if parts.scheme != "https" or not parts.hostname:
        raise RecordingFetchError(f"recording URL refused: {parts.scheme or 'no'}:// URL "
                                  "(only https:// recording URLs are fetched)")
    try:
        found = resolve(parts.hostname, parts.port or 443)
    except (socket.gaierror, UnicodeError) as exc:
        raise RecordingFetchError(f"recording URL refused: {parts.hostname} does not resolve "
                                  f"({exc})") from None
    except ValueError:
        raise RecordingFetchError(f"recording URL refused: {parts.netloc} has a port that is not a number "
                                  "from 0 to 65535") from None
    if not found:
        raise RecordingFetchError(f"recording URL refused: {parts.hostname} does not resolve")
    for address in found:
        ip = ipaddress.ip_address(address)
        why = address_refusal(ip)
        if why is not None:
            # Every address is judged, not only the one used: a name that also leads inside is refused.
            raise RecordingFetchError(f"recording URL refused: {parts.hostname} resolves to {ip}, {why}")
    return FetchTarget(url, tuple(found))


def url_refusal(url: str, trusted: Collection[str] = (), resolve: Resolver = system_resolver) -> str | None:
    """Why a recording URL must not be fetched (check_url's reason), or None."""
    try:
        check_url(url, trusted, resolve)
    except RecordingFetchError as exc:
        return str(exc).removeprefix("recording URL refused: ")
    return None


class RecordingKeeper:
    """Downloads recordings into a sink and records the outcome on the call."""

    def __init__(self, store: CallStore, sink: RecordingSink, timeout_s: float = 10.0,
                 credentials: Mapping[str, tuple[str, str]] | None = None,
                 provider_apis: Collection[str | None] = (), resolve: Resolver = system_resolver,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._store = store
        self.sink = sink
        # host -> (user, password): a provider whose recording URLs need its credentials (Twilio,
        # when the account requires HTTP auth on media); its URLs also outlive Telnyx's 10 minutes.
        self._credentials = dict(credentials or {})
        self._timeout_s = timeout_s
        # The configured provider APIs' hosts, which may serve recordings over http or on loopback
        # (an emulator); any other host must be https and on the internet (check_url).
        self._trusted = frozenset(_origin(url) for url in provider_apis if url)
        self._resolve = resolve
        # Redirects are followed here, each hop checked as the first URL is (check_url). No
        # connection is kept for another fetch: one opened to a checked address and verified for
        # one name must not carry a request for another name that resolved to the same address.
        self._http = httpx.Client(timeout=timeout_s, follow_redirects=False, transport=transport,
                                  limits=httpx.Limits(max_keepalive_connections=0))
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
            # Resolved once, here: the connection goes to an address this checked (a second lookup
            # by the HTTP client could be answered differently: DNS rebinding).
            target = check_url(url, self._trusted, self._resolve)
            # Credentials only to the host they are for, never to where it redirects, and never
            # over plain http, even to that host: a redirect could ask for them there.
            auth = self._credentials.get(urlsplit(url).netloc) if self._may_send_credentials(url) else None
            found = self._get_from(target, auth)
            if isinstance(found, bytes):
                return found
            url = found
        raise RecordingFetchError(f"more than {MAX_REDIRECTS} redirects from the recording URL")

    def _get_from(self, target: FetchTarget, auth: tuple[str, str] | None) -> bytes | str:
        """The audio, or the URL it redirects to, from the first checked address that takes the
        connection (as a connection by name tries each address the name has, in order)."""
        refused: httpx.ConnectError | None = None
        for address in target.addresses or (None,):
            try:
                where, headers, extensions = target.request(address)
                with self._http.stream("GET", where, headers=headers, extensions=extensions,
                                       auth=auth) as response:
                    if response.is_redirect and response.headers.get("location"):
                        # Against the URL as named: the response's own URL holds the address.
                        return str(httpx.URL(target.url).join(response.headers["location"]))
                    if response.status_code != 200:
                        raise RecordingFetchError(f"HTTP {response.status_code} from the recording URL")
                    return _read_at_most(response, MAX_BYTES)
            except httpx.ConnectError as exc:
                # Refused or unreachable at once, nothing sent: the next address may take it. A
                # connect timeout is not tried further: a fetch must end within one timeout, which the
                # retries' first wait (RETRY_FIRST_S) and close() count on.
                refused = exc
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
                # A malformed URL or redirect is this recording's failure, not the sweep's.
                raise RecordingFetchError(f"{exc.__class__.__name__}: {exc}") from None
        raise RecordingFetchError(f"{refused.__class__.__name__}: {refused}")

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
