"""The Symbl adapter against recorded-shape fixtures (Symbl's public API is gone; nothing is called)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import responses
from responses import matchers

from lifeline.insight.symbl import SymblClient, SymblEngine
from lifeline.ivr.config import SymblSettings, load_settings
from lifeline.ivr.errors import ConfigError, ProviderError

BASE = "https://symbl.example.test"
TOKEN_URL = f"{BASE}/oauth2/token:generate"
CONNECT_URL = f"{BASE}/v1/endpoint:connect"
MESSAGES_URL = f"{BASE}/v1/conversations/51356232423/messages"
CONNECTED = {"eventUrl": f"{BASE}/v1/event/771a8757", "resultWebSocketUrl": "wss://symbl.example.test/events/771a8757",
             "connectionId": "771a8757-eff8-4b6c-97cd-64132a7bfc6e", "conversationId": "51356232423"}
MESSAGES = {"messages": [
    {"id": "6412283618000896", "text": "I have been waiting for an hour.",
     "from": {"name": "Caller", "email": None}, "startTime": "2026-11-22T11:16:21.024Z",
     "endTime": "2026-11-22T11:16:26.724Z", "conversationId": "51356232423", "phrases": [],
     "sentiment": {"polarity": {"score": -0.6}, "suggested": "negative"}},
    {"id": "6412283618000897", "text": "Okay.", "from": {"name": "Caller"},
     "startTime": "2026-11-22T11:16:27.000Z", "endTime": "2026-11-22T11:16:27.500Z",
     "conversationId": "51356232423", "sentiment": None},
]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(clock: Clock) -> SymblClient:
    return SymblClient(BASE, "app-id", "app-secret", clock=clock)


def token_reply(rsps: responses.RequestsMock, token: str = "jwt-1", expires: int = 86400) -> None:
    credentials = {"type": "application", "appId": "app-id", "appSecret": "app-secret"}
    rsps.post(TOKEN_URL, json={"accessToken": token, "expiresIn": expires},
              match=[matchers.json_params_matcher(credentials)])


@responses.activate
def test_start_poll_and_stop_follow_the_documented_shapes(client: SymblClient) -> None:
    token_reply(responses)
    responses.post(CONNECT_URL, status=201, json=CONNECTED, match=[matchers.header_matcher(
        {"Authorization": "Bearer jwt-1"})])
    responses.get(MESSAGES_URL, json=MESSAGES, match=[matchers.query_param_matcher({"sentiment": "true"})])
    responses.post(CONNECT_URL, json={}, match=[matchers.json_params_matcher(
        {"operation": "stop", "connectionId": CONNECTED["connectionId"]})])
    connection = client.start({"type": "pstn", "phoneNumber": "12125550100", "dtmf": ",,123#"}, "IVR call")
    assert connection.connection_id == CONNECTED["connectionId"]
    assert connection.conversation_id == "51356232423"
    start_body = json.loads(responses.calls[1].request.body)
    assert start_body["operation"] == "start" and start_body["endpoint"]["type"] == "pstn"
    messages = client.messages(connection.conversation_id)
    assert [(m.id, m.text, m.score) for m in messages] == [
        ("6412283618000896", "I have been waiting for an hour.", -0.6), ("6412283618000897", "Okay.", None)]
    client.stop(connection.connection_id)
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1  # the token is cached


@responses.activate
def test_token_is_renewed_shortly_before_it_expires(client: SymblClient, clock: Clock) -> None:
    token_reply(responses, "jwt-1", expires=3600)
    assert client.token() == "jwt-1"
    responses.replace(responses.POST, TOKEN_URL, json={"accessToken": "jwt-2", "expiresIn": 3600})
    clock.now += 3600 - 301
    assert client.token() == "jwt-1"  # still more than 5 minutes left
    clock.now += 2
    assert client.token() == "jwt-2"


@responses.activate
def test_401_refreshes_the_token_once_and_retries(client: SymblClient) -> None:
    token_reply(responses, "jwt-1")
    responses.get(MESSAGES_URL, status=401, json={"message": "Token validation failed for provided token."})
    responses.get(MESSAGES_URL, json=MESSAGES)
    assert len(client.messages("51356232423")) == 2
    assert [c.request.url for c in responses.calls].count(TOKEN_URL) == 2


@responses.activate
def test_second_401_is_an_error_not_a_loop(client: SymblClient) -> None:
    token_reply(responses)
    responses.get(MESSAGES_URL, status=401, json={"message": "Token validation failed for provided token."})
    with pytest.raises(ProviderError) as caught:
        client.messages("51356232423")
    assert caught.value.status == 401 and not caught.value.retryable
    assert len(responses.calls) == 4  # token, 401, token, 401


@responses.activate
def test_bad_credentials_are_named(client: SymblClient) -> None:
    responses.post(TOKEN_URL, status=401, json={"message": "Unauthorized"})
    with pytest.raises(ProviderError, match="SYMBL_APP_ID/SYMBL_APP_SECRET"):
        client.token()


class SharedState:
    """What the call store gives engines: per-call data every worker sees."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, object]] = {}

    def load(self, call_control_id: str) -> dict[str, object] | None:
        return self.data.get(call_control_id)

    def save(self, call_control_id: str, data: dict[str, object] | None) -> None:
        if data is None:
            self.data.pop(call_control_id, None)
        else:
            self.data[call_control_id] = data


@pytest.fixture
def state() -> SharedState:
    return SharedState()


def make_engine(client: SymblClient, state: SharedState, tmp_path: Path) -> SymblEngine:
    settings = load_settings({"TELNYX_API_KEY": "k",
                              "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                              "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "telnyx"}, tmp_path)
    symbl = SymblSettings("id", "secret", "+12125550100")
    engine = SymblEngine(replace(settings, symbl=symbl), client=client,
                         clock=client._clock)
    engine.bind(lambda *message: None, state=state)
    return engine


@pytest.fixture
def engine(client: SymblClient, state: SharedState, tmp_path: Path) -> SymblEngine:
    return make_engine(client, state, tmp_path)


def answer_call(engine: SymblEngine) -> None:
    """A call is answered and Symbl's session for it starts (token, then endpoint:connect)."""
    token_reply(responses)
    responses.post(CONNECT_URL, status=201, json=CONNECTED)
    engine.call_answered("v3:call-1")
    engine.wait_idle(5)


@responses.activate
def test_engine_polls_with_message_ids_and_backs_off_on_429(engine: SymblEngine, clock: Clock) -> None:
    answer_call(engine)
    assert json.loads(responses.calls[1].request.body)["endpoint"]["phoneNumber"] == "12125550100"
    responses.get(MESSAGES_URL, status=429, json={"message": "Maximum number of concurrent jobs reached"})
    assert engine.poll("v3:call-1") == []
    calls_before = len(responses.calls)
    assert engine.poll("v3:call-1") == []  # still backing off: no request at all
    assert len(responses.calls) == calls_before
    clock.now += 2.1
    responses.replace(responses.GET, MESSAGES_URL, json=MESSAGES)
    polled = engine.poll("v3:call-1")
    assert [(m.source_id, m.score) for m in polled] == [("symbl:6412283618000896", -0.6),
                                                         ("symbl:6412283618000897", None)]


@responses.activate
def test_5xx_doubles_the_backoff(engine: SymblEngine, clock: Clock) -> None:
    answer_call(engine)
    responses.get(MESSAGES_URL, status=503)
    engine.poll("v3:call-1")
    clock.now += 2.1
    engine.poll("v3:call-1")
    assert engine._backoff["v3:call-1"][1] == 4.0


@responses.activate
def test_another_worker_stops_the_session_it_did_not_start(client: SymblClient, state: SharedState,
                                                           tmp_path: Path) -> None:
    starter, other = make_engine(client, state, tmp_path), make_engine(client, state, tmp_path)
    answer_call(starter)
    assert state.load("v3:call-1") == {"connection_id": CONNECTED["connectionId"],
                                       "conversation_id": "51356232423"}
    responses.post(CONNECT_URL, json={}, match=[matchers.json_params_matcher(
        {"operation": "stop", "connectionId": CONNECTED["connectionId"]})])
    other.stop("v3:call-1")
    other.wait_idle(5)
    assert json.loads(responses.calls[-1].request.body)["operation"] == "stop"
    assert state.load("v3:call-1") is None


@responses.activate
def test_hangup_stops_symbls_leg(engine: SymblEngine) -> None:
    token_reply(responses)
    responses.post(CONNECT_URL, status=201, json=CONNECTED, match=[matchers.json_params_matcher(
        {"operation": "start"}, strict_match=False)])
    responses.post(CONNECT_URL, json={}, match=[matchers.json_params_matcher(
        {"operation": "stop", "connectionId": CONNECTED["connectionId"]})])
    engine.call_answered("v3:call-1")
    engine.wait_idle(5)
    engine.stop("v3:call-1")
    engine.wait_idle(5)
    assert json.loads(responses.calls[-1].request.body)["operation"] == "stop"
    assert engine.poll("v3:call-1") == []


def test_sip_dial_in_is_used_as_given(engine: SymblEngine) -> None:
    engine._dial_in = "sip:listen@pbx.example.com"
    assert engine.endpoint("v3:x") == {"type": "sip", "uri": "sip:listen@pbx.example.com",
                                       "audioConfig": {"encoding": "PCMU", "sampleRate": 8000}}


def test_credentials_come_from_the_environment_or_symbl_conf_through_settings(tmp_path: Path) -> None:
    base = {"TELNYX_API_KEY": "k", "TELNYX_PUBLIC_KEY": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "LIFELINE_AGENTS": "+15550001111", "LIFELINE_ENGINE": "symbl", "SYMBL_DIAL_IN": "+12125550100"}
    given = load_settings({**base, "SYMBL_APP_ID": "a", "SYMBL_APP_SECRET": "b"}, tmp_path, (tmp_path,))
    assert given.symbl == SymblSettings("a", "b", "+12125550100")
    (tmp_path / "symbl.conf").write_text("[credentials]\napp_id=x\napp_secret=y\n")
    from_file = load_settings(base, tmp_path, (tmp_path,)).symbl
    assert from_file is not None and (from_file.app_id, from_file.app_secret) == ("x", "y")
    with pytest.raises(ConfigError, match="SYMBL_APP_ID and SYMBL_APP_SECRET") as caught:
        load_settings({**base, "SYMBL_DIAL_IN": ""}, tmp_path, (tmp_path / "nowhere",))
    assert "SYMBL_DIAL_IN is not set" in str(caught.value)  # every problem at once


@responses.activate
def test_polled_symbl_messages_reach_the_rules_through_the_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline.simulator.runner import Simulation

    from .conftest import AGENTS, wait_until
    from .test_call_flow import accepted, store

    responses.add_passthru("http://127.0.0.1")
    monkeypatch.setenv("SYMBL_APP_ID", "app-id")
    monkeypatch.setenv("SYMBL_APP_SECRET", "app-secret")
    token_reply(responses)
    responses.post(CONNECT_URL, status=201, json=CONNECTED)
    angry = {"messages": [
        {"id": "m1", "text": "Nobody is helping me", "sentiment": {"polarity": {"score": -0.7}}},
        {"id": "m2", "text": "This is a waste of my time", "sentiment": {"polarity": {"score": -0.8}}}]}
    responses.get(MESSAGES_URL, json=angry)
    with Simulation({"LIFELINE_AGENTS": AGENTS, "SYMBL_API_BASE_URL": BASE,
                     "SYMBL_DIAL_IN": "+12125550100"}, engine="symbl", speed=20) as sim:
        leg = sim.emulator.incoming_call()
        assert sim.emulator.wait_for_gather(leg, 5)
        lifeline = sim.app.extensions["lifeline"]  # type: ignore[union-attr]
        lifeline.engine.wait_idle(5)
        assert lifeline.monitor.sweep().polled == 2
        assert lifeline.monitor.sweep().polled == 2  # Symbl repeats the whole list...
        assert len(store(sim).messages(leg.call_control_id)) == 2  # ...stored once per message id
        assert wait_until(lambda: bool(accepted(sim, leg.call_control_id, "transfer")))
        # two unhappy lines decide: by the frustration model (annoyed_twice) or, when its calibrated
        # threshold is not reached, by Symbl's own scores (negative_streak)
        assert store(sim).decisions(leg.call_control_id)[0]["rule"] in ("annoyed_twice", "negative_streak")
        assert [m["score"] for m in store(sim).messages(leg.call_control_id)] == [-0.7, -0.8]
