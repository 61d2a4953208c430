"""/docs (Swagger UI) in headless Chromium, against a real `python -m service` on 127.0.0.1 serving the tiny models.

The documentation must work with no network but the service's: every request the page makes, read from
Chrome's DevTools network log, goes to the service's own origin, and the browser reports no
Content-Security-Policy violation. Screenshots go to test-results/docs/. Without Chromium the tests skip
when run by hand, and fail under REQUIRE_TOOLS=1 (as CI runs them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadtests.server import RunningService, running_service
from tests.browser import chromium
from tests.browser.chromium import TEST_RESULTS, console, missing_tools, start_chromium, wait_for
from tests.required_tools import missing_tool

if missing := missing_tools():
    missing_tool(f"needs {', '.join(missing)} (apt-get install chromium chromium-driver; make deps)")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402

Driver = webdriver.Chrome
SCREENSHOTS = TEST_RESULTS / "docs"
KEY = "docs-browser-test-key-0123456789"
SENTIMENT = "operations-inference-classify_sentiment_sentiment_post"  # Swagger UI's id: tag, then operationId
# Collects what the page's policy refuses, from before the page's first script runs. It goes in through
# DevTools, not the page, so the policy rightly does not apply to it.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (event) => window.cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`));
"""


@pytest.fixture(scope="module")
def service(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("docs-service-log") / "service.log"
    with running_service(artifacts_dir, log, default_sentiment_model="tiny-text") as running:
        yield running


@pytest.fixture(scope="module")
def keyed_service(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("docs-keyed-service-log") / "service.log"
    with running_service(artifacts_dir, log, default_sentiment_model="tiny-text", api_keys=KEY) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Driver]:
    driver = start_chromium(tmp_path / "profile", 1280, 900, network_log=True)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Driver) -> list[str]:
    """Every URL the browser asked for since the last call, from the DevTools network events."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [event["params"]["request"]["url"] for event in events if event["method"] == "Network.requestWillBeSent"]


def leaving_the_origin(urls: list[str], origin: str) -> list[str]:
    """The URLs that would go over the network anywhere but to `origin`. (Chromium's own chrome:// pages,
    and data: images the stylesheet carries, never reach a network.)"""
    return [url for url in urls if re.match(r"(https?|wss?)://", url) and not url.startswith(origin + "/")]


def open_docs(driver: Driver, service: RunningService) -> None:
    driver.get(f"{service.base_url}/docs")
    wait_for(driver, lambda d: d.find_elements(By.ID, SENTIMENT), "Swagger UI's list of operations")


def execute_sentiment(driver: Driver, body: dict[str, Any]) -> WebElement:
    """Open POST /sentiment, "Try it out" with `body`, Execute; the live response's row once it is shown."""
    operation = driver.find_element(By.ID, SENTIMENT)
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait_for(driver, lambda _: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"), "the Try it out button")
    operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    editor = wait_for(driver, lambda _: operation.find_elements(By.CSS_SELECTOR, "textarea.body-param__text"),
                      "the request body editor")[0]
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(json.dumps(body))
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    return wait_for(driver, lambda _: operation.find_elements(By.CSS_SELECTOR, ".live-responses-table .response"),
                    "the live response")[0]


def assert_nothing_refused_and_nothing_left(driver: Driver, service: RunningService) -> None:
    assert leaving_the_origin(requested_urls(driver), service.base_url) == []
    assert driver.execute_script("return window.cspViolations") == []
    assert [entry for entry in console(driver) if entry["level"] == "SEVERE"] == []


def test_the_docs_render_every_operation_from_the_services_own_files(
    browser: Driver, service: RunningService
) -> None:
    open_docs(browser, service)
    schema_paths = json.loads(browser.execute_script(
        "return fetch('/openapi.json').then((answer) => answer.text())"))["paths"]
    shown = {(block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.lower(),
              block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
             for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")}
    assert shown == {(method, path) for path, item in schema_paths.items() for method in item}
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("Model serving")
    # Keys are off, so the schema declares no security scheme and there is nothing to authorise.
    assert browser.find_elements(By.CSS_SELECTOR, ".auth-wrapper .authorize") == []

    urls = requested_urls(browser)
    for path in ("/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui-init.js",
                 "/openapi.json"):
        assert f"{service.base_url}{path}" in urls, path
    assert leaving_the_origin(urls, service.base_url) == []
    chromium.screenshot(browser, SCREENSHOTS, "01-operations")
    assert_nothing_refused_and_nothing_left(browser, service)


def test_try_it_out_calls_the_service_and_shows_its_answer(browser: Driver, service: RunningService) -> None:
    open_docs(browser, service)
    response = execute_sentiment(browser, {"texts": ["good good film, good cast", "bad plot"], "model": "tiny-text"})
    assert response.find_element(By.CSS_SELECTOR, ".response-col_status").text == "200"
    answer = json.loads(response.find_element(By.CSS_SELECTOR, ".response-col_description pre").text)
    assert [result["label"] for result in answer["results"]] == ["positive", "negative"]
    # The request line Swagger UI shows is the one it sent, to this origin.
    assert f"{service.base_url}/sentiment" in browser.find_element(By.CSS_SELECTOR, ".request-url pre").text
    chromium.screenshot(browser, SCREENSHOTS, "02-try-it-out")
    assert_nothing_refused_and_nothing_left(browser, service)


def test_with_keys_on_the_docs_authorize_and_try_it_out_with_the_key(
    browser: Driver, keyed_service: RunningService
) -> None:
    open_docs(browser, keyed_service)
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    dialog = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".dialog-ux .modal-ux"), "the dialog")[0]
    schemes = dialog.find_elements(By.CSS_SELECTOR, ".auth-container")
    assert [scheme.find_element(By.TAG_NAME, "h4").text.split(" ")[0] for scheme in schemes] == [
        "HTTPBearer", "APIKeyHeader"]
    schemes[0].find_element(By.CSS_SELECTOR, "input").send_keys(KEY)
    schemes[0].find_element(By.CSS_SELECTOR, "button.authorize").click()
    chromium.screenshot(browser, SCREENSHOTS, "03-authorized")
    dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    response = execute_sentiment(browser, {"text": "good good film"})
    assert response.find_element(By.CSS_SELECTOR, ".response-col_status").text == "200"
    assert f"Bearer {KEY}" in browser.find_element(By.CSS_SELECTOR, ".curl-command").text
    chromium.screenshot(browser, SCREENSHOTS, "04-try-it-out-with-key")
    assert_nothing_refused_and_nothing_left(browser, keyed_service)


def test_the_policy_is_enforced_and_the_violation_record_sees_it(browser: Driver, service: RunningService) -> None:
    """The checks above can fail: a request to another origin (on loopback) and an inline script are refused."""
    open_docs(browser, service)
    other_origin = service.base_url.replace("127.0.0.1", "localhost")
    outcome = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const inline = document.createElement("script");
        inline.textContent = "window.inlineRan = true";
        document.body.append(inline);
        fetch(arguments[0] + "/openapi.json").then(() => done("fetched"), () => done("refused"));""",
        other_origin)
    assert outcome == "refused"
    assert browser.execute_script("return window.inlineRan === undefined")
    refused = browser.execute_script("return window.cspViolations")
    assert sorted(violation.split(" ")[0] for violation in refused) == ["connect-src", "script-src-elem"], refused
