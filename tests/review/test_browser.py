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


def test_a_refused_value_says_why_next_to_the_box_and_the_page_says_why_a_field_is_doubtful(run_copy: Path, browser):
    """Typing markup into a field and pressing Enter: the store refuses it and the page says so,
    as text, right under the box; each field says why it is doubtful; the normalized value is a
    candidate that can be picked by its number."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = ReviewRun.open(run_copy)
    zip_item = next((it for it in run.items if it.field == "ZIP"), run.items[0])
    base = f"http://127.0.0.1:{_free_port()}"
    server = Server(run_copy, int(base.rsplit(":", 1)[1]))
    server.start()
    try:
        browser.get(f"{base}/item/{zip_item.index}")
        _wait_for(browser, f"/item/{zip_item.index}")
        why = browser.find_element(By.ID, "why").text
        assert why.startswith("Why doubtful:") and "low confidence" in why
        browser.find_element(By.TAG_NAME, "body").send_keys("<img src=x onerror=alert(1)>" + Keys.ENTER)
        deadline = time.time() + 10
        error = browser.find_element(By.ID, "error")
        while time.time() < deadline and not error.is_displayed():
            time.sleep(0.1)
        assert error.is_displayed(), "the refusal is not shown"
        assert error.text.startswith(f"Not saved: {zip_item.field}: characters not allowed") and "'<'" in error.text
        assert browser.execute_script("return document.getElementById('error').children.length") == 0  # text only
        assert browser.find_elements(By.CSS_SELECTOR, "form#decide + p#error")  # right under the box
        assert browser.execute_script(
            "const r = document.getElementById('error').getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight")
        assert browser.find_element(By.ID, "value").get_attribute("aria-invalid") == "true"
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - the markup never ran
        assert browser.current_url.endswith(f"/item/{zip_item.index}") and run.store().decisions() == []
        browser.find_element(By.ID, "value").send_keys(Keys.BACKSPACE)  # editing again clears the message
        assert not browser.find_element(By.ID, "error").is_displayed()

        normalizable = next((it for it in run.items if it.normalized_option()), None)
        if normalizable is not None:  # e.g. STATE read "N.y": NY is offered
            browser.get(f"{base}/item/{normalizable.index}")
            _wait_for(browser, f"/item/{normalizable.index}")
            buttons = browser.find_elements(By.CSS_SELECTOR, "button.option")
            labels = [b.text for b in buttons]
            n = next(i for i, text in enumerate(labels, 1) if text.endswith("normalized"))
            assert normalizable.normalized in labels[n - 1]
            browser.find_element(By.TAG_NAME, "body").send_keys(str(n))
            _wait_for(browser, "/done" if normalizable.index + 1 == len(run.items) else f"/item/{normalizable.index + 1}")
            [decision] = run.store().decisions()
            assert (decision.value, decision.action, decision.candidate) == (normalizable.normalized, "pick", "normalized")
    finally:
        server.kill()
