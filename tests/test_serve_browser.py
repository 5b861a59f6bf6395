"""End to end in a real browser: `facepad serve`, the page, a photo upload, scores on screen.

Needs Debian's chromium and chromium-driver (the CI script installs them); skips where absent.
The screenshot is left at /tmp/facepad_serve_page.png for a person to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _infer_helpers import grace_hopper_path, save_tiny_checkpoint

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/facepad_serve_page.png")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="needs /usr/bin/chromium and /usr/bin/chromedriver "
        "(apt-get install -y chromium chromium-driver)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`facepad serve` on a free loopback port, in its own process."""
    from facepad.infer.export import export_onnx

    root = tmp_path_factory.mktemp("browser")
    ckpt = save_tiny_checkpoint(root / "d.pt", "depth_unet")
    model = export_onnx(ckpt, root / "d.onnx", check=False)["out"]
    port = free_port()
    code = "import sys; from facepad.serve.commands import register, run_serve; import argparse;"
    code += "p = argparse.ArgumentParser(); register(p.add_subparsers());"
    code += "a = p.parse_args(sys.argv[1:]); sys.exit(run_serve(a))"
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", model, "--port", str(port), "--threads", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {(root / 'server.log').read_text()[-2000:]}")
    if proc.poll() is not None:
        pytest.fail(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


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
