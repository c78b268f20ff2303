"""Headless Debian Chromium for the console's browser tests (Selenium with chromium-driver).

Without Chromium the tests are skipped with the command that installs it; CI (`.ci/run`)
installs it and sets LIFELINE_REQUIRE_BROWSER=1, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

INSTALL = "apt-get install -y chromium chromium-driver"
# The closed network makes Chromium wait on its background services without these.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-default-apps", "--disable-extensions")


def chromium_paths() -> tuple[str, str] | None:
    """The Chromium binary and its driver, when both are installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def chromium_or_skip() -> tuple[str, str]:
    """The paths; a visible skip (or, in CI, a failure) saying how to install them."""
    paths = chromium_paths()
    if paths is None:
        message = f"headless Chromium and its driver are not installed: run `{INSTALL}` (Debian)"
        if os.environ.get("LIFELINE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return paths


@contextmanager
def chromium(paths: tuple[str, str], width: int = 1360, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (its own profile directory), quit and removed afterwards."""
    profile = tempfile.mkdtemp(prefix="lifeline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 15.0,
             what: str = "the page") -> Any:
    """Wait until condition(driver) is truthy; the failure names what was awaited.

    An element that goes away while it is read (a live row whose call ended, a part of a call's
    page swapped for its fresh copy) makes the condition false for that poll, not an error.
    """
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        condition, message=f"timed out waiting for {what}")


def click(driver: WebDriver, by: str, value: str, timeout: float = 10.0) -> None:
    """Click an element, finding it again if it was redrawn between finding and clicking."""
    def clicked(d: WebDriver) -> bool:
        d.find_element(by, value).click()
        return True
    wait_for(driver, clicked, timeout, what=f"{value} to be clickable")


def sign_in(driver: WebDriver, base_url: str, token: str, path: str = "/dashboard") -> None:
    """Open a console page, fill the sign-in form and land on that page."""
    driver.get(base_url + path)
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "header.top"),
             what="the console after sign-in")


def wait_for_feed(driver: WebDriver) -> None:
    """Wait until the page's live feed (SSE) is connected."""
    wait_for(driver, lambda d: "live" in d.find_element(By.ID, "feed-state").text, what="the feed to connect")
