"""What the API and the console say of a summary not made yet: when it will be, by the real delay."""

from __future__ import annotations

from lifeline.conversation.summaries import no_summary_message, summary_due


def test_the_delay_is_named_with_the_setting_that_sets_it() -> None:
    assert summary_due(60.0) == "60 s after the call ends (LIFELINE_TRANSCRIPT_SETTLE_S)"
    assert summary_due(0.0) == "as soon as the call ends"


def test_a_call_in_progress_ended_just_now_or_long_ago_is_told_apart() -> None:
    assert no_summary_message(None, 60.0, now=1000.0) == (
        "no summary yet: the call is still going; its summary is made 60 s after the call ends "
        "(LIFELINE_TRANSCRIPT_SETTLE_S)")
    assert no_summary_message(990.0, 60.0, now=1000.0) == (
        "no summary yet: the call ended 10 s ago and its summary is made 60 s after the call ends "
        "(LIFELINE_TRANSCRIPT_SETTLE_S), once its last words are in; ask again then")
    assert no_summary_message(100.0, 60.0, now=1000.0).startswith("no summary for this call: none was made")
