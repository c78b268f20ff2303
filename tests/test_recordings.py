"""Voicemail audio is fetched and kept with its checksum; a failed fetch is retried, never lost silently."""

from __future__ import annotations

import hashlib
import http.server
import ipaddress
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from lifeline.ivr import recordings
from lifeline.ivr.config import load_settings
from lifeline.ivr.errors import ConfigError
from lifeline.ivr.recording_sinks import BucketSink, DirectorySink, SinkError
from lifeline.ivr.recordings import RETRY_FIRST_S, RecordingKeeper, RecordingStatus, next_attempt_at
from lifeline.ivr.store import CallRecord, CallStatus
from lifeline.ivr.store.sql import SqlStore
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.lifecycle import silent_wav


def _store_with_call(tmp_path: Path, url: str, saved_at: float) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'calls.db'}")
    with store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id="v3:call-1", call_session_id="s", call_leg_id="l",
                                  from_number="+15551230001", to_number="+15550100000",
                                  status=CallStatus.ENDED, created_at=saved_at, updated_at=saved_at,
                                  recording_url=url, recording_status=RecordingStatus.PENDING,
                                  recording_saved_at=saved_at))
    return store


def test_a_failed_fetch_is_recorded_and_the_monitors_retry_keeps_the_audio(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"{emulator.base_url}/recordings/leg-1.wav"
    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[emulator.base_url])
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED  # not there yet: 404
    call = store.get_call("v3:call-1")
    assert call is not None
    assert (call.recording_status, call.recording_attempts) == (RecordingStatus.FAILED, 1)
    assert "HTTP 404" in (call.recording_error or "")
    assert "the monitor retries in 15 s" in caplog.text
    assert keeper.retry_failed() == 0  # not yet: the retries back off

    audio = silent_wav(2.5)
    emulator.recordings["leg-1.wav"] = audio
    assert keeper.retry_failed(now=time.time() + RETRY_FIRST_S + 1) == 1
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.KEPT
    assert Path(call.recording_path or "").read_bytes() == audio
    assert call.recording_sha256 == hashlib.sha256(audio).hexdigest()
    assert (call.recording_duration_s, call.recording_attempts, call.recording_error) == (2.5, 2, None)
    assert keeper.retry_failed() == 0  # kept recordings are left alone
    keeper.close()
    store.close()


class _HeldSink(DirectorySink):
    """A directory sink whose first write waits until the test lets it go."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writing = threading.Event()
        self.release = threading.Event()

    def put(self, name: str, audio: bytes, content_type: str) -> str:
        self.writing.set()
        assert self.release.wait(10)
        return super().put(name, audio, content_type)


def test_closing_waits_for_a_fetch_under_way_and_starts_none_after(
        emulator: Emulator, tmp_path: Path) -> None:
    emulator.recordings["leg-1.wav"] = silent_wav(1.0)
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/leg-1.wav", time.time())
    sink = _HeldSink(tmp_path / "kept")
    keeper = RecordingKeeper(store, sink, provider_apis=[emulator.base_url])
    keeper.fetch_later("v3:call-1")
    assert sink.writing.wait(10)  # downloaded, now being written
    closer = threading.Thread(target=keeper.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close() waits for the fetch instead of pulling the pool from under it
    sink.release.set()
    closer.join(10)
    assert not closer.is_alive()
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.KEPT

    with store.unit() as tx:  # a second recording arrives while the app is stopping
        tx.update_call("v3:call-1", updated_at=call.updated_at, recording_status=RecordingStatus.PENDING)
    keeper.fetch_later("v3:call-1")
    assert keeper.fetch("v3:call-1") is None
    call = store.get_call("v3:call-1")
    assert call is not None and (call.recording_status, call.recording_attempts) == (RecordingStatus.PENDING,
                                                                                     1)
    store.close()


def test_a_recording_whose_url_has_expired_is_reported_not_retried_forever(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/gone.wav", time.time() - 700)
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[emulator.base_url])
    assert keeper.retry_failed() == 0
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.EXPIRED
    assert "URL has expired" in caplog.text
    keeper.close()
    store.close()


@pytest.fixture
def bucket_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 service (moto's, inside this process) with a `voicemail` bucket; its endpoint URL."""
    moto = pytest.importorskip("moto")
    import boto3

    # Credentials through boto3's usual environment variables, as an operator would give them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="voicemail")
        yield "https://s3.us-east-1.amazonaws.com"


def test_a_recording_is_kept_in_the_bucket_with_its_checksum_and_read_back_from_there(
        emulator: Emulator, tmp_path: Path, bucket_endpoint: str) -> None:
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/leg-1.wav", time.time())
    audio = silent_wav(1.5)
    emulator.recordings["leg-1.wav"] = audio
    sink = BucketSink("voicemail", "lifeline/2026", endpoint_url=bucket_endpoint)
    keeper = RecordingKeeper(store, sink, provider_apis=[emulator.base_url])
    assert keeper.fetch("v3:call-1") == RecordingStatus.KEPT
    call = store.get_call("v3:call-1")
    assert call is not None
    assert call.recording_path == "s3://voicemail/lifeline/2026/v3_call-1.wav"
    assert sink.get(call.recording_path) == audio
    assert (call.recording_sha256, call.recording_duration_s) == (hashlib.sha256(audio).hexdigest(), 1.5)
    assert not (tmp_path / "recordings").exists()  # nothing went to a local directory
    keeper.close()
    store.close()


def test_an_unreachable_or_missing_bucket_is_a_failed_fetch_the_monitor_retries(
        emulator: Emulator, tmp_path: Path, bucket_endpoint: str) -> None:
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/leg-1.wav", time.time())
    emulator.recordings["leg-1.wav"] = silent_wav(1.0)
    keeper = RecordingKeeper(store, BucketSink("no-such-bucket", endpoint_url=bucket_endpoint),
                             provider_apis=[emulator.base_url])
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    call = store.get_call("v3:call-1")
    assert call is not None and "s3://no-such-bucket/v3_call-1.wav" in (call.recording_error or "")
    keeper.sink = BucketSink("voicemail", endpoint_url=bucket_endpoint)  # the operator creates it
    assert keeper.retry_failed(now=time.time() + RETRY_FIRST_S + 1) == 1
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.KEPT
    keeper.close()
    store.close()


def test_a_directory_sink_never_reads_outside_its_directory(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "kept")
    location = sink.put("call.wav", b"RIFF....", "audio/wav")
    assert sink.get(location) == b"RIFF...."
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(SinkError, match="is not in"):
        sink.get(str(tmp_path / "kept" / ".." / "secret.txt"))


@pytest.mark.parametrize(("settings", "fix"), [
    ({"LIFELINE_RECORDINGS_BUCKET": "voicemail"}, "is not an s3://bucket/prefix URL"),
    ({"LIFELINE_RECORDINGS_BUCKET": "s3://Bad_Bucket/x"}, "is not an s3://bucket/prefix URL"),
    ({"LIFELINE_RECORDINGS_BUCKET": "s3://voicemail", "LIFELINE_RECORDINGS_S3_ENDPOINT": "minio:9000"},
     "must be an http(s) URL"),
    ({"LIFELINE_RECORDINGS_S3_ENDPOINT": "http://127.0.0.1:9000"}, "LIFELINE_RECORDINGS_BUCKET is not"),
])
def test_a_wrong_bucket_setting_names_the_fix(app_config: dict[str, object], tmp_path: Path,
                                               settings: dict[str, str], fix: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fix)):
        load_settings({**app_config, **settings}, tmp_path)


def test_the_bucket_setting_chooses_the_bucket_sink(app_config: dict[str, object], tmp_path: Path) -> None:
    from lifeline.ivr.recording_sinks import sink_from_settings

    settings = load_settings({**app_config, "LIFELINE_RECORDINGS_BUCKET": "s3://voicemail/calls/",
                              "LIFELINE_RECORDINGS_S3_ENDPOINT": "http://127.0.0.1:9"}, tmp_path)
    sink = sink_from_settings(settings)
    assert isinstance(sink, BucketSink)
    assert sink.describe() == "s3://voicemail/calls at http://127.0.0.1:9"
    assert isinstance(sink_from_settings(load_settings(app_config, tmp_path)), DirectorySink)


def test_a_provider_that_wants_its_credentials_for_recordings_gets_them_and_no_one_else_does(
        tmp_path: Path) -> None:
    from flask import Flask, request

    from lifeline.simulator.server import ServerThread
    audio = silent_wav(1.0)
    media = Flask("media")

    @media.get("/Recordings/RE1.wav")
    def recording() -> tuple[bytes, int]:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != ("AC" + "1" * 32, "token"):
            return b"", 401
        return audio, 200

    server = ServerThread(media).start()
    try:
        url = f"{server.url}/Recordings/RE1.wav"
        host = url.split("/")[2]
        store = _store_with_call(tmp_path, url, time.time())
        without = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[server.url])
        assert without.fetch("v3:call-1") == RecordingStatus.FAILED  # 401: the account wants auth
        without.close()
        keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[server.url],
                                 credentials={host: ("AC" + "1" * 32, "token")})
        assert keeper.fetch("v3:call-1") == RecordingStatus.KEPT
        # Such a provider keeps its recordings: a URL 11 minutes old is still retried, not expired.
        with store.unit() as tx:
            tx.update_call("v3:call-1", recording_status=RecordingStatus.FAILED,
                           recording_saved_at=time.time() - 660, recording_attempted_at=time.time() - 600)
        assert keeper.retry_failed() == 1  # its last attempt's back-off (30 s) is long past
        keeper.close()
        store.close()
    finally:
        server.stop()


def test_a_recording_over_the_size_limit_is_refused_and_nothing_is_kept(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordings, "MAX_BYTES", 64 * 1024)
    emulator.recordings["big.wav"] = silent_wav(5.0)  # 80 kB at 8 kHz, 16 bits
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/big.wav", time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[emulator.base_url])
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    call = store.get_call("v3:call-1")
    assert call is not None and "over 65536 bytes" in (call.recording_error or "")
    assert not (tmp_path / "kept").exists() or not any((tmp_path / "kept").iterdir())
    keeper.close()
    store.close()


def test_failed_fetches_back_off_and_a_second_workers_sweep_does_not_fetch_again(
        emulator: Emulator, tmp_path: Path) -> None:
    saved = time.time()
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/never.wav", saved)
    keepers = [RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[emulator.base_url])
               for _ in range(2)]  # two workers
    assert keepers[0].fetch("v3:call-1") == RecordingStatus.FAILED
    tried = []
    for minute in range(1, 11):  # each worker sweeps every 5 s for the URL's 10 minutes
        for second in range(0, 60, 5):
            now = saved + (minute - 1) * 60 + second
            tried.append(sum(keeper.retry_failed(now=now) for keeper in keepers))
    call = store.get_call("v3:call-1")
    assert call is not None
    # Retried 15, 45, 105, 225 and 465 s after it was saved (then every 5 minutes), each time by
    # one worker: 5 retries in the URL's 10 minutes, where every sweep of both used to fetch (240).
    assert (sum(tried), max(tried), call.recording_attempts) == (5, 1, 6)
    assert call.recording_attempted_at is not None
    assert next_attempt_at(call) == call.recording_attempted_at + 300
    for keeper in keepers:
        keeper.close()
    store.close()


def test_after_a_pause_in_the_sweeps_the_retries_behind_schedule_are_not_made_back_to_back(
        emulator: Emulator, tmp_path: Path) -> None:
    saved = time.time()
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/never.wav", saved)
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=[emulator.base_url])
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    # No sweep for 5 minutes (a restart); then one every 5 s for a minute.
    tried = [keeper.retry_failed(now=saved + 300 + second) for second in range(0, 60, 5)]
    # One attempt when the sweeps resume, the next 30 s after it: not one per sweep to catch up.
    assert tried == [1] + [0] * 5 + [1] + [0] * 5
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_attempts == 3
    assert call.recording_attempted_at == saved + 330
    keeper.close()
    store.close()


class _SlowFailure(http.server.BaseHTTPRequestHandler):
    """A recording host that takes 0.3 s to answer, then fails (503)."""

    def do_GET(self) -> None:  # http.server's name
        time.sleep(0.3)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_each_attempt_of_a_sweep_is_stamped_when_it_is_made_not_when_the_sweep_began(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowFailure)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    saved = time.time() - 60
    store = SqlStore(f"sqlite:///{tmp_path / 'calls.db'}")
    with store.unit() as tx:
        for n in range(3):
            tx.insert_call(CallRecord(call_control_id=f"v3:call-{n}", call_session_id="s", call_leg_id="l",
                                      from_number="+15551230001", to_number="+15550100000",
                                      status=CallStatus.ENDED, created_at=saved, updated_at=saved,
                                      recording_url=f"http://127.0.0.1:{server.server_address[1]}/{n}.wav",
                                      recording_status=RecordingStatus.PENDING, recording_saved_at=saved))
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"),
                             provider_apis=[f"http://127.0.0.1:{server.server_address[1]}"])
    try:
        began = time.time()
        assert keeper.retry_failed(now=began) == 3  # one sweep, the three in turn
        stamps = [store.get_call(f"v3:call-{n}").recording_attempted_at for n in range(3)]  # type: ignore[union-attr]
        # The third waited for two slow failures first: its back-off counts from then.
        assert stamps[0] is not None and stamps[2] is not None and stamps[2] - began >= 0.6
    finally:
        keeper.close()
        store.close()
        server.shutdown()
        server.server_close()


def test_a_call_tried_before_the_last_attempt_was_kept_follows_the_schedule_from_its_save() -> None:
    saved = 1_000.0
    call = CallRecord(call_control_id="v3:old", call_leg_id=None, call_session_id=None, from_number=None,
                      to_number=None, status="ended", created_at=saved, updated_at=saved,
                      recording_saved_at=saved, recording_attempts=3)
    assert next_attempt_at(call) == saved + 15 + 30 + 60
    assert next_attempt_at(replace(call, recording_attempted_at=saved + 500)) == saved + 500 + 60


def test_the_webhooks_first_fetch_stands_down_when_a_sweep_made_the_first_attempt(
        emulator: Emulator, tmp_path: Path) -> None:
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/late.wav", time.time())
    sweeper, webhook = (RecordingKeeper(store, DirectorySink(tmp_path / "kept"),
                                        provider_apis=[emulator.base_url]) for _ in range(2))
    assert sweeper.retry_failed() == 1  # the sweep got there first (404: not there yet)
    assert webhook.fetch("v3:call-1", first=True) is None
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_attempts == 1
    for keeper in (sweeper, webhook):
        keeper.close()
    store.close()


@pytest.mark.parametrize(("url", "why"), [
    ("http://recordings.example.com/a.wav", "http:// URL (only https:// recording URLs are fetched)"),
    ("https://127.0.0.1:9/a.wav", "resolves to 127.0.0.1, which is not an address on the internet"),
    ("https://169.254.169.254/latest/meta-data/", "resolves to 169.254.169.254, which is not an address"),
    ("https://10.1.2.3/a.wav", "resolves to 10.1.2.3, which is not an address on the internet"),
    ("https://localhost/a.wav", "which is not an address on the internet"),
])
def test_a_recording_url_off_the_internet_or_not_https_is_refused_and_never_requested(
        tmp_path: Path, url: str, why: str) -> None:
    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), provider_apis=["https://api.telnyx.com/v2"])
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    call = store.get_call("v3:call-1")
    assert call is not None and "recording URL refused: " in (call.recording_error or "")
    assert why in (call.recording_error or "")
    keeper.close()
    store.close()


def test_redirects_are_followed_only_where_the_first_url_could_go(tmp_path: Path) -> None:
    from flask import Flask, redirect
    from werkzeug.wrappers import Response as WerkzeugResponse

    from lifeline.simulator.server import ServerThread
    audio = silent_wav(1.0)
    elsewhere = ServerThread(Flask("elsewhere")).start()  # on loopback, and not the provider's API
    api = Flask("api")

    @api.get("/Recordings/RE1.wav")
    def moved() -> WerkzeugResponse:
        return redirect("/media/RE1.wav")  # the provider's own host: followed

    @api.get("/media/RE1.wav")
    def media() -> tuple[bytes, int]:
        return audio, 200

    @api.get("/Recordings/RE2.wav")
    def inside() -> WerkzeugResponse:
        return redirect(f"{elsewhere.url}/latest/meta-data/")  # a host the first URL could not name

    server = ServerThread(api).start()
    try:
        for name, expected in (("RE1", RecordingStatus.KEPT), ("RE2", RecordingStatus.FAILED)):
            (tmp_path / name).mkdir()
            store = _store_with_call(tmp_path / name, f"{server.url}/Recordings/{name}.wav", time.time())
            keeper = RecordingKeeper(store, DirectorySink(tmp_path / name), provider_apis=[server.url])
            assert keeper.fetch("v3:call-1") == expected
            call = store.get_call("v3:call-1")
            assert call is not None
            if expected == RecordingStatus.KEPT:
                assert Path(call.recording_path or "").read_bytes() == audio
            else:
                assert "recording URL refused: http:// URL" in (call.recording_error or "")
            keeper.close()
            store.close()
    finally:
        server.stop()
        elsewhere.stop()


def test_kept_voicemail_and_its_folder_are_readable_by_the_services_user_only(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "kept")
    location = sink.put("v3_call-1.wav", silent_wav(0.5), "audio/wav")
    assert Path(location).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "kept").stat().st_mode & 0o777 == 0o700


def test_the_default_database_folder_is_made_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = load_settings({"TELNYX_API_KEY": "KEY_x",
                              "TELNYX_PUBLIC_KEY": "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
                              "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"},
                             tmp_path / "instance")
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'lifeline.db'}"
    assert (tmp_path / "instance").stat().st_mode & 0o777 == 0o700


def test_credentials_never_go_over_plain_http_even_to_their_own_host(tmp_path: Path) -> None:
    store = _store_with_call(tmp_path, "https://api.twilio.com/Recordings/RE1.wav", time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"),
                             credentials={"api.twilio.com": ("AC" + "1" * 32, "token")},
                             provider_apis=["https://api.twilio.com"])
    assert keeper._may_send_credentials("https://api.twilio.com/Recordings/RE1.wav")
    assert not keeper._may_send_credentials("http://api.twilio.com/Recordings/RE1.wav")
    assert recordings.url_refusal("http://api.twilio.com/x", keeper._trusted) is not None  # nor fetched
    keeper.close()
    store.close()


@pytest.mark.parametrize("url", ["https://recordings.example.com:99999/a.wav", "https://[::1/a.wav"])
def test_a_malformed_recording_url_is_a_failed_fetch_with_its_reason_not_an_exception(
        tmp_path: Path, url: str) -> None:
    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"))
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_error
    keeper.close()
    store.close()


class _Resolver:
    """A DNS that answers each lookup of a name from a script (the last answer repeats), and counts."""

    def __init__(self, **answers: list[list[str]]) -> None:
        self._answers = {name.replace("_", "."): list(steps) for name, steps in answers.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        steps = self._answers[host]
        return steps.pop(0) if len(steps) > 1 else steps[0]


class _Seen:
    """A fake recordings host (an httpx transport): records where each request went and answers it."""

    def __init__(self, answers: dict[str, httpx.Response]) -> None:
        self._answers = answers
        self.requests: list[tuple[str, str, str | None, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.url.host, request.headers["host"],
                              request.extensions.get("sni_hostname"), request.url.path))
        return self._answers[request.url.path]


def test_the_connection_goes_to_the_address_that_was_checked_not_to_a_second_lookup(tmp_path: Path) -> None:
    url = "https://recordings.example.com/a.wav"
    # A rebinding name: a public address for the check, then this machine for anyone who asks again.
    resolver = _Resolver(recordings_example_com=[["93.184.216.34"], ["127.0.0.1"]])
    host = _Seen({"/a.wav": httpx.Response(200, content=silent_wav(0.5))})
    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), resolve=resolver,
                             transport=httpx.MockTransport(host))
    assert keeper.fetch("v3:call-1") == RecordingStatus.KEPT
    # To the checked address; the name goes in Host and in TLS (SNI and the certificate check).
    assert host.requests == [("93.184.216.34", "recordings.example.com", "recordings.example.com", "/a.wav")]
    assert resolver.asked == ["recordings.example.com"]
    keeper.close()
    store.close()


def test_each_redirect_is_looked_up_once_and_refused_when_it_leads_inside(tmp_path: Path) -> None:
    url = "https://recordings.example.com:8443/a.wav"
    resolver = _Resolver(recordings_example_com=[["93.184.216.34"], ["2606:2800:220:1::1"], ["10.0.0.5"]])
    host = _Seen({"/a.wav": httpx.Response(302, headers={"location": "/b.wav"}),
                  "/b.wav": httpx.Response(302, headers={"location": "/c.wav"})})
    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), resolve=resolver,
                             transport=httpx.MockTransport(host))
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED
    # A relative redirect is read against the name, never against the address it was fetched from.
    assert host.requests == [
        ("93.184.216.34", "recordings.example.com:8443", "recordings.example.com", "/a.wav"),
        ("2606:2800:220:1::1", "recordings.example.com:8443", "recordings.example.com", "/b.wav")]
    call = store.get_call("v3:call-1")
    assert call is not None
    assert "resolves to 10.0.0.5, which is not an address" in (call.recording_error or "")
    keeper.close()
    store.close()


def test_when_the_first_checked_address_takes_no_connection_the_next_one_is_tried(tmp_path: Path) -> None:
    url = "https://recordings.example.com/a.wav"
    resolver = _Resolver(recordings_example_com=[["2606:2800:220:1::1", "93.184.216.34"]])
    tried: list[str] = []

    def host(request: httpx.Request) -> httpx.Response:
        tried.append(request.url.host)
        if request.url.host == "2606:2800:220:1::1":  # no IPv6 route from here, say
            raise httpx.ConnectError("Network is unreachable", request=request)
        return httpx.Response(200, content=silent_wav(0.5))

    store = _store_with_call(tmp_path, url, time.time())
    keeper = RecordingKeeper(store, DirectorySink(tmp_path / "kept"), resolve=resolver,
                             transport=httpx.MockTransport(host))
    assert keeper.fetch("v3:call-1") == RecordingStatus.KEPT
    assert tried == ["2606:2800:220:1::1", "93.184.216.34"] and resolver.asked == ["recordings.example.com"]
    keeper.close()
    store.close()


@pytest.mark.parametrize(("address", "why"), [
    ("64:ff9b::7f00:1", "which leads to 127.0.0.1"),  # NAT64, well-known prefix
    ("64:ff9b::a9fe:a9fe", "which leads to 169.254.169.254"),  # ... to the cloud's metadata
    ("64:ff9b:1::a00:5", "which leads to 10.0.0.5"),  # NAT64, local-use prefix
    ("64:ff9b:1:ab::808:808", "which is a local-use NAT64 address"),  # a layout other than /96
    ("2002:7f00:1::1", "which leads to 127.0.0.1"),  # 6to4
    ("2002:c0a8:101::1", "which leads to 192.168.1.1"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "which leads to 127.0.0.1"),  # Teredo, client 127.0.0.1
    ("2001:0:a00:1::f5fe:fffe", "which leads to 10.0.0.1"),  # Teredo through a private relay
    ("::ffff:10.1.2.3", "which leads to 10.1.2.3"),  # IPv4-mapped
    ("::7f00:1", "which leads to 127.0.0.1"),  # IPv4-compatible (deprecated)
    ("fd00::1", "which is not an address on the internet"),
])
def test_ipv6_addresses_that_lead_to_a_private_ipv4_address_are_refused(address: str, why: str) -> None:
    refusal = recordings.url_refusal("https://recordings.example.com/a.wav",
                                     resolve=_Resolver(recordings_example_com=[[address]]))
    assert refusal is not None
    assert refusal.startswith(f"recordings.example.com resolves to {ipaddress.ip_address(address)}, {why}")


@pytest.mark.parametrize("address", [
    "64:ff9b::808:808",  # NAT64 to 8.8.8.8
    "64:ff9b:1::808:808",
    "2002:808:808::1",  # 6to4 through 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo: a public relay and client 8.8.8.8
    "::ffff:8.8.8.8",
    "2606:2800:220:1::1",
])
def test_ipv6_addresses_that_lead_to_the_internet_are_fetched(address: str) -> None:
    assert recordings.url_refusal("https://recordings.example.com/a.wav",
                                  resolve=_Resolver(recordings_example_com=[[address]])) is None


def test_one_address_inside_among_public_ones_refuses_the_name() -> None:
    resolve = _Resolver(recordings_example_com=[["93.184.216.34", "64:ff9b::7f00:1"]])
    refusal = recordings.url_refusal("https://recordings.example.com/a.wav", resolve=resolve)
    assert refusal is not None and "resolves to 64:ff9b::7f00:1, which leads to 127.0.0.1" in refusal


def _certificate_for(name: str, folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Audio(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An https server on loopback (a port in 18200-18299) whose certificate names recordings.test."""
    import ssl

    cert, key = _certificate_for("recordings.test", tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = None
    for port in range(18240, 18300):
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Audio)
            break
        except OSError:
            continue
    assert server is not None, "no free port in 18240-18299"
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()
    server.server_close()


def test_a_pinned_request_checks_the_certificate_against_the_name_not_the_address(
        tls_server: tuple[int, Path]) -> None:
    import ssl

    port, cert = tls_server
    trusting = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=trusting) as client:
        right = recordings.FetchTarget(f"https://recordings.test:{port}/a.wav", ("127.0.0.1",))
        url, headers, extensions = right.request("127.0.0.1")
        answer = client.get(url, headers=headers, extensions=extensions)
        assert answer.status_code == 200 and answer.text == f"host=recordings.test:{port}"
        # The same address under a name the certificate does not carry: the handshake fails.
        wrong = recordings.FetchTarget(f"https://elsewhere.test:{port}/a.wav", ("127.0.0.1",))
        url, headers, extensions = wrong.request("127.0.0.1")
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.get(url, headers=headers, extensions=extensions)


def test_a_directory_sink_deletes_its_own_files_only_and_a_file_already_gone_is_no_error(
        tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "kept")
    location = sink.put("v3_call-1.wav", silent_wav(0.5), "audio/wav")
    sink.delete(location)
    assert not Path(location).exists()
    sink.delete(location)  # a second purge, or another instance's, finds it gone
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF")
    with pytest.raises(SinkError, match="is not in"):
        sink.delete(str(outside))
    assert outside.exists()


def test_a_bucket_sink_deletes_the_objects_it_wrote(bucket_endpoint: str) -> None:
    sink = BucketSink("voicemail", "lifeline", endpoint_url=bucket_endpoint)
    location = sink.put("v3_call-1.wav", silent_wav(0.5), "audio/wav")
    sink.delete(location)
    with pytest.raises(SinkError, match="cannot read"):
        sink.get(location)
    sink.delete(location)  # S3 answers a missing key with success
    with pytest.raises(SinkError, match="is not an object in s3://voicemail"):
        sink.delete("s3://other-bucket/lifeline/v3_call-1.wav")
