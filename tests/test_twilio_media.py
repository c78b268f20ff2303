"""Twilio Media Streams with the local engine: token, real audio heard, stream lost and restarted."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from lifeline.ivr.store import CallStatus
from lifeline.simulator.audio import load_pcmu
from lifeline.simulator.runner import Simulation
from lifeline.simulator.twilio.streamer import TwilioStreamer

from .conftest import AGENTS, ROOT, wait_until
from .ws_client import close_code, handshake

AUDIO = ROOT / "examples" / "calls" / "audio"


@pytest.fixture
def local() -> Iterator[Simulation]:
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine="local", speed=1, provider="twilio") as sim:
        yield sim


def rest(sim: Simulation, sid: str, name: str) -> list[dict[str, object]]:
    return [r for r in sim.emulator.requests if r["call_control_id"] == sid and r["name"] == name
            and r["status"] in (200, 201)]


@pytest.mark.parametrize("token", ["forged", "x.y.z"])
def test_the_twilio_media_socket_refuses_a_bad_token_before_the_handshake(
        local: Simulation, token: str) -> None:
    response = httpx.get(f"{local.emulator.app_url}/media/twilio/{token}",
                         headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                  "Sec-WebSocket-Version": "13",
                                  "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
    assert response.status_code == 403


def test_a_twilio_only_app_serves_no_telnyx_media_socket(local: Simulation) -> None:
    assert local.app.extensions["lifeline"].settings.telnyx is None  # type: ignore[union-attr]
    response = httpx.get(f"{local.emulator.app_url}/media/telnyx", params={"token": "forged"},
                         headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                  "Sec-WebSocket-Version": "13",
                                  "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
    assert response.status_code == 404  # not 403: no Telnyx socket is there to refuse the token
    assert response.json()["error"]["message"] == "no media stream here"


def test_streamed_speech_is_heard_and_the_transfer_goes_out_as_a_rest_update(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    assert wait_until(lambda: isinstance(leg.streamer, TwilioStreamer) and leg.streamer.sent_frames > 10)
    local.emulator.say(leg, "", 0, audio=load_pcmu(AUDIO / "02-asks-for-human-1.wav"))
    assert wait_until(lambda: bool(leg.log.transfers), timeout=15)
    [update] = rest(local, leg.call_control_id, "update")
    assert "<Dial" in str(update["body"]["Twiml"])  # type: ignore[index]
    store = local.app.extensions["lifeline"].store  # type: ignore[union-attr]
    [message] = store.messages(leg.call_control_id)
    assert message["engine"] == "local" and "real person" in message["text"].lower()
    assert wait_until(lambda: leg.log.bridged, timeout=10)


def test_a_dropped_stream_is_restarted_once_then_the_call_goes_on_without_listening(
        local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    assert wait_until(lambda: leg.streamer is not None and leg.streamer.sent_frames > 5)
    store = local.app.extensions["lifeline"].store  # type: ignore[union-attr]
    first = leg.streamer
    first.drop()
    assert wait_until(lambda: len(rest(local, leg.call_control_id, "streams")) == 1)
    assert wait_until(lambda: leg.streamer is not None and leg.streamer is not first
                      and leg.streamer.sent_frames > 5)
    assert store.get_call(leg.call_control_id).listening == "restarted"
    leg.streamer.drop()
    assert wait_until(lambda: store.get_call(leg.call_control_id).listening == "lost")
    assert len(rest(local, leg.call_control_id, "streams")) == 1
    assert local.emulator.wait_for_gather(leg, 5)
    local.emulator.press(leg, "0")  # the menu still works without listening
    assert wait_until(lambda: leg.log.bridged, timeout=10)
    assert wait_until(lambda: store.get_call(leg.call_control_id).status == CallStatus.TRANSFERRED)


def _port(sim: Simulation) -> int:
    return int(str(sim.emulator.app_url).rsplit(":", 1)[1])


def test_a_twilio_media_token_opens_one_socket_and_it_closes_when_the_call_ends(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    tokens = local.app.extensions["lifeline"].engine.tokens  # type: ignore[union-attr]
    path = f"/media/twilio/{tokens.issue(leg.call_control_id)}"
    first, conn = handshake(_port(local), path)
    second, again = handshake(_port(local), path)
    assert (first, second) == (101, 403)
    again.close()
    assert close_code(conn, 0.5) is None
    local.emulator.caller_hangs_up(leg)
    assert close_code(conn, 15) == 1000
    conn.close()
    late, after = handshake(_port(local), f"/media/twilio/{tokens.issue(leg.call_control_id)}")
    assert late == 403  # a fresh token of an ended call opens nothing
    after.close()


def test_a_twilio_media_stream_is_closed_when_its_tokens_life_ends(local: Simulation) -> None:
    leg = local.emulator.incoming_call()
    assert local.emulator.wait_for_gather(leg, 5)
    tokens = local.app.extensions["lifeline"].engine.tokens  # type: ignore[union-attr]
    tokens.life_s = 2.0
    status, conn = handshake(_port(local), f"/media/twilio/{tokens.issue(leg.call_control_id)}")
    assert status == 101
    assert close_code(conn, 15) == 1000
    conn.close()
