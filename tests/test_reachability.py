"""An unreachable or refusing Telnyx is reported once, with the fix, and so is its return."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lifeline.ivr.outbox import CommandSender
from lifeline.ivr.store import Command, CommandStatus
from lifeline.ivr.store.sql import SqlStore
from lifeline.ivr.telnyx_api import SendOutcome


class FakeTelnyx:
    """Answers every command with the outcome it is told to."""

    base_url = "http://telnyx.invalid/v2"

    def __init__(self) -> None:
        self.outcome = SendOutcome(CommandStatus.PENDING, 4, "ConnectError: [Errno 111] Connection refused")
        self.sent: list[str] = []

    def send(self, command: Command, wanted: object = None) -> SendOutcome:
        self.sent.append(command.command_id)
        return self.outcome

    def close(self) -> None:
        """Nothing to release."""


def _commands(store: SqlStore, count: int, prefix: str) -> list[Command]:
    commands = [Command(f"{prefix}-{i}", f"v3:{prefix}-{i}", "speak", {"payload": "hi"})
                for i in range(count)]
    with store.unit() as tx:
        tx.enqueue(commands)
    return commands


@pytest.fixture
def sender(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = SqlStore(f"sqlite:///{tmp_path / 'db'}")
    telnyx = FakeTelnyx()
    sending = CommandSender(store, telnyx, 4)  # type: ignore[arg-type]
    yield sending, telnyx, store
    sending.close()
    store.close()


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "lifeline.ivr.reachability" and r.levelno == level]


def test_an_outage_is_one_error_with_the_fix_and_one_line_when_it_ends(sender, caplog) -> None:  # type: ignore[no-untyped-def]
    sending, telnyx, store = sender
    caplog.set_level(logging.DEBUG)
    sending.submit(_commands(store, 6, "down"))
    assert sending.wait_idle(5)
    sending.submit(_commands(store, 3, "still-down"))
    assert sending.wait_idle(5)
    [error] = _lines(caplog, logging.ERROR)
    assert "unreachable" in error and "TELNYX_API_BASE_URL" in error and "http://telnyx.invalid/v2" in error
    assert sending.reachability.state == "unreachable"
    assert not [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name != "lifeline.ivr.reachability"]
    telnyx.outcome = SendOutcome(CommandStatus.SENT, 1)
    sending.submit(_commands(store, 2, "back"))
    assert sending.wait_idle(5)
    assert len(_lines(caplog, logging.WARNING)) == 1 and "answers again" in _lines(caplog, logging.WARNING)[0]
    assert sending.reachability.state == "ok"


def test_a_refused_api_key_names_telnyx_api_key_once(sender, caplog) -> None:  # type: ignore[no-untyped-def]
    sending, telnyx, store = sender
    telnyx.outcome = SendOutcome(CommandStatus.REJECTED, 1, "HTTP 401 10009 Authentication failed")
    sending.submit(_commands(store, 5, "refused"))
    assert sending.wait_idle(5)
    [error] = _lines(caplog, logging.ERROR)
    assert "refuses our API key" in error and "TELNYX_API_KEY" in error
    assert sending.reachability.state == "refusing"


def test_one_command_out_of_tries_among_delivered_ones_is_not_an_outage(sender, caplog) -> None:  # type: ignore[no-untyped-def]
    sending, telnyx, store = sender
    caplog.set_level(logging.DEBUG)
    for round_, outcome in enumerate([SendOutcome(CommandStatus.SENT, 1), telnyx.outcome,
                                      SendOutcome(CommandStatus.SENT, 2)]):
        telnyx.outcome = outcome
        sending.submit(_commands(store, 1, f"blip-{round_}"))
        assert sending.wait_idle(5)
    assert not _lines(caplog, logging.ERROR) and not _lines(caplog, logging.WARNING)
    [info] = _lines(caplog, logging.INFO)
    assert "kept and resent" in info
    assert sending.reachability.state == "ok"


def test_a_second_failed_delivery_in_a_row_declares_the_outage(sender, caplog) -> None:  # type: ignore[no-untyped-def]
    sending, telnyx, store = sender
    sending.submit(_commands(store, 1, "first"))
    assert sending.wait_idle(5)
    assert sending.reachability.state == "ok"
    sending.submit(_commands(store, 1, "second"))
    assert sending.wait_idle(5)
    [error] = _lines(caplog, logging.ERROR)
    assert "unreachable" in error
    assert sending.reachability.state == "unreachable"


def test_commands_of_another_providers_calls_never_declare_telnyx_unreachable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'db'}")
    client = FakeTelnyx()  # a router's resend of a Twilio command fails as an outage would
    sending = CommandSender(store, client, 4,  # type: ignore[arg-type]
                            tells_reachability=lambda ccid: not ccid.startswith("v3:tw"))
    caplog.set_level(logging.DEBUG)
    try:
        sending.submit(_commands(store, 6, "tw"))
        assert sending.wait_idle(5)
        assert sending.reachability.state == "ok" and not _lines(caplog, logging.ERROR)
        sending.submit(_commands(store, 3, "telnyx"))
        assert sending.wait_idle(5)
        assert sending.reachability.state == "unreachable" and len(_lines(caplog, logging.ERROR)) == 1
    finally:
        sending.close()
        store.close()
