"""End to end in a real browser: `facepad serve`, the page, a photo upload, scores on screen.

Needs Debian's chromium and chromium-driver (the CI script installs them); skips where absent.
The screenshot is left at /tmp/facepad_serve_page.png for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _infer_helpers import grace_hopper_path, tiny_onnx_model
from _serve_helpers import ServeProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/facepad_serve_page.png")
KEY = "browser-key-0123456789abcdef"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
        "(apt-get install -y chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_onnx_model(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    """`facepad serve --response full` on a free loopback port, in its own process."""
    log = tmp_path_factory.mktemp("full") / "server.log"
    proc = ServeProcess(model, "--response", "full", log=log).wait_ready()
    yield proc.url
    proc.stop()


@pytest.fixture(scope="module")
def guarded_server(model, tmp_path_factory):
    """`facepad serve` with its defaults (decisions only) and an API key."""
    root = tmp_path_factory.mktemp("guarded")
    (root / "keys.txt").write_text(KEY + "\n")
    args = ("--api-key-file", str(root / "keys.txt"))
    proc = ServeProcess(model, *args, log=root / "server.log").wait_ready()
    yield proc.url
    proc.stop()


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
        "--use-fake-device-for-media-stream",  # a synthetic camera for the snap button
        "--use-fake-ui-for-media-stream",  # grant camera access without a prompt
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium manager must not phone home
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_upload_a_photo_and_see_the_score(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    wait = WebDriverWait(browser, 60)
    wait.until(ec.text_to_be_present_in_element((By.ID, "model"), "depth_unet"))
    browser.find_element(By.ID, "file").send_keys(str(grace_hopper_path()))
    card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#faces .face")))
    score = float(card.find_element(By.CSS_SELECTOR, ".score").text)
    assert 0.0 <= score <= 1.0
    decision = card.find_element(By.CSS_SELECTOR, ".decision").text.lower()
    assert decision in ("live", "spoof")
    depth = card.find_element(By.TAG_NAME, "img")
    assert browser.execute_script("return arguments[0].naturalWidth", depth) == 16
    # The canvas holds the uploaded photo (not blank) with the box drawn on it.
    size = browser.execute_script(
        "const c = document.getElementById('canvas'); return [c.width, c.height];"
    )
    assert size == [512, 600]
    assert "face(s)" in browser.find_element(By.ID, "status").text
    browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_bad_file_shows_an_error_on_the_page(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    browser.get(server)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 30).until(
        ec.text_to_be_present_in_element((By.ID, "status"), "error 415")
    )


def test_snap_a_photo_from_the_camera(server, browser):
    """getUserMedia with Chromium's fake camera (a test pattern, no face): the snap round-trips."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    wait = WebDriverWait(browser, 60)
    browser.find_element(By.ID, "camera").click()
    wait.until(lambda d: d.find_element(By.ID, "snap").is_enabled())
    wait.until(lambda d: d.execute_script("return document.getElementById('video').videoWidth > 0"))
    browser.find_element(By.ID, "snap").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1")
    status = browser.find_element(By.ID, "status").text
    assert status == "no face found" or "face(s)" in status
    width = browser.execute_script("return document.getElementById('canvas').width")
    assert width == browser.execute_script("return document.getElementById('video').videoWidth")


def test_default_mode_shows_the_decision_and_asks_for_the_key(guarded_server, browser):
    """Decisions only (no score, no threshold on the page); the key field appears and is used."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(guarded_server)
    wait = WebDriverWait(browser, 60)
    wait.until(ec.text_to_be_present_in_element((By.ID, "model"), "response mode decision"))
    wait.until(lambda d: d.find_element(By.ID, "apikey").is_displayed())
    browser.find_element(By.ID, "file").send_keys(str(grace_hopper_path()))
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "error 401"))
    browser.find_element(By.ID, "apikey").send_keys(KEY)
    browser.execute_script("document.getElementById('file').value = '';")  # choose it again
    browser.find_element(By.ID, "file").send_keys(str(grace_hopper_path()))
    card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#faces .face")))
    assert card.find_element(By.CSS_SELECTOR, ".decision").text.lower() in ("live", "spoof")
    assert not card.find_elements(By.CSS_SELECTOR, ".score")
    assert "threshold" not in card.text and not card.find_elements(By.TAG_NAME, "img")
    browser.save_screenshot(str(SCREENSHOT.with_name("facepad_serve_page_decision.png")))
