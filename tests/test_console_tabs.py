"""Many console tabs in one browser share one live-feed connection (lifeline/console/static/feed.js).

A browser opens at most six HTTP/1.1 connections to one server; a feed per tab would leave a
seventh tab waiting. These tests open the console in several windows of one headless Chromium
against the served app, and count the feed's streams on the server (the hub's counters).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import lifeline.conversation.api
from lifeline.conversation.hub import FeedHub
from lifeline.ivr.store import OutputStore
from lifeline.simulator.legs import Leg
from lifeline.simulator.runner import Simulation

from .browser import chromium, chromium_or_skip, sign_in, wait_for, wait_for_feed
from .conftest import wait_until

pytestmark = pytest.mark.browser
TOKEN = "test-token"  # the `live` fixture's API token
LIVE_KINDS = ("call.started", "status", "message", "decision", "transfer", "listening", "call.ended")
# Run in each page before its own scripts: records every event the page is handed by the feed.
RECORDER = """
document.addEventListener("DOMContentLoaded", () => {
  const L = window.Lifeline;
  if (!L || !L.follow) return;
  const follow = L.follow;
  window.feedLog = {after: null, ids: []};
  L.follow = (o) => {
    window.feedLog.after = o.after;
    return follow({...o, onEvent: (e) => { window.feedLog.ids.push(e.id); o.onEvent(e); }});
  };
});
"""
# As in a browser without the Web Locks API (or a page over plain http on another host).
NO_LOCKS = "delete Navigator.prototype.locks;"


@pytest.fixture
def browser() -> Iterator[Chrome]:
    paths = chromium_or_skip()
    with chromium(paths, width=900, height=600) as driver:
        yield driver


def base(live: Simulation) -> str:
    return str(live.config["LIFELINE_PUBLIC_URL"])


def hub_of(live: Simulation) -> FeedHub:
    assert live.app is not None
    hub: FeedHub = live.app.extensions["conversation"].hub
    return hub


def prepare(driver: Chrome, *scripts: str) -> None:
    """Scripts this window runs in every page it loads, before the page's own."""
    for script in (RECORDER, *scripts):
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})


def open_windows(driver: Chrome, live: Simulation, count: int, *scripts: str,
                 path: str = "/dashboard") -> list[str]:
    """`count` console windows (the first signs in), each following the feed; their handles."""
    prepare(driver, *scripts)
    sign_in(driver, base(live), TOKEN, path)
    wait_for_feed(driver)
    handles = [driver.current_window_handle]
    for _ in range(count - 1):
        driver.switch_to.new_window("window")
        prepare(driver, *scripts)
        driver.get(base(live) + path)
        wait_for_feed(driver)
        handles.append(driver.current_window_handle)
    return handles


def row_of(driver: WebDriver, number: str) -> str:
    found: str = driver.execute_script(
        "return [...document.querySelectorAll('#calls tr')].map(r => r.innerText)"
        ".find(t => t.includes(arguments[0])) || ''", number)
    return found


def feed_log(driver: WebDriver) -> dict[str, Any]:
    log: dict[str, Any] = driver.execute_script("return window.feedLog")
    return log


def store_of(live: Simulation) -> OutputStore:
    assert live.app is not None
    store: OutputStore = live.app.extensions["conversation"].store
    return store


def stored_ids(live: Simulation, after: int, upto: int, kinds: tuple[str, ...] = LIVE_KINDS,
               call: str | None = None) -> list[int]:
    """The feed's ids of these kinds (of one call) after `after`, up to `upto`, as the server has them."""
    events = store_of(live).feed_after(after, call, limit=10_000)
    return [e.id for e in events if e.id <= upto and e.kind in kinds]


def message_ids(live: Simulation, call_control_id: str) -> list[int]:
    return [e.id for e in store_of(live).feed_for_call(call_control_id, ("message",))]


def assert_every_event_once(driver: WebDriver, live: Simulation, upto: int,
                            kinds: tuple[str, ...] = LIVE_KINDS, call: str | None = None) -> None:
    """The page was handed each stored event after its snapshot exactly once, in order (up to `upto`)."""
    log = feed_log(driver)
    handed = [i for i in log["ids"] if i <= upto]
    assert handed == stored_ids(live, log["after"], upto, kinds, call)


def metered_streams(live: Simulation) -> float:
    """`lifeline_feed_streams` as /metrics gives it."""
    answer = httpx.get(base(live) + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    return sum(s.value for f in text_string_to_metric_families(answer.text) for s in f.samples
               if s.name == "lifeline_feed_streams")


def set_hidden(driver: WebDriver, hidden: bool) -> None:
    """What the browser does when a window goes out of sight (or back): `document.hidden` changes."""
    driver.execute_script(
        "Object.defineProperty(document, 'hidden', {value: arguments[0], configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'));", hidden)


def hide_until_paused(driver: WebDriver) -> None:
    """Take the current window out of sight, and wait until it says it stopped following."""
    set_hidden(driver, True)
    wait_for(driver, lambda d: "paused while this tab is hidden" in d.find_element(By.ID, "feed-state").text,
             what="the hidden window to stop following")


def say_and_store(live: Simulation, leg: Leg, text: str) -> int:
    """The caller says `text`; the id of its message once stored."""
    before = len(message_ids(live, leg.call_control_id))
    live.emulator.say(leg, text, 1.0)
    assert wait_until(lambda: len(message_ids(live, leg.call_control_id)) > before, 15), \
        "the words were never stored"
    return max(message_ids(live, leg.call_control_id))


def test_eight_live_windows_share_one_feed_connection_and_all_follow_a_call(live: Simulation,
                                                                            browser: Chrome) -> None:
    hub = hub_of(live)
    windows = open_windows(browser, live, 8)
    assert hub.streams_opened == 1 and hub.streams_open == 1
    assert metered_streams(live) == 1

    leg = live.emulator.incoming_call(from_="+15557770301")
    assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(leg, "I want to check the balance on my savings account", 1.0)
    for handle in windows:
        browser.switch_to.window(handle)
        wait_for(browser, lambda d: "balance on my savings" in row_of(d, "+15557770301"),
                 what=f"window {windows.index(handle) + 1} of 8 to show the caller's words")
    upto = max(message_ids(live, leg.call_control_id))
    for handle in windows:
        browser.switch_to.window(handle)
        assert_every_event_once(browser, live, upto)
    assert hub.streams_opened == 1, "a window opened a feed of its own"
    live.emulator.caller_hangs_up(leg)


@contextmanager
def later_streams_held(hub: FeedHub,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """Streams after the first wait, unanswered, until the yielded event is set; the list counts arrivals."""
    gate = threading.Event()
    real = hub.streaming
    arrived: list[int] = []

    @contextmanager
    def streaming() -> Iterator[None]:
        arrived.append(1)
        if len(arrived) > 1:
            gate.wait(30)
        with real():
            yield

    monkeypatch.setattr(hub, "streaming", streaming)
    try:
        yield gate, arrived
    finally:
        gate.set()


def test_when_the_relaying_window_closes_another_takes_over_with_no_event_missed_or_repeated(
        live: Simulation, browser: Chrome, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_of(live)
    with later_streams_held(hub, monkeypatch) as (gate, arrived):
        windows = open_windows(browser, live, 3)
        leg = live.emulator.incoming_call(from_="+15557770302")
        for handle in windows:
            browser.switch_to.window(handle)
            wait_for(browser, lambda d: row_of(d, "+15557770302"), what="the call's row in every window")
        assert hub.streams_opened == 1

        browser.switch_to.window(windows[0])  # the first window holds the feed
        browser.close()
        # The window that takes over asks the server from the last event it had; its answer is held
        # while the caller talks, so these events reach no window until then.
        assert wait_until(lambda: len(arrived) == 2, 15), "no window took the feed over"
        assert live.emulator.wait_for_gather(leg, 10)
        upto = say_and_store(live, leg, "I would like a new debit card please")
        for handle in windows[1:]:
            browser.switch_to.window(handle)
            assert "debit card" not in row_of(browser, "+15557770302")
        gate.set()

        for handle in windows[1:]:
            browser.switch_to.window(handle)
            wait_for(browser, lambda d: "new debit card" in row_of(d, "+15557770302"),
                     what="the words said during the takeover")
        for handle in windows[1:]:
            browser.switch_to.window(handle)
            assert_every_event_once(browser, live, upto)
        assert hub.streams_opened == 2 and len(arrived) == 2
    live.emulator.caller_hangs_up(leg)


def test_a_call_page_and_the_live_page_share_the_feed_and_the_call_page_follows_its_call(
        live: Simulation, browser: Chrome) -> None:
    hub = hub_of(live)
    leg = live.emulator.incoming_call(from_="+15557770303")
    assert live.emulator.wait_for_gather(leg, 10)
    live_page = open_windows(browser, live, 1)[0]
    browser.switch_to.new_window("window")
    prepare(browser)
    browser.get(base(live) + f"/dashboard/calls/{leg.call_control_id}")
    wait_for_feed(browser)
    call_page = browser.current_window_handle

    live.emulator.say(leg, "I would like to check my balance", 1.0)
    wait_for(browser, lambda d: "check my balance" in d.find_element(By.ID, "transcript").text,
             what="the line on the call page")
    browser.switch_to.window(live_page)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770303"),
             what="the line on the live page")
    assert hub.streams_opened == 1
    browser.switch_to.window(call_page)
    assert_every_event_once(browser, live, max(message_ids(live, leg.call_control_id)),
                            ("status", "message", "decision", "transfer", "listening"), leg.call_control_id)
    live.emulator.caller_hangs_up(leg)


def test_without_web_locks_each_window_keeps_a_feed_of_its_own(live: Simulation, browser: Chrome) -> None:
    hub = hub_of(live)
    windows = open_windows(browser, live, 3, NO_LOCKS)
    assert hub.streams_opened == 3
    leg = live.emulator.incoming_call(from_="+15557770304")
    for handle in windows:
        browser.switch_to.window(handle)
        wait_for(browser, lambda d: row_of(d, "+15557770304"), what="the call's row in every window")
    live.emulator.caller_hangs_up(leg)


def test_a_window_seen_again_gets_what_it_missed_from_the_relaying_window(live: Simulation,
                                                                          browser: Chrome) -> None:
    hub = hub_of(live)
    leader, follower = open_windows(browser, live, 2)
    leg = live.emulator.incoming_call(from_="+15557770305")
    assert live.emulator.wait_for_gather(leg, 10)
    hide_until_paused(browser)  # the follower, the window last opened
    upto = say_and_store(live, leg, "I would like to check my balance")
    browser.switch_to.window(leader)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770305"), what="the words, relayed")
    browser.switch_to.window(follower)
    assert "check my balance" not in row_of(browser, "+15557770305")

    set_hidden(browser, False)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770305"), what="the words it missed")
    wait_for_feed(browser)
    assert_every_event_once(browser, live, upto)
    assert hub.streams_opened == 1, "the words it missed were not taken from what the relaying window kept"
    live.emulator.caller_hangs_up(leg)


def test_a_window_behind_the_relaying_windows_start_is_caught_up_from_the_server(live: Simulation,
                                                                                 browser: Chrome) -> None:
    hub = hub_of(live)
    first, behind = open_windows(browser, live, 2)
    leg = live.emulator.incoming_call(from_="+15557770306")
    assert live.emulator.wait_for_gather(leg, 10)
    hide_until_paused(browser)
    say_and_store(live, leg, "I would like to check my balance")
    # A third window opens after the words; the first closes, so the third relays from there on.
    browser.switch_to.new_window("window")
    prepare(browser)
    browser.get(base(live) + "/dashboard")
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770306"),
             what="the third window's snapshot")
    third = browser.current_window_handle
    browser.switch_to.window(first)
    browser.close()
    assert wait_until(lambda: hub.streams_opened == 2, 15), "the third window did not take the feed over"

    browser.switch_to.window(behind)
    set_hidden(browser, False)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770306"), what="the words it missed")
    upto = say_and_store(live, leg, "And I need a new debit card")
    for handle in (behind, third):
        browser.switch_to.window(handle)
        wait_for(browser, lambda d: "new debit card" in row_of(d, "+15557770306"), what="the next words")
        assert_every_event_once(browser, live, upto)
    assert hub.streams_opened == 3  # the third window's own, then again from where the behind one was
    live.emulator.caller_hangs_up(leg)


def test_when_the_relaying_window_is_hidden_another_relays_and_it_catches_up_when_seen(
        live: Simulation, browser: Chrome) -> None:
    hub = hub_of(live)
    relaying, other = open_windows(browser, live, 2)
    leg = live.emulator.incoming_call(from_="+15557770307")
    assert live.emulator.wait_for_gather(leg, 10)
    browser.switch_to.window(relaying)
    set_hidden(browser, True)
    assert wait_until(lambda: hub.streams_opened == 2, 15), "the other window did not take the feed over"
    upto = say_and_store(live, leg, "I would like to check my balance")
    browser.switch_to.window(other)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770307"), what="the words, followed")
    browser.switch_to.window(relaying)
    assert "check my balance" not in row_of(browser, "+15557770307")
    set_hidden(browser, False)
    wait_for(browser, lambda d: "check my balance" in row_of(d, "+15557770307"), what="the words it missed")
    for handle in (relaying, other):
        browser.switch_to.window(handle)
        assert_every_event_once(browser, live, upto)
    assert hub.streams_opened == 2
    live.emulator.caller_hangs_up(leg)


def test_every_window_says_signed_out_when_the_shared_feed_is_refused(
        live: Simulation, browser: Chrome, monkeypatch: pytest.MonkeyPatch) -> None:
    # how often the feed re-checks its session
    monkeypatch.setattr(lifeline.conversation.api, "KEEPALIVE_S", 0.5)
    windows = open_windows(browser, live, 2)
    browser.switch_to.new_window("window")
    browser.get(base(live) + "/dashboard/history")
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "token"), what="the sign-in form after signing out")
    for handle in windows:
        browser.switch_to.window(handle)
        wait_for(browser, lambda d: "signed out" in d.find_element(By.ID, "feed-state").text,
                 what="every live window to say it is signed out")
    assert hub_of(live).streams_opened == 1


def test_without_web_locks_a_call_page_follows_its_own_calls_feed(live: Simulation, browser: Chrome) -> None:
    leg = live.emulator.incoming_call(from_="+15557770308")
    assert live.emulator.wait_for_gather(leg, 10)
    open_windows(browser, live, 1, NO_LOCKS, path=f"/dashboard/calls/{leg.call_control_id}")
    upto = say_and_store(live, leg, "I would like to check my balance")
    wait_for(browser, lambda d: "check my balance" in d.find_element(By.ID, "transcript").text,
             what="the line on the call page")
    assert_every_event_once(browser, live, upto, ("status", "message", "decision", "transfer", "listening"),
                            leg.call_control_id)
    assert hub_of(live).streams_opened == 1
    live.emulator.caller_hangs_up(leg)
