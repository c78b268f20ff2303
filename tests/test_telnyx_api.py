"""The Telnyx command client, exercised against the emulator over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from lifeline.ivr.config import load_settings
from lifeline.ivr.store import Command, CommandStatus
from lifeline.ivr.telnyx_api import TelnyxCommands
from lifeline.simulator.emulator import Emulator, Fault


@pytest.fixture
def client(app_config: dict[str, object], tmp_path: Path) -> TelnyxCommands:
    settings = load_settings({**app_config, "LIFELINE_COMMAND_TIMEOUT": "0.3"}, tmp_path)
    assert settings.telnyx is not None
    return TelnyxCommands(settings, settings.telnyx, sleep=lambda _: None)


def speak(call_control_id: str, command_id: str = "cmd-speak-1") -> Command:
    return Command(command_id, call_control_id, "speak", {"payload": "Hello", "voice": "female"})


def answered_leg(emulator: Emulator, client: TelnyxCommands) -> str:
    leg = emulator.incoming_call()
    assert client.send(Command("cmd-answer", leg.call_control_id, "answer", {})).status == "sent"
    return leg.call_control_id


def test_500_then_200_is_one_logical_command_with_one_command_id(
        emulator: Emulator, client: TelnyxCommands) -> None:
    ccid = answered_leg(emulator, client)
    emulator.inject(Fault("speak", status=500))
    outcome = client.send(speak(ccid))
    assert (outcome.status, outcome.attempts) == (CommandStatus.SENT, 2)
    attempts = emulator.commands_for(ccid, "speak")
    assert [a["status"] for a in attempts] == [500, 200]
    assert {a["command_id"] for a in attempts} == {"cmd-speak-1"}


def test_timeout_is_retried_with_the_same_command_id_and_not_executed_twice(
        emulator: Emulator, client: TelnyxCommands) -> None:
    ccid = answered_leg(emulator, client)
    emulator.inject(Fault("speak", delay_s=1.0))  # Telnyx acts, but answers after our timeout
    outcome = client.send(speak(ccid))
    assert outcome.status == CommandStatus.SENT
    attempts = emulator.commands_for(ccid, "speak")
    assert len(attempts) == 2 and {a["command_id"] for a in attempts} == {"cmd-speak-1"}
    assert [bool(a.get("duplicate")) for a in attempts] == [False, True]


def test_call_already_ended_is_a_normal_outcome_not_an_error(
        emulator: Emulator, client: TelnyxCommands, caplog: pytest.LogCaptureFixture) -> None:
    ccid = answered_leg(emulator, client)
    leg = emulator.leg(ccid)
    assert leg is not None
    emulator.caller_hangs_up(leg)
    with caplog.at_level(logging.DEBUG):
        outcome = client.send(speak(ccid))
    assert (outcome.status, outcome.attempts, outcome.error) == (CommandStatus.CALL_ENDED, 1, None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_validation_error_is_not_retried(emulator: Emulator, client: TelnyxCommands) -> None:
    ccid = answered_leg(emulator, client)
    outcome = client.send(Command("cmd-t", ccid, "transfer", {"to": ""}))
    assert outcome.status == CommandStatus.REJECTED
    assert "10004" in (outcome.error or "")
    assert len(emulator.commands_for(ccid, "transfer")) == 1


def test_persistent_5xx_leaves_the_command_pending_after_bounded_attempts(
        emulator: Emulator, client: TelnyxCommands) -> None:
    ccid = answered_leg(emulator, client)
    emulator.inject(Fault("speak", status=503, times=10))
    outcome = client.send(speak(ccid))
    assert (outcome.status, outcome.attempts) == (CommandStatus.PENDING, 4)
    assert {a["command_id"] for a in emulator.commands_for(ccid, "speak")} == {"cmd-speak-1"}


def test_wrong_api_key_is_rejected(emulator: Emulator, app_config: dict[str, object], tmp_path: Path) -> None:
    settings = load_settings({**app_config, "TELNYX_API_KEY": "KEY_wrong"}, tmp_path)
    leg = emulator.incoming_call()
    assert settings.telnyx is not None
    outcome = TelnyxCommands(settings, settings.telnyx, sleep=lambda _: None).send(
        Command("c", leg.call_control_id, "answer", {}))
    assert outcome.status == CommandStatus.REJECTED and "401" in (outcome.error or "")


def test_sdk_names_reach_telnyx_as_rest_fields(emulator: Emulator, client: TelnyxCommands) -> None:
    ccid = answered_leg(emulator, client)
    client.send(Command("cmd-x", ccid, "transfer", {"to": "+15550001111", "from_": "+15550100000"}))
    [request] = emulator.commands_for(ccid, "transfer")
    assert request["body"]["from"] == "+15550100000"
    assert request["body"]["command_id"] == "cmd-x"


def test_emulator_dials_out_like_telnyx(emulator: Emulator, app_config: dict[str, object]) -> None:
    import telnyx

    from .conftest import wait_until

    client = telnyx.Telnyx(api_key=emulator.api_key, base_url=str(app_config["TELNYX_API_BASE_URL"]),
                           max_retries=0)
    reply = client.calls.dial(connection_id="1494404757140276705", from_="+15550100000",
                              to="+15550001111", client_state="eyJhIjoxfQ==")
    leg = emulator.leg(reply.data.call_control_id)
    assert leg is not None and reply.data.is_alive is False
    assert (leg.direction, leg.to, leg.client_state) == ("outgoing", "+15550001111", "eyJhIjoxfQ==")
    assert wait_until(lambda: leg.answered, timeout=3)
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.calls.dial(connection_id="1494404757140276705", from_="+15550100000", to="")


@pytest.mark.parametrize(("timeout", "unknown"), [
    (httpx.ConnectTimeout, False),  # never sent: nothing can ring, asking again is safe
    (httpx.ReadTimeout, True),  # sent, no answer: the call may ring
])
def test_a_dial_that_times_out_says_whether_it_may_have_been_placed(
        client: TelnyxCommands, timeout: type[httpx.TimeoutException], unknown: bool) -> None:
    from lifeline.ivr.errors import ProviderError

    def refuse(request: httpx.Request) -> httpx.Response:
        raise timeout("timed out", request=request)

    # The SDK's own HTTP client, over a transport that times out as asked (no network involved).
    client._client._client = httpx.Client(transport=httpx.MockTransport(refuse))
    client._connection_id = "1494404757140276705"
    with pytest.raises(ProviderError) as failed:
        client.dial("+15551234567", "+15550100000", "e30=", "cmd-dial-1")
    assert (failed.value.outcome_unknown, failed.value.retryable) == (unknown, not unknown)
    assert ("may have been placed" in str(failed.value)) is unknown
