"""Voicemail audio is fetched and kept with its checksum; a failed fetch is retried, never lost silently."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from ivr.recordings import RecordingKeeper, RecordingStatus
from ivr.store import CallRecord, CallStatus
from ivr.store.sql import SqlStore
from simulator.emulator import Emulator
from simulator.lifecycle import silent_wav


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
    keeper = RecordingKeeper(store, tmp_path / "kept")
    assert keeper.fetch("v3:call-1") == RecordingStatus.FAILED  # not there yet: 404
    call = store.get_call("v3:call-1")
    assert call is not None
    assert (call.recording_status, call.recording_attempts) == (RecordingStatus.FAILED, 1)
    assert "HTTP 404" in (call.recording_error or "")
    assert "the monitor will retry" in caplog.text

    audio = silent_wav(2.5)
    emulator.recordings["leg-1.wav"] = audio
    assert keeper.retry_failed() == 1
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.KEPT
    assert Path(call.recording_path or "").read_bytes() == audio
    assert call.recording_sha256 == hashlib.sha256(audio).hexdigest()
    assert (call.recording_duration_s, call.recording_attempts, call.recording_error) == (2.5, 2, None)
    assert keeper.retry_failed() == 0  # kept recordings are left alone
    keeper.close()
    store.close()


def test_a_recording_whose_url_has_expired_is_reported_not_retried_forever(
        emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = _store_with_call(tmp_path, f"{emulator.base_url}/recordings/gone.wav", time.time() - 700)
    keeper = RecordingKeeper(store, tmp_path / "kept")
    assert keeper.retry_failed() == 0
    call = store.get_call("v3:call-1")
    assert call is not None and call.recording_status == RecordingStatus.EXPIRED
    assert "URL has expired" in caplog.text
    keeper.close()
    store.close()
