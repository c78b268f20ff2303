"""The OpenAPI description covers every route the app serves, and the API's times are ISO-8601."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask

from lifeline.ivr.timefmt import iso, iso_times
from lifeline.simulator.runner import Simulation

from .conftest import wait_until

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    return routes


def test_every_route_is_described_and_nothing_else(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert _routes(app) == described


def test_with_twilio_configured_its_routes_are_described_too(app_config: dict[str, object]) -> None:
    from lifeline import create_app
    application = create_app({**app_config, "TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
                              "TWILIO_AUTH_TOKEN": "twilio-test-auth-token",
                              "LIFELINE_PUBLIC_URL": "https://lifeline.example"}, migrate=True)
    try:
        document = application.test_client().get("/api/openapi.json").get_json()
        described = {(path, method) for path, item in document["paths"].items() for method in item}
        assert ("/webhooks/twilio/{kind}", "post") in described
        assert _routes(application) == described
    finally:
        application.extensions["lifeline"].close()


def test_a_twilio_only_app_describes_what_it_serves_and_the_telnyx_webhooks_404(tmp_path: Path) -> None:
    from lifeline import create_app
    application = create_app({"TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
                              "TWILIO_AUTH_TOKEN": "twilio-test-auth-token",
                              "LIFELINE_PUBLIC_URL": "https://lifeline.example", "LIFELINE_ENGINE": "twilio",
                              "LIFELINE_AGENTS": "+15550001111",
                              "DATABASE_URL": f"sqlite:///{tmp_path / 'lifeline.db'}"}, migrate=True)
    try:
        assert application.extensions["lifeline"].settings.telnyx is None
        document = application.test_client().get("/api/openapi.json").get_json()
        described = {(path, method) for path, item in document["paths"].items() for method in item}
        assert _routes(application) == described
        # Still served, to say why it refuses: the document says so too.
        answers = document["paths"]["/webhooks/telnyx"]["post"]["responses"]
        assert "Telnyx is not configured" in answers["404"]["description"]
    finally:
        application.extensions["lifeline"].close()


def test_every_reference_in_the_document_resolves(app: Flask) -> None:
    document = app.test_client().get("/api/openapi.json").get_json()
    text = str(document)
    for ref in set(re.findall(r"'\$ref': '#/([^']+)'", text)):
        node = document
        for part in ref.split("/"):
            assert part in node, f"#/{ref} does not resolve"
            node = node[part]


def test_times_are_iso_8601_in_utc() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso_times({"created_at": 1.5, "attempt": 2, "nested": [{"ended_at": None, "decided_at": 60}]}) == \
        {"created_at": "1970-01-01T00:00:01.500Z", "attempt": 2,
         "nested": [{"ended_at": None, "decided_at": "1970-01-01T00:01:00.000Z"}]}


def test_the_calls_api_answers_with_iso_times(live: Simulation) -> None:
    leg = live.emulator.incoming_call()
    assert live.emulator.wait_for_gather(leg, 5)
    client = live.app.test_client()  # type: ignore[union-attr]
    auth = {"Authorization": "Bearer test-token"}
    [call] = client.get("/api/calls", headers=auth).get_json()["calls"]
    assert ISO.match(call["created_at"]) and ISO.match(call["answered_at"])
    detail = client.get(f"/api/calls/{leg.call_control_id}", headers=auth).get_json()
    assert all(ISO.match(e["received_at"]) for e in detail["events"])


def test_every_field_of_a_call_the_api_returns_is_described_and_its_times_are_date_times(
        live: Simulation) -> None:
    leg = live.emulator.incoming_call()
    assert live.emulator.wait_for_gather(leg, 5)
    client = live.app.test_client()  # type: ignore[union-attr]
    auth = {"Authorization": "Bearer test-token"}
    described = client.get("/api/openapi.json").get_json()["components"]["schemas"]["Call"]["properties"]
    call = client.get(f"/api/calls/{leg.call_control_id}", headers=auth).get_json()["call"]
    assert sorted(set(call) - set(described)) == []
    assert all(described[k].get("format") == "date-time" for k in call if k.endswith("_at"))


def test_every_field_of_a_message_the_api_returns_is_described_and_its_analysis_too(
        live: Simulation) -> None:
    leg = live.emulator.incoming_call()
    assert live.emulator.wait_for_gather(leg, 5)
    live.emulator.say(leg, "This is hopeless, I am cancelling my contract", 0.2)
    client = live.app.test_client()  # type: ignore[union-attr]
    auth = {"Authorization": "Bearer test-token"}

    def messages() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = client.get(f"/api/calls/{leg.call_control_id}",
                                                 headers=auth).get_json()["messages"]
        return found

    assert wait_until(messages, 10)
    [message] = messages()
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert sorted(set(message) - set(schemas["Message"]["properties"])) == []
    analysis = message["analysis"]
    assert sorted(analysis) == sorted(schemas["Analysis"]["properties"])
    assert set(analysis["frustration"]) == {"calm", "annoyed", "angry"}
    assert set(analysis["intents"]) == {"wants_person", "leave_or_cancel", "legal_or_complaint",
                                        "bot_complaint"}


def test_the_dial_requests_schema_refuses_what_the_server_refuses_and_takes_what_it_takes() -> None:
    import re

    from lifeline.ivr.config import is_dialable
    from lifeline.ivr.openapi import document
    body = document()["paths"]["/api/calls"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    to = re.compile(body["properties"]["to"]["pattern"])
    for address in ("+15551234567", "sip:alice@pbx.example.com", "sips:bob@10.0.0.1:5061", "x", "+0123",
                    "5551234567", "sip:@host", "sip:alice@", "+1555 1234567"):
        assert bool(to.match(address)) == is_dialable(address), address
