"""The review page on the example order card in a real browser (Debian ``chromium`` headless
through Selenium and ``chromium-driver``, as ``test_browser.py``): the page shows the card's
field, refuses a character an order number cannot have - saying why, under the box - and saves
the corrected ORDER_NO; the Label Studio export of the run has the card's seven fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from handwriting_pipeline.review.run import ReviewRun
from tests.review.order_card_run import make_order_card_run
from tests.review.test_browser import CHROMEDRIVER, CHROMIUM, Server, _free_port, _wait_for

ORDER_CARD = ["ORDER_NO", "DATE", "AMOUNT", "PHONE", "CITY", "STATE", "ZIP"]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no browser: apt-get install chromium chromium-driver (the Makefile's APT_PACKAGES) for the review page test")


def test_an_order_card_field_is_corrected_in_a_real_browser(tmp_path: Path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    folder = make_order_card_run(tmp_path / "order_run")
    run = ReviewRun.open(folder)
    item = run.items[0]
    assert (run.spec.name, item.field, item.chosen) == ("order_card", "ORDER_NO", "1234567")
    base = f"http://127.0.0.1:{_free_port()}"
    server = Server(folder, int(base.rsplit(":", 1)[1]))
    server.start()
    try:
        browser.get(base + "/")
        _wait_for(browser, "/item/0")
        assert browser.find_element(By.ID, "field-name").text == "ORDER_NO"
        assert browser.find_element(By.ID, "field-title").text == "Order number (8 digits)"
        assert browser.execute_script("return document.getElementById('crop').naturalWidth") > 0
        assert "AMOUNT $1,234.5" in browser.find_element(By.CSS_SELECTOR, "section.others").text

        # a digit typed on the page picks a candidate: a number is typed into the box itself
        box = browser.find_element(By.ID, "value")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("1234567a" + Keys.ENTER)                            # 'a' is no digit
        error = browser.find_element(By.ID, "error")
        deadline = time.time() + 10
        while time.time() < deadline and not error.is_displayed():
            time.sleep(0.1)
        assert error.is_displayed(), "the refusal is not shown"
        assert error.text.startswith("Not saved: ORDER_NO: characters not allowed: 'a'")
        assert browser.find_elements(By.CSS_SELECTOR, "form#decide + p#error")  # right under the box
        assert browser.find_element(By.ID, "value").get_attribute("aria-invalid") == "true"
        assert browser.current_url.endswith("/item/0") and run.store().decisions() == []

        box.send_keys(Keys.BACKSPACE)                                     # editing again clears the message
        assert not browser.find_element(By.ID, "error").is_displayed()
        box.send_keys("8" + Keys.ENTER)                                  # 12345678: saved, the next field
        _wait_for(browser, "/item/1")
    finally:
        server.kill()
    [decision] = run.store().decisions()
    assert (decision.form, decision.field, decision.value, decision.action, decision.status, decision.reviewer) == (
        item.form, "ORDER_NO", "12345678", "correct", "corrected", "browser")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-m", "handwriting_pipeline.review", "labelstudio-export", str(folder)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    config = ET.fromstring((folder / "labelstudio" / "label_config.xml").read_text())
    assert [tag.get("name") for tag in config if tag.get("toName")] == ORDER_CARD
    tasks = json.loads((folder / "labelstudio" / "tasks.json").read_text())
    assert tasks and all([r["from_name"] for r in t["predictions"][0]["result"]] == ORDER_CARD for t in tasks)
