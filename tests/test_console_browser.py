"""The supervisor console in a real browser: headless Chromium driven by Selenium.

Calls come from the emulator (real signed webhooks to the served app), and the pages follow
them through the live feed. Skipped with the install command where Chromium is missing; CI
installs it (`.ci/run`) and makes these tests mandatory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

import lifeline.conversation.api
from lifeline.console import names
from lifeline.simulator.legs import Leg
from lifeline.simulator.runner import Simulation

from .browser import chromium, chromium_or_skip, click, sign_in, wait_for, wait_for_feed

pytestmark = pytest.mark.browser
TOKEN = "test-token"  # the `live` fixture's API token
XSS = "<script>alert(1)</script>"


@pytest.fixture
def browser() -> Iterator[Chrome]:
    """A fresh headless Chromium."""
    paths = chromium_or_skip()
    with chromium(paths) as driver:
        yield driver


def base(live: Simulation) -> str:
    return str(live.config["LIFELINE_PUBLIC_URL"])


def rows(driver: WebDriver) -> list[dict[str, str]]:
    """The live table's rows, top first: text and class (read at once, as rows move)."""
    found: list[dict[str, str]] = driver.execute_script(
        "return [...document.querySelectorAll('#calls tr')]"
        ".map(r => ({text: r.innerText, cls: r.className}))")
    return found


def row_of(driver: WebDriver, number: str) -> str:
    """The live table's row text for this caller ('' when absent)."""
    return next((r["text"] for r in rows(driver) if number in r["text"]), "")


def policy_violations(driver: Chrome) -> list[str]:
    """Console messages of the browser about the Content-Security-Policy (an inline script, say)."""
    # selenium leaves get_log untyped
    entries: list[dict[str, object]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [str(e["message"]) for e in entries if "Content Security Policy" in str(e["message"])]


def no_alert(driver: WebDriver) -> bool:
    try:
        _ = driver.switch_to.alert  # raises when there is none
    except NoAlertPresentException:
        return True
    return False


def test_signing_in_shows_live_calls_that_appear_update_and_leave_without_reloading(
        live: Simulation, browser: Chrome) -> None:
    browser.get(base(live) + "/dashboard")
    assert browser.find_elements(By.ID, "token"), "the console asks for the token first"
    sign_in(browser, base(live), TOKEN)
    cookie = browser.get_cookie("session")
    assert cookie is not None and cookie["httpOnly"]
    assert TOKEN not in browser.current_url
    wait_for_feed(browser)
    browser.execute_script("window.stillTheSamePage = true")  # a reload would lose this

    leg = live.emulator.incoming_call(from_="+15557770001")
    wait_for(browser, lambda d: row_of(d, "+15557770001"), what="the new call's row")
    assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(leg, "I want to check the balance on my savings account", 1.0)
    wait_for(browser, lambda d: "balance on my savings" in row_of(d, "+15557770001"),
             what="the caller's words")
    assert "Calm" in row_of(browser, "+15557770001")
    assert browser.find_elements(By.CSS_SELECTOR, "#calls tr svg.spark polyline, #calls tr svg.spark circle")

    live.emulator.caller_hangs_up(leg)
    wait_for(browser, lambda d: not row_of(d, "+15557770001"), what="the ended call to leave the live list")
    ended = browser.find_element(By.ID, "ended").text
    assert "+15557770001" in ended and "Finished in the menu" in ended
    assert browser.execute_script("return window.stillTheSamePage === true"), "the page reloaded"


def test_a_live_page_whose_session_is_signed_out_in_another_tab_says_signed_out_with_a_way_back(
        live: Simulation, browser: Chrome, monkeypatch: pytest.MonkeyPatch) -> None:
    # The feed re-checks its session this often; 15 s by default.
    monkeypatch.setattr(lifeline.conversation.api, "KEEPALIVE_S", 0.5)
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    assert "stale" not in browser.find_element(By.TAG_NAME, "body").get_attribute("class").split()
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(base(live) + "/dashboard")
    click(browser, By.CSS_SELECTOR, "form.signout button")
    wait_for(browser, lambda d: d.find_elements(By.ID, "token"), what="the sign-in form after signing out")

    browser.switch_to.window(first)
    wait_for(browser, lambda d: "signed out" in d.find_element(By.ID, "feed-state").text,
             what="the first tab to say it is signed out")
    # The calls it shows are greyed and their clocks stop: they may be out of date.
    assert "stale" in browser.find_element(By.TAG_NAME, "body").get_attribute("class").split()
    again = browser.find_element(By.CSS_SELECTOR, "#feed-state a")
    assert again.text == "sign in again"
    again.click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "token"), what="the sign-in form")


def test_a_live_page_that_loses_the_server_for_good_says_disconnected_not_signed_out(
        live: Simulation, browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    # The feed's answer and the check's both come back as a refusal that is not about the session.
    browser.execute_script(
        "window.fetch = () => Promise.resolve(new Response('', {status: 502}));"
        "Lifeline.feedClosed();")
    wait_for(browser, lambda d: "disconnected" in d.find_element(By.ID, "feed-state").text,
             what="the page to say disconnected")
    assert not browser.find_elements(By.CSS_SELECTOR, "#feed-state a")


def test_a_late_line_of_a_call_that_ended_before_the_page_opened_brings_no_row_back(
        live: Simulation, browser: Chrome) -> None:
    leg = live.emulator.incoming_call(from_="+15557770044")
    assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.caller_hangs_up(leg)
    assert live.emulator.idle(10)
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    # A transcript of its last words, finished after the call ended (the state machine keeps it).
    live.app.extensions["lifeline"].calls.hear(  # type: ignore[union-attr]
        leg.call_control_id, "telnyx", "late-1", "This is ridiculous, I am furious", 0.9)
    later = live.emulator.incoming_call(from_="+15557770045")  # a live call's row shows the page kept up
    wait_for(browser, lambda d: row_of(d, "+15557770045"), what="the next call's row")
    assert not row_of(browser, "+15557770044") and "furious" not in " ".join(r["text"] for r in rows(browser))
    live.emulator.caller_hangs_up(later)


def test_a_failed_transfer_tops_the_list_above_a_calm_caller(live: Simulation, browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    calm = live.emulator.incoming_call(from_="+15557770011")
    upset = live.emulator.incoming_call(from_="+15557770022", agent="busy")
    for leg in (calm, upset):
        assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(calm, "Hello, I would like to hear my options please", 1.0)
    live.emulator.say(upset, "This is ridiculous, I am furious, get me a real person now", 1.0)
    wait_for(browser, lambda d: "No agent answered" in row_of(d, "+15557770022"), timeout=30,
             what="the failed transfer to be flagged")
    top = rows(browser)[0]
    assert "+15557770022" in top["text"] and top["cls"] == "level-4"
    assert "Agent did not answer" in top["text"]
    # A screen reader is told, in the page's alert region, not only shown a red row.
    alerts = browser.find_element(By.ID, "alerts").get_attribute("textContent")
    assert alerts == "No agent answered: +15557770022"
    for leg in (calm, upset):
        live.emulator.caller_hangs_up(leg)


def mood_of(driver: WebDriver, number: str) -> dict[str, Any]:
    """The mood cell of this caller's row: its text (hidden words included), the sparkline's
    tooltip, and how many lines each of its figures (and the caller's number) takes."""
    found: dict[str, Any] = driver.execute_script(
        "const row = [...document.querySelectorAll('#calls tr')]"
        "  .find(r => r.innerText.includes(arguments[0]));"
        "const mood = row && row.querySelector('.mood');"
        "if (!mood) return {text: '', title: '', lines: []};"
        "const parts = [...mood.children].filter(c => c.tagName === 'SPAN');"
        "const lines = (node) => new Set([...node.getClientRects()].map(r => Math.round(r.top))).size;"
        "return {text: mood.textContent, title: (mood.querySelector('svg title') || {}).textContent || '',"
        "        lines: [...parts, row.querySelector('a')].map(p => [p.textContent, lines(p)])};",
        number)
    return found


def test_a_live_row_says_the_callers_latest_frustration_in_words_and_its_figures_never_wrap(
        live: Simulation, browser: Chrome) -> None:
    browser.set_window_size(760, 900)  # a narrow window: the mood column is squeezed
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    callers = [("+15557770061", "Hello, I would like to hear my options please"),
               ("+15557770062",
                "I have been waiting for weeks and nobody has fixed it, this is so frustrating")]
    legs = [live.emulator.incoming_call(from_=number) for number, _ in callers]
    for leg in legs:
        assert live.emulator.wait_for_gather(leg, 10)
    scorer = live.app.extensions["lifeline"].services.scorer  # type: ignore[union-attr]
    read = [scorer.analyse(text) for _, text in callers]
    # One annoyed line alone fires no default rule: the row shows it all the same.
    assert [r.frustration_level for r in read] == ["calm", "annoyed"]
    for leg, (_, text) in zip(legs, callers, strict=True):
        live.emulator.say(leg, text, 1.0)
    for (number, _), analysis in zip(callers, read, strict=True):
        level = analysis.frustration_level
        expected = f"frustration: {names.readable('frustration', level)} {analysis.frustration[level]:.2f}"
        wait_for(browser, lambda d, n=number, e=expected: e in mood_of(d, n)["text"],  # type: ignore[misc]
                 what=f"{number}'s frustration in words")
    top = rows(browser)[0]
    assert "+15557770062" in top["text"] and "Upset caller" in top["text"]
    assert "Calm" in row_of(browser, "+15557770061")
    mood = mood_of(browser, "+15557770062")
    assert "sentiment score" in mood["title"]
    # Every figure on one line: "-0.59" is never cut into "-0.5" and "9", nor the number in two.
    assert mood["lines"] and all(lines == 1 for _, lines in mood["lines"]), mood["lines"]
    # An intent is named only from the intent rules' bar up (0.85 in the example rules).
    calm_text = mood_of(browser, "+15557770061")["text"]
    for intent, p in read[0].intents.items():
        assert (names.readable("intent", intent) in calm_text) == (p >= 0.85), (intent, p)
    assert policy_violations(browser) == []
    for leg in legs:
        live.emulator.caller_hangs_up(leg)


def test_a_caller_saying_a_script_tag_is_shown_as_text_and_never_run(live: Simulation,
                                                                      browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    leg = live.emulator.incoming_call(from_="+15557770033")
    assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(leg, XSS, 1.0)
    wait_for(browser, lambda d: XSS in row_of(d, "+15557770033"), what="the words shown as text")
    assert no_alert(browser)

    click(browser, By.LINK_TEXT, "+15557770033")
    wait_for(browser, lambda d: d.find_elements(By.ID, "transcript"), what="the call page")
    assert XSS in browser.find_element(By.ID, "transcript").text and no_alert(browser)
    live.emulator.caller_hangs_up(leg)

    browser.get(base(live) + "/dashboard/history?q=alert(1)")
    assert "+15557770033" in browser.find_element(By.CSS_SELECTOR, "table.history").text and no_alert(browser)
    # Nothing the caller said became markup: the only scripts are our own files and the JSON data block.
    for script in browser.find_elements(By.TAG_NAME, "script"):
        assert script.get_attribute("src") or script.get_attribute("type") == "application/json"
    assert policy_violations(browser) == []


def focus_link(driver: WebDriver, number: str) -> None:
    """Focus a caller's link in the live table (a keyboard user tabbing to it), remembering the link."""
    link = driver.find_element(By.CSS_SELECTOR, "#calls").find_element(By.LINK_TEXT, number)
    driver.execute_script("arguments[0].focus(); window.focusedLink = arguments[0]", link)


def still_focused(driver: WebDriver) -> bool:
    """Whether the link focused by focus_link() still has the focus (the same element, still on the page)."""
    return bool(driver.execute_script(
        "return window.focusedLink.isConnected && document.activeElement === window.focusedLink"))


@pytest.mark.parametrize("move_before", [True, False], ids=["moveBefore", "without moveBefore"])
def test_a_focused_link_in_a_live_row_keeps_focus_while_other_calls_change(live: Simulation, browser: Chrome,
                                                                            move_before: bool) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    if not move_before:  # as in browsers that cannot move a node without blurring it
        browser.execute_script("delete Element.prototype.moveBefore")
    helped = live.emulator.incoming_call(from_="+15557770101")  # put through to an agent, so sinks below
    wait_for(browser, lambda d: row_of(d, "+15557770101"), what="the first call's row")
    reader = live.emulator.incoming_call(from_="+15557770102")  # quiet: its link is the one focused
    wait_for(browser, lambda d: row_of(d, "+15557770102"), what="the focused call's row")
    focus_link(browser, "+15557770102")

    assert live.emulator.wait_for_gather(helped, 10)
    live.emulator.say(helped, "This is ridiculous, I am furious, get me a real person now", 1.0)
    wait_for(browser, lambda d: "With an agent" in row_of(d, "+15557770101")
             and "+15557770101" in rows(d)[-1]["text"], timeout=30,
             what="the call put through to sink below the focused row")
    failed = live.emulator.incoming_call(from_="+15557770103", agent="busy")
    assert live.emulator.wait_for_gather(failed, 10)
    live.emulator.say(failed, "This is ridiculous, I am furious, get me a real person now", 1.0)
    wait_for(browser, lambda d: "No agent answered" in rows(d)[0]["text"], timeout=30,
             what="the failed transfer to top the list")
    live.emulator.caller_hangs_up(failed)
    wait_for(browser, lambda d: not row_of(d, "+15557770103"), what="the failed call to leave")

    assert still_focused(browser), "the focused link lost the focus"
    for leg in (helped, reader):
        live.emulator.caller_hangs_up(leg)


def test_the_count_and_the_just_ended_list_change_without_redrawing_the_rows_that_stay(
        live: Simulation, browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    stays = live.emulator.incoming_call(from_="+15557770111")
    wait_for(browser, lambda d: row_of(d, "+15557770111"), what="the staying call's row")
    # Marks on the nodes themselves: a redrawn row or list item would come without them.
    browser.execute_script("document.querySelector('#calls tr').marked = true")
    first = live.emulator.incoming_call(from_="+15557770112")
    wait_for(browser, lambda d: "2 calls on the line" in d.find_element(By.ID, "count").text,
             what="the count")
    live.emulator.caller_hangs_up(first)
    wait_for(browser, lambda d: "+15557770112" in d.find_element(By.ID, "ended").text,
             what="the first to end")
    browser.execute_script("document.querySelector('#ended li').marked = true")
    second = live.emulator.incoming_call(from_="+15557770113")
    wait_for(browser, lambda d: row_of(d, "+15557770113"), what="the second call's row")
    live.emulator.caller_hangs_up(second)
    wait_for(browser, lambda d: d.find_element(By.ID, "ended").text.startswith("+15557770113"),
             what="the second to end on top of the list")

    assert browser.find_element(By.ID, "count").text == "1 call on the line"
    assert browser.execute_script("return document.querySelector('#calls tr').marked === true"), \
        "the staying call's row was redrawn"
    assert browser.execute_script("return document.querySelectorAll('#ended li')[1].marked === true"), \
        "the just-ended list was redrawn"
    live.emulator.caller_hangs_up(stays)


def test_when_a_focused_rows_call_ends_the_focus_goes_to_its_just_ended_line(live: Simulation,
                                                                              browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    leg = live.emulator.incoming_call(from_="+15557770121")
    wait_for(browser, lambda d: row_of(d, "+15557770121"), what="the call's row")
    focus_link(browser, "+15557770121")
    live.emulator.caller_hangs_up(leg)
    wait_for(browser, lambda d: not row_of(d, "+15557770121"), what="the ended call to leave the table")
    focused = browser.execute_script(
        "const a = document.activeElement; return a.closest('#ended') && a.textContent")
    assert focused == "+15557770121", "the focus did not follow the call to the just-ended list"


def test_history_search_finds_a_call_and_its_page_tells_the_whole_story(live: Simulation,
                                                                        browser: Chrome) -> None:
    plain = live.emulator.incoming_call(from_="+15557770044")
    angry = live.emulator.incoming_call(from_="+15557770055")
    for leg in (plain, angry):
        assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(plain, "What time does the branch open on Saturday?", 1.0)
    live.emulator.say(angry, "I want a refund, this is outrageous, let me speak to a human", 1.0)
    deadline = time.monotonic() + 15
    while angry.transcription_tracks != "both" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert angry.transcription_tracks == "both", "the caller was never put through and both parties heard"
    live.emulator.agent_says(angry, "Hello, I can sort out that refund for you right away", 1.0)
    live.emulator.say(angry, "Thank you, that is a relief", 1.0)
    live.emulator.caller_hangs_up(plain)
    live.emulator.caller_hangs_up(angry)
    assert live.emulator.idle(10)

    sign_in(browser, base(live), TOKEN, "/dashboard/history")
    box = browser.find_element(By.NAME, "q")
    box.send_keys("REFUND")
    box.submit()
    wait_for(browser, lambda d: "REFUND" in d.current_url, what="the search")
    table = browser.find_element(By.CSS_SELECTOR, "table.history").text
    assert "+15557770055" in table and "+15557770044" not in table
    assert "Put through to an agent" in table
    click(browser, By.CSS_SELECTOR, "table.history tbody a")

    wait_for(browser, lambda d: d.find_elements(By.ID, "transcript"), what="the call page")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Call from +15557770055" in page
    transcript = browser.find_element(By.ID, "transcript").text
    assert "Caller" in transcript and "Agent" in transcript and "sort out that refund" in transcript
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.line.caller")
    assert "Asked for a person, to leave or to complain" in page  # the rule, in words
    assert "Connected" in page and "+15550001111" in page  # the transfer attempt
    assert "Topics" in page  # the summary
    assert "caller_intent" not in page and "_after_agents" not in page
    stamp = browser.find_element(By.CSS_SELECTOR, "time[datetime]")
    assert stamp.get_attribute("title") == stamp.get_attribute("datetime") and "UTC" not in stamp.text


def test_pausing_and_resuming_from_the_call_page(live: Simulation, browser: Chrome) -> None:
    leg = live.emulator.incoming_call(from_="+15557770066")
    assert live.emulator.wait_for_gather(leg, 10)
    sign_in(browser, base(live), TOKEN, f"/dashboard/calls/{leg.call_control_id}")
    click(browser, By.ID, "pause")
    wait_for(browser, lambda d: d.find_elements(By.ID, "resume"), what="the resume button")
    # The keyboard user is where they were: on the button that took the pressed one's place.
    wait_for(browser, lambda d: d.switch_to.active_element.get_attribute("id") == "resume",
             what="the focus on the resume button")
    assert "Paused" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert live.app is not None
    assert live.app.extensions["lifeline"].store.get_call(leg.call_control_id).listening == "paused"
    click(browser, By.ID, "resume")
    wait_for(browser, lambda d: d.find_elements(By.ID, "pause"), what="the pause button")
    # The page of a call on the line follows its events: new words show up without a click.
    wait_for_feed(browser)
    live.emulator.say(leg, "I would like to order a new debit card", 1.0)
    wait_for(browser, lambda d: "new debit card" in d.find_element(By.TAG_NAME, "main").text,
             what="the new words on the call page")
    live.emulator.caller_hangs_up(leg)
    assert policy_violations(browser) == []


def open_call_page(live: Simulation, browser: Chrome, number: str, agent: str | None = None) -> Leg:
    """A call in the menu, its page open and following its feed, marked so that a reload would show."""
    leg = live.emulator.incoming_call(from_=number, **({"agent": agent} if agent else {}))
    assert live.emulator.wait_for_gather(leg, 10)
    sign_in(browser, base(live), TOKEN, f"/dashboard/calls/{leg.call_control_id}")
    wait_for_feed(browser)
    browser.execute_script("window.stillTheSamePage = true")  # a reload would lose this
    return leg


def same_page(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return window.stillTheSamePage === true"))


def transcript_says(text: str) -> Callable[[WebDriver], bool]:
    return lambda d: text in d.find_element(By.ID, "transcript").text


def main(driver: WebDriver) -> str:
    """The page's text below its header."""
    return str(driver.find_element(By.TAG_NAME, "main").text)


def test_the_call_page_shows_a_new_line_without_reloading(live: Simulation, browser: Chrome) -> None:
    leg = open_call_page(live, browser, "+15557770131")
    live.emulator.say(leg, "I would like to check my balance", 1.0)
    wait_for(browser, transcript_says("check my balance"), what="the first line")
    browser.execute_script("document.querySelector('#transcript li').marked = true")
    live.emulator.say(leg, "And I need a new debit card", 1.0)
    wait_for(browser, transcript_says("new debit card"), what="the second line")

    assert same_page(browser), "the page reloaded"
    lines = browser.find_elements(By.CSS_SELECTOR, "#transcript li")
    assert len(lines) == 2 and "new debit card" in lines[1].text
    assert browser.execute_script("return document.querySelector('#transcript li').marked === true"), \
        "the line already shown was drawn again"
    # Screen readers hear each new line once, politely, and not the whole page again.
    assert browser.find_element(By.ID, "transcript").get_attribute("aria-live") == "polite"
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline.line.caller"), "no chart update"
    live.emulator.caller_hangs_up(leg)
    assert policy_violations(browser) == []


def test_a_focused_button_on_the_call_page_keeps_focus_when_a_line_arrives(live: Simulation,
                                                                           browser: Chrome) -> None:
    leg = open_call_page(live, browser, "+15557770132")
    browser.execute_script("window.focusedButton = document.getElementById('pause'); "
                           "window.focusedButton.focus()")
    live.emulator.say(leg, "I would like to check my balance", 1.0)
    wait_for(browser, transcript_says("check my balance"), what="the line")
    assert browser.execute_script("return document.activeElement === window.focusedButton"), \
        "the pause button lost the focus"
    live.emulator.caller_hangs_up(leg)


def test_when_listening_is_paused_elsewhere_the_focused_pause_button_hands_focus_to_resume(
        live: Simulation, browser: Chrome) -> None:
    leg = open_call_page(live, browser, "+15557770135")
    browser.execute_script("document.getElementById('pause').focus()")
    assert live.app is not None
    live.app.extensions["conversation"].control.set_paused(leg.call_control_id, True, by="api")
    wait_for(browser, lambda d: d.find_elements(By.ID, "resume"), what="the resume button")
    assert browser.execute_script("return document.activeElement.id") == "resume"
    assert "Paused" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert same_page(browser), "the page reloaded"
    live.emulator.caller_hangs_up(leg)


def test_the_call_page_keeps_the_readers_place_when_a_line_arrives(live: Simulation,
                                                                   browser: Chrome) -> None:
    browser.set_window_size(700, 500)  # one column, and a page taller than the window
    leg = open_call_page(live, browser, "+15557770133")
    # The reader is at the transcript; the first scored line puts a chart above it, 200 pixels high.
    where = "return document.getElementById('transcript').closest('section').getBoundingClientRect().top"
    browser.execute_script("document.getElementById('transcript').closest('section').scrollIntoView()")
    assert browser.execute_script("return window.scrollY") > 0, "the page did not scroll"
    before = browser.execute_script(where)
    live.emulator.say(leg, "I would like to check my balance", 1.0)
    wait_for(browser, transcript_says("check my balance"), what="the line")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart"), "no chart came above the transcript"
    assert abs(browser.execute_script(where) - before) <= 1, "the transcript moved on the screen"
    assert same_page(browser), "the page reloaded"
    live.emulator.caller_hangs_up(leg)


def test_the_call_page_follows_a_transfer_and_the_end_of_the_call_without_reloading(
        live: Simulation, browser: Chrome) -> None:
    leg = open_call_page(live, browser, "+15557770134")
    live.emulator.say(leg, "This is ridiculous, I am furious, get me a real person now", 1.0)
    wait_for(browser, lambda d: "Asked for a person, to leave or to complain" in main(d), timeout=30,
             what="the decision")
    wait_for(browser, lambda d: "Connected" in main(d) and "+15550001111" in main(d), timeout=30,
             what="the transfer attempt")
    live.emulator.caller_hangs_up(leg)
    wait_for(browser, lambda d: "Put through to an agent" in d.find_element(By.CSS_SELECTOR, ".pill").text,
             timeout=30, what="the outcome")
    wait_for(browser, lambda d: "Topics" in main(d), timeout=30, what="the summary")
    assert not browser.find_elements(By.ID, "pause"), "the pause button outlived the call"
    assert "ended" in browser.find_element(By.ID, "feed-state").text
    assert same_page(browser), "the page reloaded"
    assert policy_violations(browser) == []


def test_a_line_shown_before_the_decision_that_kept_it_gains_the_evidence_mark_without_a_redraw(
        live: Simulation, browser: Chrome) -> None:
    leg = open_call_page(live, browser, "+15557770135")
    first, second = ("I have been waiting for weeks and nobody has fixed it, this is so frustrating",
                     "My bill is wrong again and I am getting really fed up with it")
    live.emulator.say(leg, first, 1.0)
    wait_for(browser, transcript_says("waiting for weeks"), what="the first line")
    line = browser.find_element(By.CSS_SELECTOR, "#transcript li")
    assert "frustration: Annoyed" in str(line.get_attribute("textContent"))  # one annoyed line: no rule yet
    assert "evidence of the decision" not in line.text
    browser.execute_script("document.querySelector('#transcript li').marked = true")
    live.emulator.say(leg, second, 1.0)  # annoyed twice in three lines: the rule fires on both
    wait_for(browser, lambda d: "Annoyed twice" in main(d), timeout=30, what="the decision")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#transcript .evidence-mark")) == 2,
             what="both lines marked as the decision's evidence")
    assert browser.execute_script("return document.querySelector('#transcript li').marked === true"), \
        "the line already shown was drawn again"
    decision = browser.find_element(By.CSS_SELECTOR, '[data-part="decision"]').text
    assert decision.count("frustration:") == 2 and "fed up" in decision
    assert same_page(browser) and policy_violations(browser) == []
    live.emulator.caller_hangs_up(leg)


def test_a_message_left_after_no_agent_answered_plays_on_the_call_page(live: Simulation,
                                                                       browser: Chrome) -> None:
    leg = live.emulator.incoming_call(from_="+15557770077", agent="busy")
    assert live.emulator.wait_for_gather(leg, 10)
    live.emulator.say(leg, "This is useless, I want to talk to a real person now", 1.0)
    deadline = time.monotonic() + 20
    while leg.gather is not None and time.monotonic() < deadline:  # the main menu's gather ends first
        time.sleep(0.05)
    assert live.emulator.wait_for_gather(leg, 20), "no apology menu after the agents"
    live.emulator.press(leg, "2")  # leave a message
    while leg.recording is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leg.recording is not None, "the message was never recorded"
    live.emulator.say(leg, "Please call me back about my card", 2.0)
    live.emulator.caller_hangs_up(leg)
    assert live.app is not None
    store = live.app.extensions["lifeline"].store
    while store.get_call(leg.call_control_id).recording_status != "kept" and time.monotonic() < deadline + 10:
        time.sleep(0.05)

    sign_in(browser, base(live), TOKEN, f"/dashboard/calls/{leg.call_control_id}")
    assert "Left a message" in browser.find_element(By.TAG_NAME, "main").text
    browser.execute_script("document.querySelector('audio').load()")
    wait_for(browser, lambda d: d.execute_script(
        "const a = document.querySelector('audio'); return a.readyState >= 1 && a.duration > 0"),
        what="the recording to load in the player")
    assert policy_violations(browser) == []


def _set_hidden(driver: WebDriver, hidden: bool) -> None:
    """What the browser does when the tab goes out of sight (or back): `document.hidden` changes."""
    script = ("Object.defineProperty(document, 'hidden', {value: arguments[0], configurable: true});"
              "document.dispatchEvent(new Event('visibilitychange'));")
    driver.execute_script(script, hidden)


def test_a_hidden_live_tab_gives_its_feed_up_and_catches_up_from_where_it_stopped_when_seen(
        live: Simulation, browser: Chrome) -> None:
    sign_in(browser, base(live), TOKEN)
    wait_for_feed(browser)
    _set_hidden(browser, True)
    wait_for(browser, lambda d: "paused while this tab is hidden" in d.find_element(By.ID, "feed-state").text,
             what="the feed to be given up")
    leg = live.emulator.incoming_call(from_="+15557770199")  # arrives while the tab is hidden
    assert live.emulator.wait_for_gather(leg, 10)
    time.sleep(0.5)
    assert not row_of(browser, "+15557770199")  # nothing followed while hidden
    _set_hidden(browser, False)
    wait_for_feed(browser)
    wait_for(browser, lambda d: row_of(d, "+15557770199"), what="the call that came while hidden")
    live.emulator.caller_hangs_up(leg)
