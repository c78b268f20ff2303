"""The console without a browser: the token only in a header or a session, CSRF, the policy, escaping,
history, the call page, recordings and the live snapshot."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lifeline import create_app
from lifeline.console.live import snapshot
from lifeline.ivr.store import CallRecord, CallStatus, FeedEvent, TransferRecord, TransferStatus
from lifeline.simulator.runner import Simulation

from .browser import chromium_or_skip

TOKEN = "s3cret-token-value"


@pytest.fixture
def console_app(app_config: dict[str, object], tmp_path: Path) -> Iterator[Flask]:
    application = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN,
                              "LIFELINE_RECORDINGS_DIR": str(tmp_path / "recordings")}, migrate=True)
    yield application
    application.extensions["lifeline"].close()


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


@pytest.mark.parametrize("header", ["Bearer", "bearer", "BEARER"])
def test_the_api_takes_the_bearer_scheme_in_any_case(console_app: Flask, header: str) -> None:
    client = console_app.test_client()
    assert client.get("/api/calls", headers={"Authorization": f"{header} {TOKEN}"}).status_code == 200
    assert client.get("/api/calls", headers={"Authorization": f"{header} wrong"}).status_code == 401
    basic = client.get("/api/calls", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert "the Authorization header is not 'Bearer <token>'" in basic.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/calls", "/api/calls?active=1", "/api/calls/v3:x"])
def test_a_token_in_the_url_is_refused_even_when_it_is_right(console_app: Flask, path: str) -> None:
    joiner = "&" if "?" in path else "?"
    response = console_app.test_client().get(f"{path}{joiner}token={TOKEN}")
    assert response.status_code == 400
    assert "Authorization: Bearer" in response.get_json()["error"]["message"]


def test_a_token_in_the_dashboard_url_does_not_open_the_dashboard(console_app: Flask) -> None:
    client = console_app.test_client()
    page = client.get(f"/dashboard?token={TOKEN}")
    assert b"Live calls" not in page.data and b'name="token"' in page.data
    assert client.get("/api/calls").status_code == 401


def test_a_missing_or_wrong_token_is_a_401_with_the_bearer_challenge(console_app: Flask) -> None:
    client = console_app.test_client()
    missing = client.get("/api/calls")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == 'Bearer realm="lifeline"'
    assert missing.get_json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in missing.get_json()["error"]["message"]
    wrong = client.get("/api/events", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="lifeline", error="invalid_token"'


def test_the_bearer_header_still_opens_the_api(console_app: Flask) -> None:
    client = console_app.test_client()
    assert client.get("/api/calls", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/calls", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_signing_in_sets_a_strict_httponly_cookie_that_holds_no_token(console_app: Flask) -> None:
    client = console_app.test_client()
    response = client.post("/dashboard/signin", data={"token": TOKEN})
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard")
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert TOKEN not in set_cookie and TOKEN not in response.headers["Location"]
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"Live calls" in page.data and TOKEN.encode() not in page.data
    assert client.get("/api/calls?active=1").status_code == 200


def test_a_wrong_token_opens_no_session(console_app: Flask) -> None:
    client = console_app.test_client()
    response = client.post("/dashboard/signin", data={"token": "guess"})
    assert response.status_code == 403 and b"Wrong token" in response.data
    assert session_cookie(client) is None
    assert client.get("/api/calls").status_code == 401


def csrf_of(client: FlaskClient) -> str:
    """The CSRF token the console's pages put in their forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").get_data(as_text=True))
    assert found, "no CSRF field on the live page"
    return found.group(1)


def test_signing_out_needs_the_pages_csrf_token_and_closes_the_session(console_app: Flask) -> None:
    client = console_app.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    assert client.post("/dashboard/signout").status_code == 403  # a forged form from elsewhere
    assert client.get("/api/calls").status_code == 200
    assert client.post("/dashboard/signout", data={"csrf": csrf_of(client)}).status_code == 303
    assert client.get("/api/calls").status_code == 401


def signed_in_with_a_copy(console_app: Flask) -> tuple[FlaskClient, FlaskClient]:
    """A signed-in browser, and another client holding a copy of its session cookie."""
    client = console_app.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    copied = session_cookie(client)
    assert copied is not None
    thief = console_app.test_client()
    thief.set_cookie("session", copied)
    return client, thief


def test_signing_out_also_closes_a_copy_of_the_cookie_taken_before(console_app: Flask) -> None:
    client, thief = signed_in_with_a_copy(console_app)
    assert thief.get("/api/calls").status_code == 200 and b"Live calls" in thief.get("/dashboard").data
    assert client.post("/dashboard/signout", data={"csrf": csrf_of(client)}).status_code == 303
    assert thief.get("/api/calls").status_code == 401
    assert b"Live calls" not in thief.get("/dashboard").data
    # Signing in again opens a new session, which the old sign-out does not close.
    client.post("/dashboard/signin", data={"token": TOKEN})
    assert client.get("/api/calls").status_code == 200


def test_a_sign_out_from_a_page_older_than_the_last_sign_in_says_you_are_still_signed_in(
        console_app: Flask) -> None:
    client = console_app.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    stale = csrf_of(client)  # a tab opened now...
    client.post("/dashboard/signin", data={"token": TOKEN})  # ...then a sign-in in another tab
    refused = client.post("/dashboard/signout", data={"csrf": stale})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "Still signed in" in page and 'name="token"' not in page
    assert client.get("/api/calls").status_code == 200  # nothing changed
    fresh = re.search(r'name="csrf" value="([^"]+)"', page)
    assert fresh and client.post("/dashboard/signout", data={"csrf": fresh.group(1)}).status_code == 303
    assert client.get("/api/calls").status_code == 401


def test_signing_in_again_closes_the_browsers_earlier_session_and_its_copies(console_app: Flask) -> None:
    client, thief = signed_in_with_a_copy(console_app)
    assert client.post("/dashboard/signin", data={"token": TOKEN}).status_code == 303
    assert client.get("/api/calls").status_code == 200
    assert thief.get("/api/calls").status_code == 401


@pytest.mark.parametrize("busy", [False, True], ids=["one quiet call", "every call, never quiet"])
def test_a_signed_out_sessions_feed_stream_ends_soon_after_however_busy(
        console_app: Flask, monkeypatch: pytest.MonkeyPatch, busy: bool) -> None:
    import threading

    from lifeline.conversation import api as conversation_api
    monkeypatch.setattr(conversation_api, "KEEPALIVE_S", 0.2)
    client, thief = signed_in_with_a_copy(console_app)
    now = time.time()
    with console_app.extensions["lifeline"].store.unit() as tx:  # the quiet call: up, saying nothing
        tx.insert_call(CallRecord(call_control_id="v3:quiet", call_session_id=None, call_leg_id=None,
                                  from_number="+15557770000", to_number="+15550100000",
                                  status=CallStatus.MENU, created_at=now, updated_at=now))
    path = "/api/events" if busy else "/api/events?call=v3:quiet"
    statuses: list[int] = []
    chunks: list[bytes] = []
    ended, stop = threading.Event(), threading.Event()

    def read() -> None:
        # The whole request in one thread, as a server runs it: Flask's streamed request context
        # must end in the thread that began it. (Also: a stream that never ends cannot block the test.)
        response = thief.get(path, buffered=False)
        statuses.append(response.status_code)
        for chunk in response.response:
            chunks.append(chunk)
        response.close()
        ended.set()

    def talk() -> None:  # an event every 50 ms: the stream is never quiet for a keepalive
        store, hub = console_app.extensions["lifeline"].store, console_app.extensions["conversation"].hub
        while not stop.is_set():
            with store.unit() as tx:
                tx.add_feed([FeedEvent("message", "v3:busy", {"party": "caller", "text": "still talking"})])
            hub.wake()
            stop.wait(0.05)

    threading.Thread(target=read, daemon=True).start()
    if busy:
        threading.Thread(target=talk, daemon=True).start()
    heard = b"event: message" if busy else b": keepalive"
    try:
        deadline = time.monotonic() + 5
        while not any(heard in c for c in chunks) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert statuses == [200] and any(heard in c for c in chunks), \
            "the stream said nothing while signed in"
        assert not ended.is_set()
        assert client.post("/dashboard/signout", data={"csrf": csrf_of(client)}).status_code == 303
        assert ended.wait(5), "the stream went on after its session was signed out"
    finally:
        stop.set()
    assert thief.get(path).status_code == 401


def test_changing_the_token_signs_everyone_out(app_config: dict[str, object]) -> None:
    first = create_app({**app_config, "LIFELINE_API_TOKEN": TOKEN, "LIFELINE_SECRET_KEY": "k" * 32},
                       migrate=True)
    client = first.test_client()
    client.post("/dashboard/signin", data={"token": TOKEN})
    cookie = session_cookie(client)
    first.extensions["lifeline"].close()
    rotated = create_app({**app_config, "LIFELINE_API_TOKEN": "new-token", "LIFELINE_SECRET_KEY": "k" * 32},
                         migrate=True)
    other = rotated.test_client()
    assert cookie is not None
    other.set_cookie("session", cookie)
    assert other.get("/api/calls").status_code == 401
    rotated.extensions["lifeline"].close()


def test_the_dashboard_is_off_without_a_configured_token(app: Flask) -> None:
    assert app.test_client().get("/dashboard").status_code == 403
    assert app.test_client().post("/dashboard/signin", data={"token": ""}).status_code == 403


XSS = "<script>alert(1)</script>"


def seed(application: Flask) -> None:
    """Three calls: one still up (said XSS), one ended after failed transfers, one ended calmly."""
    store = application.extensions["lifeline"].store
    now = time.time()
    with store.unit() as tx:
        for ccid, status, outcome, ago in (("v3:up", CallStatus.MENU, None, 30),
                                           ("v3:failed", CallStatus.ENDED, "no_agent", 600),
                                           ("v3:calm", CallStatus.ENDED, "completed", 900)):
            tx.insert_call(CallRecord(call_control_id=ccid, call_session_id=None, call_leg_id=None,
                                      from_number=f"+1555000{len(ccid):04d}{ago}", to_number="+15550100000",
                                      status=status, created_at=now - ago, updated_at=now - ago + 20,
                                      outcome=outcome, ended_at=None if outcome is None else now - ago + 20,
                                      menu="_after_agents" if ccid == "v3:failed" else "main"))
        tx.add_message("v3:up", "telnyx", "m1", XSS, 0.9, -0.1, "neutral")
        tx.add_message("v3:failed", "telnyx", "m2", "I want a REFUND right now", 0.9, -0.6, "negative")
        tx.add_message("v3:calm", "telnyx", "m3", "just checking my balance", 0.9, 0.3, "positive")
        tx.add_decision("v3:failed", "caller_intent", "caller asked for a person",
                        [{"text": "I want a REFUND right now", "score": -0.6, "confidence": 0.42}])
        tx.add_transfer(TransferRecord(call_control_id="v3:failed", attempt=1, to_number="+15550001111",
                                       command_id="c1", reason="caller asked for a person",
                                       rule="caller_intent", status=TransferStatus.FAILED,
                                       requested_at=now - 590, updated_at=now - 585, hangup_cause="busy"))
        tx.add_feed([FeedEvent("message", "v3:up", {"party": "caller", "text": XSS, "start": 1.0, "end": 2.0,
                                                    "score": -0.1, "label": "neutral", "intents": []}),
                     FeedEvent("message", "v3:failed", {
                         "party": "caller", "text": "I want a REFUND right now", "start": 1.0, "end": 3.0,
                         "score": -0.6, "label": "negative", "intents": ["wants_person"]})])


def signed_in_client(application: Flask) -> FlaskClient:
    client = application.test_client()
    assert client.post("/dashboard/signin", data={"token": TOKEN}).status_code == 303
    return client


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/history", "/dashboard/calls/v3:failed",
                                  "/dashboard/calls/v3:up"])
def test_console_pages_have_a_strict_policy_and_no_inline_script_or_style(console_app: Flask,
                                                                          path: str) -> None:
    seed(console_app)
    response = signed_in_client(console_app).get(path)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", page)


def test_caller_text_is_escaped_on_every_page(console_app: Flask) -> None:
    seed(console_app)
    client = signed_in_client(console_app)
    for path in ("/dashboard", "/dashboard/calls/v3:up", "/dashboard/history?q=alert"):
        page = client.get(path).get_data(as_text=True)
        assert XSS not in page, path
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert escaped in client.get("/dashboard/calls/v3:up").get_data(as_text=True)
    # In the live page's data block the JSON itself is escaped: no "</script>" can end the block early.
    assert "\\u003cscript\\u003ealert(1)" in client.get("/dashboard").get_data(as_text=True)


def test_the_call_page_names_things_in_words(console_app: Flask) -> None:
    seed(console_app)
    page = signed_in_client(console_app).get("/dashboard/calls/v3:failed").get_data(as_text=True)
    assert "Asked for a person, to leave or to complain" in page and "caller asked for a person" in page
    assert "Agent did not answer" in page and ">busy<" in page
    assert "No agent took the call" in page and "Finished in the menu" not in page
    assert "I want a REFUND right now" in page and "wants a person" in page  # evidence and intents
    assert "heard with confidence 0.42" in page
    assert 'datetime="20' in page and "UTC</time>" in page
    assert "caller_intent" not in page and "_after_agents" not in page and "wants_person" not in page


def test_a_call_that_just_ended_says_its_summary_is_on_its_way_and_an_older_one_that_it_has_none(
        console_app: Flask) -> None:
    seed(console_app)  # v3:failed ended ten minutes ago, with no summary
    client = signed_in_client(console_app)
    assert "No summary." in client.get("/dashboard/calls/v3:failed").get_data(as_text=True)
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.update_call("v3:failed", ended_at=time.time() - 5)
    page = client.get("/dashboard/calls/v3:failed").get_data(as_text=True)
    assert ("Made 60 s after the call ends (LIFELINE_TRANSCRIPT_SETTLE_S), once its last words are in"
            in page)
    assert "No summary." not in page


def test_a_console_address_that_is_no_page_is_a_page_saying_so(console_app: Flask) -> None:
    page = signed_in_client(console_app).get("/dashboard/nowhere")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "No such page" in page.get_data(as_text=True)
    assert "Content-Security-Policy" in page.headers


def said(party: str, text: str, at: float, score: float) -> FeedEvent:
    return FeedEvent("message", "v3:up", {"party": party, "text": text, "start": at, "end": at + 1,
                                          "score": score, "label": "", "intents": []})


def test_the_chart_tells_the_parties_apart_without_colour_and_says_what_it_shows(console_app: Flask) -> None:
    seed(console_app)
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.add_feed([said("agent", "Let me help", 3.0, 0.4), said("caller", "It is still broken", 5.0, -0.5)])
    page = signed_in_client(console_app).get("/dashboard/calls/v3:up").get_data(as_text=True)
    chart = page[page.index('<svg class="chart"'):page.index("</svg>")]
    # A shape per party (round caller, square agent); an upset line's dot is marked (and drawn hollow).
    assert re.search(r'<circle [^>]*class="dot caller neg"', chart)
    assert re.search(r'<rect [^>]*class="dot agent"', chart)
    assert 'aria-describedby="chart-words"' in chart
    legend = page[page.index('id="chart-words"'):]
    words = re.sub(r"<[^>]+>|\s+", " ", legend[:legend.index("</ul>")])
    assert "Caller (solid line, round dots): 2 scored lines, first -0.10, last -0.50, lowest -0.50" in words
    assert "Agent (dashed line, square dots): 1 scored line, first +0.40" in words
    assert "hollow dot is a score below −0.20" in words


UPSET = {"intents": {"wants_person": 0.91, "leave_or_cancel": 0.31, "legal_or_complaint": 0.0,
                     "bot_complaint": 0.02},
         "frustration": {"calm": 0.12, "annoyed": 0.66, "angry": 0.22}, "matched": {}}
CALM = {"intents": {"wants_person": 0.04, "leave_or_cancel": 0.0, "legal_or_complaint": 0.0,
                    "bot_complaint": 0.0},
        "frustration": {"calm": 0.8, "annoyed": 0.15, "angry": 0.05}, "matched": {}}


def caller_line(call: str, source_id: str, text: str, score: float,
                analysis: dict[str, object] | None) -> FeedEvent:
    return FeedEvent("message", call, {"party": "caller", "text": text, "start": 4.0, "end": 6.0,
                                       "score": score, "label": "negative", "intents": [],
                                       "analysis": analysis, "source_id": source_id})


def words_of(page: str, start: str, end: str) -> str:
    """The page's text from `start` to `end` (markup out, spaces squeezed)."""
    part = page[page.index(start):]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part[:part.index(end)]))


def test_each_caller_line_says_its_frustration_and_the_intents_at_the_rules_bar(console_app: Flask) -> None:
    seed(console_app)
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.add_feed([caller_line("v3:up", "s1", "Put me through to someone, this is a joke", -0.74, UPSET),
                     said("agent", "Let me help", 7.0, 0.4)])
        tx.add_decision("v3:up", "caller_intent", "caller asked for a person (wants_person 0.91)",
                        [{"source_id": "s1", "text": "Put me through to someone, this is a joke",
                          "score": -0.74, "intents": UPSET["intents"], "frustration": UPSET["frustration"],
                          "confidence": 0.9}])
    page = signed_in_client(console_app).get("/dashboard/calls/v3:up").get_data(as_text=True)
    transcript = words_of(page, 'id="transcript"', "</ol>")
    line = transcript[transcript.index("Put me through"):transcript.index("Let me help")]
    # In words, with the probability: the likeliest class, and only the intent at the bar (0.85).
    assert "frustration: Annoyed 0.66" in line and "wants a person 0.91" in line
    assert "leave" not in line and "complaint" not in line
    assert "sentiment score -0.74" in line and "evidence of the decision" in line
    agent = transcript[transcript.index("Let me help"):]
    assert "frustration" not in agent and "evidence" not in agent  # the rules never read the agent
    legend = words_of(page, 'id="reading-words"', "</p>")
    assert "any intent at 0.85 or above (the bar of the rule “Asked for a person, to leave or to complain”)" \
        in legend
    # The decision keeps the rule and the line as the rule read it.
    decision = words_of(page, 'data-part="decision"', "</section>")
    assert "Asked for a person, to leave or to complain" in decision
    assert "frustration: Annoyed 0.66" in decision and "wants a person 0.91" in decision
    assert "wants_person" not in transcript and "annoyed" not in transcript  # names, not identifiers


def test_a_call_no_rule_fired_on_says_what_the_rules_read_and_labels_the_score_for_what_it_is(
        console_app: Flask) -> None:
    seed(console_app)
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.add_feed([caller_line("v3:up", "s2", "Well that is rather disappointing", -0.74, CALM)])
    page = signed_in_client(console_app).get("/dashboard/calls/v3:up").get_data(as_text=True)
    transcript = words_of(page, 'id="transcript"', "</ol>")
    assert "frustration: Calm 0.80" in transcript and "sentiment score -0.74" in transcript
    decision = words_of(page, 'data-part="decision"', "</section>")
    # The default rules: only long_in_menu (time in the menu) reads the score.
    assert "No rule fired, so no transfer was decided" in decision
    assert "only “Long in the menu and unhappy” also reads the sentiment score" in decision
    chart = words_of(page, 'data-part="chart"', "</section>")
    assert "Sentiment score over time" in chart
    assert "only “Long in the menu and unhappy” reads it" in chart


def test_a_line_stored_before_the_feed_carried_its_analysis_reads_it_from_the_message_kept(
        console_app: Flask) -> None:
    seed(console_app)
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.add_message("v3:up", "telnyx", "old1", "I have had enough of this", 0.9, -0.5, "negative", UPSET)
        tx.add_feed([caller_line("v3:up", "old1", "I have had enough of this", -0.5, None)])
    page = signed_in_client(console_app).get("/dashboard/calls/v3:up").get_data(as_text=True)
    assert "frustration: Annoyed 0.66" in words_of(page, 'id="transcript"', "</ol>")


def test_the_live_page_hands_its_script_the_intent_bar_and_the_frustration_names(console_app: Flask) -> None:
    page = signed_in_client(console_app).get("/dashboard").get_data(as_text=True)
    boot = json.loads(page[page.index('id="boot" type="application/json">'):].split(">", 1)[1]
                      .split("</script>", 1)[0])
    assert boot["intent_bar"] == 0.85  # caller_intent's min_confidence in the example rules
    assert boot["names"]["frustration"] == {"calm": "Calm", "annoyed": "Annoyed", "angry": "Angry"}
    assert "any intent at 0.85 or above" in re.sub(r"\s+", " ", page)


def test_an_unknown_call_page_is_404_and_says_so(console_app: Flask) -> None:
    response = signed_in_client(console_app).get("/dashboard/calls/v3:nobody")
    assert response.status_code == 404 and b"No such call" in response.data


def test_history_searches_and_filters_on_the_server(console_app: Flask) -> None:
    seed(console_app)
    client = signed_in_client(console_app)
    page = client.get("/dashboard/history?q=refund").get_data(as_text=True)
    assert "v3:failed" in page and "v3:calm" not in page and "Calls 1–1 of 1" in page
    page = client.get("/dashboard/history?rule=caller_intent&outcome=no_agent").get_data(as_text=True)
    assert "v3:failed" in page and "v3:calm" not in page
    page = client.get("/dashboard/history").get_data(as_text=True)
    assert page.index("v3:up") < page.index("v3:failed") < page.index("v3:calm")  # newest first
    # The last day a date can name: "to" includes it, and the day after it cannot be reckoned.
    last = client.get("/dashboard/history?to=9999-12-31")
    assert last.status_code == 200 and "v3:calm" in last.get_data(as_text=True)


@pytest.mark.parametrize("query, says", [("from=30-11-2026", "from must be a date as YYYY-MM-DD"),
                                         ("outcome=exploded", "unknown outcome"),
                                         ("page=0", "page must be a whole number"),
                                         ("page=%C2%B2", "page must be a whole number"),  # "²"
                                         ("to=2026-02-30", "to must be a date as YYYY-MM-DD")])
def test_history_refuses_bad_filters_with_a_message(console_app: Flask, query: str, says: str) -> None:
    response = signed_in_client(console_app).get(f"/dashboard/history?{query}")
    assert response.status_code == 400 and says in response.get_data(as_text=True)


def test_the_calls_api_searches_with_the_same_filters(console_app: Flask) -> None:
    seed(console_app)
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    found = client.get("/api/calls?q=REFUND&outcome=no_agent", headers=auth).get_json()
    assert found["total"] == 1 and [(c["call_control_id"], c["rule"]) for c in found["calls"]] == \
        [("v3:failed", "caller_intent")]
    assert client.get("/api/calls?limit=1&offset=1", headers=auth).get_json()["calls"][0]["call_control_id"] \
        == "v3:failed"
    assert client.get("/api/calls?since=yesterday", headers=auth).status_code == 400
    for never in ("nan", "inf", "-inf", "1e400", "1e20"):
        refused = client.get(f"/api/calls?since={never}", headers=auth)
        assert refused.status_code == 400, never
    assert client.get("/api/calls?offset=-1", headers=auth).status_code == 400


def test_the_calls_api_pages_by_cursor_without_repeating_a_call_when_new_ones_start(
        console_app: Flask) -> None:
    seed(console_app)
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    everyone = [c["call_control_id"]
                for c in client.get("/api/calls?limit=500", headers=auth).get_json()["calls"]]
    assert len(everyone) >= 3
    page = client.get("/api/calls?limit=1", headers=auth).get_json()
    seen = [c["call_control_id"] for c in page["calls"]]
    with console_app.extensions["lifeline"].store.unit() as tx:  # a call starts while we page
        tx.insert_call(CallRecord(call_control_id="v3:brand-new", call_session_id=None, call_leg_id=None,
                                  from_number=None, to_number=None, status=CallStatus.MENU,
                                  created_at=time.time(), updated_at=time.time()))
    while page["next_cursor"]:
        page = client.get(f"/api/calls?limit=1&cursor={page['next_cursor']}", headers=auth).get_json()
        seen += [c["call_control_id"] for c in page["calls"]]
    assert seen == everyone  # every call once, in order; the new one is on the first page only
    assert client.get("/api/calls?limit=1&offset=1", headers=auth).get_json()["calls"][0]["call_control_id"] \
        == everyone[0]  # numbered pages do shift


@pytest.mark.parametrize("cursor", ["nonsense", "x" * 1500,
                                    # "abc|v3:x", "1e400|v3:x", "nan|v3:x", "1|a<NUL>b", "12.5"
                                    "YWJjfHYzOng=", "MWU0MDB8djM6eA==", "bmFufHYzOng=", "MXxhAGI=",
                                    "MTIuNQ==",
                                    # "1|v3:x" with stray bytes
                                    "MXx2Mzp4%0D%0A", "MXx2Mzp4%20", "MX%0Ax2Mzp4",
                                    # "1|v3:x": a transcript batch's cursor, not this listing's
                                    "MXx2Mzp4"])
def test_a_cursor_that_is_not_one_of_ours_is_a_400(console_app: Flask, cursor: str) -> None:
    response = console_app.test_client().get(f"/api/calls?cursor={cursor}",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400 and "next_cursor" in response.get_json()["error"]["message"]


def test_the_list_of_calls_still_up_takes_no_cursor_or_offset_and_says_when_it_was_cut(
        console_app: Flask) -> None:
    seed(console_app)
    with console_app.extensions["lifeline"].store.unit() as tx:  # two calls up in all
        tx.insert_call(CallRecord(call_control_id="v3:up-too", call_session_id=None, call_leg_id=None,
                                  from_number=None, to_number=None, status=CallStatus.MENU,
                                  created_at=time.time(), updated_at=time.time()))
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for query in ("active=1&cursor=MXx2Mzp4", "active=1&offset=1"):
        response = client.get(f"/api/calls?{query}", headers=auth)
        assert (response.status_code == 400
                and "no cursor or offset" in response.get_json()["error"]["message"])
    cut = client.get("/api/calls?active=1&limit=1", headers=auth).get_json()
    assert len(cut["calls"]) == 1 and cut["more"] is True
    whole = client.get("/api/calls?active=true", headers=auth).get_json()
    assert {c["call_control_id"] for c in whole["calls"]} == {"v3:up", "v3:up-too"} and whole["more"] is False
    for odd in ("yes", "on", "2"):
        response = client.get(f"/api/calls?active={odd}", headers=auth)
        assert response.status_code == 400 and "active is 1" in response.get_json()["error"]["message"]
    assert client.get("/api/calls?active=0", headers=auth).get_json()["total"] == 4  # the history


def test_one_listings_cursor_is_refused_by_the_other(console_app: Flask) -> None:
    seed(console_app)
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    calls_cursor = client.get("/api/calls?limit=1", headers=auth).get_json()["next_cursor"]
    assert client.get(f"/api/calls?limit=1&cursor={calls_cursor}", headers=auth).status_code == 200
    assert client.get(f"/api/transcripts?cursor={calls_cursor}", headers=auth).status_code == 400


def test_a_cursor_with_an_offset_is_a_400(console_app: Flask) -> None:
    seed(console_app)
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    cursor = client.get("/api/calls?limit=1", headers=auth).get_json()["next_cursor"]
    assert cursor
    response = client.get(f"/api/calls?limit=1&offset=1&cursor={cursor}", headers=auth)
    assert response.status_code == 400 and "not both" in response.get_json()["error"]["message"]


def test_a_session_needs_the_csrf_header_to_change_anything_through_the_api(console_app: Flask) -> None:
    client = signed_in_client(console_app)
    response = client.post("/api/calls/v3:nobody/listening", json={"paused": True})
    assert response.status_code == 403 and "X-CSRF-Token" in response.get_json()["error"]["message"]
    response = client.post("/api/calls/v3:nobody/listening", json={"paused": True},
                           headers={"X-CSRF-Token": csrf_of(client)})
    assert response.status_code == 404  # past the gate: the call does not exist


@pytest.mark.parametrize("target, lands", [("/dashboard/history", "/dashboard/history"),
                                           ("//evil.example/dashboard", "/dashboard"),
                                           ("https://evil.example/", "/dashboard"),
                                           ("/dashboard/calls/\r\nx", "/dashboard"),  # a crafted link
                                           ("/dashboard/history?q=refund&page=3",
                                            "/dashboard/history?q=refund&page=3")])
def test_sign_in_returns_to_the_page_asked_for_but_never_elsewhere(console_app: Flask, target: str,
                                                                   lands: str) -> None:
    response = console_app.test_client().post("/dashboard/signin", data={"token": TOKEN, "next": target})
    assert response.status_code == 303 and response.headers["Location"] == lands


def test_a_console_page_without_a_session_shows_the_form_that_returns_there(console_app: Flask) -> None:
    page = console_app.test_client().get("/dashboard/calls/v3:failed").get_data(as_text=True)
    assert 'name="token"' in page and 'name="next" value="/dashboard/calls/v3:failed"' in page
    filtered = console_app.test_client().get("/dashboard/history?q=refund&page=2").get_data(as_text=True)
    assert 'name="next" value="/dashboard/history?q=refund&amp;page=2"' in filtered  # its filters kept


def test_a_kept_recording_plays_and_nothing_outside_the_recordings_directory_does(console_app: Flask) -> None:
    seed(console_app)
    lifeline = console_app.extensions["lifeline"]
    folder = Path(lifeline.settings.recordings_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "v3-calm.wav").write_bytes(b"RIFF....WAVEfmt ")
    with lifeline.store.unit() as tx:
        tx.update_call("v3:calm", recording_status="kept", recording_path=str(folder / "v3-calm.wav"))
        tx.update_call("v3:failed", recording_status="kept", recording_path=str(Path(__file__).resolve()))
    client = signed_in_client(console_app)
    with client.get("/dashboard/calls/v3:calm/recording") as played:
        assert played.status_code == 200 and played.data == b"RIFF....WAVEfmt "
    assert b"<audio controls" in client.get("/dashboard/calls/v3:calm").data
    assert client.get("/dashboard/calls/v3:failed/recording").status_code == 404
    assert client.get("/dashboard/calls/v3:up/recording").status_code == 404


def test_the_live_snapshot_holds_active_calls_with_their_feed_up_to_where_the_stream_resumes(
        console_app: Flask) -> None:
    seed(console_app)
    outputs = console_app.extensions["conversation"]
    shot = snapshot(outputs.store)
    assert [c["call_control_id"] for c in shot["calls"]] == ["v3:up"]
    assert [e["data"]["text"] for e in shot["calls"][0]["events"]] == [XSS]
    assert shot["after"] == outputs.store.feed_last_id()
    # The calls that ended in the last minutes are under "Just ended", newest first, so a reload
    # does not empty it.
    assert [(e["call_control_id"], e["outcome"]) for e in shot["ended"]] == [("v3:failed", "no_agent"),
                                                                          ("v3:calm", "completed")]
    with console_app.extensions["lifeline"].store.unit() as tx:
        tx.update_call("v3:failed", ended_at=time.time() - 3600)
    assert [e["call_control_id"] for e in snapshot(outputs.store)["ended"]] == ["v3:calm"]  # not an hour ago


def test_pause_and_resume_from_the_call_page_need_the_pages_csrf_token(live: Simulation) -> None:
    leg = live.emulator.incoming_call()
    assert live.emulator.wait_for_gather(leg, 10)
    assert live.app is not None
    client = live.app.test_client()
    client.post("/dashboard/signin", data={"token": "test-token"})
    path = f"/dashboard/calls/{leg.call_control_id}/listening"
    assert client.post(path, data={"paused": "1"}).status_code == 403
    refused = client.post(path, data={"paused": "1", "csrf": "forged"})
    # Signed in all the same: not the sign-in form, but what happened and the way back to the call.
    assert refused.status_code == 403 and 'name="token"' not in refused.get_data(as_text=True)
    assert "Nothing was changed" in refused.get_data(as_text=True)
    assert f'href="/dashboard/calls/{leg.call_control_id}"' in refused.get_data(as_text=True)
    store = live.app.extensions["lifeline"].store
    assert store.get_call(leg.call_control_id).listening is None
    assert client.post(path, data={"paused": "1", "csrf": csrf_of(client)}).status_code == 303
    assert store.get_call(leg.call_control_id).listening == "paused"
    assert client.post(path, data={"paused": "maybe", "csrf": csrf_of(client)}).status_code == 400
    assert client.post(path, data={"paused": "0", "csrf": csrf_of(client)}).status_code == 303
    assert store.get_call(leg.call_control_id).listening is None
    live.emulator.caller_hangs_up(leg)


def test_without_chromium_the_browser_tests_skip_saying_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither chromium nor chromedriver on it
    monkeypatch.delenv("LIFELINE_REQUIRE_BROWSER", raising=False)  # as on a developer's machine
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        chromium_or_skip()
    monkeypatch.setenv("LIFELINE_REQUIRE_BROWSER", "1")  # as in CI: a missing browser is a failure
    with pytest.raises(pytest.fail.Exception, match="apt-get install"):
        chromium_or_skip()


def test_a_page_number_past_the_last_says_so(console_app: Flask) -> None:
    seed(console_app)
    page = signed_in_client(console_app).get("/dashboard/history?page=9").get_data(as_text=True)
    assert "Page 9 is past the last one (1)" in page


def test_a_recording_kept_in_a_bucket_plays_from_the_bucket(console_app: Flask,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    from lifeline.ivr.recording_sinks import BucketSink

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    seed(console_app)
    lifeline = console_app.extensions["lifeline"]
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="voicemail")
        sink = BucketSink("voicemail", "calls")
        location = sink.put("v3-calm.wav", b"RIFF....WAVEfmt ", "audio/wav")
        monkeypatch.setattr(lifeline.services.recordings, "sink", sink)
        with lifeline.store.unit() as tx:
            tx.update_call("v3:calm", recording_status="kept", recording_path=location)
        client = signed_in_client(console_app)
        with client.get("/dashboard/calls/v3:calm/recording") as played:
            assert played.status_code == 200 and played.data == b"RIFF....WAVEfmt "
            assert played.mimetype == "audio/wav"


def test_a_session_ends_eight_hours_after_sign_in_however_busy(console_app: Flask,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time as clock

    from lifeline.ivr import sessions
    client = signed_in_client(console_app)
    assert client.get("/api/calls", headers={}).status_code == 200
    opened = clock.time()
    later = opened + sessions.SESSION_HOURS * 3600 - 60
    monkeypatch.setattr(clock, "time", lambda: later)
    assert client.get("/api/calls").status_code == 200  # still within the 8 hours
    response = client.get("/dashboard")
    assert "Set-Cookie" not in response.headers  # a busy session is not renewed
    monkeypatch.setattr(clock, "time", lambda: opened + sessions.SESSION_HOURS * 3600 + 1)
    assert client.get("/api/calls").status_code == 401
