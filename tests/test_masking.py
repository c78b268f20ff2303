"""Digit strings never reach the store readable: spoken with separators, in words, or keyed."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from lifeline.ivr.masking import mask_digits

from .conftest import WebhookFactory
from .test_webhooks import INITIATED, post


@pytest.mark.parametrize(("text", "masked"), [
    ("my pin is 1,234", "my pin is #,###"),
    ("it's 4 1 1 1", "it's # # # #"),
    ("4-1-1-1 is the code", "#-#-#-# is the code"),
    ("one, two, three, four", "#, #, #, #"),
    ("my pin is four one one one", "my pin is # # # #"),
    ("Four One Oh Nine", "# # # #"),
    ("account 12 34 56", "account ## ## ##"),
    ("card 4111.1111.1111.1111", "card ####.####.####.####"),
    ("sort code 20/00/00", "sort code ##/##/##"),
    ("four 1 one 1", "# # # #"),
])
def test_digit_runs_are_masked_whatever_the_separators(text: str, masked: str) -> None:
    assert mask_digits(text) == masked


@pytest.mark.parametrize("text", [
    "press 1 then 2", "room 101", "one more thing", "I called two or three times",
    "someone and everyone", "it cost 20 pounds", "option one, then two", "at 9 or 10",
])
def test_short_numbers_and_ordinary_words_stay_readable(text: str) -> None:
    assert mask_digits(text) == text


def audit_payloads(app: Flask) -> list[str]:
    store = app.extensions["lifeline"].store
    with store.engine.connect() as conn:
        return list(conn.exec_driver_sql("SELECT payload FROM webhook_events").scalars())


def test_a_pin_keyed_one_digit_at_a_time_cannot_be_read_from_the_audit(
        app: Flask, signed: WebhookFactory) -> None:
    post(app, *signed("call.initiated", INITIATED))
    for digit in "4917":
        response = post(app, *signed("call.dtmf.received", {
            "call_control_id": INITIATED["call_control_id"], "digit": digit}))
        assert response.status_code == 200
    keyed = [json.loads(p) for p in audit_payloads(app) if '"digit"' in p]
    assert [p["digit"] for p in keyed] == ["#"] * 4
    readable = [json.dumps({k: v for k, v in p.items() if k != "call_control_id"}) for p in keyed]
    assert not any(d in text for text in readable for d in "4917")


def test_a_pin_spoken_with_commas_is_masked_in_the_audit_and_the_messages(
        app: Flask, signed: WebhookFactory) -> None:
    ccid = INITIATED["call_control_id"]
    post(app, *signed("call.initiated", INITIATED))
    post(app, *signed("call.answered", {"call_control_id": ccid}))
    post(app, *signed("call.transcription", {"call_control_id": ccid, "transcription_data": {
        "transcript": "my pin is 1,234 and it is four nine one seven", "confidence": 0.9,
        "is_final": True}}))
    stored = [m["text"] for m in app.extensions["lifeline"].store.messages(ccid)]
    assert stored == ["my pin is #,### and it is # # # #"]
    assert not any("1,234" in p or "four nine" in p for p in audit_payloads(app))
