"""The page at / in headless Chromium, against a real `python -m service` serving the tiny models.

Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`) through
Selenium; nothing is downloaded. Without them the tests skip when run by hand, and fail under
REQUIRE_TOOLS=1 (as CI runs them). Each state the page reaches is saved as a screenshot under
test-results/page/ for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from PIL import Image

from loadtests.server import RunningService, running_service
from service.rollout.policy import Policy, PolicyStore, Rollback, now
from tests.browser import chromium
from tests.browser.chromium import TEST_RESULTS, WAIT_S, console, missing_tools, start_chromium, wait_for
from tests.card_plots import PLOT_NAMES, copy_with_plots
from tests.required_tools import missing_tool
from tests.tiny_models import build_quadrant_image_model, build_text_model

# axe-core (npm, pinned in package.json beside this file): the accessibility rules run inside the page.
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
SCREENSHOTS = TEST_RESULTS / "page"
KEY = "browser-test-key-0123456789"


if missing := missing_tools() + ([] if AXE.is_file() else [f"{AXE} (npm ci --prefix tests/browser)"]):
    reason = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver; make deps; " \
             "npm ci --prefix tests/browser)"
    missing_tool(reason)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402

Driver = webdriver.Chrome


# --- The service, the browser, and what they leave behind -------------------------------------


@pytest.fixture(scope="module")
def plotted_dir(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_with_plots(artifacts_dir, tmp_path_factory.mktemp("browser") / "artifacts")


@pytest.fixture(scope="module")
def service(plotted_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("service-log") / "service.log"
    with running_service(plotted_dir, log, default_sentiment_model="tiny-text") as running:
        yield running


@pytest.fixture(scope="module")
def keyed_service(plotted_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("keyed-service-log") / "service.log"
    with running_service(plotted_dir, log, default_sentiment_model="tiny-text", api_keys=KEY) as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Driver]:
    driver = start_chromium(tmp_path / "profile", 1280, 900)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Driver]:
    driver = start_chromium(tmp_path / "profile", 600, 780)
    # A headless window is never narrower than 500 px: emulate a 360 px phone screen instead (which
    # also makes the browser honour the page's viewport meta tag, as a phone does).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True})
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Driver, name: str) -> Path:
    return chromium.screenshot(driver, SCREENSHOTS, name)


def errors_other_than(entries: list[dict[str, Any]], expected_status: int | None) -> list[dict[str, Any]]:
    """Console errors, leaving out the browser's own line for an error answer the test asked for."""
    def expected(entry: dict[str, Any]) -> bool:
        return expected_status is not None and entry.get("source") == "network" and (
            f"status of {expected_status}" in entry["message"])
    return [e for e in entries if e["level"] in ("SEVERE", "ERROR") and not expected(e)]


def accessibility_violations(driver: Driver) -> list[str]:
    """What axe-core finds against WCAG 2.1 A/AA and its best practices, in the page as it is now.

    The script goes in through the driver, not the page, so the page's CSP rightly does not apply.
    """
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found: list[str] = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: "tag", values: arguments[0]}})
          .then((result) => done(result.violations.map((v) =>
            `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)))
          .catch((error) => done([`axe failed: ${error}`]));""",
        AXE_RULES,
    )
    return found


# --- Reading the page ------------------------------------------------------------------------


def panel(driver: Driver, model: str) -> WebElement:
    found: WebElement = wait_for(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'article[data-model="{model}"]'), f"the {model} panel"
    )[0]
    return found


def answer(driver: Driver, model: str, state: str = "done") -> WebElement:
    results = panel(driver, model).find_element(By.CSS_SELECTOR, ".results")
    wait_for(driver, lambda _: results.get_attribute("data-state") in ("done", "error"), f"{model}'s answer")
    assert results.get_attribute("data-state") == state, results.text
    return results


def shown_bars(block: WebElement) -> list[tuple[str, str]]:
    """Each bar's label and figure as shown, top first."""
    return [(row.get_attribute("data-label") or "", row.find_element(By.CSS_SELECTOR, ".bar-value").text)
            for row in block.find_elements(By.CSS_SELECTOR, ".bar-row")]


def as_shown(probability: float) -> str:
    return f"{probability * 100:.1f} %"


def open_page(driver: Driver, service: RunningService) -> None:
    driver.get(f"{service.base_url}/")
    wait_for(driver, lambda d: "loaded." in d.find_element(By.ID, "status").text, "the model list")


# --- Inputs: real image files ----------------------------------------------------------------


def image_file(folder: Path, name: str, colour: tuple[int, int, int], image_format: str) -> Path:
    """A 48x40 photo-like image: gradients over `colour`, so each channel varies.

    Muted colours keep the tiny model's answer away from 100 %, so every bar has its own figure.
    """
    image = Image.new("RGB", (48, 40))
    image.putdata([
        (min(255, colour[0] + x), min(255, colour[1] + y), min(255, colour[2] + (x * y) % 40))
        for y in range(40) for x in range(48)
    ])
    path = folder / name
    image.save(path, format=image_format)
    return path


def api(service: RunningService, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{service.base_url}{path}", timeout=WAIT_S, **kwargs)


# --- The tests -------------------------------------------------------------------------------


def test_the_page_loads_with_models_figures_and_plots_and_no_console_error(
    browser: Driver, service: RunningService
) -> None:
    open_page(browser, service)
    assert browser.find_element(By.ID, "status").text == "2 models loaded."
    image_panel = panel(browser, "tiny-image")
    assert image_panel.find_element(By.CSS_SELECTOR, "h2").text == "tiny-image"
    assert "red, green, blue" in image_panel.find_element(By.CSS_SELECTOR, ".model-summary").text
    figures = image_panel.find_element(By.CSS_SELECTOR, ".figures").text
    assert "Measured on" in figures and "none (a test model)" in figures
    text_versions = panel(browser, "tiny-text").find_element(By.CSS_SELECTOR, ".version-select")
    assert [o.text for o in text_versions.find_elements(By.TAG_NAME, "option")] == ["2 (serving)", "1 (loaded)"]

    # The plots come through the card-files route, with the bytes the version folder holds.
    image_panel.find_element(By.CSS_SELECTOR, ".plots summary").click()
    images = wait_for(browser, lambda _: [
        img for img in image_panel.find_elements(By.CSS_SELECTOR, ".plot img")
        if browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
    ] if len(image_panel.find_elements(By.CSS_SELECTOR, ".plot img")) == len(PLOT_NAMES) else None, "the plots")
    assert [browser.execute_script("return arguments[0].naturalWidth", img) for img in images] == [240, 240]
    assert sorted(img.get_attribute("alt") for img in images) == [
        "confusion matrix of tiny-image version 1", "training curves of tiny-image version 1"]

    # The favicon is served (a missing one would be a console error).
    assert browser.execute_script(
        "return document.querySelector('link[rel=icon]').href") == f"{service.base_url}/page/favicon.svg"
    screenshot(browser, "01-loaded")
    assert errors_other_than(console(browser), None) == []
    assert accessibility_violations(browser) == []


def test_an_uploaded_image_shows_the_bars_the_api_answers(
    browser: Driver, service: RunningService, tmp_path: Path
) -> None:
    red = image_file(tmp_path, "reddish.png", (130, 105, 95), "PNG")
    expected = api(service, "POST", "/classify-image", params={"model": "tiny-image", "top_k": 3},
                   content=red.read_bytes(), headers={"Content-Type": "image/png"}).json()["results"][0]
    open_page(browser, service)
    image_panel = panel(browser, "tiny-image")
    image_panel.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(red))
    image_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "tiny-image")
    bars = shown_bars(results)
    assert bars[0][0] == expected["label"] == "red"
    assert bars == [(item["label"], as_shown(item["probability"])) for item in expected["top_k"]]
    assert re.fullmatch(r"Answered by tiny-image version 1 in \d+ ms\.",
                        results.find_element(By.CSS_SELECTOR, ".answered-by").text)
    preview = results.find_element(By.CSS_SELECTOR, "img.preview")
    assert preview.get_attribute("alt") == "Preview of reddish.png"
    assert browser.execute_script("return arguments[0].naturalWidth", preview) == 48
    screenshot(browser, "02-image")
    assert errors_other_than(console(browser), None) == []


def test_several_images_go_as_multipart_and_each_shows_the_api_answer(
    browser: Driver, service: RunningService, tmp_path: Path
) -> None:
    files = [image_file(tmp_path, "bluish.jpg", (70, 80, 110), "JPEG"),
             image_file(tmp_path, "greenish.png", (80, 115, 90), "PNG")]
    expected = api(service, "POST", "/classify-image", params={"model": "tiny-image", "top_k": 3},
                   files=[("file", (path.name, path.read_bytes())) for path in files]).json()["results"]
    assert [result["label"] for result in expected] == ["blue", "green"]
    open_page(browser, service)
    image_panel = panel(browser, "tiny-image")
    image_panel.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys("\n".join(str(p) for p in files))
    image_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "tiny-image")
    items = results.find_elements(By.CSS_SELECTOR, ".image-result")
    assert [item.find_element(By.TAG_NAME, "h3").text.split(":")[0] for item in items] == ["bluish.jpg",
                                                                                         "greenish.png"]
    for item, result in zip(items, expected, strict=True):
        assert shown_bars(item)[0][0] == result["label"]
        assert shown_bars(item) == [(top["label"], as_shown(top["probability"])) for top in result["top_k"]]
    screenshot(browser, "03-images")
    assert accessibility_violations(browser) == []  # results: previews, headings, bars
    assert errors_other_than(console(browser), None) == []


def test_typed_texts_show_the_label_and_every_class_the_api_answers(
    browser: Driver, service: RunningService
) -> None:
    texts = ["good good film, good cast", "bad plot and bad acting, good music"]
    expected = api(service, "POST", "/sentiment", json={"texts": texts, "model": "tiny-text"}).json()["results"]
    assert [result["label"] for result in expected] == ["positive", "negative"]
    open_page(browser, service)
    text_panel = panel(browser, "tiny-text")
    text_panel.find_element(By.TAG_NAME, "textarea").send_keys("\n".join(texts))
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "tiny-text")
    items = results.find_elements(By.CSS_SELECTOR, ".text-result")
    assert len(items) == 2
    for item, text, result in zip(items, texts, expected, strict=True):
        assert item.find_element(By.TAG_NAME, "blockquote").text == text
        assert item.find_element(By.TAG_NAME, "h3").text == result["label"]
        ranked = sorted(result["probabilities"].items(), key=lambda pair: -pair[1])
        assert shown_bars(item) == [(label, as_shown(p)) for label, p in ranked]  # every class, top first
    assert "tiny-text version 2" in results.find_element(By.CSS_SELECTOR, ".answered-by").text
    screenshot(browser, "04-text")

    # A version picked in the panel is the one that answers.
    text_panel.find_element(By.CSS_SELECTOR, ".version-select option[value='1']").click()
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, lambda _: "version 1 in" in text_panel.find_element(By.CSS_SELECTOR, ".results").text,
             "the answer of version 1")
    assert errors_other_than(console(browser), None) == []


def test_a_tiff_shows_the_services_not_accepted_message(
    browser: Driver, service: RunningService, tmp_path: Path
) -> None:
    tiff = image_file(tmp_path, "scan.tiff", (90, 90, 90), "TIFF")
    refused = api(service, "POST", "/classify-image", content=tiff.read_bytes(),
                  headers={"Content-Type": "image/tiff"})
    assert refused.status_code == 415
    error = refused.json()["error"]
    open_page(browser, service)
    image_panel = panel(browser, "tiny-image")
    image_panel.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(tiff))
    image_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    message = answer(browser, "tiny-image", state="error").find_element(By.CSS_SELECTOR, ".message").text
    assert message == f"Not accepted (HTTP 415): {error['message']}. Accepted: {error['accepted']}."
    assert "'image/tiff' is not accepted" in message and "image/png, image/jpeg" in message
    screenshot(browser, "05-tiff-not-accepted")
    assert accessibility_violations(browser) == []  # the error's colours too
    # The browser notes the 415 itself; the page adds no error of its own.
    assert errors_other_than(console(browser), 415) == []


def test_a_wrong_key_shows_the_401_message_and_the_right_one_opens_the_page(
    browser: Driver, keyed_service: RunningService
) -> None:
    browser.get(f"{keyed_service.base_url}/")
    key_input = wait_for(browser, lambda d: [e for e in d.find_elements(By.ID, "key-input") if e.is_displayed()],
                         "the key form")[0]
    assert browser.find_element(By.ID, "status").text == "Enter an API key to see the models."
    assert "an API key is required" in browser.find_element(By.ID, "key-message").text
    screenshot(browser, "06-key-asked")

    key_input.send_keys("not-the-right-key-000000")
    key_input.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: "refused" in d.find_element(By.ID, "key-message").text, "the 401 message")
    message = browser.find_element(By.ID, "key-message").text
    assert message == "The service refused this key. Needs a valid API key (HTTP 401): the API key is not valid."
    screenshot(browser, "07-wrong-key")
    assert accessibility_violations(browser) == []

    key_input.clear()
    key_input.send_keys(KEY)
    key_input.send_keys(Keys.ENTER)
    wait_for(browser, lambda d: d.find_element(By.ID, "status").text == "2 models loaded.", "the models")
    assert not browser.find_element(By.ID, "key-section").is_displayed()
    # The key works for the model calls and the plots too, and is kept nowhere but in the page's memory.
    text_panel = panel(browser, "tiny-text")
    text_panel.find_element(By.TAG_NAME, "textarea").send_keys("good")
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert shown_bars(answer(browser, "tiny-text"))[0][0] == "positive"
    assert browser.execute_script("return localStorage.length + sessionStorage.length + document.cookie.length") == 0
    screenshot(browser, "08-key-accepted")
    assert errors_other_than(console(browser), 401) == []


def test_keyboard_only_at_phone_width(phone: Driver, service: RunningService) -> None:
    open_page(phone, service)
    assert phone.execute_script("return window.innerWidth") == 360
    # Tab from the top of the page to the text box, by keyboard alone, in reading order. (Keys go to
    # whatever has focus, as a person's would: sending them to an element would type into a file input.)
    press = lambda *keys: ActionChains(phone).send_keys(*keys).perform()  # noqa: E731
    reached = []
    for _ in range(20):
        press(Keys.TAB)
        focused = phone.switch_to.active_element
        reached.append(focused.get_attribute("id") or focused.get_attribute("class") or focused.tag_name)
        if focused.tag_name == "textarea":
            break
    # The skip link, the link to /docs, then each panel top to bottom (tiny-image, then tiny-text).
    assert reached == ["skip", "a", "model-0-version", "summary", "rollout-refresh", "model-0-files", "model-0-explain",
                       "button", "model-1-version", "summary", "rollout-refresh", "model-1-text"], reached
    label = phone.find_element(By.CSS_SELECTOR, "label[for='model-1-text']").text
    assert label == "Text (one text per line for several)"
    # The explain checkbox is reached, named and ticked by keyboard too.
    press("good good", Keys.TAB)
    assert phone.switch_to.active_element.get_attribute("id") == "model-1-explain"
    assert phone.find_element(By.CSS_SELECTOR, "label[for='model-1-explain']").text == (
        "Explain: shade each word by how it moved the label")
    press(Keys.SPACE, Keys.TAB)
    assert phone.find_element(By.ID, "model-1-explain").is_selected()
    button = phone.switch_to.active_element
    assert button.text == "Analyse"
    # Focus is visible: a solid outline, not the browser default that some styles remove.
    assert phone.execute_script("return getComputedStyle(document.activeElement).outlineStyle") == "solid"
    press(Keys.ENTER)
    results = answer(phone, "tiny-text")
    assert shown_bars(results)[0][0] == "positive"
    assert [word.text for word in results.find_elements(By.CSS_SELECTOR, "mark.word.toward")] == ["good", "good"]
    # Nothing is wider than the phone's screen.
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360
    screenshot(phone, "09-phone-width")
    assert accessibility_violations(phone) == []
    assert errors_other_than(console(phone), None) == []


# --- The rollout panel (GET /models/{name}/rollout) --------------------------------------------

ROLLED_OUT = "tiny-text"
# Gates the tiny models can pass: their cards have no monitoring reference, and latency is not
# what these tests are about.
TINY_GATES = {"min_requests": 5, "max_p99_ratio": None, "max_drift_vs_reference": None}
HOSTILE = """<img src=x onerror="document.body.dataset.injected='yes'"> & <b>bold</b>"""


@pytest.fixture(scope="module")
def rollout_artifacts(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models in a folder of their own: the tests write tiny-text's policy beside them."""
    root = tmp_path_factory.mktemp("rollout") / "artifacts"
    shutil.copytree(artifacts_dir, root)
    return root


@pytest.fixture(scope="module")
def rollout_service(rollout_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    log = tmp_path_factory.mktemp("rollout-service-log") / "service.log"
    # Policies are read, and gates judged, on the reload tick: every half second here.
    with running_service(rollout_artifacts, log, default_sentiment_model="tiny-text",
                         reload_interval_s="0.5") as running:
        yield running


def write_policy(service: RunningService, artifacts: Path, **fields: Any) -> Policy:
    """Write tiny-text's policy as the next revision, then wait until the service has read it."""
    store = PolicyStore(artifacts)
    current = store.read(ROLLED_OUT)
    written = store.write(Policy(model=ROLLED_OUT, **fields), current.revision if current else None)
    wait_until(lambda: rollout_of(service)["policy"] == written.model_dump(mode="json"), "the policy to be read")
    return written


def rollout_of(service: RunningService, model: str = ROLLED_OUT) -> dict[str, Any]:
    response = api(service, "GET", f"/models/{model}/rollout")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def rollout_section(driver: Driver, model: str, state: str) -> WebElement:
    section = panel(driver, model).find_element(By.CSS_SELECTOR, ".rollout")
    wait_for(driver, lambda _: section.get_attribute("data-state") == state, f"{model}'s rollout to show {state!r}")
    return section


def facts(section: WebElement) -> dict[str, str]:
    terms = section.find_elements(By.CSS_SELECTOR, ".rollout-facts dt")
    values = section.find_elements(By.CSS_SELECTOR, ".rollout-facts dd")
    return {term.text: value.text for term, value in zip(terms, values, strict=True)}


def rows(section: WebElement, table: str) -> list[list[str]]:
    return [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
            for row in section.find_elements(By.CSS_SELECTOR, f"table.{table} tbody tr")]


def test_the_rollout_panel_shows_a_shadow_rollout_as_the_api_describes_it(
    browser: Driver, rollout_service: RunningService, rollout_artifacts: Path
) -> None:
    write_policy(rollout_service, rollout_artifacts, stable=1, candidate=2, mode="shadow", weight=1.0, gates=TINY_GATES)
    texts = ["good film", "bad film", "good good cast", "bad, bad plot", "good music", "fine", "good", "bad"]
    for text in texts:
        answered = api(rollout_service, "POST", "/sentiment", json={"text": text})
        assert answered.status_code == 200 and answered.json()["version"] == 1  # stable answers; 2 gets copies

    def judged() -> bool:
        rollout = rollout_of(rollout_service)
        return rollout["shadow"]["copies"] == len(texts) and all(g["status"] != "unknown" for g in rollout["gates"])
    wait_until(judged, "the copies to be compared and the gates judged")
    # The gates may have been judged before the last copy was counted: a few more reload ticks
    # judge them on every copy, and the figures stay as they are from then on.
    time.sleep(1.5)
    expected = rollout_of(rollout_service)
    # Version 2 gives version 1's labels, with steeper probabilities.
    assert [(g["gate"], g["status"]) for g in expected["gates"]] == [
        ("agreement", "pass"), ("error_rate", "pass"), ("drift_vs_stable", "pass"),
        ("drift_vs_reference", "off")]

    open_page(browser, rollout_service)
    section = rollout_section(browser, ROLLED_OUT, "shadow")
    shown = facts(section)
    difference = expected["shadow"]["mean_top1_difference"]
    assert shown == {
        "State": "shadow", "Serving version": "1", "Candidate": "2",
        "Mode and share": "shadow: gets a copy of 100.0 % of unpinned requests",
        "Shadow agreement": f"100.0 % of {len(texts)} inputs; top-1 probabilities differ by {difference:.3f} "
                            "on average",
        "Shadow copies": f"{len(texts)} answered, 0 dropped because the shadow queue was full",
    }
    # Each status in words (and a sign), not only in colour.
    assert rows(section, "gates") == [
        ["Agreement with stable", "✓ pass", "100.0 %", "at least 95.0 %"],
        ["Error rate", "✓ pass", "0.0 %", "at most 1.0 %"],
        ["Label drift against stable (PSI)", "✓ pass", "0.000", "at most 0.250"],
        ["Label drift against the card's reference (PSI)", "– off: turned off in the policy", "none", "none"],
    ]
    figures = expected["versions"]
    assert rows(section, "versions") == [
        [f"{version} ({role})", str(len(texts)), "0", f"{figures[version]['p99_ms']:.1f}"]
        for version, role in (("1", "stable"), ("2", "candidate"))]
    assert f"process {expected['process']}" in section.find_element(By.CSS_SELECTOR, "table.versions caption").text
    # A model without a policy says so.
    assert facts(rollout_section(browser, "tiny-image", "no policy")) == {"State": "no policy", "Serving version": "1"}
    screenshot(browser, "10-rollout-shadow")
    assert accessibility_violations(browser) == []  # the gate colours, the tables, the refresh buttons
    assert errors_other_than(console(browser), None) == []

    # The long gate names and details wrap at phone width rather than widen the page.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True})
    wait_for(browser, lambda d: d.execute_script("return window.innerWidth") == 360, "the phone width")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    screenshot(browser, "11-rollout-shadow-phone-width")


def test_a_rollback_shows_its_gate_and_reason_as_text_after_a_refresh(
    browser: Driver, rollout_service: RunningService, rollout_artifacts: Path
) -> None:
    open_page(browser, rollout_service)
    section = panel(browser, ROLLED_OUT).find_element(By.CSS_SELECTOR, ".rollout")
    wait_for(browser, lambda _: section.get_attribute("data-state") in ("shadow", "no policy"), "the rollout")

    at = now()
    write_policy(rollout_service, rollout_artifacts, stable=1, candidate=2, mode="off", gates=TINY_GATES,
                 rollback=Rollback(candidate=2, gate="agreement", reason=HOSTILE, at=at, by="browser-test"))
    assert rollout_of(rollout_service)["state"] == "rolled back"
    # The page does not poll: the button asks again.
    section.find_element(By.CSS_SELECTOR, ".rollout-refresh").click()
    section = rollout_section(browser, ROLLED_OUT, "rolled back")
    shown = facts(section)
    assert (shown["State"], shown["Candidate"], shown["Mode and share"]) == ("rolled back", "2",
                                                                             "off: takes no traffic")
    # The reason is shown as the characters it is: no element made of it, nothing run.
    assert shown["Rolled back"] == f"candidate 2, gate agreement: {HOSTILE}; at {at} by browser-test"
    assert section.find_elements(By.CSS_SELECTOR, "img, b") == []
    assert browser.execute_script("return document.body.dataset.injected") is None
    assert section.find_element(By.CSS_SELECTOR, "time").get_attribute("datetime") == at
    screenshot(browser, "12-rollout-rolled-back")
    assert accessibility_violations(browser) == []
    assert errors_other_than(console(browser), None) == []


# --- Explanations (POST /sentiment "explain", POST /classify-image?explain=true) ---------------

# Shaped like a card's figures might be: the page shows whatever the card holds, keys joined.
FAITHFULNESS = {"top_quarter": {"mean_drop": 0.231}, "random_quarter": {"mean_drop": 0.047}, "ratio": 4.9,
                "images": 500}
READ_WORDS = """return [...arguments[0].querySelectorAll("mark.word")].map((mark) => ({
    text: mark.textContent, weight: Number(mark.dataset.weight), way: mark.classList[1], title: mark.title,
    background: getComputedStyle(mark).backgroundColor, spoken: mark.nextElementSibling.textContent}));"""
# The shaded text as drawn: without the weights written out for assistive tech.
READ_SHOWN_TEXT = """const copy = arguments[0].cloneNode(true);
    copy.querySelectorAll(".visually-hidden").forEach((hidden) => hidden.remove());
    return copy.textContent;"""
# The heatmap's pixels, one per cell: rows of [red, green, blue, alpha].
READ_CELLS = """const canvas = arguments[0];
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    return Array.from({length: canvas.height}, (_, y) => Array.from({length: canvas.width},
        (_, x) => Array.from(data.slice(4 * (y * canvas.width + x), 4 * (y * canvas.width + x) + 4))));"""


@pytest.fixture(scope="module")
def explain_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """quadrant-image, whose card carries faithfulness figures, and tiny-text: version 1's card declares no
    tokenizer (it cannot explain), version 2's does (it is served)."""
    root = tmp_path_factory.mktemp("explain") / "artifacts"
    card = build_quadrant_image_model(root / "quadrant-image" / "1") / "model.json"
    card.write_text(json.dumps(json.loads(card.read_text()) | {"explanations": {"faithfulness": FAITHFULNESS}}))
    build_text_model(root / "tiny-text" / "1", declare_tokenizer=False)
    build_text_model(root / "tiny-text" / "2")
    log = tmp_path_factory.mktemp("explain-service-log") / "service.log"
    with running_service(root, log, default_sentiment_model="tiny-text") as running:
        yield running


def type_lines(driver: Driver, field: WebElement, lines: list[str]) -> None:
    """Lines typed into a text box as a keyboard or an input method puts them there. ChromeDriver's
    send_keys cannot send a character outside Unicode's first plane (an emoji), so the text goes in
    through DevTools' Input.insertText, and each line break as the Enter key."""
    field.click()
    for index, line in enumerate(lines):
        if index:
            ActionChains(driver).send_keys(Keys.ENTER).perform()
        driver.execute_cdp_cmd("Input.insertText", {"text": line})
    assert field.get_attribute("value") == "\n".join(lines)


def explain_box(block: WebElement) -> WebElement:
    return block.find_element(By.CSS_SELECTOR, ".explain-field input[type=checkbox]")


def quadrant_image(folder: Path) -> Path:
    """A wide image (3:2, so the page letterboxes it), blue but for a reddish top-left quadrant: the only
    part quadrant-image looks at, once the service has resized the image to the model's square. Not a
    saturated red, so that greying one of its cells lowers P(red) by far more than float32 rounding."""
    image = Image.new("RGB", (48, 32), (40, 60, 200))
    image.paste((160, 120, 120), (0, 0, 24, 16))
    path = folder / "quadrant.png"
    image.save(path, format="PNG")
    return path


def test_an_explained_text_shades_the_characters_of_each_word_even_after_an_emoji(
    browser: Driver, explain_service: RunningService
) -> None:
    # An emoji is one code point (the service's offsets) but two UTF-16 units (JavaScript's).
    texts = ["😀 so good", "good good bad film"]
    expected = api(explain_service, "POST", "/sentiment", json={"texts": texts, "explain": True}).json()["results"]
    open_page(browser, explain_service)
    text_panel = panel(browser, "tiny-text")
    box = explain_box(text_panel)
    assert box.is_displayed() and not box.is_selected()
    assert text_panel.find_element(By.CSS_SELECTOR, f"label[for='{box.get_attribute('id')}']").text == (
        "Explain: shade each word by how it moved the label")
    box.click()
    type_lines(browser, text_panel.find_element(By.TAG_NAME, "textarea"), texts)
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    first, second = answer(browser, "tiny-text").find_elements(By.CSS_SELECTOR, ".text-result")

    quote = first.find_element(By.CSS_SELECTOR, ".explained-text")
    assert browser.execute_script(READ_SHOWN_TEXT, quote) == texts[0]  # the emoji whole, nothing lost or doubled
    words = browser.execute_script(READ_WORDS, quote)
    tokens = expected[0]["explanation"]["tokens"]
    assert [w["text"] for w in words] == [texts[0][t["start"]:t["end"]] for t in tokens] == ["so", "good"]
    assert [w["weight"] for w in words] == pytest.approx([t["weight"] for t in tokens])
    strongest = max(words, key=lambda w: abs(w["weight"]))
    assert strongest["text"] == "good" and strongest["way"] == "toward"
    assert strongest["background"] == "rgb(246, 178, 107)"  # the full tint: the largest weight in its text
    said = f"weight +{strongest['weight']:.3f}, toward positive"
    assert (strongest["spoken"], strongest["title"]) == (f" ({said})", f"good: {said}")
    # "so" changes nothing: no shading, and no direction claimed.
    assert (words[0]["way"], words[0]["background"], words[0]["spoken"]) == (
        "none", "rgba(0, 0, 0, 0)", " (weight 0.000, no effect)")
    assert first.find_element(By.CSS_SELECTOR, ".legend").text.splitlines() == [
        "pushes toward positive", "pushes away from positive"]

    # Both directions in one text, each by its share of the largest weight.
    words = browser.execute_script(READ_WORDS, second.find_element(By.CSS_SELECTOR, ".explained-text"))
    assert [(w["text"], w["way"]) for w in words] == [("good", "toward"), ("good", "toward"), ("bad", "away"),
                                                      ("film", "none")]
    share = abs(words[2]["weight"]) / words[0]["weight"]
    assert 0 < share < 1
    tint = [int(channel) for channel in re.findall(r"\d+", words[2]["background"])]
    assert tint == pytest.approx([255 - (255 - channel) * share for channel in (142, 186, 229)], abs=0.51)
    screenshot(browser, "13-explained-texts")
    assert accessibility_violations(browser) == []  # the tints' contrast, the legend, the checkbox's label
    assert errors_other_than(console(browser), None) == []


def test_an_explained_image_shows_a_heatmap_over_the_quadrant_the_model_looks_at(
    browser: Driver, explain_service: RunningService, tmp_path: Path
) -> None:
    path = quadrant_image(tmp_path)
    expected = api(explain_service, "POST", "/classify-image", params={"model": "quadrant-image", "explain": "true"},
                   content=path.read_bytes(), headers={"Content-Type": "image/png"}).json()["results"][0]
    assert expected["label"] == "red"
    saliency = expected["explanation"]["saliency"]
    open_page(browser, explain_service)
    image_panel = panel(browser, "quadrant-image")
    # The card's faithfulness figures, as the card gives them; the runtime of the version shown.
    assert rows(image_panel, "faithfulness-table") == [
        ["top quarter, mean drop", "0.231"], ["random quarter, mean drop", "0.047"], ["ratio", "4.900"],
        ["images", "500"]]
    assert "Runtime\ntensorflow" in image_panel.find_element(By.CSS_SELECTOR, ".figures").text
    assert panel(browser, "tiny-text").find_elements(By.CSS_SELECTOR, ".faithfulness table") == []

    explain_box(image_panel).click()
    image_panel.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path))
    image_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "quadrant-image")
    assert shown_bars(results)[0][0] == "red"
    canvas = results.find_element(By.CSS_SELECTOR, "canvas.heatmap")
    wait_for(browser, lambda _: canvas.get_attribute("data-placed") == "true", "the heatmap laid over the preview")

    # One pixel per cell: orange in the top-left quadrant, as opaque as the cell's share of the largest
    # weight, and nothing anywhere else.
    cells = browser.execute_script(READ_CELLS, canvas)
    assert [len(row) for row in cells] == [len(row) for row in saliency] == [8] * 8
    largest = max(abs(weight) for row in saliency for weight in row)
    for y, row in enumerate(cells):
        for x, (red, green, blue, alpha) in enumerate(row):
            if y < 4 and x < 4:
                assert alpha == pytest.approx(0.8 * 255 * saliency[y][x] / largest, abs=1.5), (y, x)
                # The canvas keeps colours multiplied by alpha: they come back rounded, the more so the fainter.
                assert [red, green, blue] == pytest.approx([213, 94, 0], abs=1 + 255 / alpha), (y, x)
            else:
                assert alpha == 0, (y, x)
    strongest = max(((y, x) for y in range(8) for x in range(8)), key=lambda cell: cells[cell[0]][cell[1]][3])
    assert strongest[0] < 4 and strongest[1] < 4
    assert canvas.get_attribute("aria-label") == (
        "Heatmap over quadrant.png: what supports red is centred on the top left of the image.")
    # Laid exactly over the picture, which the square preview shows full width, centred between bands.
    preview = results.find_element(By.CSS_SELECTOR, "img.preview")
    box_of = "const r = arguments[0].getBoundingClientRect(); return [r.x, r.y, r.width, r.height];"
    x, y, width, height = browser.execute_script(box_of, preview)
    picture = [x, y + (height - width / 1.5) / 2, width, width / 1.5]
    assert browser.execute_script(box_of, canvas) == pytest.approx(picture, abs=0.5)
    assert results.find_element(By.CSS_SELECTOR, ".legend").text.splitlines() == [
        "pushes toward red", "pushes away from red"]
    screenshot(browser, "14-explained-image")
    assert accessibility_violations(browser) == []

    # The toggle hides the heatmap and shows it again.
    toggle = results.find_element(By.CSS_SELECTOR, ".heatmap-toggle input")
    assert toggle.is_selected() and toggle.get_attribute("aria-controls") == canvas.get_attribute("id")
    assert results.find_element(By.CSS_SELECTOR, ".heatmap-toggle label").text.startswith("Show the heatmap")
    toggle.click()
    assert not canvas.is_displayed()
    screenshot(browser, "15-heatmap-hidden")
    toggle.click()
    assert canvas.is_displayed()
    assert errors_other_than(console(browser), None) == []


def test_a_hostile_text_is_shown_as_its_characters_when_explained(
    browser: Driver, explain_service: RunningService
) -> None:
    hostile = f"{HOSTILE} <script>document.body.dataset.injected='script'</script> good"
    open_page(browser, explain_service)
    text_panel = panel(browser, "tiny-text")
    explain_box(text_panel).click()
    type_lines(browser, text_panel.find_element(By.TAG_NAME, "textarea"), [hostile])
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "tiny-text")
    quote = results.find_element(By.CSS_SELECTOR, ".explained-text")
    assert browser.execute_script(READ_SHOWN_TEXT, quote) == hostile
    assert results.find_elements(By.CSS_SELECTOR, "img, b, script") == []
    assert browser.execute_script("return document.body.dataset.injected") is None
    words = browser.execute_script(READ_WORDS, quote)
    assert max(words, key=lambda w: abs(w["weight"]))["text"] == "good"
    assert errors_other_than(console(browser), None) == []


def test_a_version_that_cannot_explain_offers_no_explain_checkbox(
    browser: Driver, explain_service: RunningService
) -> None:
    [text_model] = [m for m in api(explain_service, "GET", "/models").json()["models"] if m["name"] == "tiny-text"]
    assert {v["version"]: v["explains"] for v in text_model["versions"]} == {1: False, 2: True}
    open_page(browser, explain_service)
    text_panel = panel(browser, "tiny-text")
    box = explain_box(text_panel)
    unavailable = text_panel.find_element(By.CSS_SELECTOR, ".explain-unavailable")
    assert box.is_displayed() and not unavailable.is_displayed()
    box.click()

    text_panel.find_element(By.CSS_SELECTOR, ".version-select option[value='1']").click()
    assert not box.is_displayed()
    assert unavailable.text == "Version 1 cannot explain its answers."
    # Ticked for version 2, the checkbox does not make a request to version 1 ask for what it would refuse.
    text_panel.find_element(By.TAG_NAME, "textarea").send_keys("good")
    text_panel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    results = answer(browser, "tiny-text")
    assert "tiny-text version 1" in results.find_element(By.CSS_SELECTOR, ".answered-by").text
    assert results.find_elements(By.CSS_SELECTOR, "mark, .legend") == []
    assert results.find_element(By.TAG_NAME, "blockquote").text == "good"
    screenshot(browser, "16-version-cannot-explain")
    assert accessibility_violations(browser) == []

    text_panel.find_element(By.CSS_SELECTOR, ".version-select option[value='2']").click()
    assert box.is_displayed() and box.is_selected() and not unavailable.is_displayed()
    assert errors_other_than(console(browser), None) == []
