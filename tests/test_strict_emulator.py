"""The strict emulator: command bodies held to the SDK's parameter types, webhooks to its models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lifeline.ivr.config import load_settings
from lifeline.ivr.menu import Menu, load_menu
from lifeline.ivr.telnyx_schema import check_action
from lifeline.simulator.emulator import Emulator, ok
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario
from lifeline.simulator.strict import event_problems

from .conftest import AGENTS, ROOT, serving

CALLS = sorted((ROOT / "examples" / "calls").glob("*.yaml"))


@pytest.fixture
def loose() -> Iterator[Emulator]:
    """An emulator these tests send refused bodies to on purpose (the shared one forbids them)."""
    with serving(Emulator(speed=20)) as emu:
        yield emu


def _post(emulator: Emulator, name: str, body: dict[str, object]) -> httpx.Response:
    leg = emulator.incoming_call()
    return httpx.post(f"{emulator.base_url}/v2/calls/{leg.call_control_id}/actions/{name}", json=body,
                      headers={"Authorization": f"Bearer {emulator.api_key}"})


@pytest.mark.parametrize(("name", "body", "code", "pointer"), [
    # Deepgram's config without its model: what Lifeline used to send for every engine.
    ("answer", {"transcription": True, "transcription_config": {
        "transcription_engine": "Deepgram",
        "transcription_engine_config": {"transcription_engine": "deepgram/nova-3", "language": "en-US"}}},
     "10004", "/transcription_config/transcription_engine_config/transcription_model"),
    ("answer", {"transcription": True, "transcription_config": {
        "transcription_engine": "Telnyx",
        "transcription_engine_config": {"transcription_engine": "Telnyx", "language": "en-US"}}},
     "10032", "/transcription_config/transcription_engine_config/language"),
    ("answer", {"stream_url": "wss://x.example/media", "stream_codec": "MP3"}, "10032", "/stream_codec"),
    ("speak", {"payload": "hello"}, "10004", "/voice"),
    ("gather_using_speak", {"payload": "hi", "voice": "AWS.Polly.Joanna-Neural", "language": "xx-XX"},
     "10032", "/language"),
    ("transfer", {"to": "+15550001111", "timeout_secs": "30"}, "10015", "/timeout_secs"),
    ("record_start", {"format": "ogg", "channels": "single"}, "10032", "/format"),
    ("hangup", {"cause": "done"}, "10015", "/cause"),
])
def test_a_body_the_sdk_types_refuse_gets_telnyxs_422(loose: Emulator, name: str,
                                                      body: dict[str, object], code: str,
                                                      pointer: str) -> None:
    emulator = loose
    reply = _post(emulator, name, body)
    assert reply.status_code == 422
    errors = reply.json()["errors"]
    assert (errors[0]["code"], errors[0]["source"]["pointer"]) == (code, pointer)
    assert emulator.commands_for(emulator.refused[-1]["call_control_id"]) == []  # nothing was done


def test_a_body_the_sdk_types_accept_is_executed(emulator: Emulator) -> None:
    reply = _post(emulator, "answer", {"stream_codec": "PCMU", "stream_track": "inbound_track",
                                       "command_id": "c1"})
    assert reply.status_code == 200 and emulator.refused == []
    assert [r["name"] for r in emulator.requests] == ["answer"]


def test_error_codes_without_a_reference_are_marked_in_the_body(emulator: Emulator) -> None:
    reply = _post(emulator, "speak", {"payload": "too early", "voice": "AWS.Polly.Joanna-Neural"})
    [entry] = reply.json()["errors"]
    assert (reply.status_code, entry["code"]) == (422, "90034")
    assert "invented by the emulator" in entry["meta"]["emulator"]


def test_a_dial_without_connection_id_is_refused_by_the_sdk_type(loose: Emulator) -> None:
    emulator = loose
    reply = httpx.post(f"{emulator.base_url}/v2/calls", json={"to": "+15550001111", "from": "+15550100000"},
                       headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["source"]["pointer"] == "/connection_id"


def test_a_dial_transcription_config_is_held_to_the_sdk_type(loose: Emulator) -> None:
    emulator = loose
    body = {"connection_id": "1494404757140276705", "to": "+15550001111", "from": "+15550100000",
            "transcription": True, "transcription_config": {
                "transcription_engine": "Telnyx",
                "transcription_engine_config": {"transcription_engine": "Telnyx", "language": "en-US"}}}
    reply = httpx.post(f"{emulator.base_url}/v2/calls", json=body,
                       headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["source"]["pointer"] == (
        "/transcription_config/transcription_engine_config/language")


def test_menu_commands_fit_the_sdk_types_for_every_menu_and_key() -> None:
    menu: Menu = load_menu(ROOT / "examples" / "ivr.yaml")
    for node in (*menu.nodes, "_after_agents"):
        assert check_action("gather_using_speak", menu.gather(node, lead_in="Sorry.")) == []
    assert check_action("speak", menu.speak("Goodbye.")) == []


def test_local_engine_answer_fits_the_sdk_type(tmp_path: Path) -> None:
    from lifeline.insight.local import LocalEngine

    settings = load_settings({"TELNYX_API_KEY": "KEY_x",
                              "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                              "LIFELINE_AGENTS": AGENTS, "LIFELINE_PUBLIC_URL": "https://ivr.example"},
                             tmp_path)
    engine = LocalEngine(settings)
    assert check_action("answer", engine.answer_options("v3:x")) == []
    restart = engine.restart_options("v3:x")
    assert restart is not None and check_action("streaming_start", restart) == []


@pytest.mark.parametrize("engine", ["telnyx", "local"])
def test_example_calls_run_on_the_strict_emulator_and_every_webhook_fits_the_sdk_models(
        engine: str) -> None:
    scenarios = [load_scenario(path) for path in CALLS]
    speed = 10.0 if engine == "telnyx" else 1.0
    with Simulation({"LIFELINE_AGENTS": AGENTS}, engine=engine, speed=speed) as sim:
        results = sim.run(scenarios, concurrency=4)
        sent = {r["name"] for r in sim.emulator.requests}
        assert sim.emulator.refused == []
        assert sim.emulator.webhook_problems == []
        store = sim.app.extensions["lifeline"].store  # type: ignore[union-attr]
        listening = {store.get_call(r.leg.call_control_id).listening for r in results}  # type: ignore[union-attr]
    assert {"answer", "gather_using_speak", "speak", "transfer"} <= sent
    assert "lost" not in listening
    if engine == "telnyx":
        assert [r.scenario.name for r in results if not r.passed] == []
    else:
        # What tiny.en hears, and how fast on a busy 2-core machine, is issue 9's business (07
        # fails on main too); here every call must have been answered and its audio streamed.
        assert all(r.leg.log.answered for r in results)
        streamed = [r for r in results if any(e["kind"] == "webhook" and e["type"] == "streaming.started"
                                              for e in r.leg.log.timeline)]
        assert len(streamed) == len(results)


def test_the_webhook_check_catches_a_field_the_sdk_model_lacks() -> None:
    # What the emulator used to send: call_control_id on call.recording.saved.
    event = {"record_type": "event", "event_type": "call.recording.saved", "id": "e1",
             "occurred_at": "2026-11-22T10:00:00Z",
             "payload": {"call_control_id": "v3:x", "call_leg_id": "l", "channels": "single",
                         "recording_urls": {"mp3": "https://x.example/r.mp3"}}}
    assert event_problems(event) == ["data.payload.call_control_id is not a field of "
                                     "telnyx.types.call_recording_saved.Payload"]
    del event["payload"]["call_control_id"]  # type: ignore[attr-defined]
    assert event_problems(event) == []
    event["payload"]["channels"] = "triple"  # type: ignore[index]
    assert event_problems(event) != []


def test_the_emulators_replies_fit_the_sdks_response_models(emulator: Emulator) -> None:
    import importlib

    from lifeline.ivr.telnyx_schema import ACTION_PARAMS
    from lifeline.simulator.strict import model_problems

    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    for name, (module, _) in ACTION_PARAMS.items():
        response = importlib.import_module(f"telnyx.types.calls.{module.replace('_params', '_response')}")
        model = getattr(response, "".join(p.capitalize() for p in module.replace("_params", "_response")
                                          .split("_")))
        assert model_problems(model, ok()[1]) == [], name
    dialled = httpx.post(f"{emulator.base_url}/v2/calls", headers=headers,
                         json={"connection_id": "1494404757140276705", "to": "+15550001111",
                               "from": "+15550100000"}).json()
    from telnyx.types.call_dial_response import CallDialResponse
    from telnyx.types.call_retrieve_status_response import CallRetrieveStatusResponse

    assert model_problems(CallDialResponse, dialled) == []
    status = httpx.get(f"{emulator.base_url}/v2/calls/{dialled['data']['call_control_id']}",
                       headers=headers).json()
    assert model_problems(CallRetrieveStatusResponse, status) == []
