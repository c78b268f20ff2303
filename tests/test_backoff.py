"""The one retry rule: doubling from a first wait, up to a cap."""

from __future__ import annotations

from lifeline.ivr.backoff import command_backoff_s, doubling
from lifeline.ivr.recordings import RETRY_FIRST_S, RETRY_MAX_S, next_attempt_at
from lifeline.ivr.store import CallRecord


def test_waits_double_from_the_first_and_stop_at_the_cap() -> None:
    assert [doubling(n, 1.0, 10.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [command_backoff_s(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.6, 2.0]


def test_a_retry_count_that_ran_for_days_neither_overflows_nor_passes_the_cap() -> None:
    assert doubling(100_000, 1.0, 3600.0) == 3600.0
    assert doubling(0, 15.0, 300.0) == 15.0  # no failure counted yet: the first wait


def test_recordings_retry_15_s_after_a_failure_then_doubling_to_5_minutes() -> None:
    call = CallRecord(call_control_id="c", call_session_id="s", call_leg_id="l", from_number=None,
                      to_number=None, status="ended", created_at=0.0, updated_at=0.0, recording_attempts=3,
                      recording_attempted_at=1000.0)
    assert next_attempt_at(call) == 1000.0 + RETRY_FIRST_S * 4
    assert next_attempt_at(CallRecord(**{**call.__dict__, "recording_attempts": 40})) == 1000.0 + RETRY_MAX_S
