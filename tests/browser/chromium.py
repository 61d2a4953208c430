"""Headless Chromium for the browser tests: Debian's chromium and chromium-driver through Selenium.

Nothing is downloaded: the driver's path is given, so Selenium Manager has nothing to fetch. Selenium is
imported only where a browser is started, so that a test module can first ask `missing_tools()` and skip
(or fail under REQUIRE_TOOLS=1) without it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TEST_RESULTS = Path(__file__).resolve().parents[2] / "test-results"
WAIT_S = 30


def missing_tools() -> list[str]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (the test extra)")
    return missing


def start_chromium(profile: Path, width: int, height: int, *, network_log: bool = False) -> Chrome:
    """A headless Chromium with its console log kept, and with `network_log` the DevTools network events
    too (the `performance` log: every request the page makes, with its URL)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", **({"performance": "ALL"} if network_log else {})})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    return webdriver.Chrome(options=options, service=service)


def screenshot(driver: Chrome, folder: Path, name: str) -> Path:
    """The whole page (beyond the window), as a person would scroll through it."""
    folder.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(path) as image:  # a picture a person can open, of the page rather than a sliver of it
        assert image.format == "PNG" and image.width >= 320 and image.height >= 300, image.size
    return path


def console(driver: Chrome) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return entries


def wait_for(driver: Chrome, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition, message=f"waiting for {what}")
