"""Headless Chromium through Selenium, for the web page tests and the dashboard screenshots.

Which browser and driver: ``CHROME_BIN`` and ``CHROMEDRIVER`` when set, else the first of chromium,
chromium-browser, google-chrome on PATH and ``chromedriver`` on PATH. Here that is Debian's chromium
and chromium-driver (.ci/run installs them). A GitHub ubuntu-24.04 runner sets ``CHROME_BIN`` to its
Google Chrome and puts the matching chromedriver on PATH (runner-images,
images/ubuntu/scripts/build/install-google-chrome.sh). Ubuntu's own ``chromium`` and
``chromium-driver`` are only stubs that install the snap, and the snap's driver cannot start the
runner's Chrome, so the workflow installs neither.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_VARIABLE, DRIVER_VARIABLE = "CHROME_BIN", "CHROMEDRIVER"


def _from_environment(variable: str) -> str | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    if not (Path(value).is_file() and os.access(value, os.X_OK)):
        raise FileNotFoundError(f"{variable}={value!r}: not an executable file")
    return value


def browser_and_driver() -> tuple[str, str]:
    """The browser's and its driver's paths."""
    browser = _from_environment(BROWSER_VARIABLE) or next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = _from_environment(DRIVER_VARIABLE) or shutil.which("chromedriver")
    if not browser or not driver:
        raise FileNotFoundError(
            "a Chromium and its chromedriver are needed: apt-get install chromium chromium-driver, "
            f"or set {BROWSER_VARIABLE} and {DRIVER_VARIABLE}"
        )
    return browser, driver


def headless_chromium(window: tuple[int, int], page_load_timeout: float) -> WebDriver:
    """A new headless session with a ``window`` (width, height) viewport; the caller quits it."""
    from selenium import webdriver  # imported here: only these tools need it
    from selenium.webdriver.chrome.service import Service

    browser, driver = browser_and_driver()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={window[0]},{window[1]}",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.set_page_load_timeout(page_load_timeout)
    return session
