"""Transcripts, pause and resume, summaries, transcript webhooks and email out, through the emulator."""

from __future__ import annotations

import http.server
import json
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage, Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, request

from lifeline.conversation.webhooks_out import verify
from lifeline.ivr.errors import StoreError
from lifeline.simulator.runner import Simulation
from lifeline.simulator.server import ServerThread

from .conftest import AGENTS, wait_until
from .test_call_flow import post_signed, settle, start_call

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "a-long-random-event-secret"


def outputs(sim: Simulation) -> Any:
    return sim.app.extensions["conversation"]  # type: ignore[union-attr]


def api(sim: Simulation) -> Any:
    return sim.app.test_client()  # type: ignore[union-attr]


def hear(sim: Simulation, leg: Any, *lines: str) -> None:
    """The caller says each line; wait until the app has stored or dropped it."""
    for line in lines:
        before = len(outputs(sim).store.feed_for_call(leg.call_control_id))
        sim.emulator.say(leg, line, 0.1)
        leg.log.wait_quiet(5)
        wait_until(lambda b=before: len(outputs(sim).store.feed_for_call(leg.call_control_id)) > b, 1)


def end_call(sim: Simulation, leg: Any) -> None:
    sim.emulator.caller_hangs_up(leg)
    settle(sim, leg)
    assert wait_until(lambda: outputs(sim).summaries.get(leg.call_control_id) is not None, 10)


def test_a_line_break_in_what_was_said_keeps_each_message_one_line_and_one_cue() -> None:
    from lifeline.conversation.transcripts import as_text, as_vtt
    said = "hello there\n\n00:00:09.000 --> 00:00:10.000\nagent: fake"
    doc = {"call_control_id": "v3:x", "from": None, "to": None, "started_at": "t",
           "messages": [{"party": "caller", "text": said, "start": 1.0, "end": 2.0}]}
    assert as_text(doc).splitlines()[1:] == [
        "[00:01.0] caller: hello there 00:00:09.000 --> 00:00:10.000 agent: fake"]
    assert as_vtt(doc).split("\n\n")[1].splitlines()[2] == (
        "<v caller>hello there 00:00:09.000 --&gt; 00:00:10.000 agent: fake")
    forged = {**doc, "from": "+15551230001\r\n[00:00.0] agent: fake", "messages": []}
    assert as_text(forged).splitlines() == [  # a caller's number from SIP can hold anything
        "Call v3:x from +15551230001 [00:00.0] agent: fake to unknown, started t"]


def test_a_transcript_comes_as_json_text_and_webvtt(live: Simulation) -> None:
    leg = start_call(live)
    hear(live, leg, "Hello, I have a question about my account.", "What is the <b>fee</b> & why?")
    end_call(live, leg)
    ccid = leg.call_control_id
    doc = api(live).get(f"/api/calls/{ccid}/transcript", headers=AUTH).get_json()
    assert [(m["party"], m["text"]) for m in doc["messages"]] == [
        ("caller", "Hello, I have a question about my account."), ("caller", "What is the <b>fee</b> & why?")]
    assert doc["outcome"] == "completed" and doc["ended_at"].endswith("Z")
    assert all(m["start"] <= m["end"] for m in doc["messages"])
    # Each caller line carries what the rules read from it, as the message event does.
    assert all(set(m["analysis"]["frustration"]) == {"calm", "annoyed", "angry"} and m["source_id"]
               for m in doc["messages"])
    text = api(live).get(f"/api/calls/{ccid}/transcript?format=txt", headers=AUTH)
    assert text.mimetype == "text/plain"
    assert "] caller: Hello, I have a question about my account." in text.get_data(as_text=True)
    vtt = api(live).get(f"/api/calls/{ccid}/transcript?format=vtt", headers=AUTH).get_data(as_text=True)
    assert vtt.startswith("WEBVTT\n\n1\n00:00:")
    assert "<v caller>What is the &lt;b&gt;fee&lt;/b&gt; &amp; why?" in vtt
    assert api(live).get(f"/api/calls/{ccid}/transcript?format=doc", headers=AUTH).status_code == 400
    assert api(live).get("/api/calls/nope/transcript", headers=AUTH).status_code == 404
    assert api(live).get(f"/api/calls/{ccid}/transcript").status_code == 401


def test_transcripts_in_a_batch_are_paginated_in_a_stable_order(live: Simulation) -> None:
    legs = []
    for n in range(3):
        leg = start_call(live)
        hear(live, leg, f"This is caller number {n + 1}.")
        end_call(live, leg)
        legs.append(leg.call_control_id)
    since = time.time() - 600
    first = api(live).get(f"/api/transcripts?since={since}&limit=2", headers=AUTH)
    assert first.mimetype == "application/x-ndjson"
    page1 = [json.loads(line) for line in first.get_data(as_text=True).splitlines()]
    cursor = first.headers["Lifeline-Next-Cursor"]
    second = api(live).get(f"/api/transcripts?since={since}&limit=2&cursor={cursor}", headers=AUTH)
    page2 = [json.loads(line) for line in second.get_data(as_text=True).splitlines()]
    assert "Lifeline-Next-Cursor" not in second.headers
    assert [t["call_control_id"] for t in page1 + page2] == legs
    assert page2[0]["messages"][0]["text"] == "This is caller number 3."
    assert api(live).get("/api/transcripts?cursor=zzz", headers=AUTH).status_code == 400
    assert api(live).get("/api/transcripts?offset=2", headers=AUTH).status_code == 400
    assert "limit is" in (api(live).get("/api/transcripts?limit=101", headers=AUTH)
                          .get_json()["error"]["message"])
    assert api(live).get("/api/transcripts?since=yesterday", headers=AUTH).status_code == 400
    until = api(live).get(f"/api/transcripts?until={since}", headers=AUTH)
    assert until.status_code == 200 and until.get_data() == b""


def test_a_transcript_batch_stops_before_a_call_still_in_progress_and_says_where_to_resume(
        live: Simulation) -> None:
    since = time.time() - 600
    done = start_call(live)
    hear(live, done, "First caller, all finished.")
    end_call(live, done)
    talking = start_call(live)
    hear(live, talking, "Second caller, still talking.")
    later = start_call(live)
    hear(live, later, "Third caller, finished before the second.")
    end_call(live, later)
    page = api(live).get(f"/api/transcripts?since={since}&limit=10", headers=AUTH)
    given = [json.loads(line)["call_control_id"] for line in page.get_data(as_text=True).splitlines()]
    assert given == [done.call_control_id]  # not the live call, and not past it
    assert page.headers["Lifeline-In-Progress"] == "1" and "Lifeline-Next-Cursor" not in page.headers
    resume = page.headers["Lifeline-Resume-Cursor"]
    again = api(live).get(f"/api/transcripts?since={since}&limit=10&cursor={resume}", headers=AUTH)
    assert again.get_data() == b"" and again.headers["Lifeline-Resume-Cursor"] == resume
    end_call(live, talking)
    rest = api(live).get(f"/api/transcripts?since={since}&limit=10&cursor={resume}", headers=AUTH)
    docs = [json.loads(line) for line in rest.get_data(as_text=True).splitlines()]
    assert [d["call_control_id"] for d in docs] == [talking.call_control_id, later.call_control_id]
    assert docs[0]["messages"][0]["text"] == "Second caller, still talking."
    assert "Lifeline-In-Progress" not in rest.headers


def test_a_call_that_ended_moments_ago_waits_for_its_last_words_before_a_batch_hands_it_over(
        live: Simulation) -> None:
    from lifeline.conversation import transcripts
    leg = start_call(live)
    hear(live, leg, "Goodbye then.")
    end_call(live, leg)
    store = live.app.extensions["lifeline"].store  # type: ignore[union-attr]
    since = time.time() - 600
    assert transcripts.batch(store, since, None, None, 10, settled_before=time.time() - 60) == ([], True)
    settled, waiting = transcripts.batch(store, since, None, None, 10, settled_before=time.time())
    assert [c.call_control_id for c in settled] == [leg.call_control_id] and not waiting


def test_a_batch_cursor_with_stray_bytes_is_a_400_and_never_echoed(live: Simulation) -> None:
    from lifeline.ivr.cursors import decode_cursor
    for cursor in ("MXx2Mzp4%0D%0A", "MXx2Mzp4%0A%20:", "%20MXx2Mzp4"):  # "1|v3:x" and a header break
        response = api(live).get(f"/api/transcripts?cursor={cursor}", headers=AUTH)
        assert response.status_code == 400, cursor
    clean = api(live).get("/api/transcripts?cursor=MXx2Mzp4", headers=AUTH)
    assert clean.status_code == 200
    assert decode_cursor(clean.headers["Lifeline-Resume-Cursor"]) == (1.0, "v3:x")  # re-encoded, not echoed


def test_a_time_without_a_zone_is_utc_for_transcripts_as_for_calls(live: Simulation,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    leg = start_call(live)
    hear(live, leg, "Just checking my order.")
    end_call(live, leg)
    # The server's own zone is 14 hours ahead: a naive time read as local would fall before the call.
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    try:
        until = datetime.fromtimestamp(time.time() + 1800, UTC).replace(tzinfo=None).isoformat()
        batch = api(live).get(f"/api/transcripts?until={until}", headers=AUTH)
        calls = api(live).get(f"/api/calls?until={until}", headers=AUTH)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert leg.call_control_id in batch.get_data(as_text=True)
    assert [c["call_control_id"] for c in calls.get_json()["calls"]] == [leg.call_control_id]


def test_a_paused_stretch_leaves_no_text_and_is_audited(live: Simulation) -> None:
    leg = start_call(live)
    ccid = leg.call_control_id
    hear(live, leg, "I would like to pay my bill.")
    paused = api(live).post(f"/api/calls/{ccid}/listening", json={"paused": True}, headers=AUTH)
    assert paused.status_code == 200 and paused.get_json() == {"call_control_id": ccid, "paused": True,
                                                               "changed": True}
    live.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    assert wait_until(lambda: not leg.transcribing, 5), "transcription was not stopped at Telnyx"
    hear(live, leg, "My card number is 4111 1111 1111 1111, expiry twelve twenty eight.")
    # A transcript already on its way when the pause came is dropped too.
    post_signed(live, "call.transcription", {**leg.base_payload(), "transcription_data": {
        "transcript": "the security code is 737", "confidence": 0.9, "is_final": True}})
    again = api(live).post(f"/api/calls/{ccid}/listening", json={"paused": True}, headers=AUTH)
    assert again.get_json()["changed"] is False
    resumed = api(live).post(f"/api/calls/{ccid}/listening", json={"paused": False}, headers=AUTH)
    assert resumed.get_json()["changed"] is True
    live.app.extensions["lifeline"].sender.wait_idle(5)  # type: ignore[union-attr]
    assert wait_until(lambda: leg.transcribing, 5), "transcription was not restarted"
    hear(live, leg, "Thanks, that is all.")
    end_call(live, leg)
    doc = api(live).get(f"/api/calls/{ccid}/transcript", headers=AUTH).get_json()
    assert [m["text"] for m in doc["messages"]] == ["I would like to pay my bill.", "Thanks, that is all."]
    assert [entry["state"] for entry in doc["listening"]] == ["paused", "resumed"]
    record = api(live).get(f"/api/calls/{ccid}", headers=AUTH).get_json()
    assert [m["text"] for m in record["messages"]] == ["I would like to pay my bill.", "Thanks, that is all."]
    audit = [e["event_type"] for e in record["events"] if e["event_type"].startswith("lifeline.listening")]
    assert audit == ["lifeline.listening.paused", "lifeline.listening.resumed"]
    assert [c["name"] for c in record["commands"] if c["name"].startswith("transcription")] == \
        ["transcription_stop", "transcription_start"]


def test_pause_refuses_bad_bodies_unknown_and_ended_calls_and_changes_nothing(live: Simulation) -> None:
    leg = start_call(live)
    ccid = leg.call_control_id
    for body in ({}, {"paused": "yes"}, [True], None):
        response = api(live).post(f"/api/calls/{ccid}/listening", json=body, headers=AUTH)
        assert response.status_code == 400
    assert api(live).post("/api/calls/nope/listening", json={"paused": True}, headers=AUTH).status_code == 404
    assert live.app.extensions["lifeline"].store.get_call(ccid).listening is None  # type: ignore[union-attr]
    end_call(live, leg)
    ended = api(live).post(f"/api/calls/{ccid}/listening", json={"paused": True}, headers=AUTH)
    assert ended.status_code == 409 and ended.get_json()["error"]["code"] == "call_ended"
    assert not [e for e in outputs(live).store.feed_for_call(ccid) if e.kind == "listening"]


def test_a_call_ends_with_a_summary_of_topics_questions_and_action_items(live: Simulation) -> None:
    leg = start_call(live)
    ccid = leg.call_control_id
    assert api(live).get(f"/api/calls/{ccid}/summary", headers=AUTH).status_code == 404
    hear(live, leg, "Hi, I am calling about my credit card.", "Why was my credit card charged twice?",
         "Please cancel the second payment.", "And call me back tomorrow about the credit card fee.")
    end_call(live, leg)
    found = api(live).get(f"/api/calls/{ccid}/summary", headers=AUTH).get_json()
    summary = found["summary"]
    assert summary["outcome"] == "completed" and summary["transfer"] is None
    assert summary["duration_s"] > 0
    assert summary["topics"][0] == "credit card"
    assert summary["questions"] == ["Why was my credit card charged twice?"]
    assert [a["text"] for a in summary["action_items"]] == [
        "Please cancel the second payment.", "And call me back tomorrow about the credit card fee."]
    assert len(summary["sentiment"]["caller"]["arc"]) == 4
    assert found["email"] is None
    [ready] = [e for e in outputs(live).store.feed_for_call(ccid) if e.kind == "summary.ready"]
    assert ready.data["summary"] == summary


class Receiver:
    """A webhook receiver on loopback that answers 500 to its first `failures` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Flask("receiver")

        @app.post("/hook")
        def hook() -> tuple[str, int]:
            entry = {"body": request.get_data(), "headers": dict(request.headers)}
            with self._lock:
                self.requests.append(entry)
                if len(self.requests) <= self.failures:
                    return "down", 500
                self.accepted.append(entry)
            return "ok", 200

        self.server = ServerThread(app).start()
        self.url = f"{self.server.url}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(failures=6)
    yield hook
    hook.server.stop()


def test_a_receiver_that_fails_for_a_while_gets_every_event_once_in_order_signed(receiver: Receiver) -> None:
    config = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_EVENT_WEBHOOKS": receiver.url,
              "LIFELINE_EVENT_SECRET": SECRET, "LIFELINE_EVENT_RETRY_BASE_S": "0.05"}
    with Simulation(config, speed=20) as sim:
        leg = start_call(sim)
        hear(sim, leg, "This is ridiculous, I want to talk to a real person right now")
        assert wait_until(lambda: leg.log.bridged, 10)
        end_call(sim, leg)
        ccid = leg.call_control_id
        stored = [e.id for e in outputs(sim).store.feed_for_call(ccid)]
        assert wait_until(lambda: len(receiver.accepted) >= len(stored), 20)
        got = [json.loads(a["body"]) for a in receiver.accepted]
        assert [g["id"] for g in got] == stored
        assert [g["type"] for g in got][0] == "call.started" and got[-1]["type"] == "summary.ready"
        for entry in receiver.accepted:
            assert verify(SECRET, entry["headers"]["Lifeline-Signature"], entry["body"])
            assert entry["headers"]["Lifeline-Event-Id"] == str(json.loads(entry["body"])["id"])
        assert not verify("another-secret", receiver.accepted[0]["headers"]["Lifeline-Signature"],
                          receiver.accepted[0]["body"])
        # Every request the receiver saw is logged as an attempt (the last one lands just after).
        assert wait_until(lambda: len(outputs(sim).webhooks.attempts()) == len(receiver.requests), 5)
        attempts = outputs(sim).webhooks.attempts()
        assert [a["http_status"] for a in attempts].count(500) == 6
        assert [a["http_status"] for a in attempts[6:]] == [200] * len(stored)

        # Redelivery resends, in order, what was stored since a moment.
        runner = sim.app.test_cli_runner()  # type: ignore[union-attr]
        result = runner.invoke(args=["events", "redeliver", "--since", "1970-01-01T00:00:00Z"])
        assert result.exit_code == 0, result.output
        assert f"{len(stored)} deliveries queued" in result.output
        assert wait_until(lambda: len(receiver.accepted) >= 2 * len(stored), 20)
        again = [json.loads(a["body"])["id"] for a in receiver.accepted[len(stored):]]
        assert again == stored
        bad = runner.invoke(args=["events", "redeliver", "--since", "last tuesday"])
        assert bad.exit_code != 0 and "ISO-8601" in bad.output
        backwards = runner.invoke(args=["events", "redeliver", "--since", "2026-12-01",
                                        "--until", "2026-11-30"])
        assert backwards.exit_code != 0 and "is not after --since" in backwards.output
        never = runner.invoke(args=["events", "redeliver", "--since", "nan"])
        assert never.exit_code != 0 and "ISO-8601" in never.output
        elsewhere = runner.invoke(args=["events", "redeliver", "--since", "0", "--url", "ftp://x"])
        assert elsewhere.exit_code != 0 and "--url 'ftp://x' is not an http(s) URL" in elsewhere.output


def test_webhooks_without_a_secret_stop_start_up_with_the_fix() -> None:
    from lifeline.conversation.settings import load_output_settings
    from lifeline.ivr.errors import ConfigError
    with pytest.raises(ConfigError, match="LIFELINE_EVENT_SECRET"):
        load_output_settings({"LIFELINE_EVENT_WEBHOOKS": "https://example.com/hook"})
    with pytest.raises(ConfigError, match="not an http"):
        load_output_settings({"LIFELINE_EVENT_WEBHOOKS": "ftp://x", "LIFELINE_EVENT_SECRET": "s"})
    with pytest.raises(ConfigError, match="smtp://"):
        load_output_settings({"LIFELINE_SMTP_URL": "mail.example.com"})


def test_summary_recipients_and_dial_out_without_its_connection_stop_start_up_with_the_fix() -> None:
    from lifeline.conversation.settings import load_output_settings
    from lifeline.ivr.errors import ConfigError
    smtp = {"LIFELINE_SMTP_URL": "smtp://127.0.0.1:2525"}
    with pytest.raises(ConfigError, match="LIFELINE_SUMMARY_TO has 'notanemail', not an email address"):
        load_output_settings({**smtp, "LIFELINE_SUMMARY_TO": "ops@example.com, notanemail"})
    both = load_output_settings({**smtp, "LIFELINE_SUMMARY_TO": "a@example.com,Ops <b@example.org>"})
    assert both.summary_to == ("a@example.com", "Ops <b@example.org>")
    telnyx = {"TELNYX_API_KEY": "KEY0123", "LIFELINE_DIAL_FROM": "+15550100000"}
    with pytest.raises(ConfigError, match="TELNYX_CONNECTION_ID is not: dialling out goes through"):
        load_output_settings({**telnyx, "TELNYX_CONNECTION_ID": ""})
    assert load_output_settings({**telnyx, "TELNYX_CONNECTION_ID": "1494404757140276705"}).dial_from


class Inbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_summary_is_emailed_and_a_failed_send_is_retried_and_visible() -> None:
    port = free_port()
    config = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": TOKEN,
              "LIFELINE_SMTP_URL": f"smtp://127.0.0.1:{port}", "LIFELINE_SUMMARY_TO": "ops@example.com",
              "LIFELINE_EVENT_RETRY_BASE_S": "0.1"}
    with Simulation(config, speed=20) as sim:
        leg = start_call(sim)
        hear(sim, leg, "Can you send me a new statement?", "Please cancel my old card.")
        end_call(sim, leg)
        ccid = leg.call_control_id
        # No SMTP server yet: the send fails, and the call record says so.
        assert wait_until(
            lambda: bool((outputs(sim).summaries.get(ccid)["email"] or {}).get("last_error")), 10)
        record = api(sim).get(f"/api/calls/{ccid}", headers=AUTH).get_json()
        assert "lifeline.email.pending" in [e["event_type"] for e in record["events"]]
        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=port)
        smtp.start()
        try:
            assert wait_until(lambda: bool(inbox.messages), 15), "the email was never retried"
        finally:
            smtp.stop()
        [mail] = inbox.messages
        assert mail["To"] == "ops@example.com"
        assert "completed" in mail["Subject"]
        parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk()
                 if not p.is_multipart()}
        assert "Can you send me a new statement?" in parts["text/plain"]
        assert "<li>(caller) Please cancel my old card.</li>" in parts["text/html"]
        assert wait_until(lambda: outputs(sim).summaries.get(ccid)["email"]["status"] == "sent", 5)


PRIVATE_MENU = """
greeting: "Welcome."
menus:
  main:
    prompt: "To read your card number privately, press 5. To be heard again, press 6."
    options:
      "5": {pause_listening: "I have stopped listening. Press 6 when you are done.", then: main}
      "6": {resume_listening: "I am listening again."}
      "0": {transfer: "operator"}
"""


def test_a_menu_key_pauses_and_another_resumes_listening_and_both_are_audited(tmp_path: Any) -> None:
    ivr = tmp_path / "ivr.yaml"
    ivr.write_text(PRIVATE_MENU)
    with Simulation({"LIFELINE_AGENTS": "+15550100001", "LIFELINE_API_TOKEN": TOKEN,
                     "LIFELINE_IVR": str(ivr)}, speed=20) as sim:
        leg = start_call(sim)
        ccid = leg.call_control_id
        hear(sim, leg, "I need to pay with my card.")
        sim.emulator.press(leg, "5")
        settle(sim, leg)
        assert wait_until(lambda: not leg.transcribing, 5), "transcription was not stopped at Telnyx"
        hear(sim, leg, "It is 4111 1111 1111 1111.")
        sim.emulator.press(leg, "6")
        settle(sim, leg)
        assert wait_until(lambda: leg.transcribing, 5), "transcription was not restarted"
        hear(sim, leg, "Done, thank you.")
        end_call(sim, leg)
        record = api(sim).get(f"/api/calls/{ccid}", headers=AUTH).get_json()
        assert [m["text"] for m in record["messages"]] == ["I need to pay with my card.", "Done, thank you."]
        audit = [e["event_type"] for e in record["events"]
                 if e["event_type"].startswith("lifeline.listening")]
        assert audit == ["lifeline.listening.paused", "lifeline.listening.resumed"]
        published = [e.data for e in outputs(sim).store.feed_for_call(ccid, ("listening",))]
        assert [(d["state"], d["by"]) for d in published] == [("paused", "caller key"),
                                                              ("resumed", "caller key")]
        spoken = [c["body"]["payload"] for c in sim.emulator.commands_for(ccid, "gather_using_speak")]
        assert any("stopped listening" in text for text in spoken)
        assert not sim.emulator.commands_for(ccid, "transfer")  # a pause is not a reason to transfer
        assert sim.emulator.refused == []


@pytest.fixture
def loopback_cert(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A self-signed certificate for 127.0.0.1 that this process trusts (SSL_CERT_FILE): an SMTP
    server's TLS without a public CA, checked as strictly as a real one would be."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class Login:
    """aiosmtpd authenticator: one user, and a record of who logged in."""

    def __init__(self) -> None:
        self.users: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"lifeline" and auth_data.password == b"s3cret"
        if ok:
            self.users.append(auth_data.login.decode())
        return AuthResult(success=ok)


def test_the_summary_mail_goes_over_starttls_with_a_login_and_a_checked_certificate(
        loopback_cert: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifeline.conversation.email_out import send
    from lifeline.conversation.settings import load_output_settings

    inbox, login, port = Inbox(), Login(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=loopback_cert,
                      require_starttls=True, authenticator=login, auth_require_tls=True)
    smtp.start()
    try:
        local = load_output_settings({"LIFELINE_SMTP_URL": f"smtp://lifeline:s3cret@127.0.0.1:{port}",
                                      "LIFELINE_SUMMARY_TO": "ops@example.com"}).smtp
        assert local is not None and local.plain_ok
        remote = replace(local, plain_ok=False)  # as for a server across a network
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "lifeline@example.com", "ops@example.com", "hi"
        message.set_content("summary")
        send(remote, message)
        monkeypatch.delenv("SSL_CERT_FILE")  # a certificate nobody vouches for is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            send(remote, message)
        send(local, message)  # but a relay on this machine (a self-signed Postfix, say) is not checked
    finally:
        smtp.stop()
    assert login.users == ["lifeline", "lifeline"]
    assert [m["Subject"] for m in inbox.messages] == ["hi", "hi"]


def test_a_server_without_starttls_gets_no_login_and_no_summary_unless_it_is_local_or_allowed() -> None:
    from lifeline.conversation.email_out import send
    from lifeline.conversation.settings import SmtpTarget, load_output_settings

    inbox, login, port = Inbox(), Login(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=login, auth_require_tls=False)
    smtp.start()
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "lifeline@example.com", "ops@example.com", "hi"
    message.set_content("summary")
    try:
        remote = SmtpTarget("127.0.0.1", port, "lifeline", "s3cret", ssl=False)  # as for a host elsewhere
        with pytest.raises(smtplib.SMTPNotSupportedError, match="does not offer STARTTLS, so nothing"):
            send(remote, message)
        assert login.users == [] and inbox.messages == []
        send(replace(remote, plain_ok=True), message)  # a relay on this machine, or smtp+insecure://
        assert login.users == ["lifeline"] and len(inbox.messages) == 1
    finally:
        smtp.stop()

    def target(url: str) -> SmtpTarget | None:
        return load_output_settings({"LIFELINE_SMTP_URL": url, "LIFELINE_SUMMARY_TO": "ops@example.com"}).smtp

    assert [getattr(target(url), "plain_ok", None) for url in (
        "smtp://mail.example.com", "smtp://127.0.0.1:2525", "smtp://localhost", "smtp+insecure://relay.internal",
        "smtps://mail.example.com")] == [False, True, True, True, False]
    assert target("smtp+insecure://relay.internal").port == 25  # type: ignore[union-attr]


def test_contractions_are_never_topics_and_a_possessive_counts_as_its_word() -> None:
    from lifeline.conversation.summary import topics

    lines = ["That's the charge I don't recognise on my bill", "I've asked about that charge before",
             "Your company's charge is wrong", "The company sent the bill twice"]
    chosen = topics(lines)
    assert not any("'" in t for t in chosen), chosen
    assert chosen[:2] == ["charge", "bill"] or chosen[:2] == ["charge", "company"], chosen


class _CountingSummaries:
    """Summaries that only count how often the worker looked for ended calls."""

    def __init__(self) -> None:
        self.looks = 0
        self.behind = False

    def make_due(self, limit: int = 100) -> int:
        self.looks += 1
        return 0


class _NoWebhooks:
    enabled = False


def test_a_burst_of_feed_events_looks_for_summaries_once_per_round_not_once_per_event() -> None:
    from lifeline.conversation import worker as worker_module
    from lifeline.conversation.hub import FeedHub
    from lifeline.conversation.settings import OutputSettings

    clock = [1000.0]
    summaries = _CountingSummaries()
    outputs = worker_module.OutputsWorker(FeedHub(), summaries, _NoWebhooks(),  # type: ignore[arg-type]
                                          OutputSettings(), clock=lambda: clock[0])
    for _ in range(50):  # fifty wake-ups within one round
        outputs.run_once()
    assert summaries.looks == 1
    clock[0] += worker_module.SUMMARY_ROUND_S
    outputs.run_once()
    assert summaries.looks == 2
    summaries.behind = True  # the last look stopped at its limit: more calls wait, look again now
    outputs.run_once()
    assert summaries.looks == 3


def test_redelivery_without_receivers_is_refused_naming_the_settings(app: Flask) -> None:
    for args in (["--since", "0"], ["--since", "0", "--url", "https://receiver.example.com/hook"]):
        result = app.test_cli_runner().invoke(args=["events", "redeliver", *args])
        assert result.exit_code != 0
        assert "no receivers: set LIFELINE_EVENT_WEBHOOKS and LIFELINE_EVENT_SECRET" in result.output


def test_only_configured_receivers_are_sent_to_and_a_removed_ones_rows_wait(tmp_path: Any) -> None:
    from lifeline.conversation.settings import OutputSettings
    from lifeline.conversation.webhooks_out import PENDING, WebhookDelivery
    from lifeline.ivr.store import schema
    from lifeline.ivr.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'out.db'}")
    kept, removed = Receiver(failures=0), Receiver(failures=0)
    webhooks = None
    try:
        webhooks = WebhookDelivery(store, OutputSettings(
            event_webhooks=(kept.url,), event_secret=SECRET, retry_base_s=0.05))
        assert webhooks.materialise() == 0  # a new receiver starts from now
        now = time.time()
        with store.unit() as tx:
            tx.connection.execute(schema.feed.insert(), [
                {"call_control_id": "v3:call-a", "kind": "call.started", "data": "{}", "created_at": now},
                {"call_control_id": "v3:call-a", "kind": "call.ended", "data": "{}", "created_at": now}])
            # A row left queued for a receiver since taken out of LIFELINE_EVENT_WEBHOOKS.
            tx.connection.execute(schema.deliveries.insert().values(
                feed_id=1, url=removed.url, call_control_id="v3:call-a", status=PENDING, attempts=0,
                next_at=now, created_at=now))
        assert webhooks.materialise() == 2
        assert wait_until(lambda: webhooks.send_due() == 0 and len(kept.accepted) == 2, 5)
        assert [json.loads(a["body"])["type"] for a in kept.accepted] == ["call.started", "call.ended"]
        assert removed.requests == []
        with store.engine.connect() as conn:
            left = conn.execute(schema.deliveries.select().where(
                schema.deliveries.c.url == removed.url)).mappings().one()
        assert left["status"] == PENDING and left["attempts"] == 0
    finally:
        if webhooks is not None:
            webhooks.close()
        kept.server.stop()
        removed.server.stop()
        store.close()


def test_redelivery_to_a_url_that_is_not_a_receiver_is_refused_naming_them(receiver: Receiver) -> None:
    config = {"LIFELINE_AGENTS": AGENTS, "LIFELINE_EVENT_WEBHOOKS": receiver.url,
              "LIFELINE_EVENT_SECRET": SECRET}
    with Simulation(config, speed=20) as sim:
        runner = sim.app.test_cli_runner()  # type: ignore[union-attr]
        result = runner.invoke(args=["events", "redeliver", "--since", "0", "--url", "https://elsewhere.example/h"])
        assert result.exit_code != 0
        assert "is not one of LIFELINE_EVENT_WEBHOOKS" in result.output and receiver.url in result.output
        assert outputs(sim).webhooks.attempts() == []
        exact = runner.invoke(args=["events", "redeliver", "--since", "0", "--url", receiver.url])
        assert exact.exit_code == 0, exact.output


def test_a_chain_sent_in_one_round_fits_in_its_lease_and_the_rest_follow_in_order(tmp_path: Any) -> None:
    from lifeline.conversation.settings import OutputSettings
    from lifeline.conversation.webhooks_out import LEASE_S, SENDERS, WebhookDelivery
    from lifeline.ivr.store import schema
    from lifeline.ivr.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'out.db'}")
    hook = Receiver(failures=0)
    # Each send may take up to three times the timeout (connect, send, read): a ninth of the lease
    # allows two sends per round.
    webhooks = WebhookDelivery(store, OutputSettings(
        event_webhooks=(hook.url,), event_secret=SECRET, webhook_timeout_s=LEASE_S / 9))
    try:
        webhooks.materialise()
        now = time.time()
        with store.unit() as tx:
            tx.connection.execute(schema.feed.insert(), [
                {"call_control_id": "v3:call-a", "kind": "message", "data": json.dumps({"n": n}),
                 "created_at": now}
                for n in range(5)])
        assert webhooks.materialise() == 5
        assert [webhooks.send_due() for _ in range(4)] == [2, 2, 1, 0]
        assert [json.loads(a["body"])["data"]["n"] for a in hook.accepted] == [0, 1, 2, 3, 4]
        # One chain per sending thread a round: ten calls' events go as eight, then two.
        with store.unit() as tx:
            tx.connection.execute(schema.feed.insert(), [
                {"call_control_id": f"v3:call-{n}", "kind": "message", "data": "{}", "created_at": now}
                for n in range(10)])
        assert webhooks.materialise() == 10
        assert [webhooks.send_due() for _ in range(3)] == [SENDERS, 10 - SENDERS, 0]
    finally:
        webhooks.close()
        hook.server.stop()
        store.close()


class _DownThenUpSummaries(_CountingSummaries):
    """Summaries whose store fails until `up` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()

    def make_due(self, limit: int = 100) -> int:
        self.looks += 1
        if not self.up.is_set():
            raise StoreError("cannot read the feed: the database at sqlite:///x.db is unavailable")
        return 0


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from lifeline.conversation import worker as worker_module
    from lifeline.conversation.hub import FeedHub
    from lifeline.conversation.settings import OutputSettings

    monkeypatch.setattr(worker_module, "OUTAGE_RETRY_S", 0.01)
    monkeypatch.setattr(worker_module, "SUMMARY_ROUND_S", 0.0)
    summaries = _DownThenUpSummaries()
    outputs = worker_module.OutputsWorker(FeedHub(), summaries, _NoWebhooks(),  # type: ignore[arg-type]
                                          OutputSettings(feed_poll_s=0.01))
    with caplog.at_level(logging.INFO, logger="lifeline.conversation.worker"):
        outputs.start()
        try:
            assert wait_until(lambda: summaries.looks >= 20, 5)  # many failed rounds
            summaries.up.set()
            assert wait_until(lambda: "outputs resumed" in caplog.text, 5)
        finally:
            outputs.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "outputs paused" in errors[0].getMessage()
    assert not errors[0].exc_info  # a known outage: no traceback


class _Trickler(http.server.BaseHTTPRequestHandler):
    """Answers 200 at once, then sends its body a byte a tenth of a second until told to stop."""

    protocol_version = "HTTP/1.1"
    stop = threading.Event()
    finished = threading.Event()

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for _ in range(300):  # 30 s at most, whatever happens
                if self.stop.wait(0.1):
                    break
                self.wfile.write(b"1\r\nx\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the sender hung up on the body, as it should
        finally:
            self.finished.set()

    def log_message(self, *args: Any) -> None:
        pass


def _feed_messages(store: Any, *calls: str) -> None:
    from lifeline.ivr.store import schema
    with store.unit() as tx:
        tx.connection.execute(schema.feed.insert(), [
            {"call_control_id": call, "kind": "message", "data": "{}", "created_at": time.time()}
            for call in calls])


@contextmanager
def _delivering_to(handler: type[http.server.BaseHTTPRequestHandler],
                   tmp_path: Any) -> Iterator[tuple[Any, Any]]:
    """A receiver on loopback served by `handler`, and the store and webhook sender that send to it."""
    from lifeline.conversation.settings import OutputSettings
    from lifeline.conversation.webhooks_out import WebhookDelivery
    from lifeline.ivr.store.sql import SqlStore

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = SqlStore(f"sqlite:///{tmp_path / 'out.db'}")
    webhooks = WebhookDelivery(store, OutputSettings(
        event_webhooks=(f"http://127.0.0.1:{server.server_address[1]}/hook",), event_secret=SECRET))
    try:
        webhooks.materialise()  # a new receiver starts from now
        yield store, webhooks
    finally:
        webhooks.close()
        server.shutdown()
        server.server_close()
        store.close()


def test_a_receiver_that_answers_and_then_trickles_its_body_does_not_hold_the_send(tmp_path: Any) -> None:
    try:
        with _delivering_to(_Trickler, tmp_path) as (store, webhooks):
            _feed_messages(store, "v3:call-a")
            webhooks.materialise()
            assert webhooks.send_due() == 1
            # Delivered on the 200, while the receiver was still sending its body (it would for 30 s).
            assert not _Trickler.finished.is_set()
            assert [a["http_status"] for a in webhooks.attempts()] == [200]
    finally:
        _Trickler.stop.set()


class _CountingReceiver(http.server.BaseHTTPRequestHandler):
    """Answers 200 with a short body over HTTP/1.1, counting the connections it is sent on."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def test_a_receiver_that_answers_briefly_gets_a_calls_events_on_one_connection(tmp_path: Any) -> None:
    with _delivering_to(_CountingReceiver, tmp_path) as (store, webhooks):
        _feed_messages(store, *["v3:call-a"] * 5)
        webhooks.materialise()
        assert sum(webhooks.send_due() for _ in range(5)) == 5
        assert _CountingReceiver.connections == 1  # each answer read: the connection is kept


def test_a_receiver_url_that_cannot_be_sent_to_fails_its_own_attempts_and_the_others_get_each_event_once(
        tmp_path: Any) -> None:
    from lifeline.conversation.settings import OutputSettings
    from lifeline.conversation.webhooks_out import WebhookDelivery
    from lifeline.ivr.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'out.db'}")
    good = Receiver(failures=0)
    broken = "https://hooks..example.com/x"  # start-up refuses it; a settings object need not have
    webhooks = WebhookDelivery(store, OutputSettings(
        event_webhooks=(broken, good.url), event_secret=SECRET, retry_base_s=0.01))
    try:
        webhooks.materialise()
        _feed_messages(store, "v3:call-a", "v3:call-b")
        webhooks.materialise()
        for _ in range(4):
            webhooks.send_due()
            time.sleep(0.05)
        assert sorted(json.loads(a["body"])["call_control_id"] for a in good.accepted) == ["v3:call-a",
                                                                                           "v3:call-b"]
        failed = webhooks.attempts(broken)
        assert failed and all(a["error"].startswith("UnicodeError") for a in failed)
    finally:
        webhooks.close()
        good.server.stop()
        store.close()


def test_a_receiver_url_httpx_cannot_send_to_stops_start_up_naming_it() -> None:
    from lifeline.conversation.settings import load_output_settings
    from lifeline.ivr.errors import ConfigError
    with pytest.raises(ConfigError, match="'https://hooks..example.com/x', which cannot be sent to"):
        load_output_settings({"LIFELINE_EVENT_WEBHOOKS": "https://ok.example.com/h, https://hooks..example.com/x",
                              "LIFELINE_EVENT_SECRET": "s"})


def test_a_line_break_in_the_callers_number_leaves_the_summary_emails_subject_one_line() -> None:
    from lifeline.conversation import email_out
    summary: dict[str, Any] = {
        "from": "sip:caller\u2028Bcc: x@example.com\r\n", "outcome": "completed", "transfer": None,
        "started_at": "t", "duration_s": 1.0, "sentiment": {}, "topics": [], "questions": [],
        "action_items": [], "messages": 0, "to": "+15550100000", "ended_at": "t",
        "call_control_id": "v3:a"}
    message = email_out.render(summary, "lifeline@example.com", ["ops@example.com"])
    assert message["Subject"] == "Call summary: sip:caller Bcc: x@example.com, completed"
    assert message["Bcc"] is None
    assert b"\nBcc:" not in message.as_bytes()
