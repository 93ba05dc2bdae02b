"""A real browser on the review page (Debian ``chromium`` headless, driven by Selenium through
Debian's ``chromium-driver``; nothing is downloaded): accept one field with Enter, correct one by
typing, pick a candidate with its number key; the server is killed (SIGKILL) between decisions and
started again; the store and the exported JSON hold all three."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from handwriting_pipeline.review.run import ReviewRun

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CORRECTIONS = {"CITY": "Milford", "STATE": "MI", "ZIP": "48381", "DATE": "8-2-89"}

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no browser: apt-get install chromium chromium-driver (the Makefile's APT_PACKAGES) for the review page test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m handwriting_pipeline.review`` in its own process."""

    def __init__(self, run: Path, port: int) -> None:
        self.run, self.port, self.proc = run, port, None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen([sys.executable, "-m", "handwriting_pipeline.review", str(self.run),
                                      "--port", str(self.port), "--reviewer", "browser"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"review server ended: {self.proc.stderr.read()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/progress", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("review server did not start in 60 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait_for(driver, path: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if driver.current_url.endswith(path) and driver.execute_script("return document.readyState") == "complete":
            return
        time.sleep(0.1)
    raise AssertionError(f"page {path} not reached; at {driver.current_url}")


def test_review_in_a_real_browser(run_copy: Path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = ReviewRun.open(run_copy)
    items = run.items
    assert len(items) >= 3
    base = f"http://127.0.0.1:{_free_port()}"
    server = Server(run_copy, int(base.rsplit(":", 1)[1]))
    server.start()
    try:
        browser.get(base + "/")
        _wait_for(browser, "/item/0")
        assert browser.find_element(By.ID, "field-name").text == items[0].field
        assert browser.execute_script("return document.getElementById('crop').naturalWidth") > 0
        if os.environ.get("HWP_REVIEW_SCREENSHOT"):
            browser.find_element(By.ID, "toggle-top").click()
            browser.save_screenshot(os.environ["HWP_REVIEW_SCREENSHOT"])
            browser.find_element(By.ID, "toggle-top").click()
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.ENTER)                                    # 1. accept
        _wait_for(browser, "/item/1")
        browser.find_element(By.TAG_NAME, "body").send_keys(CORRECTIONS[items[1].field] + Keys.ENTER)  # 2. correct
        _wait_for(browser, "/item/2")
        server.kill()                                                 # killed between two decisions
        server.start()
        browser.refresh()
        _wait_for(browser, "/item/2")
        options = browser.find_elements(By.CSS_SELECTOR, "button.option")
        assert options
        browser.find_element(By.TAG_NAME, "body").send_keys("1")     # 3. pick candidate 1
        _wait_for(browser, "/item/3")
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.BACKSPACE)  # back to the picked field
        _wait_for(browser, "/item/2")
        assert "Decided before" in browser.find_element(By.ID, "history").text
    finally:
        server.kill()
    decisions = run.store().decisions()
    assert [(d.form, d.field, d.action) for d in decisions] == [
        (items[0].form, items[0].field, "accept"), (items[1].form, items[1].field, "correct"),
        (items[2].form, items[2].field, "pick")]
    assert decisions[1].value == CORRECTIONS[items[1].field] and {d.reviewer for d in decisions} == {"browser"}
    assert decisions[2].value == items[2].options()[0]["value"]
    subprocess.run([sys.executable, "-m", "handwriting_pipeline.review", "export", str(run_copy)], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, stdout=subprocess.DEVNULL)
    rows = {f"{r['source']}#{r['page']}": r
            for r in map(json.loads, (run_copy / "reviewed" / "forms.jsonl").read_text().splitlines())}
    assert rows[items[0].form][f"{items[0].field}_status"] == "confirmed"
    assert rows[items[1].form][f"{items[1].field}_status"] == "corrected"
    assert rows[items[1].form][items[1].field] == CORRECTIONS[items[1].field]
    assert rows[items[2].form][items[2].field] == items[2].options()[0]["value"]
    assert rows[items[2].form][f"{items[2].field}_status"] in ("confirmed", "corrected")
