"""Regenerate the console's screenshots: `python -m tests.console_screenshots docs/console`.

Plays the example callers and a few held calls through the emulator (real signed webhooks),
then photographs the live view, the history and one call's page in headless Chromium.
It takes about a minute and stops by itself.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from lifeline.ivr.config import PROJECT_ROOT
from lifeline.simulator.emulator import Emulator
from lifeline.simulator.legs import Leg
from lifeline.simulator.runner import Simulation
from lifeline.simulator.scenario import load_scenario

from .browser import INSTALL, chromium, chromium_paths, sign_in, wait_for

TOKEN = "screenshot-token"
AGENTS = "+15550001111,+15550002222"
SPEED = 1.0
WIDTH = 1360
MAX_BYTES = 300_000


def _until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def _seconds(line: str) -> float:
    """How long a person takes to say the line (a little slower than the app's estimate, 0.35 s a word)."""
    return max(1.5, 0.45 * len(line.split()))


def _caller(emulator: Emulator, number: str, agent: str, lines: list[str]) -> Leg:
    leg = emulator.incoming_call(from_=number, agent=agent)
    emulator.wait_for_gather(leg, 15)
    for line in lines:
        emulator.say(leg, line, _seconds(line))
    return leg


def _story(emulator: Emulator) -> Leg:
    """A caller who gets angrier, is put through, and calms down with the agent."""
    leg = _caller(emulator, "+15550104477", "answer", [
        "I'm calling about a charge on my bill that I don't recognise",
        "I already explained this last week and it still isn't fixed",
        "Honestly this is ridiculous, nobody ever helps me"])
    _until(lambda: leg.transcription_tracks == "both")
    for party, line in (
            ("agent", "Hi, this is Sam from billing. I can see that charge, let me refund it now."),
            ("caller", "Oh, thank you, that's a relief. Can you send me a confirmation email?"),
            ("agent", "Of course, I'll send the confirmation today. Anything else?"),
            ("caller", "No, that's great, thanks a lot for your help")):
        speak = emulator.agent_says if party == "agent" else emulator.say
        speak(leg, line, _seconds(line))
    emulator.caller_hangs_up(leg)
    return leg


def _shoot(driver: WebDriver, path: Path, height: int | None = None) -> None:
    """A PNG of the window; without a height, of the whole page (up to 2400 px)."""
    if height is None:
        for _ in range(2):  # the page reflows at the new size: measure again
            page = int(driver.execute_script("return document.documentElement.scrollHeight"))
            inner = int(driver.execute_script("return window.innerHeight"))
            size = driver.get_window_size()
            driver.set_window_size(WIDTH, min(size["height"] + page - inner, 2400))
    else:
        driver.set_window_size(WIDTH, height)
    time.sleep(0.4)
    driver.save_screenshot(str(path))
    written = path.stat().st_size
    print(f"{path}: {written // 1024} KB")
    if written > MAX_BYTES:
        raise SystemExit(f"{path} is {written} bytes, over {MAX_BYTES}: make the window smaller")


def main(out: Path) -> None:
    """Play the calls and write live.png, history.png and call.png into `out`."""
    paths = chromium_paths()
    if paths is None:
        raise SystemExit(f"headless Chromium is not installed: run `{INSTALL}` (Debian)")
    out.mkdir(parents=True, exist_ok=True)
    scenarios = [load_scenario(p) for p in sorted((PROJECT_ROOT / "examples" / "calls").glob("*.yaml"))]
    with Simulation({"LIFELINE_AGENTS": AGENTS, "LIFELINE_API_TOKEN": TOKEN}, speed=SPEED) as sim, \
            chromium(paths, WIDTH, 900) as driver:
        base = str(sim.config["LIFELINE_PUBLIC_URL"])
        emulator = sim.emulator
        history = threading.Thread(target=sim.run, args=(scenarios,), kwargs={"concurrency": 6})
        history.start()
        story = _story(emulator)
        history.join()

        # Held on the line for the live view, each in a different state.
        held = [_caller(emulator, number, agent, lines) for number, agent, lines in (
            ("+15550107001", "answer", ["Hi, I'd like to check the balance on my savings account",
                                        "Great, thanks, that's really helpful"]),
            ("+15550107002", "busy", ["My card was declined at the shop this morning",
                                      "This is useless, I want to talk to a real person now"]),
            ("+15550107003", "answer", ["Hello, I have a question about my mortgage",
                                        "I've been waiting for ages, get me a person please"]),
            ("+15550107004", "answer", ["I moved house last month and updated my address",
                                        "The letters still go to the old one",
                                        "Nobody is helping me, this is so frustrating"]))]
        _until(lambda: held[2].transcription_tracks == "both")
        greeting = "Hello, this is Alex, sorry for the wait. How can I help?"
        emulator.agent_says(held[2], greeting, _seconds(greeting))
        emulator.say(held[0], "And when is the next card payment due?", 2.0)
        ringing = _caller(emulator, "+15550107005", "no_answer",
                          ["I need to speak with a representative right now"])

        sign_in(driver, base, TOKEN)
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#calls tr")) >= 5,
                 what="the held calls")
        wait_for(driver, lambda d: "live" in d.find_element(By.ID, "feed-state").text, what="the feed")
        wait_for(driver, lambda d: "ringing" in d.find_element(By.ID, "calls").text, what="an agent ringing")
        brief = _caller(emulator, "+15550107006", "answer", ["That's all I needed, thank you"])
        emulator.caller_hangs_up(brief)
        wait_for(driver, lambda d: "+15550107006" in d.find_element(By.ID, "ended").text,
                 what="a call that ended")
        _shoot(driver, out / "live.png")

        for leg in [*held, ringing]:
            emulator.caller_hangs_up(leg)
        emulator.idle(10)
        driver.get(base + "/dashboard/history")
        _shoot(driver, out / "history.png")

        driver.get(f"{base}/dashboard/calls/{story.call_control_id}")
        wait_for(driver, lambda d: d.find_elements(By.ID, "transcript"), what="the call page")
        _shoot(driver, out / "call.png")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console"))
